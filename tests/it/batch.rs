//! `exhibit batch JOBS.yaml`: three loop devices imaged at once (one of them the faulty
//! device), the refusals that start nothing (one source under two names, overlapping outputs,
//! an output on another job's source, unknown keys and bad values), a drive that vanishes
//! while the others complete, Ctrl-C stopping every job with an `interrupted` record, and the
//! summary as JSON.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use exhibit::audit::AuditRecord;

use crate::support::*;

/// Writes `JOBS.yaml` in `dir` with one entry per `(source, base, extra lines)`.
fn jobs_file(dir: &Path, jobs: &[(&Path, &Path, &[&str])]) -> PathBuf {
    let mut text = String::from("jobs:\n");
    for (source, base, extra) in jobs {
        text.push_str(&format!(
            "  - source: '{}'\n    output: '{}'\n",
            source.display(),
            base.display()
        ));
        for line in *extra {
            text.push_str(&format!("    {line}\n"));
        }
    }
    let path = dir.join("jobs.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn batch(jobs: &Path) -> Command {
    let mut c = exhibit();
    c.arg("batch").arg(jobs);
    c
}

fn read_record(base: &Path) -> AuditRecord {
    AuditRecord::read(&with_ext(base, "yaml")).unwrap()
}

/// A read-only loop device over a pattern file of `size` bytes.
fn loop_source(dir: &Path, name: &str, size: usize, seed: u64) -> (LoopDevice, Vec<u8>) {
    let file = make_source(dir, name, size, seed);
    let data = std::fs::read(&file).unwrap();
    (LoopDevice::attach(&file, 512, true, false), data)
}

/// The files of `dir` other than those the test made (`keep`).
fn made_in(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

#[test]
fn three_drives_at_once_one_of_them_faulty() {
    require_faulty_device!();
    let dir = tempdir();
    let (a, a_data) = loop_source(dir.path(), "a.img", 32 << 20, 1);
    let (b, b_data) = loop_source(dir.path(), "b.img", 24 << 20, 2);
    let bad = [100u64, 101, 5000, 20000];
    let mut builder = FaultyDevice::builder(16 << 20).read_delay(Duration::from_millis(2));
    for &s in &bad {
        builder = builder.bad(s);
    }
    let dev = builder.build();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (ba, bb, bf) = (out.join("a"), out.join("b"), out.join("f"));
    let jobs = jobs_file(
        dir.path(),
        &[
            (&a.path, &ba, &["case-number: 0042", "examiner: Jane Doe"]),
            (&b.path, &bb, &["format: raw,e01", "split: 8M"]),
            (&dev.device, &bf, &["retries: 1"]),
        ],
    );
    let run = batch(&jobs).exits(1);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();

    // Each image is its source (the faulty one with its bad sectors as zeros).
    assert_eq!(
        sha256_hex(&std::fs::read(with_ext(&ba, "raw")).unwrap()),
        sha256_hex(&a_data)
    );
    let mut split = Vec::new();
    for n in 1..=3 {
        split.extend(std::fs::read(with_ext(&bb, &format!("{n:03}"))).unwrap());
    }
    assert!(!with_ext(&bb, "004").exists());
    assert_eq!(sha256_hex(&split), sha256_hex(&b_data));
    assert!(with_ext(&bb, "E01").exists());
    let image = std::fs::read(with_ext(&bf, "raw")).unwrap();
    assert_eq!(sha256_hex(&image), sha256_hex(&dev.expected_image(&bad)));

    // Each its own record, exit status and options.
    let (ra, rb, rf) = (read_record(&ba), read_record(&bb), read_record(&bf));
    assert_eq!(ra.outcome.status, "complete");
    assert_eq!(rb.outcome.status, "complete");
    assert_eq!(rf.outcome.status, "complete-with-unreadable-sectors");
    assert_eq!(rf.outcome.exit_code, Some(1));
    assert_eq!(unreadable_runs(&rf), runs_of(&bad));
    assert_eq!(ra.case.case_number.as_deref(), Some("0042"));
    assert_eq!(ra.case.examiner.as_deref(), Some("Jane Doe"));
    assert_eq!(rf.options["reader"]["retries"].as_u64(), Some(1));
    assert_eq!(rb.options["split"].as_u64(), Some(8 << 20));
    hash_logs_check(&ba, &["md5", "sha1", "sha256"]);

    // At the same time: every job started before any finished.
    let records = [&ra, &rb, &rf];
    let last_start = records.iter().map(|r| r.times.started_utc.clone()).max();
    let first_end = records
        .iter()
        .map(|r| r.times.finished_utc.clone().unwrap())
        .min();
    assert!(last_start.unwrap() < first_end.unwrap(), "{records:?}");

    // The summary: one row per drive with its outcome, bytes, unreadable sectors and MD5.
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(rows[0].starts_with("JOB"), "{stdout}");
    assert!(
        rows[0].contains("UNREADABLE") && rows[0].contains("MD5"),
        "{stdout}"
    );
    for (row, (r, source, sectors)) in rows[1..].iter().zip([
        (&ra, &a.path, 0),
        (&rb, &b.path, 0),
        (&rf, &dev.device, bad.len()),
    ]) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], source.to_str().unwrap(), "{stdout}");
        assert_eq!(cells[2], r.outcome.status, "{stdout}");
        assert_eq!(cells[3], r.source.size.to_string(), "{stdout}");
        assert_eq!(cells[4], sectors.to_string(), "{stdout}");
        assert_eq!(Some(cells[5]), r.hashes.as_ref().unwrap().md5.as_deref());
    }
    assert_eq!(rows.len(), 4, "{stdout}");
}

