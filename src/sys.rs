//! The system calls and ioctls exhibit makes, as safe functions: every `unsafe` block outside
//! the aligned buffers (`buffer`) and the io_uring engine (`reader::uring`) is here, each with
//! the reason it is sound. The rest of the crate is `#![deny(unsafe_code)]`.
//!
//! Why these are sound, in general: every call gets either a descriptor borrowed from an open
//! file (`BorrowedFd`, so it cannot be closed during the call) or none, and a pointer to a
//! local of exactly the type the kernel writes or reads for that request. Failures come back
//! as `io::Error` from errno, never as a value the caller could mistake for an answer.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

// ioctl numbers from <linux/fs.h>.
const BLKROSET: libc::c_ulong = 0x125d;
const BLKROGET: libc::c_ulong = 0x125e;
const BLKSSZGET: libc::c_ulong = 0x1268;
const BLKPBSZGET: libc::c_ulong = 0x127b;
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

/// `-1` from a call means errno says why.
fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Size in bytes of a block device (BLKGETSIZE64). A regular file fails with ENOTTY.
pub fn block_device_size(fd: impl AsFd) -> io::Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: the descriptor is open for the call (borrowed); BLKGETSIZE64 writes one u64,
    // and `v` is one u64 that lives across the call.
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BLKGETSIZE64 as _,
            &mut v as *mut u64,
        )
    })?;
    Ok(v)
}

/// Logical sector size of a block device (BLKSSZGET).
pub fn logical_sector_size(fd: impl AsFd) -> io::Result<u32> {
    ioctl_get_int(fd, BLKSSZGET).map(|v| v as u32)
}

/// Physical sector size of a block device (BLKPBSZGET).
pub fn physical_sector_size(fd: impl AsFd) -> io::Result<u32> {
    ioctl_get_int(fd, BLKPBSZGET).map(|v| v as u32)
}

/// Whether the kernel's read-only flag is set on a block device (BLKROGET).
pub fn block_device_read_only(fd: impl AsFd) -> io::Result<bool> {
    ioctl_get_int(fd, BLKROGET).map(|v| v != 0)
}

/// Sets or clears the kernel's read-only flag on a block device (BLKROSET; needs
/// CAP_SYS_ADMIN).
pub fn set_block_device_read_only(fd: impl AsFd, read_only: bool) -> io::Result<()> {
    let v: libc::c_int = read_only.into();
    // SAFETY: the descriptor is open for the call; BLKROSET reads one int, and `v` is one int
    // that lives across the call.
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            BLKROSET as _,
            &v as *const libc::c_int,
        )
    })?;
    Ok(())
}

/// Allocates `len` bytes of a file's blocks from `offset` on (fallocate, mode 0: the file
/// grows to cover them, as zeros), so that later writes there cannot fail for want of space.
/// Fails with EOPNOTSUPP where the filesystem cannot do it.
pub fn allocate(fd: impl AsFd, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    loop {
        // SAFETY: the descriptor is open for the call (borrowed); fallocate takes no memory.
        match check(unsafe { libc::fallocate(fd.as_fd().as_raw_fd(), 0, offset, len) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|_| ()),
        }
    }
}

