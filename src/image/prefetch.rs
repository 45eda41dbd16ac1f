//! Reading a remote file ahead of a sequential reader: the object is cut into blocks, and
//! the blocks after the one being read are fetched before they are asked for, several at a
//! time, each on its own thread. A pass over an object in a bucket then waits for one
//! round trip when it starts, not once per block, and the E01 decoders behind it are fed as
//! fast as the requests in flight bring bytes in.
//!
//! Memory is bounded: at most `depth` blocks are held or in flight (fetches a restarted
//! window abandoned included), and a block is dropped once read to its end or passed.
//! A read behind the window or past everything requested restarts it there.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Fetches exactly `range` of the file (short only at its end); retries are its own.
pub type FetchFn = dyn Fn(Range<u64>) -> io::Result<Vec<u8>> + Send + Sync;

/// How far ahead to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depth {
    /// Bytes per request.
    pub block: u64,
    /// Requests in flight or held at once.
    pub blocks: usize,
}

impl Default for Depth {
    /// Requests of 4 MiB (large enough that a request's latency is small beside its
    /// transfer), two per core and at least 8: 32 MiB on two cores. An E01 pass decodes on
    /// every core, so the bytes it needs next must come in as fast as all of them decode;
    /// the pass's own buffer pool grows with the cores the same way. (8 MiB requests were
    /// measured no faster from a loopback Garage, and held twice the memory.)
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Depth {
            block: 4 << 20,
            blocks: (2 * cores).max(8),
        }
    }
}

enum Slot {
    Pending,
    /// The block as fetched (kept in its own allocation: a copy into an `Arc<[u8]>` would
    /// hold twice the memory while blocks land).
    Ready(Arc<Vec<u8>>),
    Failed(io::ErrorKind, String),
}

#[derive(Default)]
struct State {
    /// Bumped by each restart: a fetch of an older window is dropped when it lands.
    generation: u64,
    /// First block still wanted: the window is `blocks` blocks from here.
    lo: u64,
    slots: BTreeMap<u64, Slot>,
    /// Fetches running, those of abandoned windows included.
    in_flight: usize,
}

struct Shared {
    state: Mutex<State>,
    landed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One file read ahead of a sequential reader.
pub struct ReadAhead {
    len: u64,
    depth: Depth,
    fetch: Arc<FetchFn>,
    shared: Arc<Shared>,
}

impl ReadAhead {
    /// A file of `len` bytes whose ranges `fetch` brings in.
    pub fn new(len: u64, depth: Depth, fetch: Arc<FetchFn>) -> ReadAhead {
        ReadAhead {
            len,
            depth: Depth {
                block: depth.block.max(1),
                blocks: depth.blocks.max(1),
            },
            fetch,
            shared: Arc::new(Shared {
                state: Mutex::default(),
                landed: Condvar::new(),
            }),
        }
    }

    /// Reads up to `buf.len()` bytes at `offset` (to the end of its block at most), waiting
    /// for its block, and asks for the blocks after it.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let b = offset / self.depth.block;
        let mut st = self.shared.lock();
        loop {
            if b < st.lo || b >= st.lo + self.depth.blocks as u64 {
                st.generation += 1;
                st.slots.clear();
                st.lo = b;
            }
            while st.lo < b {
                let lo = st.lo;
                st.slots.remove(&lo);
                st.lo += 1;
            }
            self.request(&mut st);
            match st.slots.get(&b) {
                Some(Slot::Ready(data)) => {
                    let data = Arc::clone(data);
                    let within = (offset - b * self.depth.block) as usize;
                    let n = buf.len().min(data.len().saturating_sub(within));
                    if within + n >= data.len() {
                        // Read to its end: the reader is past it.
                        st.slots.remove(&b);
                        st.lo = b + 1;
                        self.request(&mut st);
                    }
                    drop(st);
                    buf[..n].copy_from_slice(&data[within..within + n]);
                    return Ok(n);
                }
                Some(Slot::Failed(..)) => {
                    // Asked again later, it is fetched again.
                    let Some(Slot::Failed(kind, message)) = st.slots.remove(&b) else {
                        unreachable!("the slot was just seen failed");
                    };
                    return Err(io::Error::new(kind, message));
                }
                // Pending, or not requested yet because abandoned fetches still run.
                _ => {
                    st = self
                        .shared
                        .landed
                        .wait(st)
                        .unwrap_or_else(|e| e.into_inner())
                }
            }
        }
    }

