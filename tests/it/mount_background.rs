//! `exhibit mount --background`: it returns once the files are served (readable at once, no
//! waiting), leaves a daemon in a session of its own that `umount` or SIGTERM ends with a clean
//! unmount, logs failed reads to `--log`, and refuses as the foreground does (exit 2, one
//! line, nothing mounted, no daemon left).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::mount::{chunk_place, e01_of_sample, is_mounted};
use crate::support::*;

/// A background mount; on drop (also when a test fails) the daemon is ended and the mount
/// point unmounted if either is still there.
struct Daemon {
    pid: i32,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if alive(self.pid) {
            signal(self.pid, libc::SIGTERM);
            if !gone_within(self.pid, Duration::from_secs(5)) {
                signal(self.pid, libc::SIGKILL);
            }
        }
        if is_mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory preconditions; the pid is the daemon the test started.
    unsafe { libc::kill(pid, sig) };
}

/// The process exists and is not a zombie waiting for a reaper.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s[s.rfind(')')? + 2..].starts_with(|c| c != 'Z')))
        .unwrap_or(false)
}

fn gone_within(pid: i32, bound: Duration) -> bool {
    let until = Instant::now() + bound;
    while alive(pid) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Field `n` (1-based, as proc(5) numbers them) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> i64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s[s.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(n - 3)
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs `exhibit mount --background EXTRA IMAGE DIR` to its end (bounded: a command that
/// waits for its daemon would fail here, not hang); (exit code, stderr).
fn mount_background(image: &Path, dir: &Path, extra: &[&str]) -> (i32, String) {
    let err = dir.with_extension("stderr");
    let mut child = exhibit()
        .args(["mount", "--background"])
        .args(extra)
        .arg(image)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < until, "--background did not return");
        std::thread::sleep(Duration::from_millis(10));
    };
    // The daemon holds no end of the caller's stdout: reading it ends.
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "", "stdout stays free for scripts");
    (code, std::fs::read_to_string(err).unwrap())
}

/// The daemon's pid, as the command names it.
fn pid_in(said: &str) -> Option<i32> {
    said.split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
}

/// Starts a background mount that must succeed; the daemon, from the pid it names.
fn start(image: &Path, dir: &Path, extra: &[&str]) -> Daemon {
    std::fs::create_dir_all(dir).unwrap();
    let (code, said) = mount_background(image, dir, extra);
    let daemon = Daemon {
        pid: pid_in(&said).unwrap_or(0),
        dir: dir.to_path_buf(),
    };
    assert_eq!(code, 0, "{said}");
    assert!(daemon.pid > 0, "no pid in: {said}");
    daemon
}

#[test]
fn it_returns_once_served_and_umount_ends_the_daemon() {
    require_faulty_device!();
    let dir = tempdir();
    let first = e01_of_sample(dir.path());
    let mnt = dir.path().join("mnt");
    let d = start(&first, &mnt, &[]);
    // Right after it returns, with no waiting: the files are there and read in full.
    assert_eq!(
        coreutils_sum("sha256sum", &mnt.join("disk.raw")),
        coreutils_sum("sha256sum", &sample())
    );
    assert!(std::fs::read(mnt.join("info.yaml")).unwrap().len() > 100);
    // A daemon: the leader of its own session, no longer the caller's child.
    assert!(alive(d.pid));
    assert_eq!(stat_field(d.pid, 6), i64::from(d.pid), "session id");
    assert_ne!(
        stat_field(d.pid, 4),
        i64::from(std::process::id()),
        "parent"
    );

    assert!(Command::new("umount").arg(&mnt).status().unwrap().success());
    assert!(
        gone_within(d.pid, Duration::from_secs(10)),
        "daemon still there"
    );
    assert!(!is_mounted(&mnt));
}

#[test]
fn sigterm_unmounts_and_failed_reads_go_to_the_log() {
    require_faulty_device!();
    let dir = tempdir();
    let base = dir.path().join("d");
    acquire(&sample(), &base, &["--format", "e01"], 0);
    let first = with_ext(&base, "E01");
    let chunk = 40u64;
    let (segment, offset, stored) = chunk_place(&first, chunk);
    flip(&segment, offset + stored / 2);
    let log = dir.path().join("mount.log");
    std::fs::write(&log, b"earlier line\n").unwrap();
    let mnt = dir.path().join("mnt");
    let d = start(&first, &mnt, &["--log", log.to_str().unwrap()]);

    let mut f = std::fs::File::open(mnt.join("disk.raw")).unwrap();
    f.seek(SeekFrom::Start(chunk * 32768)).unwrap();
    let err = f.read(&mut [0u8; 4096]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    drop(f);

    signal(d.pid, libc::SIGTERM);
    assert!(
        gone_within(d.pid, Duration::from_secs(10)),
        "daemon still there"
    );
    assert!(!is_mounted(&mnt));
    let logged = std::fs::read_to_string(&log).unwrap();
    // Appended, each report with its time.
    assert!(logged.starts_with("earlier line\n"), "{logged}");
    let report = logged.lines().nth(1).unwrap_or("");
    assert!(
        report.contains("EIO") && report.contains(&format!("chunk {chunk}")),
        "{logged}"
    );
    assert!(report.split(' ').next().unwrap().ends_with('Z'), "{report}");
}

/// No process left that serves `dir`.
fn no_daemon_for(dir: &Path) -> bool {
    let needle = dir.to_str().unwrap().as_bytes();
    std::fs::read_dir("/proc").unwrap().flatten().all(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| !c.split(|&b| b == 0).any(|arg| arg == needle))
            .unwrap_or(true)
    })
}

#[test]
fn errors_before_it_is_served_reach_the_caller() {
    let dir = tempdir();
    let first = e01_of_sample(dir.path());
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let junk = dir.path().join("junk.E01");
    std::fs::write(&junk, b"EVF\x09\x0d\x0a\xff\x00 not an image").unwrap();
    let gapped = dir.path().join("gap");
    std::fs::create_dir(&gapped).unwrap();
    for ext in ["E01", "E03"] {
        std::fs::copy(first.with_extension(ext), with_ext(&gapped.join("ev"), ext)).unwrap();
    }
    for (image, point, why) in [
        (sample(), busy.clone(), "not empty".to_string()),
        (
            PathBuf::from("/nonexistent/x.E01"),
            empty.clone(),
            "No such file".into(),
        ),
        (junk.clone(), empty.clone(), junk.display().to_string()),
        (
            with_ext(&gapped.join("ev"), "E01"),
            empty.clone(),
            "E02".into(),
        ),
    ] {
        let (code, said) = mount_background(&image, &point, &[]);
        let _guard = pid_in(&said).map(|pid| Daemon {
            pid,
            dir: point.clone(),
        });
        assert_eq!(code, 2, "{}: {said}", image.display());
        assert!(said.contains(&why), "{said}");
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(said.starts_with("exhibit: error: "), "{said}");
        assert!(!is_mounted(&point));
        assert!(
            no_daemon_for(&point),
            "a daemon was left for {}",
            point.display()
        );
    }
    assert_eq!(std::fs::read(busy.join("notes.txt")).unwrap(), b"mine");
    // A log that is no regular file is refused before anything starts.
    let (code, said) = mount_background(&sample(), &empty, &["--log", "/dev/null"]);
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("--log") && said.lines().count() == 1,
        "{said}"
    );
}
