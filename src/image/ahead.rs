//! Decoding ahead of one sequential reader: a reader that goes through a file in order (a
//! `sha256sum`, a `dd`, a carver) asks for one small piece at a time, so on its own it keeps
//! one core busy. [`Stream`] sees per open file that reads continue where the last one
//! ended and names the next window of media to decode; [`DecodeAhead`] decodes those chunks
//! on a small pool into the image's bounded chunk cache, where the reader then finds them.
//!
//! Memory stays bounded: decoded chunks live only in the cache (its fixed budget), the
//! window is a fraction of that budget, the queue holds chunk numbers only (a bounded
//! number), and each worker holds one chunk being decoded. A damaged chunk is never cached,
//! so it fails when, and only when, it is read. Random readers never start a stream and find
//! the pool idle.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// The most media a stream decodes ahead of its reader.
pub const MAX_WINDOW: u64 = 8 << 20;
/// Reads that start this close to where the reads so far ended stay in the stream: the
/// kernel cuts one large read (`dd bs=1M`) into 128 KiB requests and hands them to several
/// threads at once, so they arrive in any order within it.
const SLACK: u64 = 4 << 20;
/// Recent reads kept per stream, to see a read that exactly adjoins one of them.
const RECENT: usize = 16;

/// The window for a cache of `cache_bytes`: at most a quarter of it, so chunks decoded
/// ahead are not forgotten before they are read, even with a few streams at once; 0 (no
/// decoding ahead) when the cache cannot hold a window of two chunks.
pub fn window(cache_bytes: usize, chunk_size: u64) -> u64 {
    let w = MAX_WINDOW.min(cache_bytes as u64 / 4);
    if chunk_size == 0 || w < 2 * chunk_size {
        0
    } else {
        w - w % chunk_size
    }
}

/// One open file's reads, as a possible sequential stream. Only a read that exactly adjoins
/// a recent one (starts where it ended, or ends where it began: the pieces of one large
/// read, in any order) counts towards a stream; a read that is merely near keeps the stream
/// without counting, and one further away breaks it. A random reader almost never adjoins
/// its last reads exactly, so it never starts decoding ahead.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stream {
    /// Where the reads so far ended.
    end: u64,
    /// Reads that adjoined, plus the one that started the stream.
    run: u32,
    /// How far decoding ahead has been asked for (from `end`).
    ahead: u64,
    /// The last reads (start, end), a ring: `filled` of them, the next one goes at `next`.
    recent: [(u64, u64); RECENT],
    filled: usize,
    next: usize,
}

/// What to do after a read, in file offsets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ahead {
    /// Decode this range ahead.
    pub decode: Option<Range<u64>>,
    /// The stream broke: what it had asked for and nobody will read soon.
    pub cancel: Option<Range<u64>>,
}

impl Stream {
    /// Notes a read of `len` bytes at `offset` of a file of `size` bytes, with decoding
    /// `window` bytes ahead: once a read has adjoined an earlier one of the stream, the
    /// range to decode ahead (asked for in halves of the window, so not on every read).
    pub fn read(&mut self, offset: u64, len: u64, size: u64, window: u64) -> Ahead {
        let mut out = Ahead::default();
        let end = offset.saturating_add(len).min(size);
        let near = self.run > 0
            && offset <= self.end.saturating_add(SLACK)
            && offset.saturating_add(SLACK) >= self.end;
        if near {
            let adjoins = self.recent[..self.filled]
                .iter()
                .any(|&(s, e)| e == offset || s == end);
            if adjoins {
                self.run = self.run.saturating_add(1);
            }
            self.end = self.end.max(end);
        } else {
            if self.ahead > self.end {
                out.cancel = Some(self.end..self.ahead);
            }
            *self = Stream {
                end,
                run: 1,
                ahead: end,
                ..Stream::default()
            };
        }
        self.recent[self.next] = (offset, end);
        self.next = (self.next + 1) % RECENT;
        self.filled = (self.filled + 1).min(RECENT);
        if self.run < 2 || window == 0 {
            return out;
        }
        let from = self.ahead.max(self.end);
        let to = self.end.saturating_add(window).min(size);
        if to > from && (to - from >= window / 2 || to == size) {
            self.ahead = to;
            out.decode = Some(from..to);
        }
        out
    }

    /// What the stream has asked for beyond what was read (to cancel when the file closes).
    pub fn outstanding(&self) -> Option<Range<u64>> {
        (self.ahead > self.end).then_some(self.end..self.ahead)
    }
}

