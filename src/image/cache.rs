//! A bounded cache of decoded chunks for random reads: memory is set by its byte budget, not
//! by the size of the image (a 2 TB image costs what a 2 GB one does).
//!
//! Sharded by chunk number so that parallel readers of different chunks do not wait on one
//! lock; each shard forgets its oldest entry first (readers of an image mostly move forward,
//! and a chunk decodes in microseconds, so a cleverer policy buys little).
//!
//! It also knows which chunks are being decoded right now ([`ChunkCache::claim`]): a reader
//! that needs a chunk another thread (a reader, or a decode-ahead worker) is decoding waits
//! for it instead of decoding it a second time. Failures are never cached: whoever reads a
//! damaged chunk decodes it and gets the error itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    chunks: HashMap<u64, Arc<[u8]>>,
    order: VecDeque<u64>,
    /// Chunks some thread is decoding now.
    decoding: HashSet<u64>,
}

/// Decoded chunks by chunk number, at most about `budget` bytes of them.
pub struct ChunkCache {
    shards: Vec<(Mutex<Shard>, Condvar)>,
    per_shard: usize,
}

/// What [`ChunkCache::claim`] found.
pub enum Claim<'a> {
    /// The chunk, decoded.
    Cached(Arc<[u8]>),
    /// Nobody has it or decodes it: the caller decodes it, and others wait for it until the
    /// guard is dropped.
    Decode(Decoding<'a>),
}

/// A chunk this thread decodes; dropping it (after [`ChunkCache::put`], or after a failure)
/// wakes those waiting for it.
pub struct Decoding<'a> {
    cache: &'a ChunkCache,
    index: u64,
}

impl Drop for Decoding<'_> {
    fn drop(&mut self) {
        let (lock, woken) = &self.cache.shards[ChunkCache::slot(self.index)];
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .decoding
            .remove(&self.index);
        woken.notify_all();
    }
}

impl ChunkCache {
    /// A cache for chunks of `chunk_size` bytes within `budget` bytes (at least one chunk per
    /// shard).
    pub fn new(budget: usize, chunk_size: usize) -> Self {
        let chunks = budget / chunk_size.max(1);
        ChunkCache {
            shards: (0..SHARDS)
                .map(|_| (Mutex::default(), Condvar::new()))
                .collect(),
            per_shard: (chunks / SHARDS).max(1),
        }
    }

    fn slot(index: u64) -> usize {
        (index % SHARDS as u64) as usize
    }

    fn shard(&self, index: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[Self::slot(index)]
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The chunk if it is cached; else, once no other thread is decoding it, the right to
    /// decode it.
    pub fn claim(&self, index: u64) -> Claim<'_> {
        let woken = &self.shards[Self::slot(index)].1;
        let mut s = self.shard(index);
        loop {
            if let Some(c) = s.chunks.get(&index) {
                return Claim::Cached(Arc::clone(c));
            }
            if s.decoding.insert(index) {
                return Claim::Decode(Decoding { cache: self, index });
            }
            s = woken.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The right to decode the chunk when it is neither cached nor being decoded (never
    /// waits: for decoding ahead of a reader).
    pub fn claim_idle(&self, index: u64) -> Option<Decoding<'_>> {
        let mut s = self.shard(index);
        // A guard is made only when claimed: one made and dropped here would end another's
        // claim (and lock this shard twice).
        if !s.chunks.contains_key(&index) && s.decoding.insert(index) {
            Some(Decoding { cache: self, index })
        } else {
            None
        }
    }

    /// The chunk, if it is cached.
    pub fn get(&self, index: u64) -> Option<Arc<[u8]>> {
        self.shard(index).chunks.get(&index).cloned()
    }

    /// Keeps a decoded chunk, forgetting the shard's oldest one when it is full.
    pub fn put(&self, index: u64, chunk: Arc<[u8]>) {
        let mut s = self.shard(index);
        if s.chunks.insert(index, chunk).is_none() {
            s.order.push_back(index);
        }
        while s.order.len() > self.per_shard {
            if let Some(old) = s.order.pop_front() {
                s.chunks.remove(&old);
            }
        }
    }

    /// Chunks held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().map_or(0, |s| s.chunks.len()))
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_no_more_than_its_budget() {
        let cache = ChunkCache::new(64 * 1024, 1024);
        for i in 0..10_000u64 {
            cache.put(i, Arc::from(vec![i as u8; 1024]));
        }
        assert_eq!(cache.len(), 64);
        // The newest are kept, the oldest forgotten.
        assert_eq!(cache.get(9_999).unwrap()[0], (9_999u64 % 256) as u8);
        assert!(cache.get(0).is_none());
    }

    #[test]
    fn a_chunk_being_decoded_is_waited_for_not_decoded_twice() {
        let cache = ChunkCache::new(1 << 20, 1024);
        let Claim::Decode(mine) = cache.claim(5) else {
            panic!("nothing cached yet")
        };
        // Decode-ahead skips what someone decodes; other chunks are free.
        assert!(cache.claim_idle(5).is_none());
        assert!(cache.claim_idle(6).is_some());
        std::thread::scope(|s| {
            let waiter = s.spawn(|| match cache.claim(5) {
                Claim::Cached(c) => c[0],
                Claim::Decode(_) => panic!("decoded twice"),
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "it waits for the decode");
            cache.put(5, Arc::from(vec![9u8; 1024]));
            drop(mine);
            assert_eq!(waiter.join().unwrap(), 9);
        });
        assert!(cache.claim_idle(5).is_none(), "cached now");
    }

    #[test]
    fn a_failed_decode_is_not_cached_and_the_next_reader_decodes_it_itself() {
        let cache = ChunkCache::new(1 << 20, 1024);
        let Claim::Decode(first) = cache.claim(7) else {
            panic!()
        };
        std::thread::scope(|s| {
            let waiter = s.spawn(|| matches!(cache.claim(7), Claim::Decode(_)));
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(first); // failed: nothing put
            assert!(waiter.join().unwrap());
        });
        assert!(cache.get(7).is_none());
    }

    #[test]
    fn a_tiny_budget_still_caches_one_chunk_per_shard() {
        let cache = ChunkCache::new(0, 1 << 20);
        cache.put(3, Arc::from(vec![1u8; 4]));
        assert!(cache.get(3).is_some());
        cache.put(3 + SHARDS as u64, Arc::from(vec![2u8; 4]));
        assert!(cache.get(3).is_none());
    }
}
