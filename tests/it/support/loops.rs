//! Loop devices and mounts made by tests, always undone: also when a test fails, and only
//! ours (a device someone else attached meanwhile is left alone).

use std::path::{Path, PathBuf};
use std::process::Command;

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

    /// A writable 512-byte-sector device over a new file `file` of `size` bytes of `fill`
    /// (a stand-in for a target disk).
    pub fn new_file(file: &Path, size: usize, fill: u8) -> LoopDevice {
        std::fs::write(file, vec![fill; size]).unwrap();
        LoopDevice::attach(file, 512, false, false)
    }

    /// Path as a &str.
    pub fn as_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        detach_if_ours(&self.path, &self.backing);
    }
}

/// Detaches loop device `device` if its backing file is still `backing`.
fn detach_if_ours(device: &Path, backing: &Path) {
    let Some(name) = device.file_name() else {
        return;
    };
    let sys = Path::new("/sys/block").join(name).join("loop/backing_file");
    if std::fs::read_to_string(&sys).is_ok_and(|s| Path::new(s.trim()) == backing) {
        // The job under test may have set the kernel's read-only flag (BLKROSET): it outlives
        // a detach and `losetup -f` reuses devices, so leave it as losetup would give it to
        // the next user: writable.
        let _ = Command::new("blockdev").arg("--setrw").arg(device).output();
        let _ = Command::new("losetup").arg("-d").arg(device).output();
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

impl Mount {
    /// `mount [-t FSTYPE] -o OPTIONS SOURCE DIR`: a device with options (`noatime`), or a
    /// filesystem without one (`tmpfs`, `tmpfs`, `size=8M`).
    pub fn with_options(source: &Path, dir: &Path, fstype: Option<&str>, options: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let mut cmd = Command::new("mount");
        if let Some(t) = fstype {
            cmd.args(["-t", t]);
        }
        let out = cmd
            .args(["-o", options])
            .arg(source)
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // A FUSE file system (ntfs-3g) can be busy for a moment after its last write: retry,
        // then detach it lazily rather than leave a mount behind.
        for _ in 0..20 {
            let done = Command::new("umount")
                .arg(&self.dir)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if done {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
