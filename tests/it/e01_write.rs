//! E01 writer: images made from generated sources, read back by libewf's tools, TSK, the
//! `ewf` crate and our own checker.

use exhibit::ewf::{Compression, E01Sink};
use exhibit::map::BadRun;
use exhibit::sink::Sink;

use crate::support::*;

#[test]
fn fast_mixed_odd_size_single_segment() {
    let dir = tempdir();
    // Not a multiple of the 32 KiB chunk, ends in random data (raw, padded last chunk).
    let mut data = mixed(3 * 1024 * 1024 + 5 * 512, 1);
    let n = data.len();
    data[n - 5 * 512..].copy_from_slice(&random(5 * 512, 9));
    let first = write(dir.path(), "img", &data, options(&data, 512), &[]);
    all_readers_agree(&first, &data);
    if let Some(info) = ewfinfo(&first) {
        assert!(info.contains("CASE-42"), "{info}");
        assert!(info.contains("Jürgen Müller"), "{info}");
        assert!(info.contains("TESTDISK 1000"), "{info}");
        assert!(info.contains("Bytes per sector:\t512"), "{info}");
        assert!(info.contains(&format!("({} bytes)", n)), "{info}");
    }
}

#[test]
fn none_and_best() {
    let dir = tempdir();
    let data = mixed(2 * 1024 * 1024 + 3 * 512, 2);
    for (name, c) in [("none", Compression::None), ("best", Compression::Best)] {
        let mut o = options(&data, 512);
        o.compression = c;
        let first = write(dir.path(), name, &data, o, &[]);
        all_readers_agree(&first, &data);
    }
}

#[test]
fn multi_segment_small_segments() {
    let dir = tempdir();
    let data = mixed(4 * 1024 * 1024 + 512, 3);
    let mut o = options(&data, 512);
    o.segment_size = 300 * 1024;
    let first = write(dir.path(), "multi", &data, o, &[]);
    assert!(
        dir.path().join("multi.E05").exists(),
        "expected several segments"
    );
    all_readers_agree(&first, &data);
}

#[test]
fn sectors_of_4096_bytes() {
    let dir = tempdir();
    let data = mixed(1024 * 1024 + 3 * 4096, 4);
    let mut o = options(&data, 4096);
    o.sectors_per_chunk = 8;
    let first = write(dir.path(), "4k", &data, o, &[]);
    all_readers_agree(&first, &data);
    if let Some(info) = ewfinfo(&first) {
        assert!(info.contains("Bytes per sector:\t4096"), "{info}");
    }
}

#[test]
fn large_chunks() {
    let dir = tempdir();
    let data = mixed(3 * 1024 * 1024 + 512, 15);
    let mut o = options(&data, 512);
    o.sectors_per_chunk = 2048; // 1 MiB chunks: one chunk per compression job
    let first = write(dir.path(), "large", &data, o, &[]);
    all_readers_agree(&first, &data);
}

#[test]
fn tiny_sources() {
    let dir = tempdir();
    let one = random(512, 5);
    let first = write(dir.path(), "one", &one, options(&one, 512), &[]);
    all_readers_agree(&first, &one);
    let zeros = vec![0u8; 3 * 1024 * 1024];
    let first = write(dir.path(), "zeros", &zeros, options(&zeros, 512), &[]);
    all_readers_agree(&first, &zeros);
    let len = std::fs::metadata(&first).unwrap().len();
    assert!(len < 64 * 1024, "zero source stored in {len} bytes");
}

#[test]
fn empty_source() {
    let dir = tempdir();
    let first = write(dir.path(), "empty", &[], options(&[], 512), &[]);
    own_check_clean(&first, &[]);
    ewfverify_ok(&first);
}

#[test]
fn bad_runs_go_to_error2() {
    let dir = tempdir();
    let mut data = mixed(2 * 1024 * 1024, 6);
    let bad = [
        BadRun {
            offset: 4096,
            length: 1024,
            errno: 5,
            attempts: 2,
        },
        BadRun {
            offset: 5120,
            length: 512,
            errno: 5,
            attempts: 2,
        },
        BadRun {
            offset: 1024 * 1024 + 512,
            length: 512,
            errno: 61,
            attempts: 2,
        },
    ];
    for r in &bad {
        data[r.offset as usize..(r.offset + r.length) as usize].fill(0);
    }
    let first = write(dir.path(), "bad", &data, options(&data, 512), &bad);
    all_readers_agree(&first, &data);
    let img = exhibit::ewf::E01Image::open(&first).unwrap();
    let e: Vec<(u32, u32)> = img
        .error2()
        .iter()
        .map(|e| (e.first_sector, e.sector_count))
        .collect();
    assert_eq!(e, vec![(8, 3), (2049, 1)]);
    if let Some(info) = ewfinfo(&first) {
        assert!(info.contains("at sector(s): 8 - 10"), "{info}");
        assert!(info.contains("at sector(s): 2049 - 2049"), "{info}");
    }
}

