//! A hostile world, part "one job, one source": a source that vanishes mid-run (the faulty
//! device's FUSE connection aborted, so every read fails with EIO as from an unplugged disk),
//! one that never reads again while still present (the `--give-up-after` bound), a resume
//! from another disk, a rescue image shorter than its map, and signals in the phases before
//! the read loop. Each ends promptly with exit 2, one line saying why, a record that says
//! so and a map whose unread rest is `?`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use exhibit::map::BlockState;

use crate::support::*;

/// The byte in "source stopped responding at byte X".
fn stopped_at(stderr: &str) -> u64 {
    let tail = stderr
        .split("source stopped responding at byte ")
        .nth(1)
        .unwrap_or_else(|| panic!("no 'source stopped responding' in:\n{stderr}"));
    tail.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Everything before `at` finished, everything from `at` untried: nothing called bad.
fn assert_map_split_at(base: &Path, at: u64, size: u64) {
    let map = load_map(&with_ext(base, "map"));
    let text = std::fs::read_to_string(with_ext(base, "map")).unwrap();
    assert_eq!(map.size(), size);
    assert_eq!(map.bytes_in(BlockState::Finished), at, "{text}");
    assert_eq!(map.bytes_in(BlockState::NonTried), size - at, "{text}");
    if at < size {
        assert_eq!(map.state_at(at), Some(BlockState::NonTried), "{text}");
    }
}

/// The record says failed, with the reason.
fn assert_record_failed(base: &Path, needle: &str) {
    let rec = record(base);
    assert_eq!(rec["outcome"]["status"].as_str(), Some("failed"), "{rec:?}");
    let reason = rec["outcome"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("source stopped responding at byte"),
        "{reason}"
    );
    assert!(reason.contains(needle), "{reason}");
}

/// The one-line error of a stopped run.
fn assert_one_line(out: &Output, needle: &str) -> u64 {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{err}");
    assert!(lines[0].starts_with("exhibit: error: "), "{err}");
    assert!(err.contains(needle), "{err}");
    stopped_at(&err)
}

/// A slow device (so the run is in the middle when the connection goes) aborted after some
/// reads; the run must end within seconds.
fn vanish_mid_run(cmd: &mut std::process::Command, dev: &FaultyDevice) -> Output {
    let child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    dev.wait_for_reads(40);
    dev.abort();
    let (out, took) = wait_bounded(child, Duration::from_secs(60));
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} after the abort"
    );
    out
}

/// An acquisition with `engine_args` whose source vanishes mid-run: exit 2 with one line at a
/// block boundary, the map split there, a `failed` record, and what was read is the source's.
fn acquire_stops_when_vanished(engine_args: &[&str]) {
    let dev = FaultyDevice::builder(64 << 20)
        .read_delay(Duration::from_millis(5))
        .build();
    let base = dev.dir.join("ev");
    let mut cmd = exhibit();
    cmd.arg("acquire")
        .arg(&dev.device)
        .arg("-o")
        .arg(&base)
        .arg("--quiet")
        .args(engine_args);
    let out = vanish_mid_run(&mut cmd, &dev);
    let at = assert_one_line(&out, "the source vanished");
    assert!(
        stderr(&out).contains("cannot be reached"),
        "{}",
        stderr(&out)
    );
    assert!(at > 0 && at < dev.size, "stopped at {at}");
    assert_eq!(at % (1 << 20), 0, "a block boundary: {at}");
    assert_map_split_at(&base, at, dev.size);
    assert_record_failed(&base, "vanished");
    let raw = std::fs::read(with_ext(&base, "raw")).unwrap();
    assert!(raw[..at as usize] == dev.data()[..at as usize]);
}

#[test]
fn acquire_stops_when_the_source_vanishes() {
    require_faulty_device!();
    acquire_stops_when_vanished(&[]);
}

#[test]
fn acquire_pread_engine_stops_when_the_source_vanishes() {
    require_faulty_device!();
    acquire_stops_when_vanished(&["--io", "sync"]);
}

#[test]
fn rescue_stops_when_the_source_vanishes() {
    require_faulty_device!();
    let dev = FaultyDevice::builder(64 << 20)
        .read_delay(Duration::from_millis(5))
        .build();
    let base = dev.dir.join("res");
    let out = vanish_mid_run(&mut rescue_cmd(&dev.device, &base, &[]), &dev);
    let at = assert_one_line(&out, "the source vanished");
    assert!(at > 0 && at < dev.size, "stopped at {at}");
    assert_map_split_at(&base, at, dev.size);
    assert_record_failed(&base, "vanished");
    let raw = std::fs::read(with_ext(&base, "raw")).unwrap();
    assert!(raw[..at as usize] == dev.data()[..at as usize]);
}

