//! `acquire -o s3://…` against a real Garage: every output becomes an object with the name it
//! has on disk, byte-equal to a local run's (the record and map aside: they carry times), the
//! E01 passes ewfverify, an existing BASE is refused, a wrong secret is one clear line, and a
//! cluster that loses one node finishes while one that loses two (or a server that goes away)
//! fails with nothing presented as complete.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::garage::{self, Garage};
use crate::support::*;

const MIB: usize = 1 << 20;

fn acquire_to(g: &Garage, source: &Path, base: &str, extra: &[&str]) -> Command {
    let mut cmd = exhibit();
    cmd.arg("acquire")
        .arg(source)
        .arg("-o")
        .arg(base)
        .arg("--quiet");
    cmd.args(extra);
    g.command_env(&mut cmd);
    cmd
}

/// Every object under `prefix`, downloaded into `dir` by its file name.
fn download(g: &Garage, prefix: &str, dir: &Path) -> Vec<String> {
    let c = g.client();
    std::fs::create_dir_all(dir).unwrap();
    let mut names = Vec::new();
    for o in c.list_objects(prefix, 1000).unwrap() {
        let name = o.key.rsplit('/').next().unwrap().to_string();
        std::fs::write(dir.join(&name), c.get_object(&o.key, 1 << 30).unwrap()).unwrap();
        names.push(name);
    }
    names.sort();
    names
}

/// The `outcome.status` of the record object `key`.
fn status_of(c: &exhibit::s3::Client, key: &str) -> String {
    let text = c.get_object(key, 1 << 20).unwrap();
    let rec: serde_yaml::Value = serde_yaml::from_slice(&text).unwrap();
    rec["outcome"]["status"].as_str().unwrap_or("").to_string()
}

#[test]
fn raw_and_e01_objects_equal_a_local_acquisition() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let source = make_source(dir.path(), "src.img", 24 * MIB, 14);
    let flags = ["--format", "raw,e01", "--segment-size", "4M"];
    let local = dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    acquire(&source, &local.join("disk"), &flags, 0);
    acquire_to(&g, &source, "s3://evidence/case-14/disk", &flags).exits(0);

    let got = dir.path().join("got");
    let names = download(&g, "case-14/", &got);
    let mut want: Vec<String> = std::fs::read_dir(&local)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    want.sort();
    assert_eq!(names, want, "the same names as on disk");
    assert!(
        names.iter().filter(|n| n.starts_with("disk.E")).count() >= 3,
        "{names:?}"
    );
    // Media, hash logs and the piece list are byte-equal; the record and map carry times,
    // and each E01 set its own GUID and acquisition time.
    for name in [
        "disk.raw",
        "disk.md5",
        "disk.sha1",
        "disk.sha256",
        "disk.crc64",
    ] {
        assert!(
            std::fs::read(got.join(name)).unwrap() == std::fs::read(local.join(name)).unwrap(),
            "{name} differs from the local run's"
        );
    }
    let rec = record(&got.join("disk"));
    assert_eq!(rec["outcome"]["status"].as_str(), Some("complete"));
    let outputs = serde_yaml::to_string(&rec["outputs"]).unwrap();
    assert!(
        outputs.contains("s3://evidence/case-14/disk.E02"),
        "{outputs}"
    );
    assert_eq!(g.client().list_multipart_uploads("").unwrap(), vec![]);
    // The record and hash-log objects carry the media hashes as metadata (sha256sum's).
    let want_sha = sha256_hex(&std::fs::read(&source).unwrap());
    for key in ["case-14/disk.yaml", "case-14/disk.sha256"] {
        let head = g.client().head_object(key).unwrap().unwrap();
        let meta: std::collections::HashMap<_, _> = head.metadata.into_iter().collect();
        assert_eq!(meta.get("media-sha256"), Some(&want_sha), "{key}: {meta:?}");
        assert!(
            meta.contains_key("media-md5") && meta.contains_key("media-sha1"),
            "{meta:?}"
        );
    }

    // The downloaded E01 set is whole: exhibit's verify and libewf's ewfverify agree.
    let (code, text) = verify(&got.join("disk.E01"), &[]);
    assert_eq!(code, 0, "{text}");
    ewfverify_ok(&got.join("disk.E01"));

    // The same BASE again is refused before anything is written.
    let out = acquire_to(&g, &source, "s3://evidence/case-14/disk", &flags).exits(2);
    let e = stderr(&out);
    assert!(
        e.contains("already exists") && e.contains("--overwrite"),
        "{e}"
    );
    // --overwrite replaces it.
    acquire_to(&g, &source, "s3://evidence/case-14/disk", &["--overwrite"]).exits(0);
}

