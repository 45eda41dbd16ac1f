//! End-to-end acquisition through the binary: what an examiner would check.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// The image equals the source, every hash equals coreutils', every log checks, the record
/// holds the same hashes.
fn assert_good_image(source: &Path, base: &Path) {
    let raw = with_ext(base, "raw");
    assert_eq!(
        std::fs::read(&raw).unwrap(),
        std::fs::read(source).unwrap(),
        "image differs"
    );
    let rec = record(base);
    for key in ["md5", "sha1", "sha256"] {
        let want = coreutils_sum(&format!("{key}sum"), source);
        assert_eq!(
            rec["hashes"][key].as_str(),
            Some(want.as_str()),
            "{key} in record"
        );
    }
    hash_logs_check(base, &["md5", "sha1", "sha256"]);
    assert_eq!(rec["schema"].as_str(), Some("exhibit-audit/1.1"));
    assert_eq!(rec["outcome"]["status"].as_str(), Some("complete"));
    assert_eq!(rec["outcome"]["exit_code"].as_i64(), Some(0));
    assert_eq!(
        rec["source"]["size"].as_u64(),
        Some(std::fs::metadata(source).unwrap().len())
    );
    let map = std::fs::read_to_string(with_ext(base, "map")).unwrap();
    assert!(
        !map.lines().any(|l| l.ends_with(" -")),
        "no bad blocks expected:\n{map}"
    );
}

#[test]
fn files_of_awkward_sizes_with_both_engines() {
    let dir = tempdir();
    let sizes = [
        0usize,
        1,
        511,
        512,
        4095,
        4097,
        (1 << 20) - 1,
        (1 << 20) + 1,
        (3 << 20) + 7,
    ];
    for engine in ["uring", "sync"] {
        for (i, &size) in sizes.iter().enumerate() {
            let src = make_source(dir.path(), &format!("src-{engine}-{i}"), size, i as u64);
            let base = dir.path().join(format!("img-{engine}-{i}"));
            acquire(&src, &base, &["--io", engine, "--block-size", "64K"], 0);
            assert_good_image(&src, &base);
            let rec = record(&base);
            assert_eq!(
                rec["reader"]["engine"].as_str(),
                Some(engine),
                "size {size}"
            );
        }
    }
}

#[test]
fn record_holds_what_an_examiner_needs() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src", 2 << 20, 7);
    let case = dir.path().join("case.yaml");
    std::fs::write(
        &case,
        "case_number: '2026-117'\nexaminer: Ada\nnotes: from file\n",
    )
    .unwrap();
    let base = dir.path().join("img");
    acquire(
        &src,
        &base,
        &[
            "--case",
            case.to_str().unwrap(),
            "--notes",
            "Seized at the scene",
            "--evidence-number",
            "E-4",
        ],
        0,
    );
    assert_good_image(&src, &base);
    let rec = record(&base);
    assert_eq!(rec["case"]["case_number"].as_str(), Some("2026-117"));
    assert_eq!(rec["case"]["examiner"].as_str(), Some("Ada"));
    assert_eq!(rec["case"]["evidence_number"].as_str(), Some("E-4"));
    assert_eq!(
        rec["case"]["notes"].as_str(),
        Some("Seized at the scene"),
        "flags win over the file"
    );
    assert_eq!(rec["tool"]["name"].as_str(), Some("exhibit"));
    assert!(rec["tool"]["version"].as_str().is_some());
    assert!(rec["tool"]["git_revision"].as_str().is_some());
    let argv: Vec<&str> = rec["command_line"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        argv.contains(&"--evidence-number") && argv.contains(&"E-4"),
        "{argv:?}"
    );
    assert_eq!(
        rec["options"]["reader"]["block_size"].as_u64(),
        Some(1 << 20)
    );
    for key in ["name", "kernel", "os"] {
        assert!(
            rec["host"][key].as_str().is_some_and(|s| !s.is_empty()),
            "host.{key}"
        );
    }
    assert!(rec["times"]["started_utc"].as_str().unwrap().ends_with('Z'));
    assert!(rec["times"]["finished_utc"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(rec["times"]["host_utc_offset"].as_str().is_some());
    assert_eq!(rec["source"]["kind"].as_str(), Some("file"));
    assert_eq!(rec["source"]["logical_sector_size"].as_u64(), Some(512));
    let outputs = rec["outputs"].as_sequence().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["size"].as_u64(), Some(2 << 20));
    assert!(rec["throughput"]["megabytes_per_second"].as_f64().unwrap() > 0.0);
    assert!(rec["reader"]["queue_depth"].as_u64().is_some());
    // The piece list covers the media.
    let pieces = std::fs::read(with_ext(&base, "crc64")).unwrap();
    assert_eq!(&pieces[..8], b"EXHCRC64");
}

