//! Test support shared by the integration tests (`mod support;` in each test file).
//!
//! The main piece is [`FaultyDevice`]: a real block device whose chosen sectors fail. A FUSE
//! filesystem (served by `fuser` inside the test process, direct I/O so the page cache never
//! hides or smears an error) exposes one file whose chosen sectors answer with a chosen errno
//! (always, or only the first N times), optionally slowly; a read-only loop device with
//! direct I/O (`losetup -r --direct-io=on [--sector-size 4096]`) turns it into
//! `/dev/loopN`. Every read can be logged (offset, length, failed) so a test can assert which
//! areas were read and how often.
//!
//! Dropping the device cleans up in the only safe order: abort the FUSE connection (a plain
//! unmount of a hung FUSE mount blocks forever), detach the loop device (only if its backing
//! file is still ours), unmount, remove the temporary directory. That also runs when a test
//! panics. Everything lives under `${TMPDIR:-/tmp}/exhibit-test-*`, which CI sweeps.
//!
//! Tests that need root, `/dev/fuse` and `losetup` call [`skip_reason`] (or the
//! [`require_faulty_device!`] macro) and pass with a printed SKIP line where they are missing.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};

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

/// How one faulty range behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Every read touching it fails with this errno.
    Always(i32),
    /// The first `n` reads touching it fail with this errno; later ones succeed.
    FirstN(u32, i32),
    /// Reads touching it succeed after this delay.
    Slow(Duration),
}

/// One logged read as the FUSE server saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Whether the server answered with an error.
    pub failed: bool,
}

impl ReadRecord {
    /// True if the read covers any byte of `start..start+len`.
    pub fn touches(&self, start: u64, len: u64) -> bool {
        self.offset < start + len && start < self.offset + self.len
    }
}

struct FaultEntry {
    start: u64,
    end: u64,
    fault: Fault,
    failures: u32,
}

struct State {
    data: Arc<Vec<u8>>,
    faults: Mutex<Vec<FaultEntry>>,
    log: Mutex<Vec<ReadRecord>>,
    logging: Mutex<bool>,
    read_delay: Mutex<Duration>,
    fail_delay: Mutex<Duration>,
}

struct FaultyFs {
    state: Arc<State>,
    uid: u32,
    gid: u32,
}

const TTL: Duration = Duration::from_secs(3600);
const FILE_NAME: &str = "disk";