#[test]
fn an_e01_segment_larger_than_the_patch_window_closes_its_runs_within_it() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    // Random data: stored raw, so one 40 MiB segment is five 8 MiB parts; each sectors run
    // must end within the part held back for its descriptor's patch.
    std::fs::write(dir.path().join("src.img"), random(40 * MIB, 21)).unwrap();
    let source = dir.path().join("src.img");
    let flags = ["--format", "e01", "--segment-size", "64M"];
    acquire_to(&g, &source, "s3://evidence/big/disk", &flags).exits(0);
    let got = dir.path().join("got");
    let names = download(&g, "big/", &got);
    assert!(names.contains(&"disk.E01".to_string()) && !names.contains(&"disk.E02".to_string()));
    let runs = std::fs::read(got.join("disk.E01"))
        .unwrap()
        .windows(8)
        .filter(|w| w == b"table2\0\0")
        .count();
    assert!(
        runs >= 5,
        "{runs} table runs in a 40 MiB segment of 8 MiB parts"
    );
    let (code, text) = verify(&got.join("disk.E01"), &[]);
    assert_eq!(code, 0, "{text}");
    ewfverify_ok(&got.join("disk.E01"));
}

#[test]
fn convert_writes_an_e01_into_the_bucket() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let source = make_source(dir.path(), "src.img", 12 * MIB, 15);
    let mut cmd = exhibit();
    cmd.args(["convert"]).arg(&source).args([
        "-o",
        "s3://evidence/conv/disk",
        "--format",
        "e01",
        "--quiet",
    ]);
    g.command_env(&mut cmd).exits(0);
    let got = dir.path().join("got");
    download(&g, "conv/", &got);
    let (code, text) = verify(&got.join("disk.E01"), &[]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn refusals_are_clear_and_carry_no_secret() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let source = make_source(dir.path(), "src.img", MIB, 16);
    let wrong = "0000000000000000000000000000000000000000000000000000000000000bad";
    let out = acquire_to(&g, &source, "s3://evidence/x/disk", &[])
        .env("AWS_SECRET_ACCESS_KEY", wrong)
        .exits(2);
    let e = stderr(&out);
    assert!(e.contains("check the access key"), "{e}");
    assert!(!e.contains(wrong) && !e.contains(garage::SECRET), "{e}");

    let out = acquire_to(&g, &source, "s3://Evidence/x", &[]).exits(2);
    assert!(
        stderr(&out).contains("no valid bucket name"),
        "{}",
        stderr(&out)
    );
    let out = acquire_to(&g, &source, "s3://nosuchbucket/x/disk", &[]).exits(2);
    assert!(stderr(&out).contains("NoSuchBucket"), "{}", stderr(&out));

    // Garage has no Object Lock: asking for it fails clearly instead of writing objects
    // without the retention asked for.
    let out = acquire_to(
        &g,
        &source,
        "s3://evidence/locked/disk",
        &[
            "--object-lock-mode",
            "compliance",
            "--retain-until",
            "2040-01-01T00:00:00Z",
        ],
    )
    .exits(2);
    let e = stderr(&out);
    assert!(e.contains("Object Lock"), "{e}");
    let head = g.client().head_object("locked/disk.raw").unwrap();
    assert_eq!(head, None, "no image without its retention");
}

/// Waits until a multipart upload is under way under `prefix` (bounded).
fn wait_for_upload(g: &Garage, prefix: &str) {
    let c = g.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .list_multipart_uploads(prefix)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no upload began within 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spawn(mut cmd: Command) -> std::process::Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_cluster_finishes_with_one_node_down_and_fails_cleanly_with_two() {
    let Some(mut g) = Garage::cluster() else {
        return;
    };
    let dir = tempdir();
    let source = make_source(dir.path(), "src.img", 96 * MIB, 17);
    let child = spawn(acquire_to(
        &g,
        &source,
        "s3://evidence/one/disk",
        &["--parts-in-flight", "1"],
    ));
    wait_for_upload(&g, "one/");
    g.kill_node(2);
    let (out, _) = wait_bounded(child, Duration::from_secs(120));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = dir.path().join("got");
    download(&g, "one/", &got);
    assert!(std::fs::read(got.join("disk.raw")).unwrap() == std::fs::read(&source).unwrap());

    let child = spawn(acquire_to(
        &g,
        &source,
        "s3://evidence/two/disk",
        &["--parts-in-flight", "1"],
    ));
    wait_for_upload(&g, "two/");
    g.kill_node(1);
    let (out, _) = wait_bounded(child, Duration::from_secs(300));
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("s3://evidence/two/disk"), "{e}");
    // Without a quorum the record could not be stored either: it is kept locally, incomplete.
    if e.contains("could not be updated") {
        let rec = take_kept_record(&e);
        assert_eq!(rec["outcome"]["status"].as_str(), Some("failed"), "{rec:?}");
    }
    // Back with its nodes, the cluster holds no image presented as complete, and no record
    // that says complete.
    g.restart_node(1);
    g.restart_node(2);
    let c = g.client();
    let settle = Instant::now() + Duration::from_secs(30);
    let head = loop {
        match c.head_object("two/disk.raw") {
            Ok(h) => break h,
            Err(_) if Instant::now() < settle => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(head, None);
    if c.head_object("two/disk.yaml").unwrap().is_some() {
        assert_ne!(status_of(&c, "two/disk.yaml"), "complete");
    }
    // Without a quorum the upload could not even be aborted; the next run on the BASE
    // aborts what the failed one left, so no parts stay behind.
    acquire_to(&g, &source, "s3://evidence/two/disk", &["--overwrite"]).exits(0);
    // The nodes just restarted answer listings from metadata still syncing: give the cluster
    // a bounded time to agree, then there must be no pending upload at all.
    let settle = Instant::now() + Duration::from_secs(30);
    let mut pending = c.list_multipart_uploads("two/").unwrap();
    while !pending.is_empty() && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(500));
        pending = c.list_multipart_uploads("two/").unwrap();
    }
    assert_eq!(pending, vec![]);
    assert_eq!(status_of(&c, "two/disk.yaml"), "complete");
}