/// A device whose bytes 4 MiB..12 MiB never read while it stays present: with
/// `--give-up-after 1M` both jobs stop inside that stretch and leave it all untried.
#[test]
fn a_source_that_never_reads_again_is_given_up_on() {
    require_faulty_device!();
    let dev = FaultyDevice::builder(16 << 20)
        .fault_bytes(4 << 20, 8 << 20, Fault::Always(libc::EIO))
        .build();
    let base = dev.dir.join("ev");
    let started = Instant::now();
    let out = exhibit()
        .arg("acquire")
        .arg(&dev.device)
        .arg("-o")
        .arg(&base)
        .args(["--quiet", "--give-up-after", "1M"])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let at = assert_one_line(&out, "no good read across");
    assert_eq!(at, 4 << 20);
    assert_map_split_at(&base, at, dev.size);
    assert_record_failed(&base, "--give-up-after 1M");

    let rbase = dev.dir.join("res");
    let out = rescue_cmd(&dev.device, &rbase, &["--give-up-after", "1M"])
        .output()
        .unwrap();
    let at = assert_one_line(&out, "no good read across");
    assert_eq!(at, 4 << 20);
    assert_map_split_at(&rbase, at, dev.size);
    assert_record_failed(&rbase, "--give-up-after 1M");
}