#[test]
fn one_source_twice_or_overlapping_outputs_start_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let s = make_source(d, "s.img", 1 << 20, 3);
    let other = make_source(d, "t.img", 1 << 20, 4);
    std::os::unix::fs::symlink(&s, d.join("link.img")).unwrap();
    std::fs::hard_link(&s, d.join("hard.img")).unwrap();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let (x, y) = (out.join("x"), out.join("y"));
    let made = ["s.img", "t.img", "link.img", "hard.img", "jobs.yaml", "out"];
    let refused = |jobs: &[(&Path, &Path, &[&str])], needle: &str| {
        let file = jobs_file(d, jobs);
        let run = batch(&file).exits(2);
        let err = stderr(&run);
        assert!(err.contains(needle), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(made_in(&out, &[]).is_empty(), "{:?}", made_in(&out, &[]));
        assert_eq!(made_in(d, &made), Vec::<String>::new());
    };
    for twin in ["link.img", "hard.img"] {
        refused(
            &[(&s, &x, &[]), (&d.join(twin), &y, &[])],
            "job 1 and job 2 read the same source",
        );
    }
    // One BASE under two spellings.
    refused(
        &[(&s, &x, &[]), (&other, &out.join(".").join("x"), &[])],
        "job 1 and job 2 both write",
    );
    // A job writing BASE.raw onto another job's source file.
    let source_named_like_an_output = out.join("z.raw");
    std::fs::copy(&s, &source_named_like_an_output).unwrap();
    let file = jobs_file(
        d,
        &[
            (&source_named_like_an_output, &x, &[]),
            (&other, &out.join("z"), &[]),
        ],
    );
    let err = stderr(&batch(&file).exits(2));
    assert!(
        err.contains("job 2's outputs against job 1's source"),
        "{err}"
    );
    assert!(err.contains("is the source itself"), "{err}");
    std::fs::remove_file(&source_named_like_an_output).unwrap();
    // Unknown keys and bad values, named; nothing starts for the good entry either.
    refused(
        &[(&s, &x, &[]), (&other, &y, &["colour: red"])],
        "job 2, key 'colour': unknown key",
    );
    refused(
        &[(&s, &x, &["split: 2Q"]), (&other, &y, &[])],
        "job 1, key 'split': invalid value '2Q'",
    );
    refused(
        &[(&s, &x, &["block-size: 1000"]), (&other, &y, &[])],
        "job 1 (",
    );
    refused(
        &[(&s, &x, &[]), (&d.join("missing.img"), &y, &[])],
        "job 2 (",
    );
    // BASE.yaml of a job would be JOBS.yaml itself.
    refused(
        &[
            (&s, &x, &[]),
            (&other, &d.join("jobs"), &["overwrite: true"]),
        ],
        "job 2 would write",
    );

    // A block device under two names (its node and a link to it).
    if skip_without_loop("one_source_twice: loop devices") {
        return;
    }
    let lo = LoopDevice::attach(&s, 512, true, false);
    let link = d.join("disk-by-id");
    std::os::unix::fs::symlink(&lo.path, &link).unwrap();
    let mut made = made.to_vec();
    made.push("disk-by-id");
    let file = jobs_file(d, &[(&lo.path, &x, &[]), (&link, &y, &[])]);
    let err = stderr(&batch(&file).exits(2));
    assert!(err.contains("read the same source"), "{err}");
    assert!(made_in(&out, &[]).is_empty());
}

#[test]
fn a_hostile_jobs_file_is_refused_at_once() {
    let dir = tempdir();
    let fifo = dir.path().join("jobs.yaml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let child = batch(&fifo).stderr(Stdio::piped()).spawn().unwrap();
    let (out, took) = wait_bounded(child, Duration::from_secs(20));
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));

    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    let err = stderr(&batch(&big).exits(2));
    assert!(err.contains("big.yaml"), "{err}");
}

