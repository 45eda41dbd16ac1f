//! Where a rescue is, for a progress display: read by any thread without locks.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::map::{BlockState, SectorMap};

/// Which phase a rescue is in (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Phase {
    /// Opening, loading the map.
    Starting = 0,
    /// Copying untried areas in large blocks.
    Copying = 1,
    /// Trimming the edges of failed blocks.
    Trimming = 2,
    /// Reading the inside of failed blocks sector by sector.
    Scraping = 3,
    /// Giving bad sectors more reads.
    Retrying = 4,
    /// Hashing the finished image.
    Hashing = 5,
    /// Done.
    Finished = 6,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Copying,
            2 => Phase::Trimming,
            3 => Phase::Scraping,
            4 => Phase::Retrying,
            5 => Phase::Hashing,
            6 => Phase::Finished,
            _ => Phase::Starting,
        }
    }

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Copying => "copying",
            Phase::Trimming => "trimming",
            Phase::Scraping => "scraping",
            Phase::Retrying => "retrying",
            Phase::Hashing => "hashing",
            Phase::Finished => "finished",
        }
    }
}

/// Live progress of a rescue, updated by the job after every read and read by any other
/// thread (a progress bar, a log line every minute) without locks.
#[derive(Debug, Default)]
pub struct RescueProgress {
    phase: AtomicU8,
    /// Pass number within the phase (1-based; the retry pass while retrying).
    pub pass: AtomicU32,
    /// Source size in bytes.
    pub size: AtomicU64,
    /// Byte offset of the current read.
    pub position: AtomicU64,
    /// Bytes read and in the image (`+`).
    pub rescued: AtomicU64,
    /// Bytes in bad sectors (`-`).
    pub bad_bytes: AtomicU64,
    /// Number of separate bad areas (runs of `-`).
    pub bad_areas: AtomicU64,
    /// Bytes not tried yet (`?`).
    pub non_tried: AtomicU64,
    /// Bytes in failed blocks still to trim or scrape (`*` and `/`).
    pub pending: AtomicU64,
    /// Reads issued by this run.
    pub reads: AtomicU64,
    /// Reads that failed with a media error in this run.
    pub read_errors: AtomicU64,
    /// Bytes hashed so far in the hashing phase.
    pub hashed: AtomicU64,
}

impl RescueProgress {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    pub(super) fn set_phase(&self, phase: Phase, pass: u32) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        self.pass.store(pass, Ordering::Relaxed);
    }

    pub(super) fn update_from(&self, map: &SectorMap) {
        self.rescued
            .store(map.bytes_in(BlockState::Finished), Ordering::Relaxed);
        self.bad_bytes
            .store(map.bytes_in(BlockState::BadSector), Ordering::Relaxed);
        self.non_tried
            .store(map.bytes_in(BlockState::NonTried), Ordering::Relaxed);
        self.pending.store(
            map.bytes_in(BlockState::NonTrimmed) + map.bytes_in(BlockState::NonScraped),
            Ordering::Relaxed,
        );
    }
}
