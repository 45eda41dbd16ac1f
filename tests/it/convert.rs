//! `exhibit convert`: any image into any output set in one pass, checked by other people's
//! tools (ewfexport, ewfverify, ewfinfo, sha256sum); a source that does not hold its own
//! hashes, or has a damaged chunk, is exit 1 with a record that says so; refusals are exit 2.

use std::path::Path;

use exhibit::audit::AuditRecord;
use exhibit::ewf::E01Image;
use exhibit::map::BadRun;

use crate::support::*;

fn record_of(base: &Path) -> AuditRecord {
    AuditRecord::read(&with_ext(base, "yaml")).unwrap()
}

fn error2(first: &Path) -> Vec<(u64, u64)> {
    E01Image::open(first)
        .unwrap()
        .error2()
        .iter()
        .map(|e| (u64::from(e.first_sector), u64::from(e.sector_count)))
        .collect()
}

#[test]
fn e01_to_raw_is_ewfexports_output_byte_for_byte() {
    let dir = tempdir();
    let src = dir.path().join("ev");
    let first = segmented_e01_of_sample(&src);
    let out = dir.path().join("out");
    // By a later segment's name: the set is found from it.
    let o = convert(&with_ext(&src, "E02"), &out, &["--format", "raw"], 0);
    let said = text(&o);
    assert!(said.contains("md5 matches ev.E01 (stored MD5)"), "{said}");
    let raw = std::fs::read(with_ext(&out, "raw")).unwrap();
    assert!(raw == std::fs::read(sample()).unwrap(), "not the media");
    if let Some(exported) = ewfexport(&first) {
        assert!(raw == exported, "differs from ewfexport -f raw");
    }
    assert_eq!(
        coreutils_sum("sha256sum", &with_ext(&out, "raw")),
        coreutils_sum("sha256sum", &sample())
    );
    hash_logs_check(&out, &["md5", "sha1", "sha256"]);
    let rec = record_of(&out);
    assert_eq!(rec.outcome.status, "complete");
    let from = rec.converted_from.expect("converted_from");
    assert_eq!(from.hashes_match, Some(true));
    assert_eq!(from.files.len(), 3, "{:?}", from.files);
    assert!(from
        .claimed_hashes
        .iter()
        .any(|c| c.source.ends_with("(stored MD5)")));
    // The new set verifies on its own.
    let (code, said) = verify(&with_ext(&out, "yaml"), &[]);
    assert_eq!(code, 0, "{said}");
}

#[test]
fn raw_to_e01_passes_ewfverify_and_carries_the_record_s_case() {
    let dir = tempdir();
    let src = dir.path().join("disk");
    let case = [
        "--case-number",
        "C-2026-7",
        "--examiner",
        "Ana Lima",
        "--evidence-number",
        "EV-3",
        "--description",
        "USB stick",
        "--notes",
        "seized at desk",
    ];
    acquire(&sample(), &src, &case, 0);
    let out = dir.path().join("sealed");
    let o = convert(
        &with_ext(&src, "raw"),
        &out,
        &[
            "--format",
            "e01",
            "--compression",
            "best",
            "--examiner",
            "Bo Ek",
        ],
        0,
    );
    assert!(
        text(&o).contains("sha256 matches disk.yaml"),
        "{}",
        text(&o)
    );
    let first = with_ext(&out, "E01");
    ewfverify_ok(&first);
    if let Some(info) = ewfinfo(&first) {
        for want in ["C-2026-7", "EV-3", "USB stick", "seized at desk", "Bo Ek"] {
            assert!(info.contains(want), "ewfinfo lacks {want}:\n{info}");
        }
        assert!(!info.contains("Ana Lima"), "the flag replaces the examiner");
    }
    ewfexport_matches(&first, &std::fs::read(sample()).unwrap());
    let rec = record_of(&out);
    assert_eq!(rec.case.case_number.as_deref(), Some("C-2026-7"));
    assert_eq!(rec.case.examiner.as_deref(), Some("Bo Ek"));
    assert_eq!(rec.converted_from.unwrap().hashes_match, Some(true));
}

