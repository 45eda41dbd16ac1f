//! The image reader against the bytes it should give: raw and split files, E01 sets written
//! by our writer through the one fan-out, read at random offsets and in one pass, damaged
//! and with a missing middle segment.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::*;
use crate::buffer::BufferPool;
use crate::ewf::{Compression, E01Options, E01Sink};
use crate::hash::HashAlgorithm;
use crate::pipeline::{self, Consumers, Tuning};
use crate::progress::Progress;
use crate::sink::MediaSummary;

/// Text, zeros and noise: chunks that compress, that are all zero, and that are stored raw.
fn mixed(len: usize) -> Vec<u8> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|i| match (i / 40_000) % 3 {
            0 => b"evidence text, "[i % 15],
            1 => 0,
            _ => {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) as u8
            }
        })
        .collect()
}

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    *seed >> 17
}

/// One pass of `image` into the hashers: what a verify would compute.
fn pass(image: &Image) -> (Vec<Problem>, crate::hash::MediaHashes, u64) {
    let (len, count) = image.pass_buffers(2);
    let pool = BufferPool::new(count, len);
    let consumers = Consumers {
        hashes: vec![HashAlgorithm::Sha256],
        ..Consumers::default()
    };
    let (p, stop) = (Progress::default(), AtomicBool::new(false));
    let passed = pipeline::run(consumers, &pool, Tuning::default(), &p, &stop, |f| {
        image.stream(f, 2)
    })
    .map_err(|f| f.error)
    .unwrap();
    (passed.value, passed.hashes, passed.bytes)
}

fn sha256(data: &[u8]) -> crate::hash::MediaHashes {
    let mut h = HashAlgorithm::Sha256.hasher();
    h.update(data);
    let mut m = crate::hash::MediaHashes::default();
    m.set(HashAlgorithm::Sha256, &h.finish());
    m
}

/// Writes `data` as `dir/name.E01…` through the fan-out, in segments of about `segment`.
fn write_e01(dir: &Path, name: &str, data: &[u8], segment: u64) -> PathBuf {
    let base = dir.join(name);
    let mut o = E01Options::new(data.len() as u64, 512);
    o.segment_size = segment;
    o.compression = Compression::Fast;
    o.workers = 2;
    let sink = E01Sink::create(&base, o, false).unwrap();
    let consumers = Consumers {
        hashes: vec![HashAlgorithm::Md5, HashAlgorithm::Sha1],
        piece_size: None,
        sinks: vec![Box::new(sink)],
    };
    let pool = BufferPool::new(4, 1 << 20);
    let (p, stop) = (Progress::default(), AtomicBool::new(false));
    let passed = pipeline::run(consumers, &pool, Tuning::default(), &p, &stop, |f| {
        f.write(data)
    })
    .map_err(|f| f.error)
    .unwrap();
    let summary = MediaSummary {
        media_size: data.len() as u64,
        sector_size: 512,
        hashes: passed.hashes,
        unreadable: Vec::new(),
    };
    for sink in passed.sinks {
        sink.finish(&summary).unwrap();
    }
    crate::ewf::naming::segment_path(&base, 1).unwrap()
}

/// Random reads (lengths from 1 byte to several chunks, across every boundary) give the
/// media's bytes; a read past the end is short; at the end it is empty.
fn random_reads_match(image: &Image, data: &[u8]) {
    let mut seed = 7u64;
    let size = data.len() as u64;
    assert_eq!(image.media_size(), size);
    for _ in 0..400 {
        let offset = lcg(&mut seed) % size;
        let len = 1 + (lcg(&mut seed) % 200_000) as usize;
        let mut buf = vec![0xAAu8; len];
        let n = image.read_at(&mut buf, offset).unwrap();
        let want = len.min((size - offset) as usize);
        assert_eq!(n, want, "read of {len} at {offset}");
        assert!(
            buf[..n] == data[offset as usize..offset as usize + n],
            "bytes at {offset}"
        );
    }
    assert_eq!(image.read_at(&mut [0u8; 10], size).unwrap(), 0);
}

