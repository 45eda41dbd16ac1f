//! The structural checker finds damage and says where: a flipped byte in a compressed chunk,
//! in a raw chunk, in a table, in a section descriptor; a truncated last segment; a missing
//! middle segment.

mod e01_support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use e01_support::*;
use exhibit::ewf::format::{decode_descriptor, DESCRIPTOR_SIZE, FILE_HEADER_SIZE};
use exhibit::ewf::{check, E01Image, Problem};

/// (type, offset, size) of every section of a segment file, by walking `next`.
fn sections(path: &Path) -> Vec<(String, u64, u64)> {
    let f = std::fs::File::open(path).unwrap();
    let mut v = Vec::new();
    let mut off = FILE_HEADER_SIZE;
    loop {
        let mut b = [0u8; 76];
        if f.read_exact_at(&mut b, off).is_err() {
            break;
        }
        let d = decode_descriptor(&b).unwrap();
        v.push((d.type_name.clone(), off, d.size));
        if d.next <= off {
            break;
        }
        off = d.next;
    }
    v
}

fn flip(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5A;
    f.write_all_at(&b, offset).unwrap();
}

fn show(p: &[Problem]) -> String {
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A 2 MiB image: chunk 0..31 random (raw), the rest text/zeros (compressed).
fn image(dir: &Path, name: &str, segment_size: Option<u64>) -> (PathBuf, Vec<u8>) {
    let mut data = mixed(2 * 1024 * 1024, 11);
    data[..32768].copy_from_slice(&random(32768, 12));
    let text: Vec<u8> = b"forensic text "
        .iter()
        .cycle()
        .take(32768)
        .copied()
        .collect();
    data[32768..65536].copy_from_slice(&text);
    let mut o = options(&data, 512);
    if let Some(s) = segment_size {
        o.segment_size = s;
    }
    (write(dir, name, &data, o, &[]), data)
}

#[test]
fn flipped_byte_in_compressed_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = image(dir.path(), "c", None);
    let place = E01Image::open(&first).unwrap().chunk_place(1).unwrap();
    assert!(place.compressed);
    flip(&first, place.offset + place.stored_size / 2);
    let rep = check(&first).unwrap();
    let p = rep
        .problems
        .iter()
        .find(|p| p.chunk == Some(1))
        .unwrap_or_else(|| panic!("{}", show(&rep.problems)));
    assert_eq!(p.media_range, Some(32768..65536));
    assert_eq!(p.segment, first);
    assert_eq!(p.offset, Some(place.offset));
    assert!(rep
        .problems
        .iter()
        .any(|p| p.message.contains("stored MD5")));
}

#[test]
fn flipped_byte_in_raw_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = image(dir.path(), "r", None);
    let place = E01Image::open(&first).unwrap().chunk_place(0).unwrap();
    assert!(!place.compressed);
    flip(&first, place.offset + 100);
    let rep = check(&first).unwrap();
    let p = rep
        .problems
        .iter()
        .find(|p| p.chunk == Some(0))
        .unwrap_or_else(|| panic!("{}", show(&rep.problems)));
    assert!(p.message.contains("Adler-32"), "{p}");
    assert_eq!(p.media_range, Some(0..32768));
}

#[test]
fn flipped_byte_in_table_falls_back_to_table2() {
    let dir = tempfile::tempdir().unwrap();
    let (first, data) = image(dir.path(), "t", None);
    let (_, off, _) = sections(&first)
        .into_iter()
        .find(|s| s.0 == "table")
        .unwrap();
    flip(&first, off + DESCRIPTOR_SIZE + 24 + 8); // an entry
    let img = E01Image::open(&first).unwrap();
    let probs = show(img.problems());
    assert!(probs.contains("table entries Adler-32 mismatch"), "{probs}");
    assert!(probs.contains("table2 differs from table"), "{probs}");
    assert!(img.problems().iter().all(|p| p.offset.is_some()));
    // The data still reads right through table2, at any offset.
    let media = exhibit::image::Image::open(&first).unwrap();
    let mut got = vec![0u8; data.len()];
    assert_eq!(media.read_at(&mut got, 0).unwrap(), data.len());
    assert!(got == data);
}

#[test]
fn flipped_byte_in_section_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = image(dir.path(), "d", None);
    let (_, off, _) = sections(&first)
        .into_iter()
        .find(|s| s.0 == "volume")
        .unwrap();
    flip(&first, off + 40); // in the zero padding: only the checksum notices
    let rep = check(&first).unwrap();
    let p = rep
        .problems
        .iter()
        .find(|p| p.message.contains("descriptor Adler-32"))
        .unwrap_or_else(|| panic!("{}", show(&rep.problems)));
    assert_eq!(p.offset, Some(off));
    assert_eq!(p.section.as_deref(), Some("volume"));
}

#[test]
fn truncated_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = image(dir.path(), "cut", Some(400 * 1024));
    let last = E01Image::open(&first)
        .unwrap()
        .segment_paths()
        .pop()
        .unwrap();
    assert_ne!(last, first);
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 200)
        .unwrap();
    let rep = check(&first).unwrap();
    let probs = show(&rep.problems);
    assert!(probs.contains("no `done`"), "{probs}");
    assert!(
        rep.problems
            .iter()
            .any(|p| p.segment == last && p.message.contains("truncated")),
        "{probs}"
    );
}

#[test]
fn missing_middle_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = image(dir.path(), "gap", Some(300 * 1024));
    let paths = E01Image::open(&first).unwrap().segment_paths();
    assert!(paths.len() >= 3, "{paths:?}");
    std::fs::remove_file(&paths[1]).unwrap();
    let rep = check(&first).unwrap();
    let p = rep
        .problems
        .iter()
        .find(|p| p.message.contains("missing"))
        .unwrap_or_else(|| panic!("{}", show(&rep.problems)));
    assert_eq!(p.segment, paths[1]);
    // Later segments are still walked.
    assert!(rep.segments.contains(&paths[2]));
}

#[test]
fn garbage_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = image(dir.path(), "g", None);
    let pristine = std::fs::read(&first).unwrap();
    let mut s = 77u64;
    for round in 0..150 {
        let mut b = pristine.clone();
        for _ in 0..4 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Half the hits in the first 8 KiB (headers, volume), half anywhere.
            let at = if round % 2 == 0 {
                (s >> 33) as usize % 8192
            } else {
                (s >> 33) as usize % b.len()
            };
            b[at] = (s >> 13) as u8;
        }
        if round % 10 == 9 {
            b.truncate((s >> 20) as usize % b.len());
        }
        std::fs::write(&first, &b).unwrap();
        let _ = check(&first);
    }
}
