//! `exhibit verify` and `exhibit info` on E01 sets, end to end through the binary: sets written
//! by exhibit's own writer and by libewf's `ewfacquire` verify clean; every kind of damage is
//! found, named with its place, and exits 1.

use std::path::{Path, PathBuf};

use exhibit::ewf::Compression;
use exhibit::map::BadRun;

use crate::support::*;

const KIB: usize = 1024;

/// 256 KiB random (stored raw), 256 KiB text (compressed), then mixed, with a partial last
/// chunk (not a multiple of 32 KiB).
fn source() -> Vec<u8> {
    let mut v = random(256 * KIB, 3);
    let text = b"the quick brown evidence jumps over the lazy examiner ";
    v.extend((0..256 * KIB).map(|i| text[i % text.len()]));
    v.extend(mixed(1536 * KIB + 4608, 11));
    v
}

/// The source with sectors 80..84 unreadable at acquisition (zeros), and that run.
fn source_with_a_bad_run() -> (Vec<u8>, [BadRun; 1]) {
    let mut data = source();
    data[40960..40960 + 2048].fill(0);
    let bad = [BadRun {
        offset: 40960,
        length: 2048,
        errno: 5,
        attempts: 3,
    }];
    (data, bad)
}

fn exhibit_e01(dir: &Path, name: &str, data: &[u8], c: Compression, segment: u64) -> PathBuf {
    let mut o = options(data, 512);
    o.compression = c;
    o.segment_size = segment;
    write(dir, name, data, o, &[])
}

fn segment(first: &Path, n: u32) -> PathBuf {
    first.with_extension(format!("E{n:02}"))
}

#[test]
fn exhibit_sets_verify_clean() {
    let dir = tempdir();
    let data = source();
    for (name, c, seg) in [
        ("single", Compression::Fast, 1 << 30),
        ("multi", Compression::Fast, 300 * 1024),
        ("none", Compression::None, 700 * 1024),
        ("best", Compression::Best, 1 << 30),
    ] {
        let first = exhibit_e01(dir.path(), name, &data, c, seg);
        let out = verify(&first, &[]);
        expect(
            &out,
            0,
            &[
                "VERIFIED",
                "md5 matches",
                "sha1 matches",
                "chunks decode and match their checksums",
                "every section descriptor, table and the chain check out",
            ],
        );
        assert!(!out.1.contains("FAIL"), "{}", out.1);
    }
    assert!(segment(&dir.path().join("multi.E01"), 3).exists());
}

#[test]
fn unreadable_sectors_in_error2_are_noted_not_failed() {
    let dir = tempdir();
    let (data, bad) = source_with_a_bad_run();
    let o = options(&data, 512);
    let first = write(dir.path(), "bad", &data, o, &bad);
    expect(
        &verify(&first, &[]),
        0,
        &[
            "records 4 unreadable sectors in 1 runs (error2)",
            "error2: sectors 80..84",
        ],
    );
    let (code, text) = run_text(&["info", "--json", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["acquisition_errors"][0]["first_sector"], 80);
    assert_eq!(v["acquisition_errors"][0]["sector_count"], 4);
}

#[test]
fn ewfacquire_sets_verify_clean() {
    let dir = tempdir();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, source()).unwrap();
    for (name, c, seg) in [
        ("fast", "fast", None),
        ("best", "best", None),
        ("none", "none", None),
        ("multi", "fast", Some("1MiB")),
        ("multinone", "none", Some("1MiB")),
    ] {
        let Some(first) = ewfacquire(&src, &dir.path().join(name), c, seg) else {
            return;
        };
        expect(
            &verify(&first, &[]),
            0,
            &["VERIFIED", "md5 matches", "sha1 matches"],
        );
    }
    assert!(segment(&dir.path().join("multinone.E01"), 2).exists());
}

/// A fresh copy of a 3-segment exhibit set in its own directory.
fn damaged_copy(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir(&d).unwrap();
    exhibit_e01(&d, "ev", &source(), Compression::Fast, 300 * 1024)
}

/// The last segment of a set.
fn last_segment(first: &Path) -> (u32, PathBuf) {
    let n = (1..99).take_while(|&n| segment(first, n).exists()).count() as u32;
    (n, segment(first, n))
}

