//! Thread priorities: who gets the CPU when two cores are not enough.

use crate::sys;

/// Lowers the calling thread's priority by `nice` steps. It still gets every idle cycle; it
/// only yields when another thread of normal priority wants the core. Failure is harmless.
pub(crate) fn lower_priority(nice: i32) {
    let _ = sys::set_thread_nice(sys::gettid(), nice);
}

/// Makes the calling thread yield to the threads that read: for work that can wait, such as
/// a rescue hashing behind its reads. (SCHED_IDLE was tried and measured: it slowed a rescue of
/// a healthy disk by 10 %, where the hashes are what the reads wait for, and gained nothing
/// on a failing one.)
pub(crate) fn run_in_background() {
    lower_priority(10);
}

/// The kernel's id of the calling thread.
pub(crate) fn current_tid() -> libc::pid_t {
    sys::gettid()
}

/// The CPUs this process may run on (none if the kernel will not say).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    sys::allowed_cpus().unwrap_or_default()
}

/// Lets thread `tid` run only on `cpus`. Failure is harmless.
pub(crate) fn confine(tid: libc::pid_t, cpus: &[usize]) {
    let _ = sys::set_thread_cpus(tid, cpus);
}
