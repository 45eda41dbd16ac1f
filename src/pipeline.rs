//! The one fan-out: a producer hands blocks of media on in order, and every block is shared
//! by reference (`Arc<Block>`) with one thread per hash algorithm, the CRC-64 piece list and
//! one thread per sink. Acquire, verify, the E01 checker and conversion all run their single
//! pass through [`run`]; only the producer differs (the device reader, a raw image, decoded
//! E01 chunks).
//!
//! ```text
//!  producer ─▶ Feed ──┬──▶ MD5 thread ─┐
//!  (reader,           ├──▶ SHA-1 thread ├─▶ media hashes
//!   image)            ├──▶ SHA-256 thread┘
//!                     ├──▶ piece-list thread
//!                     └──▶ one thread per sink (raw, E01, …)
//! ```
//! The buffer pool is the back-pressure: a block's buffer returns to the pool when the last
//! consumer drops it, so a slow consumer slows the producer and memory stays bounded.
//! Errors are mapped in one place ([`run`]): a sink's own error explains a stopped producer
//! better than "an output stopped taking data", then the producer's, then a panicked thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use crate::block::Block;
use crate::buffer::{BufferPool, PooledBuf};
use crate::cputime::CpuLedger;
use crate::error::{Error, Result};
use crate::hash::{HashAlgorithm, MediaHashes};
use crate::pieces::{PieceHasher, PieceList};
use crate::progress::Progress;
use crate::sink::Sink;

/// Who takes the blocks of one pass.
#[derive(Default)]
pub struct Consumers {
    /// One thread per algorithm.
    pub hashes: Vec<HashAlgorithm>,
    /// A piece-list thread with pieces of this size.
    pub piece_size: Option<u32>,
    /// One thread per sink, in this order.
    pub sinks: Vec<Box<dyn Sink>>,
}

/// What a pass computed, with the sinks ready to be finished.
pub struct Passed<T> {
    /// The media hashes.
    pub hashes: MediaHashes,
    /// The piece list, when one was asked for.
    pub pieces: Option<PieceList>,
    /// Media bytes handed on.
    pub bytes: u64,
    /// The sinks, in the order given, each having seen every block.
    pub sinks: Vec<Box<dyn Sink>>,
    /// What the producer returned.
    pub value: T,
}

/// A pass that failed: the error, and the sinks (the caller abandons them).
pub struct Failed {
    /// Why.
    pub error: Error,
    /// Every sink that still exists.
    pub sinks: Vec<Box<dyn Sink>>,
}

impl Failed {
    /// Abandons every sink and returns the error with the files they had written.
    pub fn abandon(self) -> (Error, Vec<crate::sink::OutputFile>) {
        let files = self.sinks.into_iter().flat_map(|s| s.abandon()).collect();
        (self.error, files)
    }
}

impl From<Failed> for Error {
    fn from(f: Failed) -> Error {
        f.abandon().0
    }
}

/// The producer's side of a pass: hands blocks on, in media order.
pub struct Feed<'a> {
    pool: BufferPool,
    senders: Vec<SyncSender<Arc<Block>>>,
    progress: &'a Progress,
    stop: &'a AtomicBool,
    index: u64,
    offset: u64,
    pending: Option<(PooledBuf, usize)>,
}

impl Feed<'_> {
    /// A free buffer to fill (waits while all are in use).
    pub fn take(&mut self) -> PooledBuf {
        self.pool.take()
    }

    /// The pool the buffers come from, for producers that fill them on other threads. Take
    /// buffers in media order, so that the earliest unsent block always has one.
    pub fn pool(&self) -> BufferPool {
        self.pool.clone()
    }

    /// True once SIGINT/SIGTERM asked the job to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hands on a block the producer numbered and placed itself (the device reader, whose
    /// blocks carry their unreadable runs).
    pub fn send_block(&mut self, block: Block) -> Result<()> {
        self.index = block.index + 1;
        self.offset = block.end();
        self.progress.add_done(block.len() as u64);
        let block = Arc::new(block);
        for tx in &self.senders {
            tx.send(Arc::clone(&block))
                .map_err(|_| Error::Internal("an output stopped taking data".into()))?;
        }
        Ok(())
    }

    /// Hands on the first `len` bytes of `buf` as the next media bytes.
    pub fn send(&mut self, buf: PooledBuf, len: usize) -> Result<()> {
        if self.stopping() {
            return Err(Error::Interrupted("a signal"));
        }
        if len == 0 {
            return Ok(());
        }
        let block = Block::new(self.index, self.offset, buf, len, Vec::new());
        self.send_block(block)
    }

    /// Copies `data` in as the next media bytes (for producers that decode into their own
    /// buffers).
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let (mut buf, mut len) = match self.pending.take() {
                Some(p) => p,
                None => (self.pool.take(), 0),
            };
            let n = (buf.len() - len).min(data.len());
            buf[len..len + n].copy_from_slice(&data[..n]);
            len += n;
            data = &data[n..];
            if len == buf.len() {
                self.send(buf, len)?;
            } else {
                self.pending = Some((buf, len));
            }
        }
        Ok(())
    }

    /// Media bytes handed on so far (including a partly filled buffer).
    pub fn position(&self) -> u64 {
        self.offset + self.pending.as_ref().map_or(0, |p| p.1 as u64)
    }

    fn flush(&mut self) -> Result<()> {
        match self.pending.take() {
            Some((buf, len)) => self.send(buf, len),
            None => Ok(()),
        }
    }
}