/// A rescue whose map says everything is read only hashes (and with `--format e01` seals) the
/// image it describes: a 1 GiB one (sparse) takes seconds in either phase. A SIGTERM there
/// ends the run within a second or two, with an `interrupted` record.
#[test]
fn a_signal_while_hashing_or_sealing_ends_the_rescue() {
    let dir = tempdir();
    let size: u64 = 1 << 30;
    let source = dir.path().join("disk.img");
    std::fs::File::create(&source)
        .unwrap()
        .set_len(size)
        .unwrap();
    let base = dir.path().join("res");
    std::fs::write(
        with_ext(&base, "map"),
        format!("# Mapfile. Created by GNU ddrescue\n0x00000000 +\n0x00000000 {size:#x} +\n"),
    )
    .unwrap();
    std::fs::File::create(with_ext(&base, "raw"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let e01 = with_ext(&base, "E01");
    for sealing in [false, true] {
        let args: &[&str] = if sealing { &["--format", "e01"] } else { &[] };
        let child = rescue_cmd(&source, &base, args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        if sealing {
            while !e01.exists() {
                assert!(started.elapsed() < Duration::from_secs(120), "never sealed");
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(300));
        } else {
            std::thread::sleep(Duration::from_millis(700));
        }
        send_signal(&child, libc::SIGTERM);
        let (out, took) = wait_bounded(child, Duration::from_secs(120));
        assert!(took < Duration::from_secs(3), "took {took:?} after SIGTERM");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
        let rec = record(&base);
        assert_eq!(
            rec["outcome"]["status"].as_str(),
            Some("interrupted"),
            "{rec:?}"
        );
    }
}

/// A rescue resumed with another disk of the same size (same bytes even) is refused: its map
/// names the first disk. `--force-source` resumes anyway, and the record lists both runs; a
/// map without our identity line (GNU ddrescue's) still resumes, as one unknown earlier run.
#[test]
fn a_rescue_refuses_to_resume_from_another_disk() {
    require_faulty_device!();
    let first = FaultyDevice::builder(2048 * 512).bad(100).build();
    let other = FaultyDevice::builder(2048 * 512).bad(100).build();
    let base = first.dir.join("res");
    rescue_cmd(&first.device, &base, &[]).exits(1);
    let map_path = with_ext(&base, "map");
    let map = std::fs::read_to_string(&map_path).unwrap();
    assert!(map.contains("# exhibit-source: size=1048576"), "{map}");
    assert!(map.contains("loop-backing-file="), "{map}");
    if have("ddrescuelog") {
        let out = std::process::Command::new("ddrescuelog")
            .arg("-t")
            .arg(&map_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }

    let out = rescue_cmd(&other.device, &base, &[]).exits(2);
    let err = stderr(&out);
    assert!(err.contains("belongs to another source"), "{err}");
    assert!(err.contains("--force-source"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&map_path).unwrap(),
        map,
        "map untouched"
    );

    rescue_cmd(&other.device, &base, &["--force-source"]).exits(1);
    let rec = record(&base);
    let runs = rec["runs"].as_sequence().expect("runs");
    assert_eq!(runs.len(), 2, "{rec:?}");
    let sources: Vec<&str> = runs.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_ne!(sources[0], sources[1]);
    assert_eq!(runs[0]["rescued_bytes"].as_u64(), Some(2047 * 512));

    // A map as GNU ddrescue writes it (no exhibit lines) resumes, and the record says so.
    let gnu: String = std::fs::read_to_string(&map_path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("# exhibit-"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&map_path, gnu).unwrap();
    rescue_cmd(&first.device, &base, &[]).exits(1);
    let rec = record(&base);
    let runs = rec["runs"].as_sequence().expect("runs");
    assert_eq!(runs.len(), 2, "{rec:?}");
    assert!(runs[0]["source"].as_str().unwrap().contains("GNU ddrescue"));
}

/// An image cut shorter than what its map says was rescued is refused, naming both sizes.
#[test]
fn a_rescue_image_shorter_than_its_map_is_refused() {
    let dir = tempdir();
    let source = make_source(dir.path(), "disk.img", 4 << 20, 7);
    let base = dir.path().join("res");
    rescue_cmd(&source, &base, &[]).exits(0);
    truncate(&with_ext(&base, "raw"), 1 << 20);
    let out = rescue_cmd(&source, &base, &[]).exits(2);
    let err = stderr(&out);
    assert!(err.contains("is 1048576 bytes"), "{err}");
    assert!(err.contains("up to byte 4194304"), "{err}");
}

/// The same file (same device and inode) with other bytes is another source too: the map
/// keeps the SHA-256 of its first finished MiB, and a resumed run reads it again.
#[test]
fn a_rescue_refuses_a_source_whose_first_mib_changed() {
    let dir = tempdir();
    let source = make_source(dir.path(), "disk.img", 4 << 20, 11);
    let base = dir.path().join("res");
    rescue_cmd(&source, &base, &[]).exits(0);
    let map = std::fs::read_to_string(with_ext(&base, "map")).unwrap();
    assert!(map.contains("; first-mib=0:"), "{map}");
    rescue_cmd(&source, &base, &[]).exits(0);
    flip(&source, 4096);
    let out = rescue_cmd(&source, &base, &[]).exits(2);
    let err = stderr(&out);
    assert!(err.contains("holds other bytes at 0..1048576"), "{err}");
    rescue_cmd(&source, &base, &["--force-source"]).exits(0);
}

/// SIGTERM while an acquisition of a slow device has not handed on its first block (opening,
/// refusals, E01 set-up, the first reads in flight): it ends promptly, `interrupted`, exit 2.
/// (Reads in flight are waited for, since the kernel writes into their buffers: a shallow
/// queue keeps that wait short on this 300 ms-per-request device.)
#[test]
fn a_signal_before_the_first_block_ends_the_acquisition() {
    require_faulty_device!();
    let dev = FaultyDevice::builder(16 << 20)
        .read_delay(Duration::from_millis(300))
        .build();
    for (i, extra) in [
        &["--format", "raw,e01", "--queue-depth", "2"][..],
        &["--io", "sync"][..],
    ]
    .iter()
    .enumerate()
    {
        let base = dev.dir.join(format!("ev{i}"));
        let child = exhibit()
            .arg("acquire")
            .arg(&dev.device)
            .arg("-o")
            .arg(&base)
            .arg("--quiet")
            .args(*extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        send_signal(&child, libc::SIGTERM);
        let (out, took) = wait_bounded(child, Duration::from_secs(120));
        assert!(took < Duration::from_secs(5), "took {took:?} after SIGTERM");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
        let rec = record(&base);
        assert_eq!(rec["outcome"]["status"].as_str(), Some("interrupted"));
    }
}

/// A file source whose FUSE filesystem goes away fails its reads with ENOTCONN (not a media
/// error; through io_uring they never complete at all): the job still says the source
/// stopped responding, and why, within seconds.
#[test]
fn a_file_source_on_a_dead_fuse_mount_stops_the_job() {
    require_faulty_device!();
    for engine in ["uring", "sync"] {
        let dev = FaultyDevice::builder(64 << 20)
            .read_delay(Duration::from_millis(5))
            .build();
        let base = dev.dir.join("ev");
        let mut cmd = exhibit();
        cmd.arg("acquire")
            .arg(dev.backing_file())
            .arg("-o")
            .arg(&base)
            .args(["--quiet", "--io", engine]);
        let out = vanish_mid_run(&mut cmd, &dev);
        let at = assert_one_line(&out, "the source vanished");
        assert!(at > 0 && at < dev.size, "{engine}: stopped at {at}");
        assert_map_split_at(&base, at, dev.size);
        assert_record_failed(&base, "vanished");
    }
}
