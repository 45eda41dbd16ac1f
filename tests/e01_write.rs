//! E01 writer: images made from generated sources, read back by libewf's tools, TSK, the
//! `ewf` crate and our own checker.

mod e01_support;

use e01_support::*;
use exhibit::ewf::{Compression, E01Sink};
use exhibit::map::BadRun;

#[test]
fn fast_mixed_odd_size_single_segment() {
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
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
fn tiny_sources() {
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "empty", &[], options(&[], 512), &[]);
    own_check_clean(&first, &[]);
    ewfverify_ok(&first);
}

#[test]
fn bad_runs_go_to_error2() {
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(2 * 1024 * 1024, 7);
    let base = dir.path().join("abandoned");
    let mut sink = E01Sink::create(&base, options(&data, 512), false).unwrap();
    let pool = exhibit::buffer::BufferPool::new(2, BLOCK);
    let mut buf = pool.take();
    buf[..BLOCK].copy_from_slice(&data[..BLOCK]);
    use exhibit::sink::Sink;
    sink.write_block(&exhibit::block::Block::new(0, 0, buf, BLOCK, vec![]))
        .unwrap();
    let files = Box::new(sink).abandon();
    assert_eq!(files.len(), 1);
    let first = dir.path().join("abandoned.E01");
    let rep = exhibit::ewf::check::check(&first).unwrap();
    assert!(
        rep.problems.iter().any(|p| p.message.contains("no `done`")),
        "{:?}",
        rep.problems
    );
    if let Some(t) = tool("ewfverify") {
        let out = std::process::Command::new(t)
            .arg("-q")
            .arg(&first)
            .output()
            .unwrap();
        assert!(!out.status.success(), "ewfverify accepted an abandoned set");
    }
}

#[test]
fn refuses_existing_output() {
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(64 * 1024, 8);
    let mut o = options(&data, 512);
    o.segment_size = 20_000;
    let r = E01Sink::create(&dir.path().join("tiny"), o, false);
    assert!(matches!(r, Err(exhibit::Error::InvalidOption(_))));
    assert!(!dir.path().join("tiny.E01").exists());
}