struct Queue {
    chunks: VecDeque<u64>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    limit: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pool of threads that decode chunks (by number) ahead of readers.
pub struct DecodeAhead {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl DecodeAhead {
    /// `workers` threads calling `decode` for each chunk asked for; at most `limit` chunks
    /// wait at once (more are not queued: their reader decodes them itself).
    pub fn new(
        workers: usize,
        limit: usize,
        decode: impl Fn(u64) + Send + Sync + 'static,
    ) -> std::io::Result<DecodeAhead> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                chunks: VecDeque::new(),
                closed: false,
            }),
            work: Condvar::new(),
            limit,
        });
        let decode = Arc::new(decode);
        let mut pool = DecodeAhead {
            shared,
            threads: Vec::new(),
        };
        for w in 0..workers.max(1) {
            let (shared, decode) = (Arc::clone(&pool.shared), Arc::clone(&decode));
            let t = std::thread::Builder::new()
                .name(format!("decode-ahead-{w}"))
                .spawn(move || loop {
                    let next = {
                        let mut q = shared.lock();
                        loop {
                            if q.closed {
                                break None;
                            }
                            if let Some(c) = q.chunks.pop_front() {
                                break Some(c);
                            }
                            q = shared.work.wait(q).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    match next {
                        Some(c) => decode(c),
                        None => break,
                    }
                })?;
            pool.threads.push(t);
        }
        Ok(pool)
    }

    /// Asks for `chunks` to be decoded, in order, as far as the queue has room.
    pub fn request(&self, chunks: Range<u64>) {
        let mut q = self.shared.lock();
        let room = self.shared.limit.saturating_sub(q.chunks.len()) as u64;
        let end = chunks.end.min(chunks.start.saturating_add(room));
        q.chunks.extend(chunks.start..end);
        drop(q);
        self.shared.work.notify_all();
    }

    /// Forgets the chunks of `chunks` still waiting.
    pub fn cancel(&self, chunks: Range<u64>) {
        self.shared.lock().chunks.retain(|c| !chunks.contains(c));
    }

    /// Chunks waiting now.
    pub fn waiting(&self) -> usize {
        self.shared.lock().chunks.len()
    }
}

