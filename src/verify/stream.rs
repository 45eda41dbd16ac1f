//! The one pass over an image's media: a producer (raw files read sequentially, or E01 chunks
//! decoded) fills pooled buffers, and every buffer is shared by reference with one thread per
//! hash algorithm and the piece-list thread, exactly like acquire does. The pool is the
//! back-pressure: memory stays bounded whatever the image size.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use crate::block::Block;
use crate::buffer::{BufferPool, PooledBuf};
use crate::error::{Error, Result};
use crate::hash::{HashAlgorithm, MediaHashes};
use crate::pieces::{PieceHasher, PieceList};
use crate::progress::Progress;

/// Bytes per block handed to the hashers.
pub const BLOCK_SIZE: usize = 4 << 20;
/// Blocks in flight (the memory bound: 8 × 4 MiB).
pub const POOL_BLOCKS: usize = 8;

/// What one pass computed.
#[derive(Debug)]
pub struct PassResult<T> {
    /// The media hashes.
    pub hashes: MediaHashes,
    /// The piece list of the media, when one was asked for.
    pub pieces: Option<PieceList>,
    /// Media bytes seen.
    pub bytes: u64,
    /// What the producer returned.
    pub value: T,
}

/// The producer's side of a pass: fills buffers and hands them on, in media order.
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

    /// Hands on the first `len` bytes of `buf` as the next media bytes.
    pub fn send(&mut self, buf: PooledBuf, len: usize) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted("a signal"));
        }
        if len == 0 {
            return Ok(());
        }
        let block = Arc::new(Block::new(self.index, self.offset, buf, len, Vec::new()));
        self.index += 1;
        self.offset += len as u64;
        self.progress.add_done(len as u64);
        for tx in &self.senders {
            tx.send(Arc::clone(&block))
                .map_err(|_| Error::Internal("a hash thread stopped taking data".into()))?;
        }
        Ok(())
    }

    /// Copies `data` in as the next media bytes (for producers that decode into their own
    /// buffers, such as E01 chunks).
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
        if let Some((buf, len)) = self.pending.take() {
            self.send(buf, len)?;
        }
        Ok(())
    }
}

/// Runs `produce` with hash threads for `algorithms` and, with `piece_size`, a piece-list
/// thread, all fed from the same buffers ([`POOL_BLOCKS`] of [`BLOCK_SIZE`] bytes).
pub fn run<T>(
    algorithms: &[HashAlgorithm],
    piece_size: Option<u32>,
    progress: &Progress,
    stop: &AtomicBool,
    produce: impl FnOnce(&mut Feed<'_>) -> Result<T>,
) -> Result<PassResult<T>> {
    run_sized(
        algorithms,
        piece_size,
        BLOCK_SIZE,
        POOL_BLOCKS,
        progress,
        stop,
        produce,
    )
}

/// [`run`] with `blocks` buffers of `block_len` bytes.
pub fn run_sized<T>(
    algorithms: &[HashAlgorithm],
    piece_size: Option<u32>,
    block_len: usize,
    blocks: usize,
    progress: &Progress,
    stop: &AtomicBool,
    produce: impl FnOnce(&mut Feed<'_>) -> Result<T>,
) -> Result<PassResult<T>> {
    let pool = BufferPool::new(blocks.max(1), block_len);
    std::thread::scope(|scope| {
        let mut senders = Vec::new();
        let hash_threads: Vec<_> = algorithms
            .iter()
            .map(|&alg| {
                let (tx, rx) = sync_channel::<Arc<Block>>(POOL_BLOCKS);
                senders.push(tx);
                std::thread::Builder::new()
                    .name(format!("verify-{alg}"))
                    .spawn_scoped(scope, move || {
                        let mut h = alg.hasher();
                        for block in rx {
                            h.update(block.data());
                        }
                        (alg, h.finish())
                    })
                    .map_err(|e| Error::Internal(format!("cannot start a hash thread: {e}")))
            })
            .collect::<Result<_>>()?;
        let piece_thread = match piece_size {
            Some(size) => {
                let (tx, rx) = sync_channel::<Arc<Block>>(POOL_BLOCKS);
                senders.push(tx);
                Some(
                    std::thread::Builder::new()
                        .name("verify-pieces".into())
                        .spawn_scoped(scope, move || {
                            let mut p = PieceHasher::new(size);
                            for block in rx {
                                p.update(block.data());
                            }
                            p.finish()
                        })
                        .map_err(|e| {
                            Error::Internal(format!("cannot start the piece thread: {e}"))
                        })?,
                )
            }
            None => None,
        };
        let mut feed = Feed {
            pool: pool.clone(),
            senders,
            progress,
            stop,
            index: 0,
            offset: 0,
            pending: None,
        };
        let produced = produce(&mut feed).and_then(|v| feed.flush().map(|()| v));
        let bytes = feed.offset;
        drop(feed);
        let mut hashes = MediaHashes::default();
        let mut panicked = false;
        for t in hash_threads {
            match t.join() {
                Ok((alg, d)) => hashes.set(alg, &d),
                Err(_) => panicked = true,
            }
        }
        let pieces = match piece_thread.map(|t| t.join()) {
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                panicked = true;
                None
            }
            None => None,
        };
        let value = produced?;
        if panicked {
            return Err(Error::Internal("a hash thread panicked".into()));
        }
        Ok(PassResult {
            hashes,
            pieces,
            bytes,
            value,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::to_hex;

    #[test]
    fn write_and_send_give_the_same_hashes() {
        let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
        let stop = AtomicBool::new(false);
        let p = Progress::default();
        let a = run(&HashAlgorithm::ALL, Some(1 << 20), &p, &stop, |f| {
            for c in data.chunks(32768) {
                f.write(c)?;
            }
            Ok(())
        })
        .unwrap();
        let b = run(&HashAlgorithm::ALL, Some(1 << 20), &p, &stop, |f| {
            for c in data.chunks(BLOCK_SIZE) {
                let mut buf = f.take();
                buf[..c.len()].copy_from_slice(c);
                f.send(buf, c.len())?;
            }
            Ok(())
        })
        .unwrap();
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
}