#[test]
fn damage_is_found_and_named() {
    let dir = tempdir();

    // A flipped byte inside a compressed chunk.
    let first = damaged_copy(dir.path(), "zlib");
    let list = chunks(&first);
    let (index, &(off, _)) = list
        .iter()
        .enumerate()
        .find(|(_, c)| c.1)
        .expect("a compressed chunk");
    flip(&first, off + 20);
    let start = index * 32768;
    expect(
        &verify(&first, &[]),
        1,
        &[
            "FAILED",
            &format!("chunk {index} (media bytes {start}..{})", start + 32768),
            "zlib stream",
            "md5 mismatch",
        ],
    );

    // A flipped byte inside a chunk stored raw: chunk 0 is random data.
    let first = damaged_copy(dir.path(), "raw");
    let (off, compressed) = chunks(&first)[0];
    assert!(!compressed);
    flip(&first, off + 1000);
    expect(
        &verify(&first, &[]),
        1,
        &[
            "chunk 0 (media bytes 0..32768): raw chunk's Adler-32 does not match",
            "sha1 mismatch",
        ],
    );

    // A flipped byte in a table's entries: table2 still locates the chunks.
    let first = damaged_copy(dir.path(), "table");
    let (toff, _) = section(&first, "table");
    flip(&first, toff + 76 + 24 + 8);
    expect(
        &verify(&first, &[]),
        1,
        &[&format!("section table at byte {toff}"), "Adler-32"],
    );

    // A flipped byte in a section descriptor (the volume's type name).
    let first = damaged_copy(dir.path(), "descriptor");
    let (voff, _) = section(&first, "volume");
    flip(&first, voff + 3);
    let out = verify(&first, &[]);
    expect(&out, 1, &[&format!("at byte {voff}")]);

    // A truncated last segment.
    let first = damaged_copy(dir.path(), "truncated");
    let (n, last) = last_segment(&first);
    assert!(n >= 3, "{n} segments");
    let len = std::fs::metadata(&last).unwrap().len();
    truncate(&last, len - 300);
    expect(
        &verify(&first, &[]),
        1,
        &[
            &format!("ev.E{n:02}"),
            "no `done` section: the set is incomplete",
        ],
    );

    // A missing middle segment.
    // Its chunks are placed where they belong in the media, not at the end.
    let first = damaged_copy(dir.path(), "missing");
    let k1 = chunks(&first).len();
    let k2 = chunks(&segment(&first, 2)).len();
    std::fs::remove_file(segment(&first, 2)).unwrap();
    expect(
        &verify(&first, &[]),
        1,
        &[
            "ev.E02: segment file missing (later segments exist)",
            &format!(
                "ev.E02 section sectors chunks {k1}..={} ({k2} chunks, media bytes {}..{}): in the missing segment file",
                k1 + k2 - 1,
                k1 * 32768,
                (k1 + k2) * 32768
            ),
        ],
    );

    // A missing last segment.
    let first = damaged_copy(dir.path(), "lastmissing");
    std::fs::remove_file(last_segment(&first).1).unwrap();
    expect(
        &verify(&first, &[]),
        1,
        &["ends with `next`: later segments are missing"],
    );
}

#[test]
fn one_run_lists_every_damaged_chunk() {
    let dir = tempdir();
    let first = damaged_copy(dir.path(), "many");
    let c = chunks(&first);
    for i in [1usize, 3, 9] {
        flip(&first, c[i].0 + 30);
    }
    let out = verify(&first, &[]);
    for i in [1usize, 3, 9] {
        expect(&out, 1, &[&format!("chunk {i} (media bytes {}", i * 32768)]);
    }
}

