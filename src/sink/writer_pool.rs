//! Several writes in flight on one image file or device: a small pool of writer threads, each
//! with its own handle on the same [`ImageFile`] (O_DIRECT for the aligned bulk, the buffered
//! tail and fallback as everywhere else), writing disjoint ranges with positioned writes.
//!
//! A device written one O_DIRECT request at a time idles between two requests (the writer takes
//! the next block, the kernel starts it); with a few in flight the next is already queued. Each
//! write holds the bytes it writes by reference (the pipeline's `Arc<Block>`, or one shared
//! buffer of zeros), never a copy, and its thread drops that reference the moment the write
//! returns, so a block goes back to the bounded pool as soon as every target has written it.
//! (An io_uring write would hold its block until the submitting thread reaps the completion,
//! and that thread sits waiting for the next block: buffers the producer needs.)
//!
//! Completions come back in any order. What the pool calls written is the prefix before the
//! first write not known to have landed, and a failure is reported, once every write in flight
//! has ended, as the failed write with the lowest offset: nothing after a failure is claimed.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::image_file::ImageFile;
use crate::block::Block;
use crate::buffer::AlignedBuf;
use crate::error::{Error, Result};

/// Bytes a write holds on to until it returns.
#[derive(Clone)]
pub enum Held {
    /// A block of the media, shared with every other consumer.
    Block(Arc<Block>),
    /// Zeros (a wiped tail), one buffer for every write of them.
    Zeros(Arc<AlignedBuf>),
}

impl Held {
    fn bytes(&self) -> &[u8] {
        match self {
            Held::Block(b) => b.data(),
            Held::Zeros(z) => z,
        }
    }
}

/// `len` bytes of `held` from `start`, to be written at `offset`.
struct Job {
    held: Held,
    start: usize,
    len: usize,
    offset: u64,
}

/// A write that returned.
struct Finished {
    offset: u64,
    result: Result<()>,
}

/// Writer threads for one image; see the module doc.
pub struct WriterPool {
    image: ImageFile,
    threads: usize,
    /// Jobs go to whichever thread is free; a rendezvous channel, so that at most `threads`
    /// writes are under way and a job waits here, not in a queue, while all are busy.
    jobs: Option<SyncSender<Job>>,
    finished: Option<Receiver<Finished>>,
    handles: Vec<JoinHandle<()>>,
    /// Writes handed out and not yet returned: start → end.
    in_flight: BTreeMap<u64, u64>,
    /// The failed write with the lowest offset so far, and where it failed.
    failed: Option<(u64, Error)>,
    /// Where the first failure was, once one was seen (kept after its error is returned).
    failed_at: Option<u64>,
}

impl WriterPool {
    /// A pool of `threads` writers on `image` (started with the first write).
    pub fn new(image: ImageFile, threads: usize) -> WriterPool {
        WriterPool {
            image,
            threads: threads.max(1),
            jobs: None,
            finished: None,
            handles: Vec::new(),
            in_flight: BTreeMap::new(),
            failed: None,
            failed_at: None,
        }
    }

    /// The image (its buffered descriptor: length, sync).
    pub fn image(&self) -> &ImageFile {
        &self.image
    }

