//! Other people's tools: coreutils as the independent hash, libewf and The Sleuth Kit as
//! independent readers. A missing optional tool skips its check with a message.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::Exits;

/// The path of a tool on `PATH`, or `None` after saying that the check is skipped.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    eprintln!(
        "SKIP: {name} is not installed; that check is skipped (apt install ewf-tools sleuthkit)"
    );
    None
}

/// Whether a tool is installed (saying so when it is not).
pub fn have(name: &str) -> bool {
    tool(name).is_some()
}

/// Runs a tool that must succeed; returns its stdout.
pub fn tool_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&cmd.exits(0).stdout).into_owned()
}

/// Runs `sh -c COMMAND` in `dir`; it must succeed.
pub fn sh_ok(command: &str, dir: &Path) {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .exits(0);
}

/// The hex digest a coreutils tool (`md5sum`, `sha1sum`, `sha256sum`) prints for a file.
pub fn coreutils_sum(tool: &str, path: &Path) -> String {
    let out = Command::new(tool).arg(path).exits(0);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// SHA-256 of `data` in hex, by an implementation other than the one under test (`sha256sum`).
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
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

/// The hash logs `BASE.md5` etc. (one per extension) check with coreutils (`md5sum -c`),
/// run beside them as an examiner would.
pub fn hash_logs_check(base: &Path, exts: &[&str]) {
    for ext in exts {
        Command::new(format!("{ext}sum"))
            .args(["-c", "--quiet"])
            .arg(
                base.file_name()
                    .map(|n| format!("{}.{ext}", n.to_string_lossy()))
                    .unwrap(),
            )
            .current_dir(base.parent().unwrap())
            .exits(0);
    }
}

/// The check commands a record lists (`hashes.check`), to run with [`sh_ok`].
pub fn record_checks(rec: &serde_yaml::Value) -> Vec<String> {
    rec["hashes"]["check"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Partitions the disk image `disk` with an `sfdisk` script; false if sfdisk failed or is
/// missing.
pub fn sfdisk(disk: &Path, script: &[u8]) -> bool {
    use std::io::Write;
    Command::new("sfdisk")
        .arg("-q")
        .arg(disk)
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(script)?;
            c.wait()
        })
        .is_ok_and(|s| s.success())
}

/// Makes an ext4 file system on `target` (a file or a device) with its inode tables and
/// journal written at once, so that a mount does not go on writing them; false if mkfs.ext4
/// failed or is missing.
pub fn mkfs_ext4(target: &Path) -> bool {
    Command::new("mkfs.ext4")
        .args(["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"])
        .arg(target)
        .status()
        .is_ok_and(|s| s.success())
}