#[test]
fn abandoned_set_is_incomplete() {
    let dir = tempdir();
    let data = mixed(2 * 1024 * 1024, 7);
    let base = dir.path().join("abandoned");
    let mut sink = E01Sink::create(&base, options(&data, 512), false).unwrap();
    write_blocks(&mut sink, &data[..BLOCK], &[], BLOCK);
    let files = Box::new(sink).abandon();
    assert_eq!(files.len(), 1);
    let first = dir.path().join("abandoned.E01");
    let rep = exhibit::ewf::check::check(&first).unwrap();
    assert!(
        rep.problems.iter().any(|p| p.message.contains("no `done`")),
        "{:?}",
        rep.problems
    );
    assert!(
        ewfverify_refuses(&first).unwrap_or(true),
        "ewfverify accepted an abandoned set"
    );
}

#[test]
fn refuses_existing_output() {
    let dir = tempdir();
    let data = mixed(64 * 1024, 8);
    let base = dir.path().join("exists");
    std::fs::write(dir.path().join("exists.E01"), b"keep me").unwrap();
    let r = E01Sink::create(&base, options(&data, 512), false);
    assert!(matches!(r, Err(exhibit::Error::Refused(_))));
    assert_eq!(
        std::fs::read(dir.path().join("exists.E01")).unwrap(),
        b"keep me"
    );
    // Overwrite allowed: written and valid.
    let sink = E01Sink::create(&base, options(&data, 512), true).unwrap();
    feed(sink, &data, &[], 512);
    own_check_clean(&dir.path().join("exists.E01"), &data);
}

#[test]
fn refuses_tiny_segment_size() {
    let dir = tempdir();
    let data = mixed(64 * 1024, 8);
    let mut o = options(&data, 512);
    o.segment_size = 20_000;
    let r = E01Sink::create(&dir.path().join("tiny"), o, false);
    assert!(matches!(r, Err(exhibit::Error::InvalidOption(_))));
    assert!(!dir.path().join("tiny.E01").exists());
}

/// More than 65 534 chunks in one segment: a second sectors/table/table2 run with its own
/// base offset. Zeros with 8 KiB chunks keep it small on disk (537 MB of media).
#[test]
fn several_tables_in_one_segment() {
    use exhibit::block::Block;
    use exhibit::buffer::BufferPool;
    use exhibit::sink::MediaSummary;
    use md5::{Digest, Md5};
    use sha1::Sha1;
    let dir = tempdir();
    let media = 65_534u64 * 8192 + 3 * 8192 + 512;
    let mut o = options(&[], 512);
    o.media_size = media;
    o.sectors_per_chunk = 16;
    let base = dir.path().join("tables");
    let mut sink = E01Sink::create(&base, o, false).unwrap();
    let pool = BufferPool::new(4, BLOCK);
    let (mut md5, mut sha1) = (Md5::new(), Sha1::new());
    let mut off = 0u64;
    let mut i = 0;
    while off < media {
        let len = (media - off).min(BLOCK as u64) as usize;
        let buf = pool.take();
        md5.update(&buf[..len]);
        sha1.update(&buf[..len]);
        sink.write_block(&std::sync::Arc::new(Block::new(i, off, buf, len, vec![])))
            .unwrap();
        off += len as u64;
        i += 1;
    }
    let hashes = exhibit::hash::MediaHashes {
        md5: Some(md5.finalize().into()),
        sha1: Some(sha1.finalize().into()),
        sha256: None,
    };
    let summary = MediaSummary {
        media_size: media,
        sector_size: 512,
        hashes: hashes.clone(),
        unreadable: vec![],
    };
    Box::new(sink).finish(&summary).unwrap();
    let first = dir.path().join("tables.E01");
    let rep = exhibit::ewf::check(&first).unwrap();
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert_eq!(Some(rep.md5), hashes.md5);
    let img = exhibit::ewf::E01Image::open(&first).unwrap();
    assert_eq!(img.chunk_count(), 65_538);
    ewfverify_ok(&first);
    img_stat_ok(&first, media);
    let r = ewf::EwfReader::open(&first).unwrap();
    assert_eq!(r.total_size(), media);
    assert_eq!(r.stored_hashes().md5, hashes.md5);
}

/// Blocks that are not multiples of the chunk size (the pipeline sends 1 MiB blocks, but the
/// sink must not depend on it).
#[test]
fn odd_block_sizes() {
    let dir = tempdir();
    let data = mixed(1024 * 1024 + 7 * 512, 13);
    let base = dir.path().join("odd");
    let mut sink = E01Sink::create(&base, options(&data, 512), false).unwrap();
    write_blocks(&mut sink, &data, &[], 195 * 512);
    Box::new(sink).finish(&summary(&data, 512, &[])).unwrap();
    all_readers_agree(&dir.path().join("odd.E01"), &data);
}

/// Fewer bytes than announced: `finish` fails and the set stays without `done`.
#[test]
fn short_input_is_not_finished() {
    let dir = tempdir();
    let data = mixed(2 * 1024 * 1024, 14);
    let base = dir.path().join("short");
    let mut sink = E01Sink::create(&base, options(&data, 512), false).unwrap();
    write_blocks(&mut sink, &data[..BLOCK], &[], BLOCK);
    assert!(Box::new(sink).finish(&summary(&data, 512, &[])).is_err());
    let rep = exhibit::ewf::check(&dir.path().join("short.E01")).unwrap();
    assert!(rep.problems.iter().any(|p| p.message.contains("no `done`")));
}
