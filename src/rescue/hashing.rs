//! Hashing a rescue while it runs.
//!
//! The image is hashed in order from its first byte, on background threads, as far as its
//! content is *settled*: finished, or bad (zeros in the image). On healthy media the copy
//! pass hands every block straight to the hashers, so the hashes are ready when the last
//! block is written; on a failing disk the hashers catch up from the image whenever the
//! areas in front of them are settled, which mostly happens while the rescue waits on slow
//! failing reads. What is left at the end is only the part behind the last unsettled area.
//!
//! A bad sector is settled only provisionally: a later retry pass may still read it. So the
//! hashers keep a copy of their state at the start of every range with bad sectors in it
//! (a hash state is a few hundred bytes), and a sector rescued behind them rolls the hashes
//! back to the copy before it, from where the image is hashed again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::block::Block;
use crate::buffer::BufferPool;
use crate::error::{Error, Result};
use crate::hash::{HashAlgorithm, Hasher, MediaHashes};

/// Bytes read from the image per piece when catching up.
const CHUNK: usize = 1 << 20;
/// Saved states kept at most; beyond that a rollback goes to an older one (more to hash
/// again, never a wrong hash).
const MAX_CHECKPOINTS: usize = 4096;

/// What the feeder is asked to do, in order.
enum Request {
    /// These bytes come next.
    Block(Arc<Block>),
    /// The image's bytes `start..end` come next; save the states first if `checkpoint`.
    Image {
        start: u64,
        end: u64,
        checkpoint: bool,
    },
    /// Go back to the state saved at this offset (0: the empty state).
    Rollback(u64),
}

/// What each hash thread is told.
enum Step {
    Data(Arc<Block>),
    Save(u64),
    Restore(u64),
}

/// The background hashers of one rescue run.
pub(super) struct RunningHash {
    requests: Option<SyncSender<Request>>,
    feeder: Option<JoinHandle<Result<MediaHashes>>>,
    shared: Arc<Shared>,
    /// Bytes handed to the feeder so far, in order from offset 0.
    sent: u64,
    /// Offsets where the hash threads saved their state.
    checkpoints: BTreeSet<u64>,
}

/// What the caller and the background threads share.
#[derive(Default)]
struct Shared {
    /// Stop reading the image: the rescue ended without finishing.
    cancel: AtomicBool,
    /// Bytes hashed (for progress).
    hashed: AtomicU64,
    /// The feeder's and hash threads' kernel ids, to confine them.
    tids: Mutex<Vec<libc::pid_t>>,
    /// Whether they should be on one CPU; a thread that starts late reads it.
    confined: AtomicBool,
}