impl FaultyFs {
    fn attr(&self, ino: u64) -> FileAttr {
        let (kind, size, perm, nlink) = if ino == 1 {
            (FileType::Directory, 0, 0o555, 2)
        } else {
            (
                FileType::RegularFile,
                self.state.data.len() as u64,
                0o444,
                1,
            )
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
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        }
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
        let data = &self.state.data;
        let len = data.len() as u64;
        let start = offset.min(len);
        let end = (offset + u64::from(size)).min(len);
        let mut failed = None;
        let mut delay = *self.state.read_delay.lock().unwrap();
        {
            let mut faults = self.state.faults.lock().unwrap();
            for f in faults.iter_mut() {
                if f.start >= end || start >= f.end {
                    continue;
                }
                match f.fault {
                    Fault::Always(errno) => failed = Some(errno),
                    Fault::FirstN(n, errno) => {
                        if f.failures < n {
                            f.failures += 1;
                            failed = Some(errno);
                        }
                    }
                    Fault::Slow(d) => delay = delay.max(d),
                }
            }
        }
        if *self.state.logging.lock().unwrap() {
            self.state.log.lock().unwrap().push(ReadRecord {
                offset: start,
                len: end - start,
                failed: failed.is_some(),
            });
        }
        if failed.is_some() {
            delay = delay.max(*self.state.fail_delay.lock().unwrap());
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        match failed {
            Some(errno) => reply.error(Errno::from_i32(errno)),
            None => reply.data(&data[start as usize..end as usize]),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
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
}

/// The test data: every 512 bytes start with their sector number (so a shifted sector is
/// caught), the rest is a cheap pseudo-random stream (so a zero-filled sector is caught).
pub fn pattern(size: u64, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    let mut x = seed | 1;
    for (i, chunk) in v.chunks_mut(512).enumerate() {
        for word in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            word.copy_from_slice(&b[..word.len()]);
        }
        let tag = (i as u64).to_le_bytes();
        let n = chunk.len().min(8);
        chunk[..n].copy_from_slice(&tag[..n]);
    }
    v
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
    /// Seed of the data pattern.
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
    backing: PathBuf,
    mountpoint: PathBuf,
    state: Arc<State>,
    session: Option<fuser::BackgroundSession>,
    connection: Option<u64>,
    tempdir: Option<tempfile::TempDir>,
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
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn create(b: Builder) -> Result<FaultyDevice, String> {
        let tempdir = tempfile::Builder::new()
            .prefix("exhibit-test-")
            .tempdir_in(std::env::temp_dir())
            .map_err(|e| format!("temp dir: {e}"))?;
        let dir = tempdir.path().to_path_buf();
        let mountpoint = dir.join("mnt");
        std::fs::create_dir(&mountpoint).map_err(|e| format!("mkdir: {e}"))?;
        let state = Arc::new(State {
            data: Arc::new(pattern(b.size, b.seed)),
            faults: Mutex::new(
                b.faults
                    .iter()
                    .map(|&(start, len, fault)| FaultEntry {
                        start,
                        end: start + len,
                        fault,
                        failures: 0,
                    })
                    .collect(),
            ),
            log: Mutex::new(Vec::new()),
            logging: Mutex::new(false),
            read_delay: Mutex::new(Duration::ZERO),
            fail_delay: Mutex::new(Duration::ZERO),
        });
        let fs = FaultyFs {
            state: Arc::clone(&state),
            // SAFETY: no preconditions.
            uid: unsafe { libc::getuid() },
            // SAFETY: no preconditions.
            gid: unsafe { libc::getgid() },
        };
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::RO,
            MountOption::FSName("exhibit-faulty".into()),
            MountOption::Subtype("exhibit-faulty".into()),
        ];
        let session = fuser::spawn_mount(fs, &mountpoint, &config)
            .map_err(|e| format!("FUSE mount on {}: {e}", mountpoint.display()))?;
        let mut dev = FaultyDevice {
            device: PathBuf::new(),
            sector_size: b.sector_size,
            size: b.size / u64::from(b.sector_size) * u64::from(b.sector_size),
            dir,
            backing: mountpoint.join(FILE_NAME),
            mountpoint,
            state,
            session: Some(session),
            connection: None,
            tempdir: Some(tempdir),
        };
        // The connection number is the mount's anonymous device minor.
        let st_dev = std::fs::metadata(&dev.mountpoint)
            .map_err(|e| format!("stat mount point: {e}"))?
            .dev();
        dev.connection = Some(u64::from(libc::minor(st_dev as libc::dev_t)));

        let mut cmd = Command::new("losetup");
        cmd.args(["-r", "--direct-io=on"]);
        if b.sector_size != 512 {
            cmd.args(["--sector-size", &b.sector_size.to_string()]);
        }
        cmd.args(["-f", "--show"]).arg(&dev.backing);
        let out = cmd.output().map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        dev.device = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // Reads before this point (losetup probing) are not the test's.
        *dev.state.read_delay.lock().unwrap() = b.read_delay;
        *dev.state.fail_delay.lock().unwrap() = b.fail_delay;
        *dev.state.logging.lock().unwrap() = b.logging;
        dev.reset();
        Ok(dev)
    }

    /// The bytes the device holds.
    pub fn data(&self) -> &[u8] {
        &self.state.data[..self.size as usize]
    }

    /// The image a correct acquisition makes: the data with `bad` sectors (in device
    /// sectors) zeroed.
    pub fn expected_image(&self, bad: &[u64]) -> Vec<u8> {
        let mut v = self.data().to_vec();
        let ss = self.sector_size as usize;
        for &s in bad {
            let a = s as usize * ss;
            let e = (a + ss).min(v.len());
            v[a..e].fill(0);
        }
        v
    }

    /// The reads logged so far.
    pub fn read_log(&self) -> Vec<ReadRecord> {
        self.state.log.lock().unwrap().clone()
    }

    /// Reads logged so far that touch `start..start+len`.
    pub fn reads_touching(&self, start: u64, len: u64) -> usize {
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.touches(start, len))
            .count()
    }