impl Drop for DecodeAhead {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The chunks that hold media bytes `range` (chunks of `chunk_size` bytes).
pub fn chunks_of(range: Range<u64>, chunk_size: u64) -> Range<u64> {
    if chunk_size == 0 || range.is_empty() {
        return 0..0;
    }
    range.start / chunk_size..range.end.div_ceil(chunk_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 1 << 20;

    #[test]
    fn the_second_continuing_read_starts_decoding_ahead() {
        let mut s = Stream::default();
        // One read is no stream (a random reader never starts one).
        assert_eq!(s.read(0, 4096, 100 << 20, W), Ahead::default());
        let a = s.read(4096, 4096, 100 << 20, W);
        assert_eq!(a.decode, Some(8192..8192 + W));
        assert_eq!(a.cancel, None);
        // Nothing more is asked for until half the window has been read.
        let mut at = 8192;
        while at + 4096 < 8192 + W / 2 {
            assert_eq!(s.read(at, 4096, 100 << 20, W).decode, None, "at {at}");
            at += 4096;
        }
        let a = s.read(at, 4096, 100 << 20, W);
        assert_eq!(a.decode, Some(8192 + W..at + 4096 + W));
    }

    #[test]
    fn a_jump_breaks_the_stream_and_cancels_what_it_asked_for() {
        let mut s = Stream::default();
        s.read(0, 65536, 100 << 20, W);
        s.read(65536, 65536, 100 << 20, W);
        assert_eq!(s.outstanding(), Some(131072..131072 + W));
        let a = s.read(50 << 20, 65536, 100 << 20, W);
        assert_eq!(a.decode, None);
        assert_eq!(a.cancel, Some(131072..131072 + W));
        assert_eq!(s.outstanding(), None);
        // …and a new stream can start where the reader went.
        let a = s.read((50 << 20) + 65536, 65536, 100 << 20, W);
        assert_eq!(a.decode.map(|r| r.start), Some((50 << 20) + 131072));
    }

    #[test]
    fn the_pieces_of_one_large_read_in_any_order_continue_it() {
        let mut s = Stream::default();
        let (p, b, size) = (128 << 10, 64 << 20, 1 << 30);
        // A 1 MiB read in eight requests, the last one first.
        s.read(b + 7 * p, p, size, W);
        for k in [0, 3, 1, 2, 6, 4, 5] {
            assert_eq!(s.read(b + k * p, p, size, W).cancel, None, "piece {k}");
        }
        assert_eq!(s.outstanding(), Some(b + 8 * p..b + 8 * p + W));
        // Further behind than the slack is another place: the stream breaks.
        let behind = b + 8 * p - SLACK - 1;
        let a = s.read(behind, 4096, size, W);
        assert_eq!(a.cancel, Some(b + 8 * p..b + 8 * p + W));
        // Further ahead than the slack too: no stream yet, nothing to cancel or decode…
        let ahead = behind + 4096 + SLACK + 1;
        assert_eq!(s.read(ahead, 4096, size, W), Ahead::default());
        // …until the next read continues that one.
        let a = s.read(ahead + 4096, 4096, size, W);
        assert_eq!(a.decode, Some(ahead + 8192..ahead + 8192 + W));
    }

    #[test]
    fn the_window_stops_at_the_end_of_the_file() {
        let mut s = Stream::default();
        let size = 300_000;
        s.read(0, 100_000, size, W);
        assert_eq!(
            s.read(100_000, 100_000, size, W).decode,
            Some(200_000..size)
        );
        assert_eq!(s.read(200_000, 100_000, size, W).decode, None);
        assert_eq!(s.read(300_000, 100_000, size, W).decode, None);
        assert_eq!(s.outstanding(), None);
    }

    #[test]
    fn reads_near_each_other_that_never_adjoin_never_decode_ahead() {
        let mut s = Stream::default();
        let mut seed = 11u64;
        for _ in 0..10_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            // Random 4 KiB reads at 8 KiB boundaries within 4 MiB: always near, never adjoining.
            let offset = (seed >> 40) % 512 * 8192;
            let a = s.read(offset, 4096, 1 << 30, W);
            assert_eq!(a.decode, None, "at {offset}");
        }
        // An empty ring matches nothing, not even a read at 0.
        let mut s = Stream::default();
        s.read(0, 4096, 1 << 30, W);
        assert_eq!(s.read(0, 4096, 1 << 30, W).decode, None);
    }

    #[test]
    fn no_window_no_decoding_ahead() {
        let mut s = Stream::default();
        s.read(0, 4096, 1 << 30, 0);
        assert_eq!(s.read(4096, 4096, 1 << 30, 0), Ahead::default());
    }

    #[test]
    fn the_window_is_a_quarter_of_the_cache_in_whole_chunks_at_most_8_mib() {
        assert_eq!(window(64 << 20, 32768), 8 << 20);
        assert_eq!(window(4 << 20, 32768), 1 << 20);
        assert_eq!(window(1_000_000, 32768), 229_376);
        assert_eq!(window(200_000, 32768), 0, "a window of one chunk is none");
        assert_eq!(window(64 << 20, 0), 0);
    }

    #[test]
    fn media_ranges_map_to_the_chunks_that_hold_them() {
        assert_eq!(chunks_of(0..1, 32768), 0..1);
        assert_eq!(chunks_of(32767..32769, 32768), 0..2);
        assert_eq!(chunks_of(65536..131072, 32768), 2..4);
        assert_eq!(chunks_of(5..5, 32768), 0..0);
    }

    #[test]
    fn the_pool_decodes_what_is_asked_within_its_limit_and_forgets_cancelled_chunks() {
        let done = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let (d, g) = (Arc::clone(&done), Arc::clone(&gate));
        let pool = DecodeAhead::new(1, 10, move |c| {
            let _wait = g.lock().unwrap();
            d.lock().unwrap().push(c);
        })
        .unwrap();
        pool.request(0..4);
        // The worker takes chunk 0 and waits at the gate; 1..4 wait in the queue.
        while pool.waiting() != 3 {
            std::thread::yield_now();
        }
        pool.request(4..100);
        assert_eq!(pool.waiting(), 10, "no more than the limit wait");
        pool.cancel(5..8);
        assert_eq!(pool.waiting(), 7);
        drop(held);
        while pool.waiting() != 0 {
            std::thread::yield_now();
        }
        drop(pool); // joins the worker
        assert_eq!(*done.lock().unwrap(), [0, 1, 2, 3, 4, 8, 9, 10]);
    }
}
