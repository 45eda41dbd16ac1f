//! `exhibit cat`: the media of any image on standard output, hashed on the way and compared
//! with what the image stores; a damaged or tampered image gives exit 1 after the data.

use std::process::Output;

use crate::support::*;

fn cat(args: &[&str]) -> Output {
    exhibit().arg("cat").args(args).output().unwrap()
}

#[test]
fn an_e01_set_comes_out_byte_for_byte_and_as_stored() {
    let dir = tempdir();
    let base = dir.path().join("ev");
    segmented_e01_of_sample(&base);
    // By a later segment's name.
    let out = cat(&[with_ext(&base, "E03").to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(out.stdout == std::fs::read(sample()).unwrap());
    assert!(err.contains("md5 matches ev.E01 (stored MD5)"), "{err}");
    assert!(err.contains("sha256 matches"), "{err}");
}

#[test]
fn a_damaged_chunk_or_a_tampered_raw_image_is_exit_1() {
    let dir = tempdir();
    let base = dir.path().join("d");
    acquire(&sample(), &base, &["--format", "raw,e01"], 0);
    let first = with_ext(&base, "E01");
    let place = exhibit::ewf::E01Image::open(&first)
        .unwrap()
        .chunk_place(32)
        .unwrap();
    flip(&place.segment, place.offset + place.stored_size / 2);
    let out = cat(&[first.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("DAMAGED") && err.contains("chunk 32"), "{err}");
    assert!(err.contains("MISMATCH"), "{err}");
    assert_eq!(
        out.stdout.len() as u64,
        std::fs::metadata(sample()).unwrap().len()
    );

    // The raw image beside it, one byte changed: its record's hashes no longer hold.
    flip(&with_ext(&base, "raw"), 123_456);
    let out = cat(&[with_ext(&base, "raw").to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sha256 MISMATCH"), "{err}");
}

#[test]
fn a_range_is_the_bytes_at_that_offset_and_one_past_the_end_is_refused() {
    let source = std::fs::read(sample()).unwrap();
    let s = sample();
    let out = cat(&["--range", "1M:4100", s.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout == source[1 << 20..(1 << 20) + 4100]);
    let past = format!("{}:1", source.len());
    let out = run_exit(2, &["cat", "--range", &past, s.to_str().unwrap()]);
    assert!(stderr(&out).contains("past the end"), "{}", stderr(&out));
}
