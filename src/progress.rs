//! Progress as data: counters the job bumps with one relaxed atomic add per block, read by
//! whoever draws them (a bar on a terminal, a log line otherwise). Drawing never touches the
//! data path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters of a running job.
#[derive(Debug, Default)]
pub struct Progress {
    total: AtomicU64,
    done: AtomicU64,
    unreadable_bytes: AtomicU64,
    unreadable_runs: AtomicU64,
    phase: Mutex<String>,
}

/// A consistent-enough copy of the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Bytes to do.
    pub total: u64,
    /// Bytes done.
    pub done: u64,
    /// Bytes that could not be read.
    pub unreadable_bytes: u64,
    /// Unreadable runs.
    pub unreadable_runs: u64,
    /// What the job is doing (`reading`, `finishing`, a rescue phase).
    pub phase: String,
}

impl Progress {
    /// Sets the total.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    /// Sets the bytes done.
    pub fn set_done(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }
    /// Adds to the bytes done.
    pub fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds an unreadable run.
    pub fn add_unreadable(&self, bytes: u64) {
        self.unreadable_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.unreadable_runs.fetch_add(1, Ordering::Relaxed);
    }
    /// Sets the unreadable totals (rescue recomputes them from its map).
    pub fn set_unreadable(&self, bytes: u64, runs: u64) {
        self.unreadable_bytes.store(bytes, Ordering::Relaxed);
        self.unreadable_runs.store(runs, Ordering::Relaxed);
    }
    /// Names the current phase.
    pub fn set_phase(&self, phase: &str) {
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        p.clear();
        p.push_str(phase);
    }
    /// Reads the counters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            total: self.total.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            unreadable_bytes: self.unreadable_bytes.load(Ordering::Relaxed),
            unreadable_runs: self.unreadable_runs.load(Ordering::Relaxed),
            phase: self.phase.lock().map(|p| p.clone()).unwrap_or_default(),
        }
    }
}

/// What a drawer reads: every job's counters, whatever their shape, as one [`Snapshot`], so
/// that one bar and one log line serve acquire, verify and rescue alike.
pub trait Observe: Send + Sync {
    /// The counters now.
    fn snapshot(&self) -> Snapshot;
}

impl Observe for Progress {
    fn snapshot(&self) -> Snapshot {
        Progress::snapshot(self)
    }
}

/// A rescue's progress: done is what no longer needs reading (or, while hashing, what is
/// hashed); the phase line says where it is and how much is in the image.
impl Observe for crate::rescue::RescueProgress {
    fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let size = get(&self.size);
        let phase = self.phase();
        let done = if phase == crate::rescue::Phase::Hashing {
            get(&self.hashed)
        } else {
            size.saturating_sub(get(&self.non_tried) + get(&self.pending))
        };
        Snapshot {
            total: size,
            done,
            unreadable_bytes: get(&self.bad_bytes),
            unreadable_runs: get(&self.bad_areas),
            phase: format!(
                "{} (pass {}) at byte {}, rescued {}",
                phase.name(),
                self.pass.load(Ordering::Relaxed),
                get(&self.position),
                get(&self.rescued)
            ),
        }
    }
}