#[test]
fn split_raw_reads_across_segments_and_opens_by_any_segment() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(700_000);
    let base = dir.path().join("disk");
    let cuts = [0usize, 250_000, 500_000, 700_000];
    for (i, w) in cuts.windows(2).enumerate() {
        let p = crate::sink::raw::split_name(&base, i as u64 + 1);
        std::fs::write(p, &data[w[0]..w[1]]).unwrap();
    }
    let image = Image::open(&dir.path().join("disk.002")).unwrap();
    assert_eq!(image.format(), ImageFormat::SplitRaw);
    assert_eq!(image.files().len(), 3);
    random_reads_match(&image, &data);
    let (problems, hashes, bytes) = pass(&image);
    assert!(problems.is_empty());
    assert_eq!(bytes, data.len() as u64);
    assert_eq!(hashes, sha256(&data));
}

#[test]
fn a_short_recorded_segment_is_damage_at_an_offset_and_zeros_in_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("x.001");
    let b = dir.path().join("x.002");
    std::fs::write(&a, vec![1u8; 1000]).unwrap();
    std::fs::write(&b, vec![2u8; 600]).unwrap();
    let raw = RawImage::open_recorded(&[a, b], Some(&[1000, 1000]), None).unwrap();
    assert_eq!(raw.media_size(), 2000);
    let mut buf = vec![0u8; 1000];
    assert_eq!(raw.read_at(&mut buf, 0).unwrap(), 1000);
    match raw.read_at(&mut buf, 1500) {
        Err(Error::Damaged { range, detail }) => {
            assert_eq!(range, 1600..2000);
            assert!(detail.contains("holds 600 of its 1000 bytes"), "{detail}");
        }
        other => panic!("expected damage, got {other:?}"),
    }
}

#[test]
fn e01_random_reads_equal_the_media_and_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(3 << 20);
    let first = write_e01(dir.path(), "ev", &data, 400 * 1024);
    let e03 = crate::ewf::naming::segment_path(&dir.path().join("ev"), 3).unwrap();
    assert!(e03.exists(), "several segments");
    // Opened by a later segment's name, the set is found from its first.
    let image = Image::open(&e03).unwrap();
    assert_eq!(image.format(), ImageFormat::E01);
    assert_eq!(image.files()[0], first);
    assert_eq!(image.sector_size(), 512);
    random_reads_match(&image, &data);
    let (problems, hashes, _) = pass(&image);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(hashes, sha256(&data));
}

#[test]
fn a_damaged_chunk_fails_for_exactly_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(1 << 20);
    let first = write_e01(dir.path(), "d", &data, 100 << 20);
    let cs = 32768u64;
    // Chunk 2 is text: stored compressed. Flip a byte inside its stream.
    let place = crate::ewf::E01Image::open(&first)
        .unwrap()
        .chunk_place(2)
        .unwrap();
    assert!(place.compressed);
    let mut bytes = std::fs::read(&place.segment).unwrap();
    bytes[(place.offset + place.stored_size / 2) as usize] ^= 0x40;
    std::fs::write(&place.segment, bytes).unwrap();

    let image = Image::open(&first).unwrap();
    let mut buf = vec![0u8; 100];
    match image.read_at(&mut buf, 2 * cs + 10) {
        Err(Error::Damaged { range, detail }) => {
            assert_eq!(range, 2 * cs..3 * cs);
            assert!(detail.contains("chunk 2"), "{detail}");
        }
        other => panic!("expected damage, got {other:?}"),
    }
    // A read that only touches its neighbours is fine.
    let mut buf = vec![0u8; cs as usize];
    image.read_at(&mut buf, cs).unwrap();
    assert!(buf[..] == data[cs as usize..2 * cs as usize]);
    image.read_at(&mut buf, 3 * cs).unwrap();
    assert!(buf[..] == data[3 * cs as usize..4 * cs as usize]);
    // A pass names the chunk and goes on with zeros there.
    let (problems, _, bytes) = pass(&image);
    assert_eq!(bytes, data.len() as u64);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].chunk, Some(2));
}

