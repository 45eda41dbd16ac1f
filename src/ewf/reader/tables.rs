//! The tables of an E01 set: each `table` (or its `table2` copy) checked for order and
//! bounds while the walk passes it, then remembered only by where it is ([`TableLoc`]); the
//! counts of the volume checked against them; and a chunk's place read back from its table
//! on demand, through the [`TableCache`].

use std::path::Path;
use std::sync::Arc;

use super::*;

impl E01Image {
    /// Checks a table (or its table2, when the table is damaged and the copy is not) for
    /// order and bounds, and remembers where its entries are.
    pub(super) fn commit_table(
        &mut self,
        seg: usize,
        path: &Path,
        p: PendingTable,
        table2: Option<(format::Table, u64)>,
        probs: &mut Vec<Problem>,
    ) {
        let ok = |t: &format::Table| t.header_ok && t.entries_ok;
        if let Some(t) = &p.table {
            if !t.header_ok {
                probs.push(problem(
                    path,
                    Some("table"),
                    Some(p.offset),
                    "table header Adler-32 mismatch".into(),
                ));
            }
            if !t.entries_ok {
                probs.push(problem(
                    path,
                    Some("table"),
                    Some(p.offset),
                    "table entries Adler-32 mismatch".into(),
                ));
            }
        }
        let chosen = match (p.table, table2) {
            (Some(t), _) if ok(&t) => (t, p.body_at),
            (_, Some(t2)) if ok(&t2.0) => {
                probs.push(problem(
                    path,
                    Some("table"),
                    Some(p.offset),
                    "damaged table: chunks located with table2".into(),
                ));
                t2
            }
            (Some(t), _) => (t, p.body_at),
            (None, Some(t2)) => t2,
            (None, None) => return,
        };
        let (chosen, body_at) = chosen;
        let Some((data_start, data_end)) = p.sectors else {
            probs.push(problem(
                path,
                Some("table"),
                Some(p.offset),
                "table without a sectors section before it".into(),
            ));
            return;
        };
        if data_end != p.offset {
            probs.push(problem(
                path,
                Some("table"),
                Some(p.offset),
                "table does not directly follow its sectors section".into(),
            ));
        }
        let first_chunk = self.chunk_total;
        let mut prev: Option<u64> = None;
        // Every chunk takes at least one byte of its sectors section: entries past that are
        // forged (a 16 MiB table of 4 M entries over a few bytes of data), and not kept.
        let room = usize::try_from(data_end.saturating_sub(data_start)).unwrap_or(usize::MAX);
        if chosen.entries.len() > room {
            probs.push(problem(
                path,
                Some("table"),
                Some(p.offset),
                format!(
                    "table lists {} chunks but its sectors section holds only {room} bytes; \
                     the entries past {room} are not used",
                    chosen.entries.len()
                ),
            ));
        }
        let entries = &chosen.entries[..chosen.entries.len().min(room)];
        // Problems with single entries: the first few one by one, the rest in one line.
        let mut listed = 0usize;
        let mut more: Option<(u64, u64, usize)> = None; // first chunk, last chunk, count
        let abs: Vec<u64> = entries
            .iter()
            .map(|e| {
                chosen
                    .base_offset
                    .saturating_add(u64::from(e & !COMPRESSED_FLAG))
            })
            .collect();
        for (k, &a) in abs.iter().enumerate() {
            let end = abs.get(k + 1).copied().unwrap_or(p.offset);
            let chunk = first_chunk + k as u64;
            let mut bad = None;
            if a < data_start || a >= data_end {
                bad = Some(format!(
                    "chunk offset {a} outside its sectors section {data_start}..{data_end}"
                ));
            } else if prev.is_some_and(|q| a <= q) || end <= a {
                bad = Some(format!(
                    "chunk offset {a} out of order (table entries must increase)"
                ));
            }
            if let Some(m) = bad {
                if listed < MAX_ENTRY_PROBLEMS {
                    listed += 1;
                    probs.push(Problem {
                        segment: path.to_path_buf(),
                        section: Some("table".into()),
                        offset: Some(p.offset),
                        chunk: Some(chunk),
                        media_range: None,
                        message: m,
                    });
                } else {
                    let m = more.get_or_insert((chunk, chunk, 0));
                    m.1 = chunk;
                    m.2 += 1;
                }
            }
            prev = Some(a);
        }
        if !entries.is_empty() {
            self.tables.push(TableLoc {
                segment: seg,
                entries_at: body_at + format::TABLE_HEADER_SIZE as u64,
                first_chunk,
                count: entries.len() as u32,
                base: chosen.base_offset,
                end: p.offset,
                sum: format::adler32(&entry_bytes(entries)),
            });
            self.chunk_total += entries.len() as u64;
        }
        if let Some((a, b, n)) = more {
            probs.push(Problem {
                segment: path.to_path_buf(),
                section: Some("table".into()),
                offset: Some(p.offset),
                chunk: Some(a),
                media_range: None,
                message: format!(
                    "and {n} more entries of this table out of place or out of order \
                     (chunks {a}..={b})"
                ),
            });
        }
    }