/// Takes an exclusive `flock` on an open file without waiting: `Ok(false)` when another open
/// file description holds it. Released when the last descriptor of this one closes.
pub fn try_lock_exclusive(fd: impl AsFd) -> io::Result<bool> {
    loop {
        // SAFETY: the descriptor is open for the call (borrowed); flock takes no memory.
        match check(unsafe { libc::flock(fd.as_fd().as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
            Ok(_) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Waits up to `timeout_ms` for `fd` to have data (or an end, or an error) to read; false
/// when the time ran out. A reader of a pipe polls with it so that a stop request is seen
/// while no data comes.
pub fn wait_readable(fd: impl AsFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd that lives across the call, and the count says one.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    match n {
        -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => Ok(false),
        -1 => Err(io::Error::last_os_error()),
        n => Ok(n > 0),
    }
}

/// Asks the filesystem holding the open file whether it still answers (fstatfs). Unlike
/// `fstat`, which FUSE answers from its attribute cache, a FUSE statfs goes to the server, so
/// an aborted connection fails it with ENOTCONN.
pub fn filesystem_answers(fd: impl AsFd) -> io::Result<()> {
    // SAFETY: all-zero is a valid `statfs` (plain integers).
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open for the call; fstatfs writes one `statfs`, and `st` is
    // one that lives across the call.
    check(unsafe { libc::fstatfs(fd.as_fd().as_raw_fd(), &mut st) })?;
    Ok(())
}

/// [`filesystem_answers`] for the filesystem holding `path` (statfs), without opening it.
pub fn filesystem_at_answers(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all-zero is a valid `statfs` (plain integers).
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated string that lives across the call; statfs writes one
    // `statfs` into `st`, which lives across the call.
    check(unsafe { libc::statfs(c.as_ptr(), &mut st) })?;
    Ok(())
}

/// Sets the modification time of `path` itself, a symbolic link included (utimensat with
/// AT_SYMLINK_NOFOLLOW: `File::set_modified` would need the link opened, which follows it).
/// The access time is left alone (UTIME_OMIT), as `set_modified` leaves a file's.
pub fn set_modified_nofollow(path: &std::path::Path, secs: i64, nanos: u32) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs as libc::time_t,
            tv_nsec: nanos.min(999_999_999) as _,
        },
    ];
    // SAFETY: `c` is a NUL-terminated string and `times` two `timespec`s, as utimensat reads
    // them; both live across the call, which writes nothing.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// The block-device ioctls that write one int.
fn ioctl_get_int(fd: impl AsFd, request: libc::c_ulong) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    // SAFETY: the descriptor is open for the call; each request passed here (BLKSSZGET,
    // BLKPBSZGET, BLKROGET) writes one int, and `v` is one int that lives across the call.
    check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            request as _,
            &mut v as *mut libc::c_int,
        )
    })?;
    Ok(v)
}

/// What uname(2) says about this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uname {
    /// Kernel name (`Linux`).
    pub sysname: String,
    /// Host name.
    pub nodename: String,
    /// Kernel release.
    pub release: String,
    /// Hardware (`x86_64`).
    pub machine: String,
}

/// uname(2).
pub fn uname() -> io::Result<Uname> {
    // SAFETY: utsname is arrays of c_char, for which all zeros is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes one utsname into `u`, which lives across the call.
    check(unsafe { libc::uname(&mut u) })?;
    // The kernel terminates each field with NUL; a field that filled its array is taken whole.
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Uname {
        sysname: field(&u.sysname),
        nodename: field(&u.nodename),
        release: field(&u.release),
        machine: field(&u.machine),
    })
}

/// A CPU-time clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuClock {
    /// The calling thread's CPU time.
    Thread,
    /// The whole process's CPU time (all threads, live and ended).
    Process,
}