impl RunningHash {
    /// Starts one thread per algorithm and a feeder that reads the image (`image`, opened
    /// for reading) when asked to catch up.
    pub(super) fn start(
        algorithms: &[HashAlgorithm],
        image: &File,
        path: &Path,
    ) -> Result<RunningHash> {
        let image = image.try_clone().map_err(|e| Error::io(path, e))?;
        let path = path.to_path_buf();
        let (tx, rx) = sync_channel::<Request>(16);
        let algorithms = algorithms.to_vec();
        let shared = Arc::new(Shared::default());
        let feeder = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("rescue-hash-feeder".into())
                .spawn(move || {
                    crate::threads::run_in_background();
                    register(&shared);
                    feed(rx, &algorithms, &image, &path, &shared)
                })
                .map_err(|e| Error::Internal(format!("cannot start a hash thread: {e}")))?
        };
        Ok(RunningHash {
            requests: Some(tx),
            feeder: Some(feeder),
            shared,
            sent: 0,
            checkpoints: BTreeSet::new(),
        })
    }

    /// Keeps the hash threads to one CPU (`true`) or lets them use all (`false`). While a
    /// rescue reads one small block at a time, the reads, and the kernel threads serving them,
    /// wake up thousands of times a second; on a machine with few cores, hash threads spread
    /// over every core would be preempted at each wake-up, delaying it. On one core they
    /// leave the others to the reads. On a healthy stretch they need every core.
    pub(super) fn confine(&mut self, on: bool) {
        if self.shared.confined.swap(on, Ordering::SeqCst) == on {
            return;
        }
        if let Ok(tids) = self.shared.tids.lock() {
            for &tid in tids.iter() {
                confine_thread(tid, on);
            }
        }
    }

    /// Bytes hashed so far (for progress; may go back after a rollback).
    pub(super) fn hashed(&self) -> u64 {
        self.shared.hashed.load(Ordering::Relaxed)
    }

    /// Where the next byte to hash is.
    pub(super) fn position(&self) -> u64 {
        self.sent
    }

    /// Hashes `block` straight from memory if it is the next thing to hash. The caller
    /// guarantees its bytes are what the image holds there, for good.
    pub(super) fn offer_block(&mut self, block: &Arc<Block>) -> Result<()> {
        if block.offset != self.sent || block.is_empty() {
            return Ok(());
        }
        self.sent = block.end();
        self.send(Request::Block(Arc::clone(block)))
    }

    /// The image is settled up to `end`: hash it from where the hashes are. `has_bad`: the
    /// range holds bad sectors that a retry may still rescue.
    pub(super) fn advance(&mut self, end: u64, has_bad: bool) -> Result<()> {
        if end <= self.sent {
            return Ok(());
        }
        let checkpoint = has_bad && self.checkpoints.len() < MAX_CHECKPOINTS;
        if checkpoint {
            self.checkpoints.insert(self.sent);
        }
        let start = std::mem::replace(&mut self.sent, end);
        self.send(Request::Image {
            start,
            end,
            checkpoint,
        })
    }

    /// The image changed at `pos` (a bad sector was rescued). If that is behind the hashes,
    /// roll them back to before it.
    pub(super) fn changed_at(&mut self, pos: u64) -> Result<()> {
        if pos >= self.sent {
            return Ok(());
        }
        let to = self
            .checkpoints
            .range(..=pos)
            .next_back()
            .copied()
            .unwrap_or(0);
        self.checkpoints.split_off(&(to + 1));
        self.sent = to;
        self.send(Request::Rollback(to))
    }

    /// Hashes what is left up to `size` and returns the digests, publishing the bytes
    /// hashed in `progress` meanwhile.
    pub(super) fn finish(
        mut self,
        size: u64,
        progress: &AtomicU64,
        interrupted: &AtomicBool,
    ) -> Result<MediaHashes> {
        // Nothing else is reading now: every core for the rest.
        self.confine(false);
        self.advance(size, false)?;
        self.requests = None;
        let Some(feeder) = self.feeder.take() else {
            return Err(Error::Internal("the hash feeder stopped".into()));
        };
        while !feeder.is_finished() {
            if interrupted.load(Ordering::Relaxed) {
                // Hashing the rest of a large image takes minutes: a signal ends it too. The
                // map is complete; the next run hashes the image again.
                self.shared.cancel.store(true, Ordering::Relaxed);
                let _ = feeder.join();
                return Err(Error::Interrupted("a signal (SIGINT or SIGTERM)"));
            }
            progress.store(self.hashed(), Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        progress.store(self.hashed(), Ordering::Relaxed);
        feeder
            .join()
            .map_err(|_| Error::Internal("the hash feeder panicked".into()))?
    }

    fn send(&mut self, request: Request) -> Result<()> {
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|tx| tx.send(request).is_ok());
        if sent {
            return Ok(());
        }
        // The feeder stopped: it failed, and says why.
        self.requests = None;
        match self.feeder.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => Err(e),
            _ => Err(Error::Internal("the hash feeder stopped".into())),
        }
    }
}

impl Drop for RunningHash {
    fn drop(&mut self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.requests = None;
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
    }
}

/// The feeder thread: turns requests into steps for every hash thread, reading the image
/// where asked.
fn feed(
    requests: Receiver<Request>,
    algorithms: &[HashAlgorithm],
    image: &File,
    path: &Path,
    shared: &Arc<Shared>,
) -> Result<MediaHashes> {
    let (cancel, hashed) = (&shared.cancel, &shared.hashed);
    // Enough for every hash thread's queue and the piece it is on.
    let pool = BufferPool::new(12, CHUNK);
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for &alg in algorithms {
        let (tx, rx) = sync_channel::<Step>(4);
        senders.push(tx);
        let shared = Arc::clone(shared);
        threads.push(
            std::thread::Builder::new()
                .name(format!("rescue-{}", alg.name()))
                .spawn(move || {
                    crate::threads::run_in_background();
                    register(&shared);
                    hash_steps(alg, rx)
                })
                .map_err(|e| Error::Internal(format!("cannot start a hash thread: {e}")))?,
        );
    }
    let broadcast = |step: &dyn Fn() -> Step| {
        for tx in &senders {
            let _ = tx.send(step());
        }
    };
    let mut result = Ok(());
    'requests: for request in requests {
        match request {
            Request::Block(block) => {
                hashed.store(block.end(), Ordering::Relaxed);
                broadcast(&|| Step::Data(Arc::clone(&block)));
            }
            Request::Rollback(to) => {
                broadcast(&|| Step::Restore(to));
                hashed.store(to, Ordering::Relaxed);
            }
            Request::Image {
                start,
                end,
                checkpoint,
            } => {
                if checkpoint {
                    broadcast(&|| Step::Save(start));
                }
                let mut pos = start;
                while pos < end {
                    if cancel.load(Ordering::Relaxed) {
                        break 'requests;
                    }
                    let n = (end - pos).min(CHUNK as u64) as usize;
                    // Recycled buffers: fresh ones would cost a page fault per 4 KiB.
                    let mut data = pool.take();
                    if let Err(e) = image.read_exact_at(&mut data[..n], pos) {
                        result = Err(Error::Read {
                            path: path.to_path_buf(),
                            offset: pos,
                            source: e,
                        });
                        break 'requests;
                    }
                    let block = Arc::new(Block::new(0, pos, data, n, Vec::new()));
                    broadcast(&|| Step::Data(Arc::clone(&block)));
                    pos += n as u64;
                    hashed.store(pos, Ordering::Relaxed);
                }
            }
        }
    }
    drop(senders);
    let mut out = MediaHashes::default();
    for t in threads {
        let (alg, digest) = t
            .join()
            .map_err(|_| Error::Internal("a hash thread panicked".into()))?;
        out.set(alg, &digest);
    }
    result.map(|()| out)
}

