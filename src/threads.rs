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

/// Makes the calling thread run only on cycles nothing else wants (SCHED_IDLE; nice 19 where
/// that is refused). For work that can wait, such as a rescue hashing behind its reads: a
/// failing disk's reads, and the kernel threads serving them, must never queue behind it.
pub(crate) fn run_in_background() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid parameter.
    let ok = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
    if !ok {
        lower_priority(19);
    }
}