#[test]
fn split_segments_concatenate_to_the_source() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src", (3 << 20) + 1000, 3);
    let base = dir.path().join("img");
    acquire(&src, &base, &["--split", "1M"], 0);
    let mut joined = Vec::new();
    for i in 1..=4 {
        let seg = dir.path().join(format!("img.{i:03}"));
        joined.extend(std::fs::read(&seg).unwrap());
    }
    assert!(!dir.path().join("img.005").exists());
    assert!(!dir.path().join("img.raw").exists());
    assert_eq!(joined, std::fs::read(&src).unwrap());
    // The logs read the media from stdin; the record says how.
    let rec = record(&base);
    for check in record_checks(&rec) {
        sh_ok(&check, dir.path());
    }
    assert_eq!(rec["outputs"].as_sequence().unwrap().len(), 4);
}

#[test]
fn only_the_asked_hashes() {
    let dir = tempdir();
    let src = make_source(dir.path(), "src", 100_000, 1);
    let base = dir.path().join("img");
    acquire(&src, &base, &["--hash", "sha256"], 0);
    assert!(with_ext(&base, "sha256").exists());
    assert!(!with_ext(&base, "md5").exists());
    let rec = record(&base);
    assert!(rec["hashes"]["md5"].is_null());
    assert_eq!(
        rec["hashes"]["sha256"].as_str(),
        Some(coreutils_sum("sha256sum", &src).as_str())
    );
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn assert_refused(args: &[&str], dir: &Path, why: &str) {
    let before = listing(dir);
    let out = run_exit(2, args);
    let err = stderr(&out);
    assert!(err.contains(why), "{args:?}: expected '{why}' in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(listing(dir), before, "{args:?} changed files");
}

#[test]
fn refusals_leave_everything_untouched() {
    let dir = tempdir();
    let d = dir.path();
    let src = make_source(d, "src", 300_000, 5);
    let s = src.to_str().unwrap();
    let base = d.join("img");
    let b = base.to_str().unwrap();
    // Every output name that exists is refused, and nothing else is created.
    for ext in ["raw", "yaml", "map", "md5", "sha256", "crc64"] {
        let existing = with_ext(&base, ext);
        std::fs::write(&existing, b"earlier evidence").unwrap();
        assert_refused(&["acquire", s, "-o", b], d, "already exists");
        std::fs::remove_file(&existing).unwrap();
    }
    std::fs::write(d.join("seg.002"), b"earlier").unwrap();
    assert_refused(
        &[
            "acquire",
            s,
            "-o",
            d.join("seg").to_str().unwrap(),
            "--split",
            "100K",
        ],
        d,
        "already exists",
    );
    assert_refused(
        &["acquire", d.to_str().unwrap(), "-o", b],
        d,
        "is a directory",
    );
    assert_refused(
        &["acquire", d.join("missing").to_str().unwrap(), "-o", b],
        d,
        "No such file",
    );
    assert_refused(
        &["acquire", s, "-o", d.join("nodir/img").to_str().unwrap()],
        d,
        "does not exist",
    );
    assert_refused(
        &["acquire", s, "-o", b, "--block-size", "1000"],
        d,
        "multiple of 4096",
    );
    assert_refused(
        &["acquire", s, "-o", b, "--queue-depth", "0"],
        d,
        "queue-depth",
    );
    assert_refused(
        &["acquire", s, "-o", b, "--split", "100"],
        d,
        "multiple of 512",
    );
    assert_refused(&["acquire", s, "-o", b, "--hash", "crc7"], d, "crc7");
    assert_refused(
        &[
            "acquire",
            s,
            "-o",
            b,
            "--case",
            d.join("nocase.yaml").to_str().unwrap(),
        ],
        d,
        "nocase.yaml",
    );
    // The source itself as output, even with --overwrite.
    std::fs::write(d.join("same.yaml"), b"x").unwrap();
    let same = d.join("same");
    std::fs::copy(&src, with_ext(&same, "raw")).unwrap();
    let same_raw = with_ext(&same, "raw");
    assert_refused(
        &[
            "acquire",
            same_raw.to_str().unwrap(),
            "-o",
            same.to_str().unwrap(),
            "--overwrite",
        ],
        d,
        "is the source itself",
    );
    // --overwrite replaces earlier outputs.
    std::fs::write(with_ext(&base, "raw"), b"old").unwrap();
    acquire(&src, &base, &["--overwrite"], 0);
    assert_good_image(&src, &base);
}

#[test]
fn loop_devices_with_512_and_4096_byte_sectors() {
    if skip_without_loop("loop_devices_with_512_and_4096_byte_sectors") {
        return;
    }
    let dir = tempdir();
    for sector in [512u32, 4096] {
        let file = make_source(
            dir.path(),
            &format!("disk{sector}"),
            (5 << 20) + 3 * 4096,
            sector as u64,
        );
        let dev = LoopDevice::attach(&file, sector, true, false);
        for engine in ["uring", "sync"] {
            let base = dir.path().join(format!("img{sector}-{engine}"));
            acquire(&dev.path, &base, &["--io", engine], 0);
            assert_good_image(&file, &base);
            let rec = record(&base);
            assert_eq!(rec["source"]["kind"].as_str(), Some("disk"));
            assert_eq!(
                rec["source"]["logical_sector_size"].as_u64(),
                Some(sector as u64)
            );
            assert_eq!(rec["reader"]["direct_io"].as_bool(), Some(true));
            assert_eq!(
                rec["source"]["identity"]["loop_backing_file"]
                    .as_str()
                    .map(Path::new),
                Some(std::fs::canonicalize(&file).unwrap().as_path())
            );
        }
    }
}

/// `exhibit rescue` of a healthy disk is an acquisition too: the same image, hashes and logs
/// that `exhibit acquire` gives, read in large reads (io_uring) or single growing ones.
#[test]
fn rescue_of_a_healthy_device_is_a_good_image() {
    if skip_without_loop("rescue_of_a_healthy_device_is_a_good_image") {
        return;
    }
    let dir = tempdir();
    for sector in [512u32, 4096] {
        let file = make_source(
            dir.path(),
            &format!("disk{sector}"),
            (9 << 20) + 5 * 4096,
            7 + sector as u64,
        );
        let dev = LoopDevice::attach(&file, sector, true, false);
        for (engine, kind) in [("auto", "uring"), ("sync", "sync")] {
            let base = dir.path().join(format!("rescued{sector}-{engine}"));
            rescue_cmd(&dev.path, &base, &["--io", engine]).exits(0);
            assert_good_image(&file, &base);
            let rec = record(&base);
            assert_eq!(rec["reader"]["engine"].as_str(), Some(kind));
        }
    }
}

#[test]
fn a_partition_is_its_own_source() {
    if skip_without_loop("a_partition_is_its_own_source") {
        return;
    }
    let dir = tempdir();
    let file = make_source(dir.path(), "disk", 8 << 20, 11);
    // One partition from sector 2048 to the end.
    if !sfdisk(&file, b"label: dos\nstart=2048, type=83\n") {
        eprintln!("SKIPPED a_partition_is_its_own_source: sfdisk unavailable");
        return;
    }
    let dev = LoopDevice::attach(&file, 512, true, true);
    let part = std::path::PathBuf::from(format!("{}p1", dev.as_str()));
    assert!(part.exists(), "no partition node {}", part.display());
    let base = dir.path().join("part");
    acquire(&part, &base, &[], 0);
    let whole = std::fs::read(&file).unwrap();
    assert_eq!(
        std::fs::read(with_ext(&base, "raw")).unwrap(),
        &whole[2048 * 512..]
    );
    let rec = record(&base);
    assert_eq!(rec["source"]["kind"].as_str(), Some("partition"));
    assert_eq!(
        rec["source"]["identity"]["parent_disk"].as_str(),
        dev.path.file_name().and_then(|n| n.to_str())
    );
    assert_eq!(
        rec["source"]["identity"]["partition_start_sector"].as_u64(),
        Some(2048)
    );
}

#[test]
fn clone_onto_a_device_and_refusals_around_it() {
    if skip_without_loop("clone_onto_a_device_and_refusals_around_it") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let src_file = make_source(d, "src", 3 << 20, 21);
    let src = LoopDevice::attach(&src_file, 512, true, false);
    let target_file = d.join("target");
    let target = LoopDevice::new_file(&target_file, 4 << 20, 0xEE);
    let small_file = d.join("small");
    let small = LoopDevice::new_file(&small_file, 1 << 20, 0);

    let base = d.join("clone");
    acquire(&src.path, &base, &["--clone", target.as_str()], 0);
    let cloned = std::fs::read(&target_file).unwrap();
    assert_eq!(&cloned[..3 << 20], &std::fs::read(&src_file).unwrap()[..]);
    assert!(
        cloned[3 << 20..].iter().all(|&b| b == 0xEE),
        "beyond the source is untouched"
    );
    for check in record_checks(&record(&base)) {
        sh_ok(&check, d);
    }

    let before = std::fs::read(&small_file).unwrap();
    let out = run_exit(
        2,
        &[
            "acquire",
            src.as_str(),
            "-o",
            d.join("c2").to_str().unwrap(),
            "--clone",
            small.as_str(),
        ],
    );
    assert!(stderr(&out).contains("would not fit"));
    assert_eq!(std::fs::read(&small_file).unwrap(), before);

    let out = run_exit(
        2,
        &[
            "acquire",
            src.as_str(),
            "-o",
            d.join("c3").to_str().unwrap(),
            "--clone",
            src.as_str(),
        ],
    );
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert!(!d.join("c3.yaml").exists());
}

#[test]
fn an_output_on_the_source_filesystem_is_refused() {
    if skip_without_loop("an_output_on_the_source_filesystem_is_refused") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let fs_file = d.join("fs.img");
    std::fs::write(&fs_file, vec![0u8; 16 << 20]).unwrap();
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&fs_file)
        .status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED an_output_on_the_source_filesystem_is_refused: mkfs.ext4 unavailable");
        return;
    }
    let dev = LoopDevice::attach(&fs_file, 512, false, false);
    let mnt = Mount::new(&dev.path, &d.join("mnt"));
    let before = std::fs::read_dir(&mnt.dir).unwrap().count();
    let out = run_exit(
        2,
        &[
            "acquire",
            dev.as_str(),
            "-o",
            mnt.dir.join("img").to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert!(err.contains("lives on the source device"), "{err}");
    assert_eq!(
        std::fs::read_dir(&mnt.dir).unwrap().count(),
        before,
        "nothing written"
    );
    drop(mnt);
}

/// Acquires a 1 GiB sparse file in 4 KiB reads (too slow to finish) with `extra` flags, sends
/// `signal` after 400 ms, and asserts that the run fails; returns the directory and the base.
fn acquire_stopped_by(signal: i32, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let src = dir.path().join("big");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(1 << 30).unwrap();
    let base = dir.path().join("img");
    let mut child = exhibit()
        .args([
            "acquire",
            src.to_str().unwrap(),
            "-o",
            base.to_str().unwrap(),
            "--quiet",
        ])
        .args(["--io", "sync", "--block-size", "4K"])
        .args(extra)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    send_signal(&child, signal);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "an interrupted run fails");
    (dir, base)
}

#[test]
fn an_interrupted_acquisition_says_so() {
    let (_dir, base) = acquire_stopped_by(libc::SIGINT, &[]);
    let rec = record(&base);
    assert_eq!(rec["outcome"]["status"].as_str(), Some("interrupted"));
    assert!(rec["hashes"].is_null(), "no hashes for an incomplete image");
    assert!(
        !with_ext(&base, "sha256").exists(),
        "no hash log for an incomplete image"
    );
    let map = std::fs::read_to_string(with_ext(&base, "map")).unwrap();
    assert!(
        map.lines().any(|l| l.ends_with(" ?")),
        "the map shows what was not read:\n{map}"
    );
}

#[test]
fn tmpfs_and_the_page_cache_are_recorded_truthfully() {
    let shm = Path::new("/dev/shm");
    let is_tmpfs = std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/dev/shm") && l.contains("tmpfs"))
    });
    if !is_tmpfs {
        eprintln!("SKIPPED tmpfs_and_the_page_cache_are_recorded_truthfully: no tmpfs at /dev/shm");
        return;
    }
    let src_dir = tempfile::Builder::new()
        .prefix("exhibit-test-")
        .tempdir_in(shm)
        .unwrap();
    let src = make_source(src_dir.path(), "src", (1 << 20) + 777, 4);
    // tmpfs learned O_DIRECT in Linux 6.6; whatever this kernel does, the record must say it.
    let direct_ok = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&src)
            .is_ok()
    };
    let dir = tempdir();
    for engine in ["uring", "sync"] {
        let base = dir.path().join(format!("img-{engine}"));
        acquire(&src, &base, &["--io", engine], 0);
        assert_good_image(&src, &base);
        let rec = record(&base);
        assert_eq!(rec["reader"]["direct_io"].as_bool(), Some(direct_ok));
        if !direct_ok {
            assert!(
                rec["reader"]["engine_reason"]
                    .as_str()
                    .unwrap()
                    .contains("O_DIRECT"),
                "{:?}",
                rec["reader"]
            );
        }
    }
    // --no-direct is always the page cache, and says so.
    let base = dir.path().join("img-cached");
    acquire(&src, &base, &["--no-direct"], 0);
    assert_good_image(&src, &base);
    let rec = record(&base);
    assert_eq!(rec["reader"]["direct_io"].as_bool(), Some(false));
    assert!(rec["reader"]["engine_reason"]
        .as_str()
        .unwrap()
        .contains("O_DIRECT"));
    // Outputs on tmpfs too: written without O_DIRECT.
    let base = src_dir.path().join("img");
    acquire(&src, &base, &[], 0);
    assert_good_image(&src, &base);
}