/// Records the calling thread's id, so that [`RunningHash::confine`] can reach it, and
/// confines it if that was asked before it started (registered first, then checked: either
/// `confine` sees the id or the thread sees the flag).
fn register(shared: &Shared) {
    let tid = crate::threads::current_tid();
    if let Ok(mut t) = shared.tids.lock() {
        t.push(tid);
    }
    if shared.confined.load(Ordering::SeqCst) {
        confine_thread(tid, true);
    }
}

/// Puts thread `tid` on the last CPU this process may use (`on`), or on all of them.
fn confine_thread(tid: libc::pid_t, on: bool) {
    let cpus = crate::threads::allowed_cpus();
    if cpus.len() < 2 {
        return;
    }
    let target = if on {
        &cpus[cpus.len() - 1..]
    } else {
        &cpus[..]
    };
    crate::threads::confine(tid, target);
}

/// One algorithm's thread.
fn hash_steps(alg: HashAlgorithm, steps: Receiver<Step>) -> (HashAlgorithm, Vec<u8>) {
    let mut state = alg.hasher();
    let mut saved: BTreeMap<u64, Hasher> = BTreeMap::new();
    for step in steps {
        match step {
            Step::Data(block) => state.update(block.data()),
            Step::Save(at) => {
                saved.insert(at, state.clone());
            }
            Step::Restore(to) => {
                saved.split_off(&(to + 1));
                state = match saved.get(&to) {
                    Some(s) => s.clone(),
                    None => alg.hasher(),
                };
            }
        }
    }
    (alg, state.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn digest_of(alg: HashAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut h = alg.hasher();
        h.update(data);
        h.finish()
    }

    fn image_with(data: &[u8]) -> (tempfile::TempDir, File, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(data)
            .unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        (dir, file, path)
    }

    #[test]
    fn pieces_in_order_give_the_hash_of_the_whole() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (_dir, file, path) = image_with(&data);
        let mut h = RunningHash::start(&HashAlgorithm::ALL, &file, &path).unwrap();
        h.advance(100, false).unwrap();
        h.advance(50, false).unwrap(); // behind: nothing
        h.advance(2_000_001, true).unwrap();
        let out = h
            .finish(
                data.len() as u64,
                &AtomicU64::new(0),
                &AtomicBool::new(false),
            )
            .unwrap();
        for alg in HashAlgorithm::ALL {
            assert_eq!(out.get(alg).unwrap(), digest_of(alg, &data), "{alg}");
        }
    }

    #[test]
    fn a_change_behind_the_hashes_rolls_them_back() {
        let mut data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
        let (_dir, file, path) = image_with(&data);
        let mut h = RunningHash::start(&HashAlgorithm::ALL, &file, &path).unwrap();
        h.advance(1_000_000, false).unwrap();
        // A "bad" range, hashed as it is now, then rescued with other bytes.
        h.advance(1_600_000, true).unwrap();
        h.advance(2_000_000, true).unwrap();
        for b in &mut data[1_700_000..1_700_512] {
            *b = 0xEE;
        }
        file.write_all_at(&data[1_700_000..1_700_512], 1_700_000)
            .unwrap();
        h.changed_at(1_700_000).unwrap();
        assert_eq!(h.position(), 1_600_000);
        h.changed_at(2_100_000).unwrap(); // ahead of the hashes: nothing to undo
        assert_eq!(h.position(), 1_600_000);
        let out = h
            .finish(
                data.len() as u64,
                &AtomicU64::new(0),
                &AtomicBool::new(false),
            )
            .unwrap();
        for alg in HashAlgorithm::ALL {
            assert_eq!(out.get(alg).unwrap(), digest_of(alg, &data), "{alg}");
        }
    }

    #[test]
    fn a_change_before_any_checkpoint_starts_over() {
        let mut data = vec![1u8; 300_000];
        let (_dir, file, path) = image_with(&data);
        let mut h = RunningHash::start(&[HashAlgorithm::Md5], &file, &path).unwrap();
        h.advance(200_000, false).unwrap();
        data[10] = 9;
        file.write_all_at(&data[10..11], 10).unwrap();
        h.changed_at(10).unwrap();
        assert_eq!(h.position(), 0);
        let out = h
            .finish(
                data.len() as u64,
                &AtomicU64::new(0),
                &AtomicBool::new(false),
            )
            .unwrap();
        assert_eq!(
            out.get(HashAlgorithm::Md5).unwrap(),
            digest_of(HashAlgorithm::Md5, &data)
        );
    }

    #[test]
    fn a_missing_image_byte_is_an_error_not_a_hash() {
        let data = vec![0u8; 1000];
        let (_dir, file, path) = image_with(&data);
        let h = RunningHash::start(&[HashAlgorithm::Sha256], &file, &path).unwrap();
        assert!(h
            .finish(5000, &AtomicU64::new(0), &AtomicBool::new(false))
            .is_err());
    }
}
