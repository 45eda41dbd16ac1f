//! A real block device whose chosen sectors fail: [`FaultyDevice`].
//!
//! The disk is the library's test fake ([`exhibit::fake_disk::FakeDisk`], the one the unit
//! tests read in memory), served by a FUSE filesystem (`fuser`, inside the test process,
//! direct I/O so the page cache never hides or smears an error) as one file, which a
//! read-only loop device with direct I/O (`losetup -r --direct-io=on [--sector-size 4096]`)
//! turns into `/dev/loopN`. Faults fail always or only the first N times, optionally slowly;
//! every read is logged (offset, length, failed) so a test can assert which areas were read
//! and how often.
//!
//! Dropping the device cleans up in the only safe order: abort the FUSE connection (a plain
//! unmount of a hung FUSE mount blocks forever), detach the loop device (only if its backing
//! file is still ours), unmount, remove the temporary directory. That also runs when a test
//! panics. Everything lives under `${TMPDIR:-/tmp}/exhibit-test-*`, which CI sweeps.
//!
//! Tests that need root, `/dev/fuse` and `losetup` call [`skip_reason`] (or the
//! [`require_faulty_device!`] macro) and pass with a printed SKIP line where they are missing.
//! (examples/faulty_device.rs includes this file and `loops.rs` to run it on its own.)

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exhibit::fake_disk::{pattern, FakeDisk};
pub use exhibit::fake_disk::{Fault, ReadRecord, DEFAULT_SEED};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};

use super::loops::LoopDevice;

/// Why faulty-device tests cannot run here, or `None` if they can.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (FUSE mount and loop devices need root)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is missing".into());
    }
    let losetup = Command::new("losetup").arg("--version").output();
    if !losetup.map(|o| o.status.success()).unwrap_or(false) {
        return Some("losetup is missing".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("/dev/loop-control is missing".into());
    }
    None
}

/// Returns from the test (which then passes) with a printed SKIP line when faulty devices
/// cannot be made here.
#[macro_export]
macro_rules! require_faulty_device {
    () => {
        if let Some(why) = $crate::support::skip_reason() {
            eprintln!("SKIP {}: {why}", module_path!());
            println!("SKIP {}: {why}", module_path!());
            return;
        }
    };
}

/// The FUSE server: one file, `disk`, whose reads the fake disk answers.
struct FaultyFs {
    disk: Arc<FakeDisk>,
    uid: u32,
    gid: u32,
}

const TTL: Duration = Duration::from_secs(3600);
/// The one file a [`FuseLoop`] file system serves.
pub const FILE_NAME: &str = "disk";

/// The attributes of a one-file FUSE test device: inode 1 the root directory, inode 2 the
/// file [`FILE_NAME`] of `len` bytes; `writable` gives both write permission.
pub fn one_file_attr(ino: u64, len: u64, writable: bool, uid: u32, gid: u32) -> FileAttr {
    let (kind, size, perm, nlink) = match (ino, writable) {
        (1, false) => (FileType::Directory, 0, 0o555, 2),
        (1, true) => (FileType::Directory, 0, 0o755, 2),
        (_, false) => (FileType::RegularFile, len, 0o444, 1),
        (_, true) => (FileType::RegularFile, len, 0o644, 1),
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm,
        nlink,
        uid,
        gid,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

/// The root directory of a one-file FUSE test device: `.`, `..` and [`FILE_NAME`].
pub fn one_file_readdir(ino: INodeNo, offset: u64, mut reply: ReplyDirectory) {
    if u64::from(ino) != 1 {
        reply.error(Errno::ENOTDIR);
        return;
    }
    let entries = [
        (1, FileType::Directory, "."),
        (1, FileType::Directory, ".."),
        (2, FileType::RegularFile, FILE_NAME),
    ];
    for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
        if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
            break;
        }
    }
    reply.ok();
}

impl FaultyFs {
    fn attr(&self, ino: u64) -> FileAttr {
        one_file_attr(ino, self.disk.data.len() as u64, false, self.uid, self.gid)
    }
}