#[test]
fn ewfacquires_e01_keeps_its_case_metadata_and_md5() {
    let dir = tempdir();
    let case = ["CN-81", "EN-2", "Jo Examiner", "laptop disk", "cold boot"];
    let Some(first) = ewfacquire_with_case(&sample(), &dir.path().join("lib"), "1MiB", case) else {
        return;
    };
    let out = dir.path().join("ours");
    convert(&first, &out, &["--format", "e01"], 0);
    let theirs = E01Image::open(&first).unwrap();
    let ours = E01Image::open(&with_ext(&out, "E01")).unwrap();
    assert!(theirs.stored_md5().is_some());
    assert_eq!(ours.stored_md5(), theirs.stored_md5());
    let m = ours.case_metadata();
    assert_eq!(
        [
            m.case_number.as_deref(),
            m.evidence_number.as_deref(),
            m.examiner.as_deref(),
            m.description.as_deref(),
            m.notes.as_deref()
        ],
        case.map(Some)
    );
    ewfverify_ok(&with_ext(&out, "E01"));
    let rec = record_of(&out);
    assert_eq!(rec.case.case_number.as_deref(), Some("CN-81"));
    let from = rec.converted_from.unwrap();
    assert_eq!(from.hashes_match, Some(true));
    assert!(
        from.files.len() > 3,
        "several ewfacquire segments: {:?}",
        from.files
    );
}

#[test]
fn split_raw_to_e01_in_several_segments() {
    let dir = tempdir();
    let src = dir.path().join("split");
    acquire(&sample(), &src, &["--split", "1M"], 0);
    let out = dir.path().join("e");
    let args = [
        "--format",
        "e01,raw",
        "--split",
        "2M",
        "--compression",
        "none",
        "--segment-size",
        "300K",
    ];
    convert(&with_ext(&src, "004"), &out, &args, 0);
    let first = with_ext(&out, "E01");
    assert!(with_ext(&out, "E03").exists(), "several E01 segments");
    assert!(with_ext(&out, "004").exists() && !with_ext(&out, "005").exists());
    ewfverify_ok(&first);
    let data = std::fs::read(sample()).unwrap();
    ewfexport_matches(&first, &data);
    // The logs name the media stream: the record says how to feed it from the segments.
    for check in record_checks(&record(&out)) {
        sh_ok(&check, dir.path());
    }
    let rec = record_of(&out);
    let from = rec.converted_from.unwrap();
    assert_eq!(from.format, exhibit::image::ImageFormat::SplitRaw);
    assert_eq!(from.hashes_match, Some(true));
}

#[test]
fn a_tampered_raw_image_is_a_mismatch_exit_1_and_the_record_says_so() {
    let dir = tempdir();
    let src = dir.path().join("d");
    acquire(&sample(), &src, &[], 0);
    flip(&with_ext(&src, "raw"), 200_000);
    let out = dir.path().join("copy");
    let o = convert(&with_ext(&src, "raw"), &out, &["--format", "e01"], 1);
    assert!(text(&o).contains("sha256 MISMATCH"), "{}", text(&o));
    let rec = record_of(&out);
    assert_eq!(rec.outcome.status, "complete-with-findings");
    assert_eq!(rec.outcome.exit_code, Some(1));
    assert!(
        rec.outcome.reason.as_deref().unwrap().contains("mismatch"),
        "{:?}",
        rec.outcome.reason
    );
    let from = rec.converted_from.unwrap();
    assert_eq!(from.hashes_match, Some(false));
    assert!(from.claimed_hashes.iter().all(|c| !c.matches));
    // The new E01 holds the bytes as read, under their own hashes; verify of the new set
    // fails on what its record says about the source.
    ewfverify_ok(&with_ext(&out, "E01"));
    let (code, said) = verify(&with_ext(&out, "yaml"), &[]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("converted from a source that did not hold"),
        "{said}"
    );
}

