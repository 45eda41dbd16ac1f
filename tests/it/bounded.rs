//! Bounded resources on any input (issue 15): descriptors, memory, stale outputs, side files
//! that are not regular files, hostile records. Every run of the binary has a time bound, so
//! a regression fails the test instead of hanging the suite.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// How a bounded run ended.
struct Ended {
    code: i32,
    text: String,
    /// Peak resident set of the child, KiB (from wait4's rusage).
    max_rss_kib: i64,
}

/// Runs `cmd` to its end within `limit`; kills it and fails the test when it takes longer.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Ended {
    let dir = tempdir();
    let out_path = dir.path().join("out");
    let out = fs::File::create(&out_path).unwrap();
    let err = out.try_clone().unwrap();
    // Reaped below by wait4 (for its rusage), which Child::wait cannot give.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    let pid = child.id() as i32;
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 on our own child, not yet reaped.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            let st = std::process::ExitStatus::from_raw(status);
            return Ended {
                code: st.code().unwrap_or(-1),
                text: fs::read_to_string(&out_path).unwrap_or_default(),
                max_rss_kib: usage.ru_maxrss,
            };
        }
        if start.elapsed() > limit {
            send_signal(&child, libc::SIGKILL);
            // SAFETY: reaps our own killed child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!(
                "{cmd:?} still running after {limit:?}; output so far:\n{}",
                fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `exhibit ARGS` under `sh -c 'ulimit -n N; exec …'`.
fn with_fd_limit(limit: u32, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_exhibit"))
        .args(args);
    c
}

fn concatenated(paths: &[PathBuf]) -> Vec<u8> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(fs::read(p).unwrap());
    }
    all
}

/// Every `BASE.<digits>` file in BASE's directory, sorted as `cat BASE.*` would take them.
fn numbered_segments(base: &Path) -> Vec<PathBuf> {
    let dir = base.parent().unwrap();
    let stem = format!("{}.", base.file_name().unwrap().to_str().unwrap());
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.strip_prefix(&stem)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn split_into_hundreds_of_segments_under_a_64_descriptor_limit() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src.bin", 1 << 20, 15);
    let base = dir.path().join("ev");
    let (s, b) = (src.to_str().unwrap(), base.to_str().unwrap());
    // 256 segments of 4 KiB: two descriptors each would need 512.
    let ended = run_bounded(
        &mut with_fd_limit(64, &["acquire", s, "-o", b, "--quiet", "--split", "4096"]),
        Duration::from_secs(120),
    );
    assert_eq!(ended.code, 0, "{}", ended.text);
    let segments = numbered_segments(&base);
    assert_eq!(segments.len(), 256);
    assert_eq!(concatenated(&segments), fs::read(&src).unwrap());
    let rec = record(&base);
    assert_eq!(rec["outputs"].as_sequence().unwrap().len(), 256);
    // verify reads them under the same limit, by any segment's name and by the record.
    for name in [
        segments[0].clone(),
        segments[99].clone(),
        with_ext(&base, "yaml"),
    ] {
        let ended = run_bounded(
            &mut with_fd_limit(64, &["verify", name.to_str().unwrap()]),
            Duration::from_secs(120),
        );
        assert_eq!(ended.code, 0, "{}", ended.text);
    }
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A good raw + E01 acquisition of 3 MiB in `dir`, as `dir/ev.*`.
fn acquired(dir: &Path) -> (PathBuf, PathBuf) {
    let src = make_source(dir, "src.bin", 3 << 20, 7);
    let base = dir.join("ev");
    acquire(&src, &base, &["--format", "raw,e01"], 0);
    (src, base)
}

fn verify_bounded(path: &Path) -> Ended {
    let mut c = exhibit();
    c.arg("verify").arg(path);
    run_bounded(&mut c, Duration::from_secs(60))
}

#[test]
fn a_fifo_or_dev_zero_as_case_file_is_refused_without_blocking() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src.bin", 1 << 20, 3);
    let fifo = dir.path().join("case.yaml");
    mkfifo(&fifo);
    for case in [fifo.as_path(), Path::new("/dev/zero")] {
        let base = dir.path().join("ev");
        let mut c = exhibit();
        c.arg("acquire").arg(&src).arg("-o").arg(&base);
        c.arg("--quiet").arg("--case").arg(case);
        let ended = run_bounded(&mut c, Duration::from_secs(30));
        assert_eq!(ended.code, 2, "{}", ended.text);
        assert!(ended.text.contains("not a regular file"), "{}", ended.text);
        assert!(ended.max_rss_kib < 512 << 10, "{} KiB", ended.max_rss_kib);
        assert!(!with_ext(&base, "raw").exists());
    }
}