impl Filesystem for FaultyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if u64::from(parent) == 1 && name == FILE_NAME {
            reply.entry(&TTL, &self.attr(2), fuser::Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match u64::from(ino) {
            1 | 2 => reply.attr(&TTL, &self.attr(u64::from(ino))),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if u64::from(ino) != 2 {
            reply.error(Errno::EISDIR);
            return;
        }
        // Direct I/O: every read reaches us, none is answered from or smeared by the page cache.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if u64::from(ino) != 2 {
            reply.error(Errno::EISDIR);
            return;
        }
        match self.disk.read_slice(offset, size as usize) {
            Ok(bytes) => reply.data(bytes),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        one_file_readdir(ino, offset, reply);
    }
}

/// Builds a [`FaultyDevice`].
pub struct Builder {
    size: u64,
    sector_size: u32,
    faults: Vec<(u64, u64, Fault)>,
    read_delay: Duration,
    fail_delay: Duration,
    logging: bool,
    seed: u64,
}

impl Builder {
    /// Device sector size, 512 (default) or 4096; sector numbers in `bad*` are in this unit.
    pub fn sector_size(mut self, ss: u32) -> Self {
        self.sector_size = ss;
        self
    }
    /// Sector `n` always fails with EIO.
    pub fn bad(self, n: u64) -> Self {
        self.fault(n, 1, Fault::Always(libc::EIO))
    }
    /// Sectors `first..first+count` behave as `fault`.
    pub fn fault(mut self, first: u64, count: u64, fault: Fault) -> Self {
        let ss = u64::from(self.sector_size);
        self.faults.push((first * ss, count * ss, fault));
        self
    }
    /// A byte range (any alignment) behaves as `fault`.
    pub fn fault_bytes(mut self, offset: u64, len: u64, fault: Fault) -> Self {
        self.faults.push((offset, len, fault));
        self
    }
    /// Every read waits this long (to make a run slow enough to kill in the middle).
    pub fn read_delay(mut self, d: Duration) -> Self {
        self.read_delay = d;
        self
    }
    /// A failing read takes this long (a dying disk spends seconds on each).
    pub fn fail_delay(mut self, d: Duration) -> Self {
        self.fail_delay = d;
        self
    }
    /// Log every read the server sees.
    pub fn log_reads(mut self, on: bool) -> Self {
        self.logging = on;
        self
    }
    /// Seed of the data [`pattern`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Mounts, attaches and returns the device. Panics with the reason if that fails
    /// (call [`skip_reason`] first).
    pub fn build(self) -> FaultyDevice {
        FaultyDevice::create(self).unwrap_or_else(|e| panic!("faulty device: {e}"))
    }
}

/// A real block device (`/dev/loopN`) with chosen faulty sectors; see the module docs.
pub struct FaultyDevice {
    /// The loop device, e.g. `/dev/loop3`.
    pub device: PathBuf,
    /// Its logical sector size.
    pub sector_size: u32,
    /// Its size in bytes.
    pub size: u64,
    /// The directory holding the mount point (and free for the test's outputs).
    pub dir: PathBuf,
    disk: Arc<FakeDisk>,
    served: FuseLoop,
}

/// One file (`disk`) served by a FUSE file system inside the test process, behind a loop
/// device with direct I/O: the faulty read device, and any other test device that needs to
/// see every request (a target that corrupts writes). Dropping it tears it down in the only
/// safe order (see the module doc).
pub struct FuseLoop {
    /// The loop device, e.g. `/dev/loop3`.
    pub device: PathBuf,
    /// The directory holding the mount point (and free for the test's outputs).
    pub dir: PathBuf,
    mountpoint: PathBuf,
    loop_device: Option<LoopDevice>,
    session: Option<fuser::BackgroundSession>,
    connection: Option<u64>,
    tempdir: Option<tempfile::TempDir>,
}

impl FuseLoop {
    /// Mounts `fs` (which serves [`FILE_NAME`] as inode 2) in a new temporary directory and
    /// attaches its file as a loop device of `sector_size`-byte sectors.
    pub fn serve<F: Filesystem + Send + 'static>(
        fs: F,
        sector_size: u32,
        read_only: bool,
    ) -> Result<FuseLoop, String> {
        let tempdir = tempfile::Builder::new()
            .prefix("exhibit-test-")
            .tempdir_in(std::env::temp_dir())
            .map_err(|e| format!("temp dir: {e}"))?;
        let dir = tempdir.path().to_path_buf();
        let mountpoint = dir.join("mnt");
        std::fs::create_dir(&mountpoint).map_err(|e| format!("mkdir: {e}"))?;
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            if read_only {
                MountOption::RO
            } else {
                MountOption::RW
            },
            MountOption::FSName("exhibit-faulty".into()),
            MountOption::Subtype("exhibit-faulty".into()),
        ];
        let session = fuser::spawn_mount(fs, &mountpoint, &config)
            .map_err(|e| format!("FUSE mount on {}: {e}", mountpoint.display()))?;
        let mut served = FuseLoop {
            device: PathBuf::new(),
            dir,
            mountpoint,
            loop_device: None,
            session: Some(session),
            connection: None,
            tempdir: Some(tempdir),
        };
        // The connection number is the mount's anonymous device minor.
        let st_dev = std::fs::metadata(&served.mountpoint)
            .map_err(|e| format!("stat mount point: {e}"))?
            .dev();
        served.connection = Some(u64::from(libc::minor(st_dev as libc::dev_t)));
        let lo = LoopDevice::attach(&served.backing_file(), sector_size, read_only, false);
        served.device = lo.path.clone();
        served.loop_device = Some(lo);
        Ok(served)
    }

    /// The FUSE file behind the loop device.
    pub fn backing_file(&self) -> PathBuf {
        self.mountpoint.join(FILE_NAME)
    }

    /// Aborts the FUSE connection (see [`FaultyDevice::abort`]).
    pub fn abort(&self) {
        let Some(conn) = self.connection else { return };
        let base = Path::new("/sys/fs/fuse/connections");
        let abort = base.join(conn.to_string()).join("abort");
        if !abort.exists() {
            // fusectl not mounted yet: mount it (harmless if someone else did meanwhile).
            let _ = Command::new("mount")
                .args(["-t", "fusectl", "fusectl"])
                .arg(base)
                .output();
        }
        if let Err(e) = std::fs::write(&abort, "1") {
            eprintln!(
                "faulty device: could not abort FUSE connection {conn}: {e}; unmounting anyway"
            );
        }
    }

    fn is_mounted(&self) -> bool {
        let target = self.mountpoint.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| {
                m.lines()
                    .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
            })
            .unwrap_or(false)
    }
}