#[test]
fn sigterm_stops_cleanly_too() {
    let (_dir, base) = acquire_stopped_by(libc::SIGTERM, &["--format", "raw,e01"]);
    let rec = record(&base);
    assert_eq!(rec["outcome"]["status"].as_str(), Some("interrupted"));
    let kinds = output_kinds(&rec);
    assert!(kinds.contains(&"e01-segment-incomplete"), "{kinds:?}");
    // libewf refuses the unfinished E01 (no `done` section).
    assert!(
        ewfverify_refuses(&with_ext(&base, "E01")).unwrap_or(true),
        "an interrupted E01 must not verify"
    );
}

#[test]
fn set_readonly_makes_the_kernel_refuse_writes_to_the_source() {
    if skip_without_loop("set_readonly_makes_the_kernel_refuse_writes_to_the_source") {
        return;
    }
    let dir = tempdir();
    let file = make_source(dir.path(), "disk", 2 << 20, 31);
    let dev = LoopDevice::attach(&file, 512, false, false);
    let getro = || {
        let out = Command::new("blockdev")
            .args(["--getro", dev.as_str()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(getro(), "0");
    let base = dir.path().join("img");
    acquire(&dev.path, &base, &["--set-readonly"], 0);
    assert_good_image(&file, &base);
    assert_eq!(getro(), "1");
    assert_eq!(
        record(&base)["source"]["kernel_read_only"].as_bool(),
        Some(true)
    );
    // A write through the device node is now refused by the kernel.
    let out = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", dev.as_str()),
            "bs=512",
            "count=1",
            "oflag=direct",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the kernel accepted a write to a read-only device"
    );
    assert_eq!(std::fs::read(&file).unwrap(), pattern(2 << 20, 31));
    // A file source cannot be flagged.
    run_exit(
        2,
        &[
            "acquire",
            file.to_str().unwrap(),
            "-o",
            dir.path().join("f").to_str().unwrap(),
            "--set-readonly",
        ],
    );
}