/// Seconds on a CPU-time clock (clock_gettime).
pub fn cpu_seconds(clock: CpuClock) -> io::Result<f64> {
    let id = match clock {
        CpuClock::Thread => libc::CLOCK_THREAD_CPUTIME_ID,
        CpuClock::Process => libc::CLOCK_PROCESS_CPUTIME_ID,
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which lives across the call.
    check(unsafe { libc::clock_gettime(id, &mut ts) })?;
    Ok(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// The kernel's id of the calling thread (gettid).
pub fn gettid() -> libc::pid_t {
    // SAFETY: gettid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// The real user and group id of the process (getuid, getgid): who owns what it serves.
pub fn ids() -> (u32, u32) {
    // SAFETY: getuid and getgid take no arguments, touch no memory and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Sets the nice value of thread `tid` (setpriority; raising priority needs CAP_SYS_NICE).
pub fn set_thread_nice(tid: libc::pid_t, nice: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) })?;
    Ok(())
}

/// The CPUs the calling thread may run on (sched_getaffinity).
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let mut set = empty_cpu_set();
    // SAFETY: sched_getaffinity writes at most the given size into `set`, which is a whole
    // cpu_set_t that lives across the call.
    check(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads bit `c` of `set`, and c < CPU_SETSIZE is inside it.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Lets thread `tid` run only on `cpus` (sched_setaffinity). CPUs at or past `CPU_SETSIZE`
/// are ignored; a set with none this machine has fails with EINVAL.
pub fn set_thread_cpus(tid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    let mut set = empty_cpu_set();
    for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: CPU_SET sets bit `c` of `set`, and c < CPU_SETSIZE is inside it.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: sched_setaffinity reads the given size from `set`, a whole cpu_set_t.
    check(unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

/// Threads of this process now (the entries of /proc/self/task).
pub fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Which side of a [`fork`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The caller, with the child's process id.
    Parent(libc::pid_t),
    /// The new process.
    Child,
}

/// Forks the process (fork(2)). Refused unless the caller is the only thread: a child of a
/// multi-threaded process inherits locks held by threads that no longer exist in it.
pub fn fork() -> io::Result<Forked> {
    if thread_count()? != 1 {
        return Err(io::Error::other(
            "cannot fork: the process already runs other threads",
        ));
    }
    // SAFETY: with one thread no lock can be held by a thread missing in the child, so the
    // child may run any code, allocation included; fork touches no memory of ours.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// Waits for child `pid` to end (waitpid); its status.
pub fn wait_child(pid: libc::pid_t) -> io::Result<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waitpid writes one c_int into `status`, which lives across the call.
        match check(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(std::process::ExitStatus::from_raw(status)),
        }
    }
}

/// Starts a new session with no controlling terminal (setsid): a terminal's Ctrl-C and
/// hang-up no longer reach the process.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and touches no memory.
    check(unsafe { libc::setsid() })?;
    Ok(())
}

/// Makes descriptor `target` (0, 1 or 2) a copy of `from` (dup2): standard input, output or
/// error now reach `from`'s file.
pub fn redirect_stdio(target: libc::c_int, from: impl AsFd) -> io::Result<()> {
    if !(0..=2).contains(&target) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `from` is open for the call (borrowed); replacing 0, 1 or 2 closes no
    // descriptor that Rust code owns (std's stdio handles do not own them).
    check(unsafe { libc::dup2(from.as_fd().as_raw_fd(), target) })?;
    Ok(())
}

/// A pipe (pipe2 with O_CLOEXEC): (read end, write end), as files.
pub fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, an array of two c_int.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors are new and owned by nobody else; each File owns one.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

/// `struct sg_io_hdr` of <scsi/sg.h>.
#[repr(C)]
struct SgIoHdr {
    interface_id: libc::c_int,
    dxfer_direction: libc::c_int,
    cmd_len: libc::c_uchar,
    mx_sb_len: libc::c_uchar,
    iovec_count: libc::c_ushort,
    dxfer_len: libc::c_uint,
    dxferp: *mut libc::c_void,
    cmdp: *const libc::c_uchar,
    sbp: *mut libc::c_uchar,
    timeout: libc::c_uint,
    flags: libc::c_uint,
    pack_id: libc::c_int,
    usr_ptr: *mut libc::c_void,
    status: libc::c_uchar,
    masked_status: libc::c_uchar,
    msg_status: libc::c_uchar,
    sb_len_wr: libc::c_uchar,
    host_status: libc::c_ushort,
    driver_status: libc::c_ushort,
    resid: libc::c_int,
    duration: libc::c_uint,
    info: libc::c_uint,
}

const SG_IO: libc::c_ulong = 0x2285;
const SG_DXFER_NONE: libc::c_int = -1;
const SG_DXFER_FROM_DEV: libc::c_int = -3;

/// Sends one read-only ATA command to a drive through SG_IO as ATA PASS-THROUGH(16). Only a
/// [`crate::device::ata::Cdb`] can be sent, and it comes only from one of the read-only
/// [`crate::device::ata::AtaCommand`]s; data only ever flows from the drive (`data` receives
/// it; empty for a command without data). The SCSI status, sense and residue come back for
/// the caller to judge; errno (ENOTTY: a device without SCSI pass-through; EPERM: no
/// CAP_SYS_RAWIO) is the error.
pub fn sg_io_ata(
    fd: impl AsFd,
    cdb: &crate::device::ata::Cdb,
    data: &mut [u8],
    timeout_ms: u32,
) -> io::Result<crate::device::ata::SgOutcome> {
    let Ok(dxfer_len) = libc::c_uint::try_from(data.len()) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let cmd = *cdb.bytes();
    let mut sense = [0u8; 64];
    let mut h = SgIoHdr {
        interface_id: b'S' as libc::c_int,
        dxfer_direction: if data.is_empty() {
            SG_DXFER_NONE
        } else {
            SG_DXFER_FROM_DEV
        },
        cmd_len: cmd.len() as libc::c_uchar,
        mx_sb_len: sense.len() as libc::c_uchar,
        iovec_count: 0,
        dxfer_len,
        dxferp: data.as_mut_ptr().cast(),
        cmdp: cmd.as_ptr(),
        sbp: sense.as_mut_ptr(),
        timeout: timeout_ms,
        flags: 0,
        pack_id: 0,
        usr_ptr: std::ptr::null_mut(),
        status: 0,
        masked_status: 0,
        msg_status: 0,
        sb_len_wr: 0,
        host_status: 0,
        driver_status: 0,
        resid: 0,
        duration: 0,
        info: 0,
    };
    loop {
        // SAFETY: the descriptor is open for the call (borrowed); SG_IO reads one sg_io_hdr
        // (`h`, laid out as <scsi/sg.h> has it) and through it the 16 command bytes (`cmd`),
        // writes at most `dxfer_len` bytes into `data` (its exact length; with
        // SG_DXFER_NONE none) and at most `mx_sb_len` into `sense`; all live across the call.
        match check(unsafe {
            libc::ioctl(fd.as_fd().as_raw_fd(), SG_IO as _, &mut h as *mut SgIoHdr)
        }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    let written = usize::from(h.sb_len_wr).min(sense.len());
    Ok(crate::device::ata::SgOutcome {
        status: h.status,
        host_status: h.host_status,
        driver_status: h.driver_status,
        resid: h.resid,
        sense: sense[..written].to_vec(),
    })
}

/// `struct nvme_passthru_cmd` of <linux/nvme_ioctl.h> (72 bytes).
#[repr(C)]
struct NvmePassthruCmd {
    opcode: u8,
    flags: u8,
    rsvd1: u16,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    metadata: u64,
    addr: u64,
    metadata_len: u32,
    data_len: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
    timeout_ms: u32,
    result: u32,
}

// _IO('N', 0x40) and _IOWR('N', 0x41, struct nvme_passthru_cmd).
const NVME_IOCTL_ID: libc::c_ulong = 0x4e40;
const NVME_IOCTL_ADMIN_CMD: libc::c_ulong = 0xc048_4e41;

/// The namespace id of an NVMe namespace's device node (NVME_IOCTL_ID).
pub fn nvme_namespace_id(fd: impl AsFd) -> io::Result<u32> {
    // SAFETY: the descriptor is open for the call; NVME_IOCTL_ID takes no memory and returns
    // the id.
    let id = check(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), NVME_IOCTL_ID as _) })?;
    Ok(id as u32)
}

/// Sends one NVMe Identify (admin opcode 06h, the only one that can be named here) into
/// `data`; `Ok(0)` when the drive completed it, `Ok(status)` with the NVMe status when it
/// refused.
pub fn nvme_identify(
    fd: impl AsFd,
    what: crate::device::nvme::NvmeIdentify,
    data: &mut [u8; crate::device::nvme::DATA_LEN],
    timeout_ms: u32,
) -> io::Result<u32> {
    let (nsid, cdw10) = what.fields();
    let mut cmd = NvmePassthruCmd {
        opcode: crate::device::nvme::NvmeIdentify::OPCODE,
        flags: 0,
        rsvd1: 0,
        nsid,
        cdw2: 0,
        cdw3: 0,
        metadata: 0,
        addr: data.as_mut_ptr() as u64,
        metadata_len: 0,
        data_len: data.len() as u32,
        cdw10,
        cdw11: 0,
        cdw12: 0,
        cdw13: 0,
        cdw14: 0,
        cdw15: 0,
        timeout_ms,
        result: 0,
    };
    // SAFETY: the descriptor is open for the call; the ioctl reads one nvme_passthru_cmd
    // (`cmd`, laid out as the kernel's) and the drive writes at most `data_len` bytes (the
    // whole of `data`) at `addr`; both live across the call. Identify transfers from the
    // drive only.
    let r = check(unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            NVME_IOCTL_ADMIN_CMD as _,
            &mut cmd as *mut NvmePassthruCmd,
        )
    })?;
    Ok(r as u32)
}