/// Where a pass's threads report their CPU time, and whether the lighter consumers give way
/// to MD5.
#[derive(Clone, Copy, Default)]
pub struct Tuning<'a> {
    /// Each consumer thread adds its CPU time here under its stage name as it ends.
    pub cpu: Option<&'a CpuLedger>,
}

/// MD5 is one serial stream and the slowest hash (SHA-1 and SHA-256 run 2–3× faster with the
/// CPU's SHA extensions), so it sets the pace of a pass. The lighter consumers lower their own
/// priority a little so that, when cores are short, the scheduler gives MD5 its core first;
/// they still get every idle cycle. Failure to renice is harmless.
fn yield_to_md5() {
    crate::threads::lower_priority(5);
}

/// Runs `produce` with `consumers` fed from `pool`'s buffers; every block `produce` hands to
/// its [`Feed`] reaches every consumer in order.
pub fn run<T>(
    consumers: Consumers,
    pool: &BufferPool,
    tuning: Tuning<'_>,
    progress: &Progress,
    stop: &AtomicBool,
    produce: impl FnOnce(&mut Feed<'_>) -> Result<T>,
) -> std::result::Result<Passed<T>, Failed> {
    let Consumers {
        hashes,
        piece_size,
        sinks,
    } = consumers;
    let depth = pool.count();
    let with_md5 = hashes.contains(&HashAlgorithm::Md5);
    let account = |stage: &str| {
        if let Some(cpu) = tuning.cpu {
            cpu.add_this_thread(stage);
        }
    };
    let account = &account;
    std::thread::scope(|scope| {
        let mut senders: Vec<SyncSender<Arc<Block>>> = Vec::new();
        let mut channel = || {
            let (tx, rx) = sync_channel::<Arc<Block>>(depth);
            senders.push(tx);
            rx
        };
        let mut spawn_error: Option<Error> = None;
        let mut note_spawn = |what: &str, e: std::io::Error| {
            spawn_error.get_or_insert(Error::Internal(format!("cannot start {what}: {e}")));
        };

        let mut hash_threads = Vec::new();
        for &alg in &hashes {
            let rx = channel();
            let t = std::thread::Builder::new()
                .name(format!("hash-{alg}"))
                .spawn_scoped(scope, move || {
                    if alg != HashAlgorithm::Md5 && with_md5 {
                        yield_to_md5();
                    }
                    let mut h = alg.hasher();
                    for block in rx {
                        h.update(block.data());
                    }
                    account(&format!("hash-{alg}"));
                    (alg, h.finish())
                });
            match t {
                Ok(t) => hash_threads.push(t),
                Err(e) => note_spawn("a hash thread", e),
            }
        }

        let mut piece_thread = None;
        if let Some(size) = piece_size {
            let rx = channel();
            let t = std::thread::Builder::new()
                .name("pieces".into())
                .spawn_scoped(scope, move || {
                    yield_to_md5();
                    let mut p = PieceHasher::new(size);
                    for block in rx {
                        p.update(block.data());
                    }
                    account("pieces");
                    p.finish()
                });
            match t {
                Ok(t) => piece_thread = Some(t),
                Err(e) => note_spawn("the piece-list thread", e),
            }
        }

        let mut sink_threads = Vec::new();
        for mut sink in sinks {
            let rx: Receiver<Arc<Block>> = channel();
            let stage = format!("sink-{}", sink.name());
            let t = std::thread::Builder::new()
                .name(stage.clone())
                .spawn_scoped(scope, move || {
                    for block in rx {
                        if let Err(e) = sink.write_block(&block) {
                            // Dropping the receiver stops the producer.
                            account(&stage);
                            return (sink, Some(e));
                        }
                    }
                    account(&stage);
                    (sink, None)
                });
            match t {
                Ok(t) => sink_threads.push(t),
                Err(e) => note_spawn("an output thread", e),
            }
        }

        let mut feed = Feed {
            pool: pool.clone(),
            senders,
            progress,
            stop,
            index: 0,
            offset: 0,
            pending: None,
        };
        let produced = match spawn_error.take() {
            Some(e) => Err(e),
            None => produce(&mut feed).and_then(|v| feed.flush().map(|()| v)),
        };
        let bytes = feed.offset;
        drop(feed);

        let mut digests = MediaHashes::default();
        let mut panicked: Option<Error> = None;
        for t in hash_threads {
            match t.join() {
                Ok((alg, d)) => digests.set(alg, &d),
                Err(_) => panicked = Some(Error::Internal("a hash thread panicked".into())),
            }
        }
        let pieces = match piece_thread.map(|t| t.join()) {
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                panicked = Some(Error::Internal("the piece thread panicked".into()));
                None
            }
            None => None,
        };
        let mut finished = Vec::new();
        let mut sink_error = None;
        for t in sink_threads {
            match t.join() {
                Ok((sink, err)) => {
                    if sink_error.is_none() {
                        sink_error = err;
                    }
                    finished.push(sink);
                }
                Err(_) => panicked = Some(Error::Internal("an output thread panicked".into())),
            }
        }
        let (value, produce_error) = match produced {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        match (sink_error.or(produce_error).or(panicked), value) {
            (None, Some(value)) => Ok(Passed {
                hashes: digests,
                pieces,
                bytes,
                sinks: finished,
                value,
            }),
            (error, _) => Err(Failed {
                error: error.unwrap_or_else(|| Error::Internal("the pass produced nothing".into())),
                sinks: finished,
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::to_hex;

    const BLOCK: usize = 4 << 20;

    fn pass(f: impl FnOnce(&mut Feed<'_>) -> Result<()>) -> Passed<()> {
        let stop = AtomicBool::new(false);
        let p = Progress::default();
        let consumers = Consumers {
            hashes: HashAlgorithm::ALL.to_vec(),
            piece_size: Some(1 << 20),
            sinks: Vec::new(),
        };
        let pool = BufferPool::new(8, BLOCK);
        run(consumers, &pool, Tuning::default(), &p, &stop, f)
            .map_err(|f| f.error)
            .unwrap()
    }

    #[test]
    fn write_and_send_give_the_same_hashes() {
        let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
        let a = pass(|f| {
            for c in data.chunks(32768) {
                f.write(c)?;
            }
            Ok(())
        });
        let b = pass(|f| {
            for c in data.chunks(BLOCK) {
                let mut buf = f.take();
                buf[..c.len()].copy_from_slice(c);
                f.send(buf, c.len())?;
            }
            Ok(())
        });
        assert_eq!(a.bytes, data.len() as u64);
        assert_eq!(a.hashes, b.hashes);
        assert_eq!(a.pieces, b.pieces);
        let mut h = HashAlgorithm::Sha256.hasher();
        h.update(&data);
        assert_eq!(
            to_hex(a.hashes.sha256.as_ref().unwrap()),
            to_hex(&h.finish())
        );
    }

    /// A sink that fails on its second block.
    struct Failing(u32);
    impl Sink for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn write_block(&mut self, _: &Arc<Block>) -> Result<()> {
            self.0 += 1;
            if self.0 == 2 {
                return Err(Error::Internal("disk full (test)".into()));
            }
            Ok(())
        }
        fn finish(
            self: Box<Self>,
            _: &crate::sink::MediaSummary,
        ) -> Result<Vec<crate::sink::OutputFile>> {
            Ok(Vec::new())
        }
        fn abandon(self: Box<Self>) -> Vec<crate::sink::OutputFile> {
            Vec::new()
        }
    }

    #[test]
    fn a_sink_error_stops_the_producer_and_is_the_error_reported() {
        let stop = AtomicBool::new(false);
        let p = Progress::default();
        let pool = BufferPool::new(2, 4096);
        let consumers = Consumers {
            hashes: vec![HashAlgorithm::Md5],
            piece_size: None,
            sinks: vec![Box::new(Failing(0))],
        };
        let mut sent = 0u64;
        let r = run(consumers, &pool, Tuning::default(), &p, &stop, |f| {
            // Without back-pressure from the failed sink this would run forever.
            loop {
                let buf = f.take();
                f.send(buf, 4096)?;
                sent += 1;
            }
            #[allow(unreachable_code)]
            Ok(())
        });
        let failed = r.err().expect("the pass fails");
        assert_eq!(failed.sinks.len(), 1);
        assert!(failed.error.to_string().contains("disk full (test)"));
        assert!(sent >= 2, "the sink saw two blocks");
    }

    #[test]
    fn a_stop_request_interrupts_the_pass() {
        let stop = AtomicBool::new(true);
        let p = Progress::default();
        let pool = BufferPool::new(2, 4096);
        let r = run(
            Consumers::default(),
            &pool,
            Tuning::default(),
            &p,
            &stop,
            |f| {
                let buf = f.take();
                f.send(buf, 10)
            },
        );
        assert!(matches!(
            r.err().map(|f| f.error),
            Some(Error::Interrupted(_))
        ));
    }
}
