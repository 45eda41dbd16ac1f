//! What a rescue reads through: single positioned reads ([`SectorReader`]) near trouble, large
//! streamed reads ([`StretchReader`]) on healthy stretches, and the account of what this run
//! read and what failed ([`ReadLog`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::RescueProgress;
use crate::block::Block;
use crate::error::Result;
use crate::map::{BadRun, BlockState, SectorMap};
use crate::reader::recover::ReadAt;
use crate::reader::{RangeStreamer, StreamEnd};
use crate::source::Source;

/// What the rescue reads from: a [`Source`] in production, an in-memory fake in tests. The
/// reads are the acquire reader's [`ReadAt`] (which may answer short: a FUSE-backed file
/// does); a rescue also needs the sector size, the unit of every narrowed read.
///
/// Reads are positioned, sector-aligned (offset and length) and go into 4096-aligned
/// buffers, so an O_DIRECT source is read without the page cache.
pub trait SectorReader: ReadAt {
    /// Logical sector size.
    fn sector_size(&self) -> u32;
}

impl SectorReader for Source {
    fn sector_size(&self) -> u32 {
        self.logical_sector_size()
    }
}

/// Large reads of a healthy stretch, several in flight: io_uring in production
/// ([`RangeStreamer`]).
pub trait StretchReader {
    /// Bytes per read.
    fn block_size(&self) -> u64;
    /// Reads `start..end` and hands on each block that reads, in order, until the first media
    /// error (see [`StreamEnd`]).
    fn stream(
        &mut self,
        start: u64,
        end: u64,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd>;
}

impl StretchReader for RangeStreamer<'_> {
    fn block_size(&self) -> u64 {
        RangeStreamer::block_size(self)
    }

    fn stream(
        &mut self,
        start: u64,
        end: u64,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd> {
        // Interruption is seen between blocks, where the map can be saved first.
        let never = AtomicBool::new(false);
        RangeStreamer::stream(self, start, end, &never, emit)
    }
}

/// The reads of this run: how many, how many failed, and per failed sector its last errno and
/// how often it failed (for the record's runs).
#[derive(Debug, Default)]
pub(super) struct ReadLog {
    /// Reads issued.
    pub reads: u64,
    /// Reads that failed with a media error.
    pub read_errors: u64,
    /// Per failed sector of this run: (last errno, failed reads).
    failures: BTreeMap<u64, (i32, u32)>,
}

impl ReadLog {
    /// `n` reads issued, the last at `at`: for the report and the progress display.
    pub fn count_reads(&mut self, progress: &RescueProgress, n: u64, at: u64) {
        self.reads += n;
        progress.reads.fetch_add(n, Ordering::Relaxed);
        progress.position.store(at, Ordering::Relaxed);
    }

    /// `n` of them failed with a media error.
    pub fn count_failures(&mut self, progress: &RescueProgress, n: u64) {
        self.read_errors += n;
        progress.read_errors.fetch_add(n, Ordering::Relaxed);
    }

    /// A read of the sector at `at` alone failed with `errno`.
    pub fn sector_failed(&mut self, at: u64, errno: i32) {
        let entry = self.failures.entry(at).or_insert((errno, 0));
        entry.0 = errno;
        entry.1 += 1;
    }

    /// The bad sectors of `map` as runs, with what this run learned about each.
    pub fn bad_runs(&self, map: &SectorMap) -> Vec<BadRun> {
        map.blocks_in(BlockState::BadSector)
            .map(|b| {
                let mut errno = 0;
                let mut attempts = 0;
                for (_, &(e, n)) in self.failures.range(b.pos..b.end()) {
                    errno = e;
                    attempts = attempts.max(n);
                }
                BadRun {
                    offset: b.pos,
                    length: b.size,
                    errno,
                    attempts,
                }
            })
            .collect()
    }
}