#[test]
fn a_server_gone_mid_run_fails_with_exit_2_and_no_complete_object() {
    let Some(mut g) = Garage::single() else {
        return;
    };
    let dir = tempdir();
    let source = make_source(dir.path(), "src.img", 96 * MIB, 18);
    let child = spawn(acquire_to(
        &g,
        &source,
        "s3://evidence/gone/disk",
        &["--parts-in-flight", "1"],
    ));
    wait_for_upload(&g, "gone/");
    g.kill_node(0);
    let (out, took) = wait_bounded(child, Duration::from_secs(120));
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("connection failed"), "{e}");
    assert!(took < Duration::from_secs(90), "{took:?}");
    g.restart_node(0);
    let c = g.client();
    assert_eq!(c.head_object("gone/disk.raw").unwrap(), None);
    assert_eq!(status_of(&c, "gone/disk.yaml"), "running");
    // The bucket's record is stale; the finished one is kept locally and the error says where.
    let rec = take_kept_record(&e);
    assert_eq!(rec["outcome"]["status"].as_str(), Some("failed"), "{rec:?}");
}

/// The record a run could not store in its bucket, kept in the temporary directory at the
/// path its error names; read and removed.
fn take_kept_record(stderr: &str) -> serde_yaml::Value {
    let kept = stderr
        .split("the finished record is kept at ")
        .nth(1)
        .and_then(|rest| rest.split(".yaml").next())
        .map(|p| std::path::PathBuf::from(format!("{p}.yaml")))
        .unwrap_or_else(|| panic!("no local record named: {stderr}"));
    let text = std::fs::read(&kept).unwrap();
    let _ = std::fs::remove_file(&kept);
    serde_yaml::from_slice(&text).unwrap()
}

#[test]
fn an_interrupted_upload_is_aborted_and_recorded() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let source = make_source(dir.path(), "src.img", 96 * MIB, 19);
    let child = spawn(acquire_to(
        &g,
        &source,
        "s3://evidence/int/disk",
        &["--parts-in-flight", "1"],
    ));
    wait_for_upload(&g, "int/");
    send_signal(&child, libc::SIGINT);
    let (out, _) = wait_bounded(child, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = g.client();
    assert_eq!(c.list_multipart_uploads("int/").unwrap(), vec![]);
    assert_eq!(c.head_object("int/disk.raw").unwrap(), None);
    assert_eq!(status_of(&c, "int/disk.yaml"), "interrupted");
}

#[test]
fn batch_entries_write_into_the_bucket_and_one_base_twice_is_refused() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let a = make_source(dir.path(), "a.img", 2 * MIB, 22);
    let b = make_source(dir.path(), "b.img", 3 * MIB, 23);
    let jobs = |second: &str| {
        let text = format!(
            "jobs:\n  - source: '{}'\n    output: 's3://evidence/batch/a'\n    format: 'raw,e01'\n\
             \x20 - source: '{}'\n    output: '{second}'\n    parts-in-flight: '2'\n",
            a.display(),
            b.display()
        );
        let path = dir.path().join("jobs.yaml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let mut cmd = exhibit();
    cmd.arg("batch").arg(jobs("s3://evidence/batch/a"));
    let out = g.command_env(&mut cmd).exits(2);
    assert!(stderr(&out).contains("outputs overlap"), "{}", stderr(&out));
    assert_eq!(g.client().list_objects("batch/", 10).unwrap(), vec![]);

    let mut cmd = exhibit();
    cmd.arg("batch").arg(jobs("s3://evidence/batch/b"));
    g.command_env(&mut cmd).exits(0);
    let got = dir.path().join("got");
    download(&g, "batch/", &got);
    assert!(std::fs::read(got.join("a.raw")).unwrap() == std::fs::read(&a).unwrap());
    assert!(std::fs::read(got.join("b.raw")).unwrap() == std::fs::read(&b).unwrap());
    let (code, text) = verify(&got.join("a.E01"), &[]);
    assert_eq!(code, 0, "{text}");
}