#[test]
fn a_damaged_chunk_decoded_ahead_still_fails_when_read_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(1 << 20);
    let first = write_e01(dir.path(), "d", &data, 100 << 20);
    let cs = 32768u64;
    let place = crate::ewf::E01Image::open(&first)
        .unwrap()
        .chunk_place(2)
        .unwrap();
    let mut bytes = std::fs::read(&place.segment).unwrap();
    bytes[(place.offset + place.stored_size / 2) as usize] ^= 0x40;
    std::fs::write(&place.segment, bytes).unwrap();

    let image = Image::open(&first).unwrap();
    let Image::E01(e) = &image else { panic!() };
    assert_eq!(image.cached_chunk_size(), cs);
    let chunks = data.len() as u64 / cs;
    for c in 0..chunks + 5 {
        // Past the media's end: nothing to decode, no panic.
        image.decode_ahead(c);
    }
    for c in 0..chunks {
        assert_eq!(e.is_cached(c), c != 2, "chunk {c}");
    }
    // Its reader gets the damage, every time; its neighbours come from the cache.
    for _ in 0..2 {
        let mut buf = vec![0u8; 100];
        assert!(matches!(
            image.read_at(&mut buf, 2 * cs),
            Err(Error::Damaged { .. })
        ));
    }
    let mut buf = vec![0u8; 2 * cs as usize];
    image.read_at(&mut buf, 0).unwrap();
    assert!(buf[..] == data[..2 * cs as usize]);
    image.read_at(&mut buf, 3 * cs).unwrap();
    assert!(buf[..] == data[3 * cs as usize..5 * cs as usize]);
    // Raw images are read through the kernel: nothing to decode ahead.
    let raw = dir.path().join("r.raw");
    std::fs::write(&raw, &data).unwrap();
    let raw = Image::open(&raw).unwrap();
    assert_eq!(raw.cached_chunk_size(), 0);
    raw.decode_ahead(0);
}

#[test]
fn a_missing_middle_segment_leaves_every_other_chunk_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(3 << 20);
    let first = write_e01(dir.path(), "m", &data, 400 * 1024);
    let base = dir.path().join("m");
    let e02 = crate::ewf::naming::segment_path(&base, 2).unwrap();
    let e03 = crate::ewf::naming::segment_path(&base, 3).unwrap();
    assert!(e03.exists());
    std::fs::remove_file(&e02).unwrap();

    let image = Image::open(&first).unwrap();
    let cs = 32768u64;
    let chunks = (data.len() as u64).div_ceil(cs);
    let (mut damaged, mut good) = (0u64, 0u64);
    let mut buf = vec![0u8; cs as usize];
    for c in 0..chunks {
        match image.read_at(&mut buf, c * cs) {
            Ok(n) => {
                assert!(
                    buf[..n] == data[(c * cs) as usize..][..n],
                    "chunk {c} misplaced"
                );
                good += 1;
            }
            Err(Error::Damaged { range, detail }) => {
                assert_eq!(range.start, c * cs);
                assert!(detail.contains("missing segment"), "{detail}");
                damaged += 1;
            }
            Err(e) => panic!("chunk {c}: {e}"),
        }
    }
    assert!(
        damaged > 0 && good > damaged,
        "{damaged} damaged, {good} good"
    );
    // The pass agrees chunk for chunk.
    let (problems, _, _) = pass(&image);
    assert_eq!(problems.len() as u64, damaged);
}

