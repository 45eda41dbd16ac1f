//! The reader: every byte of the source, once, in order of offset, handed on as [`Block`]s.
//!
//! Two engines do the same job. The io_uring engine keeps several large O_DIRECT reads in
//! flight into registered pool buffers and hands them on in source order; the `pread` engine
//! reads one block at a time and is used where io_uring is unavailable or refused. Both
//! narrow a failed read down to the sectors that really fail (see [`recover`]).

pub mod liveness;
pub mod recover;
mod sync;
mod uring;

pub use uring::StreamEnd;

use std::sync::atomic::AtomicBool;

use crate::block::Block;
use crate::buffer::BufferPool;
use crate::error::{Error, Result};
use crate::source::Source;
pub use liveness::GiveUp;

/// Which engine to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// io_uring where the kernel allows it, else pread.
    Auto,
    /// io_uring or fail.
    Uring,
    /// pread, one block at a time.
    Sync,
}

/// The engine that actually ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// io_uring.
    Uring,
    /// pread.
    Sync,
}

/// How to read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReaderOptions {
    /// Bytes per read request; a multiple of 4096. Default [`DEFAULT_BLOCK_SIZE`].
    pub block_size: usize,
    /// Reads in flight (io_uring only). Default [`DEFAULT_QUEUE_DEPTH`].
    pub queue_depth: usize,
    /// Engine choice. Default auto.
    pub engine: EngineChoice,
    /// Extra reads of a sector that failed alone before it is called unreadable.
    /// Default [`DEFAULT_RETRIES`].
    pub retries: u32,
    /// Use O_DIRECT where the source's filesystem allows it. Default true.
    pub direct: bool,
    /// When a source that keeps failing is given up on (see [`liveness`]).
    #[serde(default)]
    pub give_up: GiveUp,
}

/// 1 MiB: large enough that per-request overhead vanishes, small enough that a failed read
/// narrows quickly and the pool stays small (measured: see docs/benchmarks.md).
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
/// Eight 1 MiB reads in flight saturate the devices measured here (QD ≥ 4 reaches full speed).
pub const DEFAULT_QUEUE_DEPTH: usize = 8;
/// Two retries, as libewf and EnCase do: a sector is read alone three times before it is
/// called unreadable. Each retry of a truly bad sector can cost seconds on a real disk.
pub const DEFAULT_RETRIES: u32 = 2;

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            engine: EngineChoice::Auto,
            retries: DEFAULT_RETRIES,
            direct: true,
            give_up: GiveUp::default(),
        }
    }
}

impl ReaderOptions {
    /// Checks the options against the source.
    pub fn validate(&self, sector_size: u32) -> Result<()> {
        if self.block_size == 0 || !self.block_size.is_multiple_of(4096) {
            return Err(Error::InvalidOption(format!(
                "--block-size {} is not a positive multiple of 4096",
                self.block_size
            )));
        }
        if !self.block_size.is_multiple_of(sector_size as usize) {
            return Err(Error::InvalidOption(format!(
                "--block-size {} is not a multiple of the source's sector size {sector_size}",
                self.block_size
            )));
        }
        if self.block_size > 64 << 20 {
            return Err(Error::InvalidOption(format!(
                "--block-size {} is larger than 64 MiB",
                self.block_size
            )));
        }
        if self.queue_depth == 0 || self.queue_depth > 256 {
            return Err(Error::InvalidOption(format!(
                "--queue-depth {} is not between 1 and 256",
                self.queue_depth
            )));
        }
        Ok(())
    }

    /// Buffers the pool needs: the reads in flight, plus room for consumers to lag behind.
    pub fn pool_buffers(&self) -> usize {
        self.queue_depth * 2 + 8
    }

    /// Buffers for reading `media_size` bytes with `available` bytes of memory to spare:
    /// [`ReaderOptions::pool_buffers`], but never more than the source has blocks (each block
    /// takes one buffer, so more are never used) and never more than a quarter of the
    /// available memory; at least one. Fewer buffers than the queue depth only means fewer
    /// reads in flight.
    pub fn pool_buffers_for(&self, media_size: u64, available: Option<u64>) -> usize {
        let blocks = media_size.div_ceil(self.block_size.max(1) as u64).max(1);
        let mut count = (self.pool_buffers() as u64).min(blocks);
        if let Some(avail) = available {
            count = count.min(avail / 4 / self.block_size.max(1) as u64);
        }
        count.max(1) as usize
    }

    /// The pool for reading `media_size` bytes (see [`ReaderOptions::pool_buffers_for`]); an
    /// allocation that fails is an error the job records, not an abort.
    pub fn pool_for(&self, media_size: u64) -> Result<BufferPool> {
        let available = crate::buffer::available_memory();
        let count = self.pool_buffers_for(media_size, available);
        BufferPool::try_new(count, self.block_size).ok_or_else(|| {
            Error::InvalidOption(format!(
                "--block-size {} with --queue-depth {}: {count} buffers ({} bytes) cannot be \
                 allocated{}",
                self.block_size,
                self.queue_depth,
                count as u64 * self.block_size as u64,
                available.map_or(String::new(), |a| format!(" ({a} bytes available)")),
            ))
        })
    }
}

