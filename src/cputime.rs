//! CPU time per stage of a job (reader, each hash, each output), so that the record and the
//! benchmarks can say where the cycles went, not only how long the whole took.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// CPU seconds the calling thread has used so far.
pub fn thread_seconds() -> f64 {
    clock_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU seconds the whole process has used so far (all threads, live and ended).
pub fn process_seconds() -> f64 {
    clock_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
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