    pub(super) fn check_counts(&mut self) {
        let first = self.segments[0].path.clone();
        let Some(v) = &self.volume else {
            self.problems.push(problem(
                &first,
                Some("volume"),
                None,
                "no volume section: media geometry unknown".into(),
            ));
            return;
        };
        let mut p = Vec::new();
        let cs = v.chunk_size();
        if v.bytes_per_sector == 0 || v.sectors_per_chunk == 0 || cs > MAX_CHUNK {
            p.push(format!(
                "implausible geometry: {} sectors per chunk × {} bytes per sector",
                v.sectors_per_chunk, v.bytes_per_sector
            ));
        } else {
            let needed = v.media_size().div_ceil(cs);
            if needed != u64::from(v.chunk_count) {
                p.push(format!(
                    "volume chunk count {} but {} sectors need {needed} chunks",
                    v.chunk_count, v.sector_count
                ));
            }
            if needed != self.chunk_total {
                p.push(format!(
                    "tables list {} chunks, the media needs {needed}",
                    self.chunk_total
                ));
            }
        }
        for m in p {
            self.problems.push(problem(&first, Some("volume"), None, m));
        }
    }
}

fn entry_bytes(entries: &[u32]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_le_bytes()).collect()
}

impl E01Image {
    /// Number of chunks located through the tables.
    pub fn chunk_count(&self) -> u64 {
        self.chunk_total
    }

    /// Where chunk `index` (0-based, media order) is stored, as the tables say (`None` also
    /// when its table can no longer be read: see [`Self::locate`]).
    pub fn chunk_place(&self, index: u64) -> Option<ChunkPlace> {
        self.locate(index).ok().flatten()
    }

    /// Where chunk `index` is stored: `Ok(None)` past the tables, an error (with the table's
    /// place) when its table cannot be read again as the walk read it (the segment was
    /// truncated, replaced or rewritten since): damage for its chunks.
    pub(crate) fn locate(
        &self,
        index: u64,
    ) -> std::result::Result<Option<ChunkPlace>, Box<Problem>> {
        if index >= self.chunk_total {
            return Ok(None);
        }
        let t = self.tables.partition_point(|t| t.first_chunk <= index) - 1;
        let loc = &self.tables[t];
        let entries = match self.table_cache.get(t) {
            Some(e) => e,
            None => {
                let e = self.load_table(loc).map_err(|m| {
                    Box::new(Problem {
                        segment: self.segments[loc.segment].path.clone(),
                        section: Some("table".into()),
                        offset: Some(loc.end),
                        chunk: Some(index),
                        media_range: None,
                        message: m,
                    })
                })?;
                self.table_cache.put(t, Arc::clone(&e));
                e
            }
        };
        let k = (index - loc.first_chunk) as usize;
        let abs = |e: u32| loc.base.saturating_add(u64::from(e & !COMPRESSED_FLAG));
        let offset = abs(entries[k]);
        let end = entries.get(k + 1).map_or(loc.end, |&e| abs(e));
        Ok(Some(ChunkPlace {
            segment: self.segments[loc.segment].path.clone(),
            offset,
            stored_size: end.saturating_sub(offset),
            compressed: entries[k] & COMPRESSED_FLAG != 0,
            segment_index: loc.segment,
        }))
    }

    /// Segment `i`'s file, open (at most a few dozen are at once).
    pub(crate) fn segment_file(&self, i: usize) -> std::io::Result<Arc<dyn ByteSource>> {
        self.files.get(&self.place, i, &self.segments[i])
    }

    fn load_table(&self, loc: &TableLoc) -> std::result::Result<Arc<[u32]>, String> {
        let file = self
            .segment_file(loc.segment)
            .map_err(|e| format!("table cannot be read again: {e}"))?;
        let b = read_at(&*file, loc.entries_at, u64::from(loc.count) * 4).map_err(|e| {
            format!("table cannot be read again (segment truncated since opening?): {e}")
        })?;
        if format::adler32(&b) != loc.sum {
            return Err("table changed since the image was opened".into());
        }
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
impl E01Image {
    /// Caches this small (decoded entries per shard, open files) for tests of eviction.
    pub(crate) fn shrink_caches(&mut self, table_bytes: usize, files: usize) {
        self.table_cache = TableCache::new(table_bytes);
        self.files = SegmentFiles::new(files);
    }

    /// (tables decoded, segment files open) held now.
    pub(crate) fn cache_use(&self) -> (usize, usize) {
        (self.table_cache.len(), self.files.open_count())
    }
}
