//! A bounded cache of decoded chunks for random reads: memory is set by its byte budget, not
//! by the size of the image (a 2 TB image costs what a 2 GB one does).
//!
//! Sharded by chunk number so that parallel readers of different chunks do not wait on one
//! lock; each shard forgets its oldest entry first (readers of an image mostly move forward,
//! and a chunk decodes in microseconds, so a cleverer policy buys little).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    chunks: HashMap<u64, Arc<[u8]>>,
    order: VecDeque<u64>,
}

/// Decoded chunks by chunk number, at most about `budget` bytes of them.
pub struct ChunkCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl ChunkCache {
    /// A cache for chunks of `chunk_size` bytes within `budget` bytes (at least one chunk per
    /// shard).
    pub fn new(budget: usize, chunk_size: usize) -> Self {
        let chunks = budget / chunk_size.max(1);
        ChunkCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: (chunks / SHARDS).max(1),
        }
    }

    fn shard(&self, index: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(index % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
            .map(|s| s.lock().map_or(0, |s| s.chunks.len()))
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
    fn a_tiny_budget_still_caches_one_chunk_per_shard() {
        let cache = ChunkCache::new(0, 1 << 20);
        cache.put(3, Arc::from(vec![1u8; 4]));
        assert!(cache.get(3).is_some());
        cache.put(3 + SHARDS as u64, Arc::from(vec![2u8; 4]));
        assert!(cache.get(3).is_none());
    }
}