impl Drop for FuseLoop {
    fn drop(&mut self) {
        self.abort();
        drop(self.loop_device.take());
        drop(self.session.take());
        if self.is_mounted() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .output();
        }
        if let Some(t) = self.tempdir.take() {
            if self.is_mounted() {
                eprintln!(
                    "faulty device: {} still mounted; leaving it for the CI sweep",
                    self.mountpoint.display()
                );
                let _ = t.keep();
            }
        }
    }
}

impl FaultyDevice {
    /// Starts building a device of `size` bytes (a multiple of the sector size is usual;
    /// loop rounds a partial final sector away).
    pub fn builder(size: u64) -> Builder {
        Builder {
            size,
            sector_size: 512,
            faults: Vec::new(),
            read_delay: Duration::ZERO,
            fail_delay: Duration::ZERO,
            logging: true,
            seed: DEFAULT_SEED,
        }
    }

    fn create(b: Builder) -> Result<FaultyDevice, String> {
        let mut disk =
            FakeDisk::with_data(pattern(b.size as usize, b.seed), u64::from(b.sector_size))
                .any_alignment();
        for &(offset, len, fault) in &b.faults {
            disk = disk.fault_bytes(offset, len, fault);
        }
        // Reads before the device is ready (losetup probing) are not the test's.
        disk.set_logging(false);
        let disk = Arc::new(disk);
        let fs = FaultyFs {
            disk: Arc::clone(&disk),
            // SAFETY: no preconditions.
            uid: unsafe { libc::getuid() },
            // SAFETY: no preconditions.
            gid: unsafe { libc::getgid() },
        };
        let served = FuseLoop::serve(fs, b.sector_size, true)?;
        let dev = FaultyDevice {
            device: served.device.clone(),
            sector_size: b.sector_size,
            size: b.size / u64::from(b.sector_size) * u64::from(b.sector_size),
            dir: served.dir.clone(),
            disk,
            served,
        };
        dev.disk.set_read_delay(b.read_delay);
        dev.disk.set_fail_delay(b.fail_delay);
        dev.disk.set_logging(b.logging);
        dev.reset();
        Ok(dev)
    }

    /// The bytes the device holds.
    pub fn data(&self) -> &[u8] {
        &self.disk.data[..self.size as usize]
    }

    /// The image a correct acquisition makes: the data with `bad` sectors (in device
    /// sectors) zeroed.
    pub fn expected_image(&self, bad: &[u64]) -> Vec<u8> {
        let mut v = self.disk.expected(bad);
        v.truncate(self.size as usize);
        v
    }

    /// The reads logged so far.
    pub fn read_log(&self) -> Vec<ReadRecord> {
        self.disk.read_log()
    }

    /// Waits until the device has served at least `n` reads (the run is in its read loop).
    pub fn wait_for_reads(&self, n: usize) {
        let started = std::time::Instant::now();
        while self.read_log().len() < n {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the run never started reading"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads logged so far that touch `start..start+len`.
    pub fn reads_touching(&self, start: u64, len: u64) -> usize {
        self.disk.reads_touching(start, len)
    }

    /// Empties the log and re-arms "first N times" faults.
    pub fn reset(&self) {
        self.disk.reset();
    }

    /// Changes the delay of every read.
    pub fn set_read_delay(&self, d: Duration) {
        self.disk.set_read_delay(d);
    }

    /// Turns logging on or off.
    pub fn set_logging(&self, on: bool) {
        self.disk.set_logging(on);
    }

    /// The FUSE file behind the loop device (a file source that lives on FUSE).
    pub fn backing_file(&self) -> PathBuf {
        self.served.backing_file()
    }

    /// Aborts the FUSE connection, as a hot-unplug or a crashed FUSE server would: from now
    /// on every read of the loop device fails with EIO, and its backing file cannot be
    /// reached (ENOTCONN). The device stays attached until it is dropped.
    pub fn abort(&self) {
        self.served.abort();
    }
}

/// Milliseconds since the epoch, for log lines.
pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The error an I/O error's errno is, for messages.
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}
