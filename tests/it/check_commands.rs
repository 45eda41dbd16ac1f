//! The hash logs and the record's `hashes.check` commands for output names a shell or
//! `md5sum -c` would trip on: spaces, quotes, `$`, a backslash, a newline, a Latin-1 byte.
//! Every command is pasted into bash as a person would, and coreutils reads the logs directly.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::*;

/// `BASE` + `.ext`, keeping every byte of a non-UTF-8 base.
fn side(base: &Path, ext: &str) -> PathBuf {
    let mut p = base.as_os_str().to_owned();
    p.push(format!(".{ext}"));
    p.into()
}

fn name(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

/// Acquires `src` to `dir/base_name` with `extra`, then checks the outputs three ways: each
/// `hashes.check` command run by `bash -c` in `dir`, each log by coreutils directly (fed the
/// source on stdin when it names `-`), and the SHA-256 log's digest against `sha256sum`.
/// Returns the record.
fn acquire_and_check(
    dir: &Path,
    src: &Path,
    base_name: &OsStr,
    extra: &[&str],
) -> serde_yaml::Value {
    let base = dir.join(base_name);
    acquire(src, &base, extra, 0);
    let rec: serde_yaml::Value =
        serde_yaml::from_slice(&std::fs::read(side(&base, "yaml")).unwrap()).unwrap();
    let checks = record_checks(&rec);
    assert_eq!(checks.len(), 3, "{checks:?}");
    for check in &checks {
        let out = Command::new("bash")
            .arg("-c")
            .arg(check)
            .current_dir(dir)
            .exits(0);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.trim_end().ends_with(": OK"), "{check}: {said}");
    }
    for alg in ["md5", "sha1", "sha256"] {
        let log = side(Path::new(base_name), alg);
        let text = std::fs::read(dir.join(&log)).unwrap();
        let stdin = if text.ends_with(b"  -\n") {
            Stdio::from(std::fs::File::open(src).unwrap())
        } else {
            Stdio::null()
        };
        let out = Command::new(format!("{alg}sum"))
            .arg("-c")
            .arg(&log)
            .current_dir(dir)
            .stdin(stdin)
            .exits(0);
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
    }
    let log = std::fs::read(side(&base, "sha256")).unwrap();
    let hex = log.strip_prefix(b"\\").unwrap_or(&log);
    assert_eq!(
        std::str::from_utf8(&hex[..64]).unwrap(),
        coreutils_sum("sha256sum", src),
        "sha256 log"
    );
    rec
}

/// exhibit's own reader finds the hash logs' claims and they match.
fn verifies(image: &Path) {
    let out = exhibit().arg("verify").arg(image).exits(0);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("FAIL"), "{said}");
}

#[test]
fn a_name_with_a_space_and_a_quote() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src", 5000, 1);
    let base = OsStr::new("it's disk $HOME;*");
    let rec = acquire_and_check(dir.path(), &src, base, &[]);
    assert_eq!(
        record_checks(&rec)[0],
        r"md5sum -c 'it'\''s disk $HOME;*.md5'"
    );
    let raw = dir.path().join("it's disk $HOME;*.raw");
    assert_eq!(std::fs::read(&raw).unwrap(), std::fs::read(&src).unwrap());
    verifies(&raw);
}

#[test]
fn a_name_that_is_not_utf8() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src", 5000, 2);
    let base = name(b"disk\xff");
    let rec = acquire_and_check(dir.path(), &src, &base, &[]);
    assert_eq!(record_checks(&rec)[0], r"md5sum -c $'disk\xff.md5'");
    let log = std::fs::read(dir.path().join(name(b"disk\xff.md5"))).unwrap();
    assert!(log.ends_with(b"  disk\xff.raw\n"), "{log:?}");
    verifies(&dir.path().join(name(b"disk\xff.raw")));
}

#[test]
fn a_name_with_a_backslash_and_a_newline() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src", 5000, 3);
    let base = OsStr::new("a\\b\nc");
    let rec = acquire_and_check(dir.path(), &src, base, &[]);
    assert_eq!(record_checks(&rec)[0], r"md5sum -c $'a\\b\x0ac.md5'");
    // The line md5sum itself writes for that name.
    let ours = std::fs::read(dir.path().join("a\\b\nc.md5")).unwrap();
    let theirs = Command::new("md5sum")
        .arg("a\\b\nc.raw")
        .current_dir(dir.path())
        .exits(0);
    assert_eq!(ours, theirs.stdout);
    verifies(&dir.path().join("a\\b\nc.raw"));
}

#[test]
fn split_segments_with_a_space_in_the_name() {
    let dir = tempdir();
    // 3 segments: listed one by one; 10 segments: a glob after the quoted stem.
    let src = make_source(dir.path(), "src", 5000, 4);
    let rec = acquire_and_check(
        dir.path(),
        &src,
        OsStr::new("my disk"),
        &["--split", "2048"],
    );
    assert_eq!(
        record_checks(&rec)[0],
        "cat 'my disk.001' 'my disk.002' 'my disk.003' | md5sum -c 'my disk.md5'"
    );
    let base = name(b"case 7 caf\xe9");
    let rec = acquire_and_check(dir.path(), &src, &base, &["--split", "512"]);
    assert_eq!(
        record_checks(&rec)[0],
        r"cat $'case 7 caf\xe9'.[0-9][0-9][0-9] | md5sum -c $'case 7 caf\xe9.md5'"
    );
    assert!(dir.path().join(name(b"case 7 caf\xe9.010")).exists());
}

#[test]
fn an_e01_with_a_quote_in_the_name() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src", 70_144, 5);
    let rec = acquire_and_check(dir.path(), &src, OsStr::new("it's"), &["--format", "e01"]);
    assert_eq!(
        record_checks(&rec)[0],
        r"ewfexport -q -u -f raw -t - 'it'\''s.E01' | head -c 70144 | md5sum -c 'it'\''s.md5'"
    );
}
