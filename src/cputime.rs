//! CPU time per stage of a job (reader, each hash, each output), so that the record and the
//! benchmarks can say where the cycles went, not only how long the whole took.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::sys::{self, CpuClock};

/// CPU seconds the calling thread has used so far (0 if the clock cannot be read).
pub fn thread_seconds() -> f64 {
    sys::cpu_seconds(CpuClock::Thread).unwrap_or(0.0)
}

/// CPU seconds the whole process has used so far (all threads, live and ended).
pub fn process_seconds() -> f64 {
    sys::cpu_seconds(CpuClock::Process).unwrap_or(0.0)
}

/// CPU seconds by stage name, filled in by each stage's thread as it ends.
#[derive(Debug, Default)]
pub struct CpuLedger {
    stages: Mutex<BTreeMap<String, f64>>,
}

impl CpuLedger {
    /// Adds `seconds` to `stage`.
    pub fn add(&self, stage: &str, seconds: f64) {
        let mut s = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        *s.entry(stage.to_string()).or_default() += seconds;
    }

    /// Adds the calling thread's whole CPU time to `stage` (call as the thread ends).
    pub fn add_this_thread(&self, stage: &str) {
        self.add(stage, thread_seconds());
    }

    /// The stages, rounded to milliseconds, plus `other` (what no stage claimed: compression
    /// workers, progress drawing, set-up) and `total`, given the process CPU spent in the job.
    pub fn report(&self, job_total: f64) -> BTreeMap<String, f64> {
        let mut s = self
            .stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let claimed: f64 = s.values().sum();
        s.insert("other".into(), (job_total - claimed).max(0.0));
        s.insert("total".into(), job_total);
        s.into_iter()
            .map(|(k, v)| (k, (v * 1000.0).round() / 1000.0))
            .collect()
    }
}