#[test]
fn side_files_that_are_fifos_devices_or_symlinks_are_failed_checks_not_hangs() {
    let dir = tempdir();
    let (_, base) = acquired(dir.path());
    let raw = with_ext(&base, "raw");
    fs::remove_file(with_ext(&base, "sha256")).unwrap();
    mkfifo(&with_ext(&base, "sha256"));
    fs::remove_file(with_ext(&base, "crc64")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", with_ext(&base, "crc64")).unwrap();
    let ended = verify_bounded(&raw);
    assert_eq!(ended.code, 1, "{}", ended.text);
    assert!(
        ended.text.contains("ev.sha256: cannot be read: is a FIFO"),
        "{}",
        ended.text
    );
    assert!(
        ended
            .text
            .contains("ev.crc64: cannot be read: is a symbolic link"),
        "{}",
        ended.text
    );
    // The media hashes still verify against the record.
    assert!(
        ended.text.contains("sha256 matches ev.yaml"),
        "{}",
        ended.text
    );

    // The record itself a FIFO: verify of the image ends, and says why.
    let rec = with_ext(&base, "yaml");
    fs::remove_file(&rec).unwrap();
    mkfifo(&rec);
    let ended = verify_bounded(&rec);
    assert_ne!(ended.code, 0, "{}", ended.text);
    assert!(ended.text.contains("is a FIFO"), "{}", ended.text);
    let ended = verify_bounded(&raw);
    assert_ne!(ended.code, 0, "{}", ended.text);
}

#[test]
fn an_e01_segment_that_is_a_fifo_is_refused_without_blocking() {
    let dir = tempdir();
    let (_, base) = acquired(dir.path());
    let e01 = with_ext(&base, "E01");
    fs::remove_file(&e01).unwrap();
    mkfifo(&e01);
    let ended = verify_bounded(&e01);
    assert_ne!(ended.code, 0, "{}", ended.text);
    assert!(ended.text.contains("is a FIFO"), "{}", ended.text);
    let mut c = exhibit();
    c.arg("info").arg(&e01);
    let ended = run_bounded(&mut c, Duration::from_secs(30));
    assert_ne!(ended.code, 0, "{}", ended.text);
    assert!(ended.text.contains("is a FIFO"), "{}", ended.text);
}

#[test]
fn a_huge_queue_of_huge_blocks_on_a_small_source_stays_small() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src.bin", 16 << 20, 11);
    let base = dir.path().join("ev");
    let mut c = exhibit();
    c.arg("acquire")
        .arg(&src)
        .arg("-o")
        .arg(&base)
        .arg("--quiet");
    c.args(["--queue-depth", "256", "--block-size", "64M"]);
    let ended = run_bounded(&mut c, Duration::from_secs(60));
    // 256 × 2 + 8 buffers of 64 MiB would be 33 GiB; the source has one block.
    assert_eq!(ended.code, 0, "{}", ended.text);
    assert!(
        ended.max_rss_kib < 400 << 10,
        "peak RSS {} KiB",
        ended.max_rss_kib
    );
    assert_eq!(
        fs::read(with_ext(&base, "raw")).unwrap(),
        fs::read(&src).unwrap()
    );
}

