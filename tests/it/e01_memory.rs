//! The E01 reader's memory and descriptors do not grow with the image (issue 10): a mount of
//! a 4× larger set peaks at the same memory, and a set of more segments than the process may
//! open files verifies and reads.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use exhibit::block::Block;
use exhibit::buffer::BufferPool;
use exhibit::ewf::{Compression, E01Options, E01Sink};
use exhibit::hash::MediaHashes;
use exhibit::sink::{MediaSummary, Sink};

use crate::mount::Mounted;
use crate::support::*;

/// Writes `media` bytes of `fill(offset)` blocks as `dir/name.E01…` in chunks of
/// `sectors_per_chunk` sectors; returns the first segment.
fn write_e01(
    dir: &Path,
    name: &str,
    media: u64,
    sectors_per_chunk: u32,
    segment_size: u64,
    hashes: MediaHashes,
    fill: impl Fn(u64, &mut [u8]),
) -> PathBuf {
    let base = dir.join(name);
    let mut o = E01Options::new(media, 512);
    o.sectors_per_chunk = sectors_per_chunk;
    o.compression = Compression::Fast;
    o.segment_size = segment_size;
    o.workers = 2;
    let mut sink = E01Sink::create(&base, o, false).expect("create");
    let pool = BufferPool::new(4, BLOCK);
    let mut offset = 0u64;
    let mut i = 0u64;
    while offset < media {
        let len = (media - offset).min(BLOCK as u64) as usize;
        let mut buf = pool.take();
        fill(offset, &mut buf[..len]);
        let block = Block::new(i, offset, buf, len, Vec::new());
        sink.write_block(&Arc::new(block)).expect("write_block");
        offset += len as u64;
        i += 1;
    }
    let summary = MediaSummary {
        media_size: media,
        sector_size: 512,
        hashes,
        unreadable: Vec::new(),
    };
    Box::new(sink).finish(&summary).expect("finish");
    PathBuf::from(format!("{}.E01", base.display()))
}

/// Mostly zeros, with a marked sector every 64 MiB so that reads check their place.
fn marked(offset: u64, buf: &mut [u8]) {
    buf.fill(0);
    if offset.is_multiple_of(64 << 20) {
        buf[..8].copy_from_slice(&offset.to_le_bytes());
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Mounts `first` with an 8 MiB chunk cache, reads 1 MiB at 256 places spread over
/// `disk.raw` (every table of the set is used), checks the marks, and returns the mount
/// process's peak memory.
fn peak_of_mount(first: &Path, media: u64, mnt: &Path) -> u64 {
    let mut m = Mounted::start_with(first, mnt, &["--cache-size", "8M"]);
    let mut f = File::open(m.dir.join("disk.raw")).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < media {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut buf).unwrap();
        let mark = if at.is_multiple_of(64 << 20) { at } else { 0 };
        assert_eq!(buf[..8], mark.to_le_bytes(), "at {at}");
        assert!(buf[8..].iter().all(|&b| b == 0), "at {at}");
        at += media / 256;
    }
    drop(f);
    let peak = vm_hwm_kib(m.child.as_ref().unwrap().id());
    assert_eq!(m.terminate(), 0, "{}", m.stderr_text());
    peak
}

#[test]
fn a_mount_of_a_4x_larger_e01_peaks_at_the_same_memory() {
    require_faulty_device!();
    let dir = tempdir();
    // 8 KiB chunks (the smallest): 1 M of them in the large set (32 MiB of chunk places if
    // they were all kept, as the reader once did), 256 Ki in the small one. Both have more
    // tables than the table cache has shards (it keeps at least one decoded table a shard,
    // whatever its budget), so what is compared is growth with the image, not the cache
    // filling up: a set of a single table peaks about 2 MiB lower.
    let (small, large) = (2u64 << 30, 8u64 << 30);
    // Mount does not compare the stored hashes: none are given.
    let none = MediaHashes::default;
    let a = write_e01(dir.path(), "small", small, 16, 2000 << 20, none(), marked);
    let b = write_e01(dir.path(), "large", large, 16, 2000 << 20, none(), marked);
    let pa = peak_of_mount(&a, small, &dir.path().join("mnt-small"));
    let pb = peak_of_mount(&b, large, &dir.path().join("mnt-large"));
    eprintln!("VmHWM: {small} bytes: {pa} KiB, {large} bytes: {pb} KiB");
    // Runs of the same mount differ by a few MiB (which threads touch which allocator arena);
    // a place kept per chunk would add 24 MiB here.
    assert!(
        pb <= pa + 8192,
        "the larger set's mount peaked at {pb} KiB, the smaller's at {pa} KiB"
    );
}

#[test]
fn a_set_of_more_segments_than_open_files_allowed_verifies_and_reads() {
    let dir = tempdir();
    // One 8 KiB chunk of noise per segment: 1200 segments, under a limit of 256 descriptors.
    let media = 1200 * 8192u64;
    let noise = |offset: u64, buf: &mut [u8]| {
        let mut s = offset | 1;
        for b in buf.iter_mut() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (s >> 33) as u8;
        }
    };
    let mut expected = vec![0u8; media as usize];
    for (i, c) in expected.chunks_mut(BLOCK).enumerate() {
        noise((i * BLOCK) as u64, c);
    }
    let first = write_e01(
        dir.path(),
        "many",
        media,
        16,
        12_400,
        e01::hashes(&expected),
        noise,
    );
    let segments = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(segments > 1100, "{segments} segments");
    let limited = |args: &[&str]| {
        let out = std::process::Command::new("prlimit")
            .arg("--nofile=256")
            .arg(env!("CARGO_BIN_EXE_exhibit"))
            .args(args)
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), out)
    };
    let p = first.to_str().unwrap();
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let (code, out) = limited(&["verify", p]);
    assert_eq!(code, 0, "{}", said(&out));
    let (code, out) = limited(&["cat", p]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == expected, "cat gives the media");
}