    fn start(&mut self) -> Result<()> {
        if self.jobs.is_some() {
            return Ok(());
        }
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(0);
        let (done_tx, done_rx) = channel::<Finished>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        for n in 0..self.threads {
            let image = self.image.try_clone()?;
            let jobs = Arc::clone(&jobs_rx);
            let done = done_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("write-{n}"))
                .spawn(move || work(image, &jobs, &done))
                .map_err(|e| Error::Internal(format!("cannot start a writer thread: {e}")))?;
            self.handles.push(handle);
        }
        self.jobs = Some(jobs_tx);
        self.finished = Some(done_rx);
        Ok(())
    }

    /// Hands `held`'s bytes `start..start + len` to a free writer, to be written at `offset`
    /// (waits while every writer is busy). A write that failed meanwhile is reported here,
    /// once the others in flight have ended, and nothing more is written.
    pub fn write(&mut self, held: Held, start: usize, len: usize, offset: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.start()?;
        self.collect(false);
        self.check()?;
        self.in_flight.insert(offset, offset + len as u64);
        let job = Job {
            held,
            start,
            len,
            offset,
        };
        let sent = self.jobs.as_ref().map(|tx| tx.send(job));
        if !matches!(sent, Some(Ok(()))) {
            self.in_flight.remove(&offset);
            self.note(
                offset,
                Err(Error::Internal(format!(
                    "{}: the writer threads stopped",
                    self.image.path().display()
                ))),
            );
            self.check()?;
        }
        Ok(())
    }

    /// Waits for every write in flight; the failed one with the lowest offset, if any, is the
    /// error.
    pub fn wait_all(&mut self) -> Result<()> {
        self.collect(true);
        match self.failed.take() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Where the writes handed out so far are all known to have landed, given that every
    /// byte before `accepted` was handed out: the first write in flight or failed, else
    /// `accepted`.
    pub fn landed_before(&self, accepted: u64) -> u64 {
        let mut at = accepted;
        if let Some((&start, _)) = self.in_flight.first_key_value() {
            at = at.min(start);
        }
        if let Some(f) = self.failed_at {
            at = at.min(f);
        }
        at
    }

    /// After a failure: waits for the rest and returns it (and, once it was returned, refuses
    /// to write on).
    fn check(&mut self) -> Result<()> {
        if self.failed.is_some() {
            return self.wait_all();
        }
        match self.failed_at {
            Some(at) => Err(Error::Internal(format!(
                "{}: not written on after the write that failed at byte {at}",
                self.image.path().display()
            ))),
            None => Ok(()),
        }
    }

    /// Takes the writes that returned; with `all`, waits until none is in flight.
    fn collect(&mut self, all: bool) {
        let Some(rx) = self.finished.take() else {
            return;
        };
        loop {
            let next = if all && !self.in_flight.is_empty() {
                rx.recv().ok()
            } else {
                rx.try_recv().ok()
            };
            let Some(f) = next else { break };
            self.in_flight.remove(&f.offset);
            self.note(f.offset, f.result);
        }
        if all && !self.in_flight.is_empty() {
            // Every thread ended (a panic) with writes unreported: none of them is claimed.
            let at = *self.in_flight.keys().next().unwrap_or(&0);
            self.in_flight.clear();
            self.note(
                at,
                Err(Error::Internal(format!(
                    "{}: a writer thread stopped with writes unfinished",
                    self.image.path().display()
                ))),
            );
        }
        self.finished = Some(rx);
    }

    fn note(&mut self, offset: u64, result: Result<()>) {
        let Err(e) = result else { return };
        let at = match &e {
            Error::Write { offset, .. } => *offset,
            _ => offset,
        };
        self.failed_at = Some(self.failed_at.map_or(at, |f| f.min(at)));
        if self.failed.as_ref().is_none_or(|(f, _)| at < *f) {
            self.failed = Some((at, e));
        }
    }

    /// Waits for every write in flight and ends the threads; the first failure, if any, is
    /// the error.
    pub fn close(&mut self) -> Result<()> {
        let r = self.wait_all();
        self.jobs = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        r
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// One writer thread: takes jobs until the pool closes, and reports each write after
/// dropping its bytes (the block goes back to the pool before anyone hears it landed).
fn work(mut image: ImageFile, jobs: &Mutex<Receiver<Job>>, done: &Sender<Finished>) {
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let Job {
            held,
            start,
            len,
            offset,
        } = job;
        // A panic would leave the pool waiting for this write's report for ever.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            image.write_at(&held.bytes()[start..start + len], offset)
        }))
        .unwrap_or_else(|_| Err(Error::Internal("a writer thread panicked".into())));
        drop(held);
        if done.send(Finished { offset, result }).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{BufferPool, ALIGN};
    use std::fs::File;

    use super::super::image_file::scratch as file;

    #[test]
    fn blocks_land_at_their_offsets_and_go_back_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let (path, image) = file(dir.path());
        let mut pool_writes = WriterPool::new(image, 3);
        let pool = BufferPool::new(4, 64 << 10);
        let mut want = Vec::new();
        for i in 0..20u64 {
            let mut buf = pool.take();
            buf.fill(i as u8 + 1);
            // The last block is short: an unaligned tail through the page cache.
            let len = if i == 19 { 1000 } else { buf.len() };
            want.extend_from_slice(&buf[..len]);
            let block = Arc::new(Block::new(i, i * (64 << 10), buf, len, Vec::new()));
            pool_writes
                .write(Held::Block(block), 0, len, i * (64 << 10))
                .unwrap();
        }
        pool_writes.close().unwrap();
        assert_eq!(pool_writes.landed_before(7), 7);
        // Every buffer is back.
        let all: Vec<_> = (0..4).map(|_| pool.try_take().expect("returned")).collect();
        drop(all);
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn a_failed_write_is_reported_at_its_offset_and_nothing_after_it_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        std::fs::write(&path, []).unwrap();
        let Some(direct) = ImageFile::open_direct(&path) else {
            eprintln!("SKIP: no O_DIRECT on the temporary directory's file system");
            return;
        };
        // Aligned writes go through the writable O_DIRECT descriptor and land; an unaligned
        // one goes through the buffered descriptor, opened read-only here, and fails.
        let read_only = File::open(&path).unwrap();
        let mut w = WriterPool::new(ImageFile::new(&path, read_only, Some(direct)), 3);
        let data = Arc::new(AlignedBuf::new(16 * ALIGN));
        let piece = 4 * ALIGN;
        let bad = 2 * piece as u64 + 512;
        let mut error = None;
        for at in [
            0,
            piece as u64,
            bad,
            3 * piece as u64,
            4 * piece as u64,
            5 * piece as u64,
        ] {
            if let Err(e) = w.write(Held::Zeros(Arc::clone(&data)), 0, piece, at) {
                error = Some(e);
                break;
            }
        }
        let e = match error {
            Some(e) => e,
            None => w.wait_all().expect_err("the unaligned write fails"),
        };
        match &e {
            Error::Write {
                path: p, offset, ..
            } => {
                assert_eq!(p, &path);
                assert_eq!(*offset, bad);
            }
            other => panic!("not a write error: {other}"),
        }
        assert_eq!(w.landed_before(6 * piece as u64), bad);
        assert!(
            w.write(Held::Zeros(data), 0, piece, 0).is_err(),
            "nothing more"
        );
        w.close().unwrap();
    }

    #[test]
    fn zeros_are_written_from_one_shared_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let (path, image) = file(dir.path());
        std::fs::write(&path, vec![0xEEu8; 5 * ALIGN]).unwrap();
        let mut w = WriterPool::new(image, 2);
        let zeros = Arc::new(AlignedBuf::new(2 * ALIGN));
        for at in [ALIGN, 3 * ALIGN] {
            w.write(Held::Zeros(Arc::clone(&zeros)), 0, 2 * ALIGN, at as u64)
                .unwrap();
        }
        w.close().unwrap();
        let got = std::fs::read(&path).unwrap();
        assert!(got[..ALIGN].iter().all(|&b| b == 0xEE));
        assert!(got[ALIGN..].iter().all(|&b| b == 0));
    }
}