#[test]
fn a_damaged_chunk_is_exit_1_and_unreadable_in_the_new_set() {
    let dir = tempdir();
    let src = dir.path().join("d");
    acquire(&sample(), &src, &["--format", "e01"], 0);
    let first = with_ext(&src, "E01");
    let place = E01Image::open(&first).unwrap().chunk_place(32).unwrap();
    flip(&place.segment, place.offset + place.stored_size / 2);
    let out = dir.path().join("copy");
    let o = convert(&first, &out, &["--format", "raw,e01"], 1);
    assert!(text(&o).contains("chunk 32"), "{}", text(&o));
    let rec = record_of(&out);
    assert_eq!(rec.outcome.status, "complete-with-findings");
    let from = rec.converted_from.unwrap();
    assert!(
        from.problems.iter().any(|p| p.contains("chunk 32")),
        "{:?}",
        from.problems
    );
    // 32 KiB chunks: chunk 32 is sectors 2048..2112, zeros in both outputs and in error2.
    assert_eq!(unreadable_runs(&record_of(&out)), vec![(2048, 64)]);
    assert_eq!(error2(&with_ext(&out, "E01")), vec![(2048, 64)]);
    let raw = std::fs::read(with_ext(&out, "raw")).unwrap();
    assert!(raw[2048 * 512..2112 * 512].iter().all(|&b| b == 0));
    assert_eq!(
        bad_sectors(&load_map(&with_ext(&out, "map")), 512).len(),
        64
    );
}

#[test]
fn unreadable_sectors_of_the_acquisition_carry_over_with_the_case() {
    let dir = tempdir();
    let mut data = mixed(2 << 20, 5);
    data[100 * 512..103 * 512].fill(0);
    let bad = [BadRun {
        offset: 100 * 512,
        length: 3 * 512,
        errno: 5,
        attempts: 2,
    }];
    let first = write(dir.path(), "bad", &data, options(&data, 512), &bad);
    let out = dir.path().join("copy");
    convert(&first, &out, &["--format", "e01"], 1);
    let new = with_ext(&out, "E01");
    assert_eq!(error2(&new), vec![(100, 3)]);
    let rec = record_of(&out);
    assert_eq!(rec.outcome.status, "complete-with-unreadable-sectors");
    assert_eq!(unreadable_runs(&rec), vec![(100, 3)]);
    let from = rec.converted_from.as_ref().unwrap();
    assert_eq!(from.unreadable_from.as_deref(), Some("bad.E01 error2"));
    assert_eq!(from.hashes_match, Some(true));
    let case = E01Image::open(&new).unwrap().case_metadata();
    assert_eq!(case.examiner.as_deref(), Some("Jürgen Müller"));
    assert_eq!(case, E01Image::open(&first).unwrap().case_metadata());
    ewfverify_ok(&new);
    ewfexport_matches(&new, &data);

    // A raw image has no error section: its record carries the runs to the next E01.
    let raw = dir.path().join("r");
    convert(&first, &raw, &["--format", "raw"], 1);
    let again = dir.path().join("again");
    convert(&with_ext(&raw, "raw"), &again, &["--format", "e01"], 1);
    assert_eq!(error2(&with_ext(&again, "E01")), vec![(100, 3)]);
    let rec = record_of(&again);
    assert_eq!(unreadable_runs(&rec), vec![(100, 3)]);
    let from = rec.converted_from.unwrap();
    assert_eq!(from.unreadable_from.as_deref(), Some("r.yaml"));
    assert_eq!(
        bad_sectors(&load_map(&with_ext(&again, "map")), 512),
        vec![100, 101, 102]
    );
}

