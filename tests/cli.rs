//! The command line refuses bad flags the same way every time: one line on stderr saying
//! what is wrong, exit code 2, no panic, and nothing written.

use std::path::Path;
use std::process::{Command, Output};

fn exhibit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exhibit"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run exhibit")
}

/// A 1 MiB source image in a fresh directory.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 512) as u8).collect();
    std::fs::write(dir.path().join("src.img"), data).unwrap();
    dir
}

/// Runs `args` and checks the refusal: exit 2, one `exhibit: error:` line containing
/// `expect`, no panic, no output files.
fn refused(args: &[&str], expect: &str) {
    let dir = workspace();
    let out = exhibit(dir.path(), args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let what = format!("exhibit {}: stderr {stderr:?}", args.join(" "));
    assert_eq!(out.status.code(), Some(2), "{what}");
    assert!(!stderr.contains("panicked"), "{what}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}");
    assert!(lines[0].starts_with("exhibit: error: "), "{what}");
    assert!(lines[0].contains(expect), "{what}: expected {expect:?}");
    assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "src.img")
        .collect();
    assert!(left.is_empty(), "{what}: left {left:?}");
}

#[test]
fn block_size_zero_is_refused() {
    refused(
        &["acquire", "src.img", "-o", "b", "--block-size", "0"],
        "--block-size 0 is not a positive multiple of 4096",
    );
}

#[test]
fn block_size_that_is_not_a_size_is_refused() {
    refused(
        &["acquire", "src.img", "-o", "b", "--block-size", "1Q"],
        "invalid value '1Q' for '--block-size <SIZE>': unknown unit 'Q' in '1Q' (use K, M, G, T)",
    );
    refused(
        &["rescue", "src.img", "-o", "b", "--block-size", "x"],
        "invalid value 'x' for '--block-size <SIZE>'",
    );
}

#[test]
fn split_zero_is_refused_not_a_division_by_zero() {
    refused(
        &["acquire", "src.img", "-o", "b", "--split", "0"],
        "--split 0: a segment must be a positive multiple of 512 bytes",
    );
    refused(
        &["acquire", "src.img", "-o", "b", "--split", "100"],
        "--split 100: a segment must be a positive multiple of 512 bytes",
    );
}

#[test]
fn unknown_values_are_refused_with_the_choices() {
    refused(
        &["acquire", "src.img", "-o", "b", "--format", "tiff"],
        "invalid value 'tiff' for '--format <LIST>': unknown format 'tiff' (raw, e01)",
    );
    refused(
        &["acquire", "src.img", "-o", "b", "--hash", "md5,md4"],
        "unknown hash 'md4' (md5, sha1, sha256)",
    );
    refused(
        &["rescue", "src.img", "-o", "b", "--compression", "max"],
        "unknown compression 'max' (none, fast, best)",
    );
    refused(
        &["acquire", "src.img", "-o", "b", "--io", "aio"],
        "invalid value 'aio' for '--io <IO>'",
    );
}

#[test]
fn unknown_flags_and_commands_are_refused() {
    refused(
        &["acquire", "src.img", "-o", "b", "--bogus"],
        "unexpected argument '--bogus' found (see exhibit --help)",
    );
    refused(&["bogus"], "unrecognized subcommand 'bogus'");
    refused(&["acquire", "src.img"], "--output <BASE>");
}

#[test]
fn a_map_interval_too_long_for_a_duration_is_refused() {
    refused(
        &["rescue", "src.img", "-o", "b", "--map-interval", "inf"],
        "--map-interval inf is not a time in seconds",
    );
}

#[test]
fn help_and_version_exit_zero() {
    let dir = workspace();
    for args in [
        &["--help"][..],
        &["-V"],
        &["acquire", "--help"],
        &["help", "rescue"],
    ] {
        let out = exhibit(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty() && out.stderr.is_empty(), "{args:?}");
    }
    let out = exhibit(dir.path(), &["acquire", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for default in [
        "[default: 1M]",
        "[default: 8]",
        "[default: 2000M]",
        "[default: md5,sha1,sha256]",
    ] {
        assert!(
            help.contains(default),
            "{default} missing from acquire --help"
        );
    }
}