#[test]
fn the_summary_as_json_has_every_job_with_its_outcome_hashes_and_error() {
    let dir = tempdir();
    let d = dir.path();
    let a = make_source(d, "a.img", 3 << 20, 8);
    let b = make_source(d, "b.img", 2 << 20, 9);
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let (ba, bb) = (out.join("a"), out.join("b"));
    // Job 2 is refused when it starts: its image exists.
    std::fs::write(with_ext(&bb, "raw"), b"mine").unwrap();
    let jobs = jobs_file(d, &[(&a, &ba, &[]), (&b, &bb, &[])]);
    let run = batch(&jobs).args(["--json", "--quiet"]).exits(2);
    let v: serde_json::Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&run.stdout)));
    assert_eq!(v["version"], 1);
    assert_eq!(v["exit_code"], 2);
    let js = v["jobs"].as_array().unwrap();
    assert_eq!(js.len(), 2, "{v}");

    let ra = read_record(&ba);
    let h = ra.hashes.as_ref().unwrap();
    let j = &js[0];
    assert_eq!(j["job"], 1);
    assert_eq!(j["source"], a.to_str().unwrap());
    assert_eq!(j["output"], ba.to_str().unwrap());
    assert_eq!(j["outcome"], "complete");
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["bytes"].as_u64(), Some(3 << 20));
    assert_eq!(j["unreadable_sectors"], 0);
    assert_eq!(j["md5"].as_str(), h.md5.as_deref());
    assert_eq!(j["sha256"].as_str(), h.sha256.as_deref());
    assert_eq!(j["record"], with_ext(&ba, "yaml").to_str().unwrap());
    assert!(j["seconds"].as_f64().unwrap() >= 0.0);
    assert!(j["error"].is_null());

    let j = &js[1];
    assert_eq!(j["job"], 2);
    assert_eq!(j["outcome"], "refused");
    assert_eq!(j["exit_code"], 2);
    assert!(j["md5"].is_null() && j["record"].is_null(), "{j}");
    assert!(j["error"].as_str().unwrap().contains("exists"), "{j}");
    assert_eq!(std::fs::read(with_ext(&bb, "raw")).unwrap(), b"mine");

    // Without --json the table, as before.
    let table = batch(&jobs).arg("--quiet").exits(2);
    assert!(table.stdout.is_empty(), "--quiet prints no table");
}

#[test]
fn a_vanishing_drive_fails_alone() {
    require_faulty_device!();
    let dir = tempdir();
    let (a, a_data) = loop_source(dir.path(), "a.img", 16 << 20, 5);
    let (b, b_data) = loop_source(dir.path(), "b.img", 16 << 20, 6);
    let dev = FaultyDevice::builder(64 << 20)
        .read_delay(Duration::from_millis(5))
        .build();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (ba, bb, bf) = (out.join("a"), out.join("b"), out.join("f"));
    let jobs = jobs_file(
        dir.path(),
        &[
            (&a.path, &ba, &[]),
            (&dev.device, &bf, &[]),
            (&b.path, &bb, &[]),
        ],
    );
    let child = batch(&jobs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    dev.wait_for_reads(40);
    dev.abort();
    let (run, _) = wait_bounded(child, Duration::from_secs(60));
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let err = stderr(&run);
    assert!(
        err.contains(&format!("job 2 ({})", dev.device.display())) && err.contains("vanished"),
        "{err}"
    );
    for (base, data) in [(&ba, &a_data), (&bb, &b_data)] {
        assert_eq!(read_record(base).outcome.status, "complete");
        assert_eq!(
            sha256_hex(&std::fs::read(with_ext(base, "raw")).unwrap()),
            sha256_hex(data)
        );
    }
    let rf = read_record(&bf);
    assert_eq!(rf.outcome.status, "failed");
    assert!(rf.outcome.reason.unwrap().contains("vanished"));
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let row = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("2"))
        .unwrap();
    assert!(row.contains("failed"), "{stdout}");
}

#[test]
fn ctrl_c_stops_every_job_and_each_record_says_interrupted() {
    require_faulty_device!();
    let dir = tempdir();
    let devs: Vec<FaultyDevice> = (0..2u64)
        .map(|i| {
            FaultyDevice::builder(64 << 20)
                .seed(10 + i)
                .read_delay(Duration::from_millis(10))
                .build()
        })
        .collect();
    let bases: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("ev{i}"))).collect();
    let jobs = jobs_file(
        dir.path(),
        &[
            (&devs[0].device, &bases[0], &["format: raw,e01"]),
            (&devs[1].device, &bases[1], &[]),
        ],
    );
    let child = batch(&jobs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for d in &devs {
        d.wait_for_reads(10);
    }
    send_signal(&child, libc::SIGINT);
    let (run, took) = wait_bounded(child, Duration::from_secs(60));
    assert!(took < Duration::from_secs(10), "took {took:?} after Ctrl-C");
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    for base in &bases {
        let r = read_record(base);
        assert_eq!(r.outcome.status, "interrupted", "{r:?}");
        assert_eq!(r.outcome.exit_code, Some(2));
    }
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(stdout.matches("interrupted").count(), 2, "{stdout}");
}