#[test]
fn refusals_are_exit_2_and_write_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("ev");
    let first = segmented_e01_of_sample(&src);
    let refused = |base: &Path, extra: &[&str], why: &str| {
        let o = convert(&first, base, extra, 2);
        assert!(stderr(&o).contains(why), "{why}: {}", stderr(&o));
        assert!(!with_ext(base, "yaml").exists() || base == src.as_path());
    };
    // An output that is a segment of the input, through a hard link or a symbolic link.
    std::fs::hard_link(with_ext(&src, "E02"), d.join("hard.raw")).unwrap();
    refused(
        &d.join("hard"),
        &["--overwrite"],
        "a file of the image being converted",
    );
    std::os::unix::fs::symlink(with_ext(&src, "E03"), d.join("soft.raw")).unwrap();
    refused(
        &d.join("soft"),
        &["--overwrite"],
        "a file of the image being converted",
    );
    // The source's own BASE: its record and hash logs are inputs too.
    refused(
        &src,
        &["--overwrite"],
        "a file of the image being converted",
    );
    // An existing output.
    std::fs::write(d.join("taken.md5"), b"x").unwrap();
    let o = convert(&first, &d.join("taken"), &[], 2);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("taken.md5")).unwrap(), b"x");
    // A missing E01 segment.
    std::fs::rename(with_ext(&src, "E02"), d.join("away")).unwrap();
    refused(&d.join("a"), &[], "incomplete");
    std::fs::rename(d.join("away"), with_ext(&src, "E02")).unwrap();
    // A volume whose sector count does not fit the chunks the tables hold (forged: the
    // checksum is made right again, so only the count is wrong).
    let forged = d.join("forged");
    acquire(&sample(), &forged, &["--format", "e01"], 0);
    let f = with_ext(&forged, "E01");
    let (at, _) = section(&f, "volume");
    let body_at = at + exhibit::ewf::format::DESCRIPTOR_SIZE;
    let bytes = std::fs::read(&f).unwrap();
    let body = &bytes[body_at as usize..body_at as usize + 1052];
    let (mut v, _) = exhibit::ewf::format::Volume::decode(body).unwrap();
    v.sector_count += 64 * 1000;
    let mut bytes = bytes.clone();
    bytes[body_at as usize..body_at as usize + 1052].copy_from_slice(&v.encode());
    std::fs::write(&f, bytes).unwrap();
    let o = convert(&f, &d.join("g"), &["--format", "raw"], 2);
    assert!(
        stderr(&o).contains("does not fit the image"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("g.raw").exists());
    // A missing split segment.
    let split = d.join("sp");
    acquire(&sample(), &split, &["--split", "1M"], 0);
    std::fs::remove_file(with_ext(&split, "003")).unwrap();
    let o = convert(&with_ext(&split, "001"), &d.join("b"), &[], 2);
    assert!(stderr(&o).contains("segment is missing"), "{}", stderr(&o));
    // Media that are not whole sectors cannot be an E01.
    std::fs::write(d.join("odd.raw"), vec![7u8; 1000]).unwrap();
    let o = convert(&d.join("odd.raw"), &d.join("c"), &["--format", "e01"], 2);
    assert!(
        stderr(&o).contains("whole 512-byte sectors"),
        "{}",
        stderr(&o)
    );
    for n in [
        "b.yaml",
        "c.yaml",
        "c.E01",
        "a.raw",
        "hard.yaml",
        "soft.yaml",
    ] {
        assert!(!d.join(n).exists(), "{n} written");
    }
}

#[test]
fn an_image_that_claims_no_hash_is_converted_and_says_its_hashes_are_unchecked() {
    let dir = tempdir();
    let src = make_source(dir.path(), "bare.img", 3 << 20, 9);
    let out = dir.path().join("out");
    let o = convert(&src, &out, &["--format", "e01,raw"], 0);
    assert!(text(&o).contains("claims no hash"), "{}", text(&o));
    let rec = record_of(&out);
    let from = rec.converted_from.unwrap();
    assert_eq!(from.hashes_match, None);
    assert!(from.claimed_hashes.is_empty() && from.problems.is_empty());
    assert!(std::fs::read(with_ext(&out, "raw")).unwrap() == std::fs::read(&src).unwrap());
    ewfverify_ok(&with_ext(&out, "E01"));
}