    /// Empties the log and re-arms "first N times" faults.
    pub fn reset(&self) {
        self.state.log.lock().unwrap().clear();
        for f in self.state.faults.lock().unwrap().iter_mut() {
            f.failures = 0;
        }
    }

    /// Changes the delay of every read.
    pub fn set_read_delay(&self, d: Duration) {
        *self.state.read_delay.lock().unwrap() = d;
    }

    /// Turns logging on or off.
    pub fn set_logging(&self, on: bool) {
        *self.state.logging.lock().unwrap() = on;
    }

    fn abort_connection(&self) {
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

    fn detach_loop(&self) {
        let Some(name) = self.device.file_name() else {
            return;
        };
        let sys = Path::new("/sys/block").join(name).join("loop/backing_file");
        let ours = std::fs::read_to_string(&sys)
            .map(|s| Path::new(s.trim()) == self.backing)
            .unwrap_or(false);
        if ours {
            // The job under test may have set the kernel's read-only flag (BLKROSET): it
            // outlives a detach and `losetup -f` reuses devices, so leave it writable.
            let _ = Command::new("blockdev")
                .arg("--setrw")
                .arg(&self.device)
                .output();
            let _ = Command::new("losetup").arg("-d").arg(&self.device).output();
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

impl Drop for FaultyDevice {
    fn drop(&mut self) {
        self.abort_connection();
        self.detach_loop();
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

/// A writable loop device on a plain file (a stand-in for a target disk), detached on drop
/// if its backing file is still ours.
pub struct LoopTarget {
    /// `/dev/loopN`.
    pub device: PathBuf,
    backing: PathBuf,
}

impl LoopTarget {
    /// A loop device over a new file of `size` bytes filled with `fill` in `dir`.
    pub fn new(dir: &Path, size: u64, fill: u8) -> LoopTarget {
        let backing = dir.join("target.img");
        std::fs::write(&backing, vec![fill; size as usize]).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&backing)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // `losetup -f` reuses devices, and a read-only flag set by an earlier job (BLKROSET)
        // outlives a detach: make this writable attachment writable.
        let _ = Command::new("blockdev")
            .arg("--setrw")
            .arg(&device)
            .output();
        LoopTarget { device, backing }
    }
}

impl Drop for LoopTarget {
    fn drop(&mut self) {
        let Some(name) = self.device.file_name() else {
            return;
        };
        let sys = Path::new("/sys/block").join(name).join("loop/backing_file");
        if std::fs::read_to_string(&sys).is_ok_and(|s| Path::new(s.trim()) == self.backing) {
            let _ = Command::new("blockdev")
                .arg("--setrw")
                .arg(&self.device)
                .output();
            let _ = Command::new("losetup").arg("-d").arg(&self.device).output();
        }
    }
}

/// Bad sectors of a map, in units of `ss`.
pub fn bad_sectors(map: &exhibit::map::SectorMap, ss: u64) -> Vec<u64> {
    map.blocks_in(exhibit::map::BlockState::BadSector)
        .flat_map(|b| (b.pos / ss..b.end().div_ceil(ss)).collect::<Vec<_>>())
        .collect()
}

/// Sector numbers as (first, count) runs.
pub fn runs_of(sectors: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in sectors {
        match out.last_mut() {
            Some((first, count)) if *first + *count == s => *count += 1,
            _ => out.push((s, 1)),
        }
    }
    out
}

/// SHA-256 of `data` in hex, by an implementation other than the one under test (`sha256sum`).
#[allow(dead_code)]
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().unwrap();
    let feed = {
        let data = data.to_vec();
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let out = child.wait_with_output().unwrap();
    feed.join().unwrap().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
