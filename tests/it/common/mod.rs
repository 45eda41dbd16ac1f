//! Shared helpers for the end-to-end tests: temp dirs, the binary, generated sources, coreutils
//! hashes, and loop devices that are always detached (only ours, also when a test fails).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The exhibit binary under test.
pub fn exhibit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_exhibit"))
}

/// Runs exhibit with args; returns the output.
pub fn run(args: &[&str]) -> Output {
    exhibit().args(args).output().expect("run exhibit")
}

/// A temporary directory under `${TMPDIR:-/tmp}/exhibit-test-*` (the CI sweep knows the prefix).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("exhibit-test-")
        .tempdir()
        .expect("tempdir")
}

/// Deterministic mixed content: random-looking bytes, zero runs, text, and a marker with the
/// sector number every 512 bytes, so a shifted or lost sector shows.
pub fn pattern(size: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let text = b"The quick brown fox jumps over the lazy dog. ";
    while v.len() < size {
        let sector = v.len() / 512;
        let mut s = format!("<sector {sector}>").into_bytes();
        match (sector / 7) % 3 {
            0 => {
                while s.len() < 512 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    s.extend_from_slice(&x.to_le_bytes());
                }
            }
            1 => s.resize(512, 0),
            _ => {
                while s.len() < 512 {
                    s.extend_from_slice(text);
                }
            }
        }
        s.truncate(512);
        v.extend_from_slice(&s);
    }
    v.truncate(size);
    v
}

/// Writes a pattern file of `size` bytes.
pub fn make_source(dir: &Path, name: &str, size: usize, seed: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pattern(size, seed)).expect("write source");
    p
}

/// The hex digest a coreutils tool (`md5sum`, `sha1sum`, `sha256sum`) prints for a file.
pub fn coreutils_sum(tool: &str, path: &Path) -> String {
    let out = Command::new(tool)
        .arg(path)
        .output()
        .expect("run coreutils");
    assert!(out.status.success(), "{tool} failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// True when running as root (loop devices need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Prints why a test is skipped and returns true if loop devices cannot be used here.
pub fn skip_without_loop(test: &str) -> bool {
    let ok = is_root()
        && Path::new("/dev/loop-control").exists()
        && Command::new("losetup")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED {test}: needs root, /dev/loop-control and losetup");
    }
    !ok
}

/// A loop device attached by a test; detached on drop, but only while it still shows our
/// backing file (never a device someone else attached).
pub struct LoopDevice {
    pub path: PathBuf,
    backing: PathBuf,
}

impl LoopDevice {
    /// `losetup -f --show [-r] [--direct-io=on] [--sector-size N] [-P] FILE`.
    pub fn attach(file: &Path, sector_size: u32, read_only: bool, partitions: bool) -> LoopDevice {
        let mut cmd = Command::new("losetup");
        cmd.args(["-f", "--show", "--direct-io=on"]);
        if read_only {
            cmd.arg("-r");
        }
        if partitions {
            cmd.arg("-P");
        }
        cmd.args(["--sector-size", &sector_size.to_string()])
            .arg(file);
        let out = cmd.output().expect("losetup");
        assert!(
            out.status.success(),
            "losetup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let backing = std::fs::canonicalize(file).unwrap();
        // The kernel's read-only flag outlives a detach (a `--set-readonly` test sets it), and
        // `losetup -f` reuses free devices: make a writable attachment writable.
        if !read_only {
            let _ = Command::new("blockdev").arg("--setrw").arg(&path).status();
        }
        // This kernel may not scan partition tables itself; partx adds them via BLKPG.
        if partitions && !Path::new(&format!("{}p1", path.display())).exists() {
            let _ = Command::new("partx").arg("-a").arg(&path).output();
        }
        if partitions {
            for _ in 0..50 {
                if Path::new(&format!("{}p1", path.display())).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        LoopDevice { path, backing }
    }

    /// Path as a &str.
    pub fn as_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let name = self
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let backing = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
            .unwrap_or_default();
        if Path::new(backing.trim()) == self.backing {
            // Leave the device as losetup would give it to the next user: writable.
            let _ = Command::new("blockdev")
                .arg("--setrw")
                .arg(&self.path)
                .status();
            let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
        }
    }
}

/// A mount made by a test; unmounted on drop.
pub struct Mount {
    pub dir: PathBuf,
}

impl Mount {
    /// Mounts `device` on `dir`.
    pub fn new(device: &Path, dir: &Path) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount").arg(device).arg(dir).status().unwrap();
        assert!(st.success(), "mount failed");
        Mount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// The parsed audit record.
pub fn record(base: &Path) -> serde_yaml::Value {
    let p = PathBuf::from(format!("{}.yaml", base.display()));
    serde_yaml::from_str(&std::fs::read_to_string(&p).expect("read record")).expect("parse record")
}

/// `BASE` + `.ext`.
pub fn with_ext(base: &Path, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{ext}", base.display()))
}
