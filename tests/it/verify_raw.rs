//! `exhibit verify` and `exhibit info` on raw and split raw images made by `exhibit acquire`,
//! end to end through the binary: clean images verify; damage is found and named.

use std::path::Path;

use crate::support::*;

const MIB: u64 = 1 << 20;

/// A 5.5 MiB source acquired as BASE.raw and as split 2 MiB segments.
fn setup(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = dir.join("source.bin");
    std::fs::write(&src, mixed((5 * MIB + MIB / 2) as usize, 7)).unwrap();
    std::fs::create_dir(dir.join("r")).unwrap();
    std::fs::create_dir(dir.join("s")).unwrap();
    acquire(&src, &dir.join("r/disk"), &[], 0);
    acquire(&src, &dir.join("s/disk"), &["--split", "2M"], 0);
    (dir.join("r/disk"), dir.join("s/disk"))
}

#[test]
fn clean_raw_split_and_record_verify() {
    let dir = tempdir();
    let (r, s) = setup(dir.path());
    for p in [
        r.with_extension("raw"),
        s.with_extension("001"),
        r.with_extension("yaml"),
        s.with_extension("yaml"),
    ] {
        let out = verify(&p, &[]);
        expect(
            &out,
            0,
            &[
                "VERIFIED",
                "md5 matches disk.yaml",
                "sha256 matches disk.sha256",
                "match disk.crc64",
            ],
        );
        assert!(!out.1.contains("FAIL"), "{}", out.1);
    }
    // --json is a report a script can read.
    let (code, text) = verify(&r.with_extension("raw"), &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["images"][0]["media_bytes"], 5 * MIB + MIB / 2);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["verdict"] != "fail"));
}

#[test]
fn flipped_byte_in_raw_is_named_with_its_range() {
    let dir = tempdir();
    let (r, s) = setup(dir.path());
    let raw = r.with_extension("raw");
    flip(&raw, 2 * MIB + 12345);
    let out = verify(&raw, &[]);
    expect(
        &out,
        1,
        &[
            "FAILED",
            "media bytes 2097152..3145728 differ from disk.crc64 (piece 2)",
            "in disk.raw bytes 2097152..3145728",
            "md5 mismatch: disk.yaml says",
            "sha256 mismatch: disk.sha256 says",
        ],
    );
    // In a split image the range is named in its segment: 2 MiB segments, so piece 2 is the
    // start of disk.002.
    let seg2 = s.with_extension("002");
    flip(&seg2, 100);
    flip(&seg2, MIB + 100);
    let out = verify(&s.with_extension("yaml"), &[]);
    expect(
        &out,
        1,
        &[
            "media bytes 2097152..4194304 differ from disk.crc64 (pieces 2..3)",
            "in disk.002 bytes 0..2097152",
        ],
    );
}

#[test]
fn changed_record_log_missing_and_truncated_outputs_fail() {
    let dir = tempdir();
    let (r, s) = setup(dir.path());
    // A changed hash in the record.
    let yaml = r.with_extension("yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let rec: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let sha = rec["hashes"]["sha256"].as_str().unwrap().to_string();
    let mut forged = sha.clone().into_bytes();
    forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    std::fs::write(&yaml, text.replace(&sha, &forged)).unwrap();
    let out = verify(&yaml, &[]);
    expect(
        &out,
        1,
        &[
            &format!("sha256 mismatch: disk.yaml says {forged}"),
            "sha256 matches disk.sha256",
        ],
    );
    // A changed hash log.
    let log = s.with_extension("md5");
    let t = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, format!("{}{}", "0".repeat(32), &t[32..])).unwrap();
    expect(
        &verify(&s.with_extension("001"), &[]),
        1,
        &["md5 mismatch: disk.md5 says 00000000000000000000000000000000"],
    );
    // A missing segment listed in the record, and a truncated one: both fail as outputs, and
    // the media they should hold is named (read as zeros, so later offsets stay true).
    std::fs::remove_file(s.with_extension("003")).unwrap();
    truncate(&s.with_extension("002"), MIB);
    expect(
        &verify(&s.with_extension("yaml"), &[]),
        1,
        &[
            "disk.003 (raw-segment) listed in the record",
            "disk.002 is 1048576 bytes, the record says 2097152",
            "media bytes 3145728..5767168 differ from disk.crc64 (pieces 3..5)",
        ],
    );
    // Given the first segment alone, verify reads what is there and says it is short.
    expect(
        &verify(&s.with_extension("001"), &[]),
        1,
        &["holds 3145728 bytes of media, the record says 5767168"],
    );
}

#[test]
fn nothing_to_compare_with_is_not_verified_and_bad_paths_cannot_run() {
    let dir = tempdir();
    let lone = dir.path().join("lone.img");
    std::fs::write(&lone, mixed(100_000, 1)).unwrap();
    expect(
        &verify(&lone, &[]),
        1,
        &["no stored hash, record or hash log found", "md5 "],
    );
    expect(&verify(&dir.path().join("nope.raw"), &[]), 2, &["nope.raw"]);
    expect(&verify(dir.path(), &[]), 2, &["directory"]);
    let not_record = dir.path().join("x.yaml");
    std::fs::write(&not_record, "a: [").unwrap();
    expect(&verify(&not_record, &[]), 2, &["not an exhibit record"]);
    // --hash restricts what is computed; the others are noted as not checked.
    let (r, _) = setup(dir.path());
    expect(
        &verify(&r.with_extension("raw"), &["--hash", "md5"]),
        0,
        &["md5 matches disk.yaml", "sha256", "not computed"],
    );
    // A log naming ./disk.raw names the image beside it; one naming another file is not used.
    let log = r.with_extension("sha1");
    let t = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, t.replace("  disk.raw", "  ./disk.raw")).unwrap();
    expect(
        &verify(&r.with_extension("raw"), &[]),
        0,
        &["sha1 matches disk.sha1"],
    );
    std::fs::write(&log, t.replace("  disk.raw", "  other.raw")).unwrap();
    expect(
        &verify(&r.with_extension("raw"), &[]),
        0,
        &["disk.sha1 has a line for 'other.raw', which is not this image; not used"],
    );
}

#[test]
fn info_on_raw_split_and_record() {
    let dir = tempdir();
    let (r, s) = setup(dir.path());
    let (code, text) = run_text(&["info", r.with_extension("raw").to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("format        raw"), "{text}");
    assert!(text.contains("status      complete"), "{text}");
    let (code, text) = run_text(&["info", "--json", s.with_extension("001").to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "split-raw");
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
    assert_eq!(v["media_size"], 5 * MIB + MIB / 2);
    assert_eq!(v["sector_size"], 512);
    let algs: Vec<&str> = v["stored_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["algorithm"].as_str().unwrap())
        .collect();
    assert!(
        algs.contains(&"md5") && algs.contains(&"sha256"),
        "{algs:?}"
    );
    let (code, text) = run_text(&["info", "--json", s.with_extension("yaml").to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["record"]["status"], "complete");
    assert_eq!(run_text(&["info", "/nonexistent/x.E01"]).0, 2);
}