fn empty_cpu_set() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is an array of integers; all zeros is the empty set.
    unsafe { std::mem::zeroed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regular_file() -> std::fs::File {
        tempfile::tempfile().unwrap()
    }

    #[test]
    fn block_ioctls_on_a_regular_file_fail_with_enotty() {
        let f = regular_file();
        let enotty = |r: io::Result<String>| {
            let e = r.expect_err("a regular file is not a block device");
            assert_eq!(e.raw_os_error(), Some(libc::ENOTTY), "{e}");
        };
        enotty(block_device_size(&f).map(|v| v.to_string()));
        enotty(logical_sector_size(&f).map(|v| v.to_string()));
        enotty(physical_sector_size(&f).map(|v| v.to_string()));
        enotty(block_device_read_only(&f).map(|v| v.to_string()));
        enotty(set_block_device_read_only(&f, true).map(|_| String::new()));
    }

    /// A loop device over a 1 MiB temporary file with 4096-byte sectors, detached on drop.
    struct Loop {
        path: String,
        _backing: tempfile::NamedTempFile,
    }

    impl Loop {
        fn new() -> Option<Loop> {
            use std::process::Command;
            // Only root may attach loop devices.
            if std::fs::read_to_string("/proc/self/status")
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .nth(1)?
                != "0"
            {
                return None;
            }
            let backing = tempfile::NamedTempFile::new().ok()?;
            backing.as_file().set_len(1 << 20).ok()?;
            let out = Command::new("losetup")
                .args(["--find", "--show", "--sector-size", "4096"])
                .arg(backing.path())
                .output()
                .ok()?;
            let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !path.is_empty()).then_some(Loop {
                path,
                _backing: backing,
            })
        }
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup")
                .args(["-d", &self.path])
                .status();
        }
    }

    #[test]
    fn block_ioctls_on_a_loop_device() {
        let Some(dev) = Loop::new() else {
            eprintln!("skipped: needs root and losetup");
            return;
        };
        let f = std::fs::File::open(&dev.path).unwrap();
        assert_eq!(block_device_size(&f).unwrap(), 1 << 20);
        assert_eq!(logical_sector_size(&f).unwrap(), 4096);
        assert!(physical_sector_size(&f).unwrap() >= 4096);
        assert!(!block_device_read_only(&f).unwrap());
        set_block_device_read_only(&f, true).unwrap();
        assert!(block_device_read_only(&f).unwrap());
        set_block_device_read_only(&f, false).unwrap();
        assert!(!block_device_read_only(&f).unwrap());
    }

    #[test]
    fn drive_commands_on_files_and_loop_devices_fail_with_errno() {
        // The kernel's own layout sizes: a wrong one would make it read past our structs.
        assert_eq!(std::mem::size_of::<SgIoHdr>(), 88);
        assert_eq!(std::mem::size_of::<NvmePassthruCmd>(), 72);
        let f = regular_file();
        let mut data = [0u8; 512];
        let cdb = crate::device::ata::AtaCommand::IdentifyDevice.cdb();
        let e = sg_io_ata(&f, &cdb, &mut data, 1000).unwrap_err();
        assert!(e.raw_os_error().is_some(), "{e}");
        assert!(nvme_namespace_id(&f).is_err());
        let Some(dev) = Loop::new() else {
            eprintln!("skipped: needs root and losetup");
            return;
        };
        let f = std::fs::File::open(&dev.path).unwrap();
        let e = sg_io_ata(&f, &cdb, &mut data, 1000).unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)),
            "{e}"
        );
    }

    #[test]
    fn a_pipe_carries_bytes_and_ends_when_the_writer_closes() {
        use std::io::{Read, Write};
        let (mut r, mut w) = pipe().unwrap();
        w.write_all(b"ready").unwrap();
        drop(w);
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "ready");
    }

    #[test]
    fn fork_is_refused_with_other_threads_running() {
        // The test harness runs tests on threads: this process has more than one.
        let _other = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(1)));
        assert!(thread_count().unwrap() > 1);
        assert!(fork().unwrap_err().to_string().contains("other threads"));
        assert_eq!(
            redirect_stdio(7, std::io::stdin())
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EBADF)
        );
    }

    #[test]
    fn uname_names_this_kernel() {
        let u = uname().unwrap();
        assert_eq!(u.sysname, "Linux");
        assert!(!u.release.is_empty() && !u.machine.is_empty());
        assert!(!u.nodename.contains('\0'));
    }

    #[test]
    fn cpu_clocks_advance_with_work() {
        let t0 = cpu_seconds(CpuClock::Thread).unwrap();
        let p0 = cpu_seconds(CpuClock::Process).unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let t1 = cpu_seconds(CpuClock::Thread).unwrap();
        assert!(t1 > t0, "{t0} → {t1}");
        assert!(cpu_seconds(CpuClock::Process).unwrap() >= p0 + (t1 - t0) * 0.5);
    }

    #[test]
    fn thread_ids_differ_between_threads() {
        let here = gettid();
        let there = std::thread::spawn(gettid).join().unwrap();
        assert!(here > 0 && there > 0);
        assert_ne!(here, there);
        // The main thread of a process has the process id; a spawned thread does not.
        assert_ne!(there as u32, std::process::id());
    }

    #[test]
    fn nice_and_affinity_apply_to_one_thread() {
        std::thread::spawn(|| {
            let tid = gettid();
            // Lowering one's own priority is always allowed.
            set_thread_nice(tid, 3).unwrap();
            // Read back through procfs: the 19th field of stat is the nice value.
            let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            let nice: i32 = after_comm.split(' ').nth(16).unwrap().parse().unwrap();
            assert_eq!(nice, 3);

            let cpus = allowed_cpus().unwrap();
            assert!(!cpus.is_empty());
            set_thread_cpus(tid, &cpus[..1]).unwrap();
            assert_eq!(allowed_cpus().unwrap(), cpus[..1]);
            set_thread_cpus(tid, &cpus).unwrap();
            assert_eq!(allowed_cpus().unwrap(), cpus);
            // A set with no CPU at all is refused, not taken as "any CPU".
            let e = set_thread_cpus(tid, &[]).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
            let e = set_thread_nice(libc::pid_t::MAX, 0).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "{e}");
        })
        .join()
        .unwrap();
    }
}