/// What the reader did, for the record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadReport {
    /// The engine that ran.
    pub engine: EngineKind,
    /// Why that engine (and why not the other).
    pub engine_reason: String,
    /// Whether O_DIRECT was in use.
    pub direct_io: bool,
    /// Bytes handed on.
    pub bytes: u64,
}

/// Reads the whole source in order, handing each block to `emit`. Stops early (after
/// waiting for every read in flight) when `stop` is set or `emit` fails.
pub fn read_source(
    source: &Source,
    opts: &ReaderOptions,
    pool: &BufferPool,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(Block) -> Result<()>,
) -> Result<ReadReport> {
    opts.validate(source.logical_sector_size())?;
    let (engine, reason) = match opts.engine {
        EngineChoice::Sync => (None, "pread engine requested (--io sync)".to_string()),
        EngineChoice::Uring => match uring::UringReader::new(source, opts, pool) {
            Ok(r) => (Some(r), "io_uring requested (--io uring)".to_string()),
            Err(e) => {
                return Err(Error::InvalidOption(format!(
                    "--io uring: io_uring is not available here: {e}"
                )))
            }
        },
        EngineChoice::Auto => match uring::UringReader::new(source, opts, pool) {
            Ok(r) => (Some(r), "io_uring available (--io auto)".to_string()),
            Err(e) => (
                None,
                format!("io_uring unavailable ({e}); fell back to pread (--io auto)"),
            ),
        },
    };
    let mut reason = reason;
    if let Some(note) = engine.as_ref().and_then(|e| e.note()) {
        reason.push_str("; ");
        reason.push_str(note);
    }
    if let Some(note) = source.direct_note() {
        reason.push_str("; ");
        reason.push_str(note);
    }
    let (kind, bytes) = match engine {
        Some(mut r) => (EngineKind::Uring, r.run(stop, emit)?),
        None => (
            EngineKind::Sync,
            sync::read_all(source, opts, pool, stop, emit)?,
        ),
    };
    Ok(ReadReport {
        engine: kind,
        engine_reason: reason,
        direct_io: source.is_direct(),
        bytes,
    })
}

/// Errnos that mean "this range of the medium cannot be read", as opposed to "the request or
/// the device is broken". Real disks report medium errors as ENODATA; loop/FUSE as EIO.
pub fn is_media_error(errno: i32) -> bool {
    matches!(
        errno,
        libc::EIO
            | libc::ENODATA
            | libc::EILSEQ
            | libc::ETIMEDOUT
            | libc::ENOLINK
            | libc::EREMOTEIO
            | libc::EBADMSG
            | libc::ECOMM
            | libc::EPROTO
    )
}

/// Bytes the block at `offset` should hold: a full block, or the tail of the source.
pub(crate) fn block_len(size: u64, offset: u64, block_size: usize) -> usize {
    (size - offset).min(block_size as u64) as usize
}

/// Rounds a length up to whole sectors (O_DIRECT wants whole sectors; the read then stops
/// short at the end of the source).
pub(crate) fn round_up(len: usize, sector: usize) -> usize {
    len.div_ceil(sector) * sector
}

/// Large reads of chosen ranges, several in flight, for a rescue's copy pass over healthy
/// stretches: io_uring only (where it is unavailable, the rescue reads one block at a time).
pub struct RangeStreamer<'a> {
    engine: uring::UringReader<'a>,
}

impl<'a> RangeStreamer<'a> {
    /// An io_uring engine on `source` reading `opts.block_size` blocks into `pool`'s buffers.
    pub fn new(source: &'a Source, opts: &'a ReaderOptions, pool: &'a BufferPool) -> Result<Self> {
        opts.validate(source.logical_sector_size())?;
        let engine = uring::UringReader::new(source, opts, pool)
            .map_err(|e| Error::InvalidOption(format!("io_uring is not available here: {e}")))?;
        Ok(RangeStreamer { engine })
    }

    /// Reads `start..end` and hands on each block that reads, in order; stops at the first
    /// media error (see [`StreamEnd`]). Nothing is narrowed or retried.
    pub fn stream(
        &mut self,
        start: u64,
        end: u64,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd> {
        self.engine.stream(start, end, stop, emit)
    }

    /// Bytes per read.
    pub fn block_size(&self) -> u64 {
        self.engine.block_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_sized_by_the_source_and_the_memory_there_is() {
        let opts = ReaderOptions {
            queue_depth: 256,
            block_size: 64 << 20,
            ..ReaderOptions::default()
        };
        assert_eq!(opts.pool_buffers_for(16 << 20, None), 1);
        assert_eq!(opts.pool_buffers_for(0, None), 1);
        assert_eq!(opts.pool_buffers_for(1 << 40, None), 520);
        // A quarter of 1 GiB holds four 64 MiB buffers.
        assert_eq!(opts.pool_buffers_for(1 << 40, Some(1 << 30)), 4);
        assert_eq!(opts.pool_buffers_for(1 << 40, Some(1)), 1);
        let default = ReaderOptions::default();
        assert_eq!(default.pool_buffers_for(1 << 40, Some(16 << 30)), 24);
    }
}