#[test]
fn info_on_e01() {
    let dir = tempdir();
    let first = exhibit_e01(dir.path(), "ev", &source(), Compression::Fast, 300 * 1024);
    let (code, text) = run_text(&["info", "--json", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "e01");
    assert_eq!(v["media_size"], source().len());
    assert_eq!(v["sector_size"], 512);
    assert_eq!(
        v["files"].as_array().unwrap().len() as u32,
        last_segment(&first).0
    );
    assert_eq!(v["case"]["case_number"], "CASE-42");
    assert_eq!(v["case"]["examiner"], "Jürgen Müller");
    assert_eq!(v["stored_hashes"][0]["algorithm"], "md5");
    assert_eq!(v["e01"]["chunk_size"], 32768);
    assert!(v["e01"]["problems"].as_array().unwrap().is_empty());
    let (code, text) = run_text(&["info", first.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(text.contains("format        E01"), "{text}");
    assert!(text.contains("case number   CASE-42"), "{text}");
}

/// An acquisition record listing an E01 set (as `acquire` will once E01 output is wired):
/// the record, its piece list and the E01's own hashes are all checked, and damage in a
/// chunk is named both by the chunk and by the piece list.
#[test]
fn record_with_e01_outputs() {
    let dir = tempdir();
    let data = source();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let base = dir.path().join("disk");
    acquire(&src, &base, &[], 0);
    let first = exhibit_e01(dir.path(), "disk", &data, Compression::Fast, 300 * 1024);
    // Add the segments to the record's outputs.
    let yaml = base.with_extension("yaml");
    let mut rec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&yaml).unwrap()).unwrap();
    let outputs = rec["outputs"].as_sequence_mut().unwrap();
    let (n, _) = last_segment(&first);
    for i in 1..=n {
        let p = segment(&first, i);
        let mut m = serde_yaml::Mapping::new();
        m.insert("path".into(), p.to_str().unwrap().into());
        m.insert("size".into(), std::fs::metadata(&p).unwrap().len().into());
        m.insert("kind".into(), "e01-segment".into());
        outputs.push(serde_yaml::Value::Mapping(m));
    }
    std::fs::write(&yaml, serde_yaml::to_string(&rec).unwrap()).unwrap();

    let out = verify(&yaml, &[]);
    expect(
        &out,
        0,
        &[
            "VERIFIED",
            "disk.E01 (stored MD5)",
            "sha256 matches disk.yaml",
            "all 3 pieces of disk.E01",
            "disk.E02 is present with its recorded size",
        ],
    );
    // The E01 alone also finds the record and piece list beside it.
    expect(
        &verify(&first, &[]),
        0,
        &["sha256 matches disk.yaml", "pieces of disk.E01"],
    );

    let c = chunks(&first);
    flip(&first, c[2].0 + 7);
    expect(
        &verify(&yaml, &[]),
        1,
        &[
            "chunk 2 (media bytes 65536..98304)",
            "media bytes 0..1048576 differ from disk.crc64 (piece 0)",
            "all 3 pieces of disk.raw match",
        ],
    );
    let (code, text) = run_text(&["info", "--json", yaml.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "e01");
    assert_eq!(v["record"]["status"], "complete");
}

/// What a user does: acquire to raw and E01 in one pass, then verify the record, the E01 and
/// the raw image; then damage the E01's last segment.
#[test]
fn acquire_raw_and_e01_then_verify() {
    let dir = tempdir();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, source()).unwrap();
    let base = dir.path().join("case");
    acquire(
        &src,
        &base,
        &[
            "--format",
            "raw,e01",
            "--segment-size",
            "400K",
            "--compression",
            "best",
        ],
        0,
    );
    let first = base.with_extension("E01");
    assert!(segment(&first, 2).exists());
    for p in [
        base.with_extension("yaml"),
        first.clone(),
        base.with_extension("raw"),
    ] {
        expect(
            &verify(&p, &[]),
            0,
            &[
                "VERIFIED",
                "sha256 matches case.yaml",
                "md5 matches case.md5",
            ],
        );
    }
    expect(
        &verify(&base.with_extension("yaml"), &[]),
        0,
        &["case.E01 (stored MD5)", "chunks decode and match"],
    );
    let (n, last) = last_segment(&first);
    let len = std::fs::metadata(&last).unwrap().len();
    truncate(&last, len - 100);
    expect(
        &verify(&base.with_extension("yaml"), &[]),
        1,
        &[
            &format!("case.E{n:02} is {} bytes, the record says {len}", len - 100),
            "no `done` section",
        ],
    );
}

/// `error2` against the record's unreadable runs.
#[test]
fn error2_is_compared_with_the_record() {
    let dir = tempdir();
    let (data, bad) = source_with_a_bad_run();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let base = dir.path().join("disk");
    acquire(&src, &base, &[], 0);
    let o = options(&data, 512);
    let first = write(dir.path(), "disk", &data, o, &bad);
    let yaml = base.with_extension("yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let with_runs = |first_sector: u64| {
        let mut rec: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let run = format!(
            "first_sector: {first_sector}\nsector_count: 4\noffset: {}\nlength: 2048\nerrno: 5\nerror: EIO\nattempts: 3\n",
            first_sector * 512
        );
        rec["unreadable"]["runs"] =
            serde_yaml::Value::Sequence(vec![serde_yaml::from_str(&run).unwrap()]);
        rec["unreadable"]["sectors"] = 4.into();
        rec["unreadable"]["bytes"] = 2048.into();
        rec["outcome"]["status"] = "complete-with-unreadable-sectors".into();
        std::fs::write(&yaml, serde_yaml::to_string(&rec).unwrap()).unwrap();
    };
    with_runs(80);
    expect(
        &verify(&first, &[]),
        0,
        &[
            "disk.E01 error2 lists the same 4 unreadable sectors as the record",
            "unreadable at acquisition: sectors 80..84 (EIO)",
        ],
    );
    with_runs(96);
    expect(
        &verify(&first, &[]),
        1,
        &["error2 lists 4 unreadable sectors in 1 runs, the record 4 in 1 runs; first difference: error2 80..84, record 96..100"],
    );
}