/// Image `first` opened with caches of one table per shard (the newest) and two open files.
fn with_tiny_caches(first: &Path) -> Image {
    let mut image = Image::open(first).unwrap();
    let Image::E01(e) = &mut image else { panic!() };
    e.structure_mut().shrink_caches(1, 2);
    image
}

#[test]
fn e01_tables_and_segments_reread_after_eviction_give_the_same_places_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(3 << 20);
    let first = write_e01(dir.path(), "ev", &data, 100 * 1024);
    let all = crate::ewf::E01Image::open(&first).unwrap();
    assert!(
        all.segment_paths().len() >= 10,
        "many segments, one table each"
    );
    let places: Vec<_> = (0..all.chunk_count())
        .map(|c| all.chunk_place(c).unwrap())
        .collect();
    let image = with_tiny_caches(&first);
    let Image::E01(e) = &image else { panic!() };
    let img = e.structure();
    let mut seed = 3u64;
    for _ in 0..2000 {
        let c = lcg(&mut seed) % places.len() as u64;
        assert_eq!(img.chunk_place(c).as_ref(), Some(&places[c as usize]));
        let (tables, files) = img.cache_use();
        assert!(tables <= 4 && files <= 2, "{tables} tables, {files} files");
    }
    // Parallel readers across every segment, and a pass, through the same small caches.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| random_reads_match(&image, &data));
        }
    });
    let (problems, hashes, _) = pass(&image);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(hashes, sha256(&data));
}

#[test]
fn a_table_truncated_or_rewritten_after_opening_is_damage_for_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed(3 << 20);
    let first = write_e01(dir.path(), "ev", &data, 400 * 1024);
    let all = crate::ewf::E01Image::open(&first).unwrap();
    let segs = all.segment_paths();
    let places: Vec<_> = (0..all.chunk_count())
        .map(|c| all.chunk_place(c).unwrap())
        .collect();
    let in_seg = |s: &Path| -> Vec<u64> {
        (0..places.len() as u64)
            .filter(|&c| places[c as usize].segment == s)
            .collect()
    };
    let (two, three) = (in_seg(&segs[1]), in_seg(&segs[2]));
    let image = with_tiny_caches(&first);
    // The table of segment 2 cut off; an entry of segment 3's rewritten in place.
    let last = &places[*two.last().unwrap() as usize];
    let table_at = last.offset + last.stored_size;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[1])
        .unwrap();
    f.set_len(table_at).unwrap();
    let last = &places[*three.last().unwrap() as usize];
    let entries_at = last.offset + last.stored_size + 76 + 24;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[2])
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0x55], entries_at).unwrap();
    let cs = 32768u64;
    for (chunks, says) in [(&two, "cannot be read again"), (&three, "changed since")] {
        for &c in [chunks[0], *chunks.last().unwrap()].iter() {
            let mut buf = vec![0u8; 10];
            match image.read_at(&mut buf, c * cs + 5) {
                Err(Error::Damaged { range, detail }) => {
                    assert_eq!(range, c * cs..(c * cs + cs).min(data.len() as u64));
                    assert!(
                        detail.contains(says) && detail.contains("table"),
                        "{detail}"
                    );
                }
                other => panic!("chunk {c}: expected damage, got {other:?}"),
            }
        }
    }
    // Chunks of other segments read as before; a pass names every damaged chunk.
    let c = in_seg(&segs[0])[1];
    let mut buf = vec![0u8; cs as usize];
    image.read_at(&mut buf, c * cs).unwrap();
    assert!(buf[..] == data[(c * cs) as usize..((c + 1) * cs) as usize]);
    let (problems, _, bytes) = pass(&image);
    assert_eq!(bytes, data.len() as u64);
    let bad: Vec<u64> = problems.iter().filter_map(|p| p.chunk).collect();
    let mut expected: Vec<u64> = two.iter().chain(&three).copied().collect();
    expected.sort();
    assert_eq!(bad, expected, "{problems:?}");
}