#[test]
fn buffers_that_cannot_be_allocated_fail_the_job_with_a_record() {
    let dir = tempdir();
    let src = dir.path().join("sparse.bin");
    fs::File::create(&src).unwrap().set_len(640 << 20).unwrap();
    let base = dir.path().join("ev");
    // Ten 64 MiB buffers under a 400 MB address-space limit.
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 400000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_exhibit"))
        .arg("acquire")
        .arg(&src)
        .arg("-o")
        .arg(&base)
        .args(["--quiet", "--block-size", "64M"]);
    let ended = run_bounded(&mut c, Duration::from_secs(60));
    assert_eq!(ended.code, 2, "{}", ended.text);
    assert!(ended.text.contains("cannot be allocated"), "{}", ended.text);
    let rec = record(&base);
    assert_eq!(rec["outcome"]["status"].as_str(), Some("failed"));
    assert!(rec["outcome"]["reason"]
        .as_str()
        .unwrap()
        .contains("cannot be allocated"));
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn overwrite_with_another_layout_removes_the_old_sets_files_and_nothing_else() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src.bin", 4 << 20, 21);
    let other = make_source(dir.path(), "other.bin", 2 << 20, 22);
    let base = dir.path().join("ev");
    // Files that are not exhibit's: a note, an upper-case name that is no E01 segment.
    fs::write(dir.path().join("ev.notes"), b"examiner's notes").unwrap();
    fs::write(dir.path().join("ev.DOC"), b"a letter").unwrap();
    let bystanders = |d: &Path| {
        assert_eq!(fs::read(d.join("ev.notes")).unwrap(), b"examiner's notes");
        assert_eq!(fs::read(d.join("ev.DOC")).unwrap(), b"a letter");
    };

    // Four 1 MiB segments, then two of 2 MiB: ev.003 and ev.004 go.
    acquire(&src, &base, &["--split", "1M"], 0);
    assert_eq!(numbered_segments(&base).len(), 4);
    acquire(&src, &base, &["--split", "2M", "--overwrite"], 0);
    assert_eq!(numbered_segments(&base).len(), 2);
    assert_eq!(verify_bounded(&with_ext(&base, "001")).code, 0);
    bystanders(dir.path());

    // Split to single: every segment goes, and the single image verifies.
    acquire(&other, &base, &["--overwrite"], 0);
    assert!(
        numbered_segments(&base).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
    assert_eq!(verify_bounded(&with_ext(&base, "raw")).code, 0);

    // E01 in more segments, then in fewer (and no raw): the single raw image and the later
    // E01 segments go.
    let small = ["--segment-size", "1M", "--compression", "none"];
    acquire(
        &src,
        &base,
        &[&["--format", "raw,e01", "--overwrite"], &small[..]].concat(),
        0,
    );
    assert!(with_ext(&base, "E03").exists());
    acquire(&src, &base, &["--format", "e01", "--overwrite"], 0);
    let names = names_in(dir.path());
    for gone in ["ev.raw", "ev.E02", "ev.E03"] {
        assert!(!names.contains(&gone.to_string()), "{gone} left: {names:?}");
    }
    let ended = verify_bounded(&with_ext(&base, "E01"));
    assert_eq!(ended.code, 0, "{}", ended.text);

    // Single to split with fewer hashes: the single image and the md5/sha1 logs go.
    acquire(&other, &base, &["--overwrite"], 0);
    acquire(
        &src,
        &base,
        &["--split", "1M", "--hash", "sha256", "--overwrite"],
        0,
    );
    let names = names_in(dir.path());
    for gone in ["ev.raw", "ev.E01", "ev.md5", "ev.sha1"] {
        assert!(!names.contains(&gone.to_string()), "{gone} left: {names:?}");
    }
    assert_eq!(
        concatenated(&numbered_segments(&base)),
        fs::read(&src).unwrap()
    );
    let ended = verify_bounded(&with_ext(&base, "003"));
    assert_eq!(ended.code, 0, "{}", ended.text);
    bystanders(dir.path());
}

#[test]
fn overwrite_never_removes_the_source_even_when_it_has_the_sets_name() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src.bin", 3 << 20, 23);
    let base = dir.path().join("ev");
    acquire(&src, &base, &["--split", "1M"], 0);
    // The old third segment is now the evidence acquired, into two segments.
    let evidence = with_ext(&base, "003");
    let want = fs::read(&evidence).unwrap();
    // A name the run would replace or remove as stale: refused before anything is written.
    let out = acquire(&evidence, &base, &["--split", "512K", "--overwrite"], 2);
    assert!(
        stderr(&out).contains("is the source itself"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read(&evidence).unwrap(), want);
    assert!(with_ext(&base, "002").exists());
}

/// Rewrites the record at `base`.yaml with `outputs` in place of its own.
fn forge_outputs(base: &Path, outputs: Vec<serde_yaml::Value>) {
    let mut rec = record(base);
    rec["outputs"] = serde_yaml::Value::Sequence(outputs);
    fs::write(with_ext(base, "yaml"), serde_yaml::to_string(&rec).unwrap()).unwrap();
}

fn output(path: &str, size: u64, kind: &str) -> serde_yaml::Value {
    let mut m = serde_yaml::Mapping::new();
    m.insert("path".into(), path.into());
    m.insert("size".into(), size.into());
    m.insert("kind".into(), kind.into());
    serde_yaml::Value::Mapping(m)
}

#[test]
fn a_record_cannot_make_verify_read_files_outside_its_directory() {
    let dir = tempdir();
    let (_, base) = acquired(dir.path());
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    forge_outputs(
        &base,
        vec![
            output("/etc/passwd", 100, "raw"),
            output("../../../../etc/hostname", 10, "raw-segment"),
            output("/dev/zero", 1 << 30, "device"),
            output(fifo.to_str().unwrap(), 10, "raw"),
            output("..", 10, "raw"),
        ],
    );
    let ended = verify_bounded(&with_ext(&base, "yaml"));
    assert_eq!(ended.code, 1, "{}", ended.text);
    let t = &ended.text;
    let d = dir.path().display();
    // Looked for by file name beside the record, never at the path named.
    assert!(
        t.contains(&format!("{d}/passwd (raw) listed in the record")),
        "{t}"
    );
    assert!(
        t.contains(&format!("{d}/hostname (raw-segment) listed")),
        "{t}"
    );
    assert!(
        t.contains("/dev/zero (device) listed in the record is not a block device"),
        "{t}"
    );
    assert!(
        t.contains("pipe (raw) listed in the record is not a regular file"),
        "{t}"
    );
    assert!(t.contains("has no file name"), "{t}");
    assert!(!t.contains("root:"), "{t}");
}

#[test]
fn a_record_with_thousands_of_outputs_is_checked_in_bounded_time_and_lines() {
    let dir = tempdir();
    let (_, base) = acquired(dir.path());
    let n = 30_000;
    let outputs = (1..=n)
        .map(|i| output(&format!("ev.{i:03}"), 0, "raw-segment"))
        .collect();
    forge_outputs(&base, outputs);
    let ended = verify_bounded(&with_ext(&base, "yaml"));
    assert_eq!(ended.code, 1, "{}", ended.text);
    assert!(
        ended.text.lines().count() < 400,
        "{} lines",
        ended.text.lines().count()
    );
    assert!(
        ended
            .text
            .contains(&format!("and {} more outputs listed in the record", n - 64)),
        "{}",
        ended.text
    );
}

/// An E01 set of 4 MiB in 1 MiB segments, stored (not compressed): `dir/ev.E01` … `ev.E05`.
fn e01_set(dir: &Path) -> PathBuf {
    let src = make_source(dir, "src.bin", 4 << 20, 31);
    let base = dir.join("ev");
    let args = [
        "--format",
        "e01",
        "--compression",
        "none",
        "--segment-size",
        "1M",
    ];
    acquire(&src, &base, &args, 0);
    assert!(with_ext(&base, "E03").exists());
    base
}

/// Rewrites the volume section of `segment` through `change`, with a right Adler-32.
fn forge_volume(segment: &Path, change: impl FnOnce(&mut exhibit::ewf::format::Volume)) {
    use exhibit::ewf::format::Volume;
    let (off, _) = section(segment, "volume");
    let mut b = fs::read(segment).unwrap();
    let body = off as usize + 76;
    let (mut v, ok) = Volume::decode(&b[body..]).unwrap();
    assert!(ok);
    change(&mut v);
    let enc = v.encode();
    b[body..body + enc.len()].copy_from_slice(&enc);
    fs::write(segment, b).unwrap();
}

#[test]
fn a_missing_middle_segment_and_a_forged_sector_count_end_quickly_in_bounded_memory() {
    let dir = tempdir();
    let base = e01_set(dir.path());
    fs::remove_file(with_ext(&base, "E02")).unwrap();
    fs::remove_file(with_ext(&base, "yaml")).unwrap();
    forge_volume(&with_ext(&base, "E01"), |v| {
        v.sector_count = 1 << 50;
        v.chunk_count = u32::MAX;
    });
    for cmd in ["verify", "info"] {
        let mut c = exhibit();
        c.arg(cmd).arg(with_ext(&base, "E01"));
        let ended = run_bounded(&mut c, Duration::from_secs(60));
        // info describes (exit 0); verify fails the set.
        assert_eq!(ended.code, (cmd == "verify") as i32, "{}", ended.text);
        assert!(
            ended.max_rss_kib < 1 << 20,
            "{cmd}: peak RSS {} KiB",
            ended.max_rss_kib
        );
        assert!(
            ended.text.lines().count() < 2000,
            "{cmd}: {} lines",
            ended.text.lines().count()
        );
        assert!(ended.text.contains("E02"), "{cmd}: {}", ended.text);
    }
}

#[test]
fn a_table_full_of_forged_entries_is_one_line_per_kind_not_one_per_entry() {
    use exhibit::ewf::format;
    let dir = tempdir();
    let base = e01_set(dir.path());
    let seg = with_ext(&base, "E01");
    let (off, size) = section(&seg, "table");
    let mut b = fs::read(&seg).unwrap();
    let body = off as usize + 76;
    let t = format::decode_table(&b[body..(off + size) as usize]).unwrap();
    let n = t.entries.len();
    assert!(n > 20, "{n} entries");
    // Every entry points far past the sectors section.
    let forged = vec![0x7fff_fff0u32; n];
    let enc = format::encode_table(t.base_offset, &forged);
    b[body..body + enc.len()].copy_from_slice(&enc);
    fs::write(&seg, b).unwrap();
    let ended = verify_bounded(&seg);
    assert_eq!(ended.code, 1, "{}", ended.text);
    let per_entry = ended.text.matches("outside its sectors section").count();
    assert!(per_entry <= 16, "{per_entry} lines:\n{}", ended.text);
    assert!(
        ended
            .text
            .contains(&format!("and {} more entries of this table", n - 16)),
        "{}",
        ended.text
    );
}

#[test]
fn a_middle_e01_segment_that_is_a_fifo_is_a_named_gap_not_a_hang() {
    let dir = tempdir();
    let base = e01_set(dir.path());
    let e02 = with_ext(&base, "E02");
    fs::remove_file(&e02).unwrap();
    mkfifo(&e02);
    let ended = verify_bounded(&with_ext(&base, "E01"));
    assert_eq!(ended.code, 1, "{}", ended.text);
    assert!(
        ended
            .text
            .contains("segment file is a FIFO, not a regular file"),
        "{}",
        ended.text
    );
}
