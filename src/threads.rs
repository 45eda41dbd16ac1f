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

/// The kernel's id of the calling thread.
pub(crate) fn current_tid() -> libc::pid_t {
    // SAFETY: gettid has no memory effects.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// The CPUs this process may run on.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Lets thread `tid` run only on `cpus` (all of them when empty). Failure is harmless.
pub(crate) fn confine(tid: libc::pid_t, cpus: &[usize]) {
    // SAFETY: as above; sched_setaffinity reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
