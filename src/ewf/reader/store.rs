//! What the reader keeps after its walk, bounded whatever the size of the image: per table
//! only where it is ([`TableLoc`], a few dozen bytes for up to 65534 chunks), its entries read
//! again on demand into a small [`TableCache`]; segment files opened on demand through a
//! bounded [`SegmentFiles`] (a set of thousands of segments must not take a descriptor each).
//!
//! A 2 TB image at 32 KiB chunks has 64 M chunks: a place per chunk would be 2 GiB before a
//! byte is read. Its ~1000 tables cost ~50 KiB here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::image::place::{ByteSource, FileId, Place};

/// Where one table's chosen copy (`table`, or `table2` when the table is damaged) lies, and
/// what its entries summed to when the walk checked them.
#[derive(Clone, Debug)]
pub(super) struct TableLoc {
    pub segment: usize,
    /// File offset of the first entry.
    pub entries_at: u64,
    /// Media-order index of its first chunk.
    pub first_chunk: u64,
    /// Entries used (those past what the sectors section can hold are dropped by the walk).
    pub count: u32,
    pub base: u64,
    /// Where the last chunk ends: the offset of the `table` section.
    pub end: u64,
    /// Adler-32 of the used entries as the walk read them: a table rewritten in place since
    /// then is damage, not other data.
    pub sum: u32,
}

/// Decoded tables by number, within a byte budget; sharded by table number, and hits take
/// only a read lock, so parallel readers of one table do not wait on each other.
pub(super) struct TableCache {
    shards: Vec<RwLock<Vec<Slot>>>,
    per_shard_bytes: usize,
    tick: AtomicU64,
}

struct Slot {
    table: usize,
    entries: Arc<[u32]>,
    used: AtomicU64,
}

const TABLE_SHARDS: usize = 4;
/// Decoded entries kept per shard (1 MiB in all; our tables are 256 KiB at most, so at least
/// 4 of them, each 2 GiB of media at 32 KiB chunks). A shard always keeps the newest table,
/// whatever its size.
const TABLE_SHARD_BYTES: usize = 256 << 10;

impl Default for TableCache {
    fn default() -> Self {
        TableCache::new(TABLE_SHARD_BYTES)
    }
}

impl TableCache {
    pub fn new(per_shard_bytes: usize) -> Self {
        TableCache {
            shards: (0..TABLE_SHARDS).map(|_| RwLock::default()).collect(),
            per_shard_bytes,
            tick: AtomicU64::new(0),
        }
    }

    fn shard(&self, table: usize) -> &RwLock<Vec<Slot>> {
        &self.shards[table % TABLE_SHARDS]
    }

    pub fn get(&self, table: usize) -> Option<Arc<[u32]>> {
        let s = self.shard(table).read().unwrap_or_else(|e| e.into_inner());
        let slot = s.iter().find(|s| s.table == table)?;
        slot.used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(Arc::clone(&slot.entries))
    }

    pub fn put(&self, table: usize, entries: Arc<[u32]>) {
        let mut s = self.shard(table).write().unwrap_or_else(|e| e.into_inner());
        if s.iter().any(|s| s.table == table) {
            return; // another reader loaded it meanwhile
        }
        let bytes = |s: &[Slot]| s.iter().map(|s| s.entries.len() * 4).sum::<usize>();
        while !s.is_empty() && bytes(&s) + entries.len() * 4 > self.per_shard_bytes {
            let oldest = (0..s.len())
                .min_by_key(|&i| s[i].used.load(Ordering::Relaxed))
                .unwrap_or(0);
            s.swap_remove(oldest);
        }
        s.push(Slot {
            table,
            entries,
            used: AtomicU64::new(self.tick.fetch_add(1, Ordering::Relaxed)),
        });
    }

    /// Tables held now (for tests of the bound).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// One segment file as the walk found it: a file reopened later must be the same one.
pub(super) struct Segment {
    pub path: std::path::PathBuf,
    pub len: u64,
    /// (device, inode), or the object's ETag, at open time.
    pub id: FileId,
}

/// Most segment files open at once (the walk and a sequential pass need one; parallel
/// readers a few).
pub(super) const MAX_OPEN_SEGMENTS: usize = 64;

/// Segment files opened on demand, at most `capacity` at once, the least recently used
/// closed first.
pub(super) struct SegmentFiles {
    capacity: usize,
    open: Mutex<OpenFiles>,
}

#[derive(Default)]
struct OpenFiles {
    /// Segment number → (file, last use).
    map: HashMap<usize, (Arc<dyn ByteSource>, u64)>,
    tick: u64,
}

impl SegmentFiles {
    pub fn new(capacity: usize) -> Self {
        SegmentFiles {
            capacity: capacity.max(1),
            open: Mutex::default(),
        }
    }

