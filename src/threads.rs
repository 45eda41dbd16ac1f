//! Thread priorities: who gets the CPU when two cores are not enough.

/// Lowers the calling thread's priority by `nice` steps. It still gets every idle cycle; it
/// only yields when another thread of normal priority wants the core. Failure is harmless.
pub(crate) fn lower_priority(nice: i32) {
    // SAFETY: gettid and setpriority on the calling thread have no memory effects.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
}

/// Makes the calling thread yield to the threads that read: for work that can wait, such as
/// a rescue hashing behind its reads. (SCHED_IDLE was tried and measured: it slowed a rescue of
/// a healthy disk by 10 %, where the hashes are what the reads wait for, and gained nothing
/// on a failing one.)
pub(crate) fn run_in_background() {
    lower_priority(10);
}