    /// Forgets the window (its blocks are dropped; fetches in flight are dropped when they
    /// land): another file is being read now.
    pub fn release(&self) {
        let mut st = self.shared.lock();
        st.generation += 1;
        st.slots.clear();
        st.lo = 0;
    }

    /// Bytes held now (for tests of the bound).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let st = self.shared.lock();
        let bytes = st
            .slots
            .values()
            .map(|s| match s {
                Slot::Ready(d) => d.len(),
                _ => 0,
            })
            .sum();
        (bytes, st.in_flight)
    }

    /// Requests the window's blocks not held or asked for, in order, while fewer than
    /// `blocks` are held or in flight.
    fn request(&self, st: &mut State) {
        let end = self
            .len
            .div_ceil(self.depth.block)
            .min(st.lo + self.depth.blocks as u64);
        for k in st.lo..end {
            let held = st.slots.values().filter(|s| !matches!(s, Slot::Pending));
            if st.in_flight + held.count() >= self.depth.blocks {
                break;
            }
            if st.slots.contains_key(&k) {
                continue;
            }
            st.slots.insert(k, Slot::Pending);
            st.in_flight += 1;
            let generation = st.generation;
            let start = k * self.depth.block;
            let range = start..(start + self.depth.block).min(self.len);
            let fetch = Arc::clone(&self.fetch);
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("read-ahead".into())
                .spawn(move || {
                    let got = fetch(range);
                    let mut st = shared.lock();
                    st.in_flight -= 1;
                    if st.generation == generation {
                        if let Some(slot @ Slot::Pending) = st.slots.get_mut(&k) {
                            *slot = match got {
                                Ok(d) => Slot::Ready(Arc::new(d)),
                                Err(e) => Slot::Failed(e.kind(), e.to_string()),
                            };
                        }
                    }
                    shared.landed.notify_all();
                });
            if let Err(e) = spawned {
                st.in_flight -= 1;
                st.slots.insert(
                    k,
                    Slot::Failed(e.kind(), format!("cannot start a read-ahead thread: {e}")),
                );
            }
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn data(len: usize) -> Arc<Vec<u8>> {
        Arc::new((0..len).map(|i| (i * 7 + i / 251) as u8).collect())
    }

    /// A file served with a delay per request, counting requests and the most in flight.
    fn served(
        d: &Arc<Vec<u8>>,
        delay: Duration,
        fail_at: Option<u64>,
    ) -> (Arc<FetchFn>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (count, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let now = Arc::new(AtomicUsize::new(0));
        let (d, c, m) = (Arc::clone(d), Arc::clone(&count), Arc::clone(&most));
        let f: Arc<FetchFn> = Arc::new(move |r: Range<u64>| {
            c.fetch_add(1, Ordering::SeqCst);
            let k = now.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(k, Ordering::SeqCst);
            std::thread::sleep(delay);
            now.fetch_sub(1, Ordering::SeqCst);
            if fail_at.is_some_and(|f| r.contains(&f)) {
                return Err(io::Error::other(format!("no bytes {r:?}")));
            }
            Ok(d[r.start as usize..r.end as usize].to_vec())
        });
        (f, count, most)
    }

    fn read_all(ra: &ReadAhead, len: usize, step: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut at = 0;
        while at < len {
            let n = ra
                .read(&mut out[at..(at + step).min(len)], at as u64)
                .unwrap();
            assert!(n > 0);
            at += n;
        }
        out
    }

    #[test]
    fn a_sequential_reader_gets_every_byte_with_requests_in_flight() {
        let d = data(100_000);
        let (f, count, most) = served(&d, Duration::from_millis(20), None);
        let depth = Depth {
            block: 4096,
            blocks: 4,
        };
        let ra = ReadAhead::new(d.len() as u64, depth, f);
        let clock = std::time::Instant::now();
        assert_eq!(read_all(&ra, d.len(), 3000), *d);
        // 25 blocks, one request each; 4 at a time, so about 7 delays, not 25.
        assert_eq!(count.load(Ordering::SeqCst), 25);
        assert!(
            most.load(Ordering::SeqCst) >= 3,
            "never more than one in flight"
        );
        assert!(most.load(Ordering::SeqCst) <= 4);
        assert!(
            clock.elapsed() < Duration::from_millis(20 * 20),
            "{:?}",
            clock.elapsed()
        );
        assert_eq!(ra.held(), (0, 0));
    }

    #[test]
    fn skipped_bytes_jumps_and_rereads_are_right_and_bounded() {
        let d = data(200_000);
        let (f, _, most) = served(&d, Duration::from_millis(1), None);
        let depth = Depth {
            block: 1000,
            blocks: 3,
        };
        let ra = ReadAhead::new(d.len() as u64, depth, f);
        let mut at = 0u64;
        let mut buf = vec![0u8; 700];
        // Forward with gaps (an E01 pass skips the tables between its sectors sections).
        while at < 150_000 {
            let n = ra.read(&mut buf, at).unwrap();
            assert_eq!(&buf[..n], &d[at as usize..at as usize + n]);
            at += n as u64 + 333;
            assert!(ra.held().0 <= 3 * 1000);
        }
        // Back to the start and past the end.
        let n = ra.read(&mut buf, 10).unwrap();
        assert_eq!(&buf[..n], &d[10..10 + n]);
        assert_eq!(ra.read(&mut buf, 200_000).unwrap(), 0);
        let n = ra.read(&mut buf, 199_990).unwrap();
        assert_eq!(&buf[..n], &d[199_990..]);
        assert!(
            most.load(Ordering::SeqCst) <= 3,
            "more than the depth in flight"
        );
    }

    #[test]
    fn a_failed_block_is_an_error_for_it_and_fetched_again_when_asked_again() {
        let d = data(10_000);
        let (f, count, _) = served(&d, Duration::ZERO, Some(5_500));
        let ra = ReadAhead::new(
            d.len() as u64,
            Depth {
                block: 1000,
                blocks: 2,
            },
            f,
        );
        let mut buf = vec![0u8; 1000];
        for k in 0..5u64 {
            ra.read(&mut buf, k * 1000).unwrap();
        }
        let e = ra.read(&mut buf, 5000).unwrap_err();
        assert!(e.to_string().contains("no bytes 5000..6000"), "{e}");
        let before = count.load(Ordering::SeqCst);
        ra.read(&mut buf, 5000).unwrap_err();
        assert!(count.load(Ordering::SeqCst) > before);
        ra.read(&mut buf, 6000).unwrap();
        assert_eq!(&buf[..], &d[6000..7000]);
    }

    #[test]
    fn release_drops_what_is_held() {
        let d = data(10_000);
        let (f, _, _) = served(&d, Duration::ZERO, None);
        let ra = ReadAhead::new(
            d.len() as u64,
            Depth {
                block: 1000,
                blocks: 4,
            },
            f,
        );
        let mut buf = vec![0u8; 10];
        ra.read(&mut buf, 0).unwrap();
        while ra.held().1 > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(ra.held().0 > 0);
        ra.release();
        assert_eq!(ra.held().0, 0);
        ra.read(&mut buf, 20).unwrap();
        assert_eq!(&buf[..], &d[20..30]);
    }
}