    /// Segment `i`, open from `place`. A file at its path that is not the one the walk
    /// checked (replaced, or renamed over, while mounted) is an error: its bytes would be
    /// other data.
    pub fn get(
        &self,
        place: &Place,
        i: usize,
        seg: &Segment,
    ) -> std::io::Result<Arc<dyn ByteSource>> {
        {
            let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let OpenFiles { map, tick } = &mut *g;
            *tick += 1;
            if let Some((f, used)) = map.get_mut(&i) {
                *used = *tick;
                return Ok(Arc::clone(f));
            }
        }
        // Opened without the lock: other readers' hits need not wait for it.
        let f = place
            .open(&seg.path, false)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if f.identity() != seg.id {
            return Err(std::io::Error::other(
                "the segment file was replaced since the image was opened",
            ));
        }
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let OpenFiles { map, tick } = &mut *g;
        if let Some((f, _)) = map.get(&i) {
            return Ok(Arc::clone(f));
        }
        if map.len() >= self.capacity {
            if let Some(&oldest) = map.iter().min_by_key(|(_, (_, u))| *u).map(|(k, _)| k) {
                map.remove(&oldest);
            }
        }
        map.insert(i, (Arc::clone(&f), *tick));
        Ok(f)
    }

    /// Files open now (for tests of the bound).
    #[cfg(test)]
    pub fn open_count(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize, seed: u32) -> Arc<[u32]> {
        (0..n as u32).map(|i| i.wrapping_mul(seed) ^ seed).collect()
    }

    #[test]
    fn the_table_cache_stays_within_its_budget_and_keeps_the_newest() {
        // 1 KiB a shard: one table of 100 entries (400 bytes) fits twice.
        let c = TableCache::new(1024);
        for t in 0..1000 {
            c.put(t, table(100, t as u32));
            assert!(c.len() <= 2 * TABLE_SHARDS, "{} tables held", c.len());
            assert_eq!(c.get(t).unwrap(), table(100, t as u32));
        }
        // A table larger than a shard's budget is still kept, alone.
        c.put(4000, table(10_000, 3));
        assert_eq!(c.get(4000).unwrap(), table(10_000, 3));
        let shard = c.shard(4000).read().unwrap();
        assert_eq!(shard.len(), 1);
    }

    #[test]
    fn the_least_recently_used_table_goes_first() {
        let c = TableCache::new(1024);
        // Tables 0, 4, 8 share a shard; 0 is used again before 8 comes.
        c.put(0, table(100, 1));
        c.put(4, table(100, 2));
        assert!(c.get(0).is_some());
        c.put(8, table(100, 3));
        assert!(c.get(4).is_none());
        assert_eq!(c.get(0).unwrap(), table(100, 1));
        assert_eq!(c.get(8).unwrap(), table(100, 3));
    }

    #[test]
    fn parallel_readers_get_their_own_tables_right() {
        let c = TableCache::new(2048);
        std::thread::scope(|s| {
            for w in 0..8u32 {
                let c = &c;
                s.spawn(move || {
                    for i in 0..2000u32 {
                        let t = ((i * 7 + w * 13) % 64) as usize;
                        let e = match c.get(t) {
                            Some(e) => e,
                            None => {
                                let e = table(64 + t, t as u32);
                                c.put(t, Arc::clone(&e));
                                e
                            }
                        };
                        assert_eq!(e, table(64 + t, t as u32));
                    }
                });
            }
        });
        assert!(c.len() <= 64);
    }

    #[test]
    fn segment_files_are_bounded_and_must_stay_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let segs: Vec<Segment> = (0..10)
            .map(|i| {
                let path = dir.path().join(format!("s{i}"));
                std::fs::write(&path, [i as u8; 8]).unwrap();
                let id = Place::Local.open(&path, false).unwrap().identity();
                Segment { path, len: 8, id }
            })
            .collect();
        let files = SegmentFiles::new(3);
        let local = Place::Local;
        for round in 0..3 {
            for (i, s) in segs.iter().enumerate() {
                let f = files.get(&local, i, s).unwrap();
                let mut b = [0u8; 1];
                crate::image::place::read_exact_at(&*f, &mut b, round).unwrap();
                assert_eq!(b[0], i as u8);
                assert!(files.open_count() <= 3);
            }
        }
        // Replaced under us: refused once it has to be opened again.
        let p = &segs[0].path;
        // Held open so that the new file cannot get the old one's inode number.
        let _old = std::fs::File::open(p).unwrap();
        std::fs::remove_file(p).unwrap();
        std::fs::write(p, [9u8; 8]).unwrap();
        for (i, s) in segs.iter().enumerate().skip(1) {
            files.get(&local, i, s).unwrap();
        }
        let Err(e) = files.get(&local, 0, &segs[0]) else {
            panic!("a replaced segment file was read");
        };
        assert!(e.to_string().contains("replaced"), "{e}");
    }
}
