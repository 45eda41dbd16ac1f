//! Rescue on an in-memory faulty disk: exactly the bad sectors, no more reads than GNU
//! ddrescue makes, resumes that never re-read, short answers, foreign maps.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::*;
use crate::block::Block;
use crate::hash::HashAlgorithm;
use crate::map::{BlockState, SectorMap};
use crate::reader::recover::ReadAt;
use crate::reader::StreamEnd;

use crate::fake_disk::FakeDisk;

impl SectorReader for FakeDisk {
    fn sector_size(&self) -> u32 {
        FakeDisk::sector_size(self)
    }
}

fn opts(dir: &Path) -> RescueOptions {
    let mut o = RescueOptions::new(dir.join("img"));
    o.retry_passes = 0;
    o
}

fn run(disk: &FakeDisk, o: &RescueOptions) -> Result<RescueReport> {
    let p = RescueProgress::default();
    let stop = AtomicBool::new(false);
    rescue_from(disk, Path::new("fake"), o, &p, &stop, None)
}

/// The fast reader over a fake disk: the same contract as io_uring's, one block at a time.
struct FakeStream<'d> {
    disk: &'d FakeDisk,
    pool: BufferPool,
    streams: u32,
}

impl<'d> FakeStream<'d> {
    fn new(disk: &'d FakeDisk) -> Self {
        FakeStream {
            disk,
            pool: BufferPool::new(4, FAST_BLOCK_SIZE as usize),
            streams: 0,
        }
    }
}

impl StretchReader for FakeStream<'_> {
    fn block_size(&self) -> u64 {
        FAST_BLOCK_SIZE
    }
    fn stream(
        &mut self,
        start: u64,
        end: u64,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd> {
        self.streams += 1;
        let mut pos = start;
        let mut index = 0;
        while pos < end {
            let block_end = ((pos / FAST_BLOCK_SIZE + 1) * FAST_BLOCK_SIZE).min(end);
            let len = (block_end - pos) as usize;
            let mut buf = self.pool.take();
            let asked = len.div_ceil(self.disk.ss as usize) * self.disk.ss as usize;
            match self.disk.read_at(&mut buf[..asked], pos) {
                Ok(n) => assert!(n >= len, "the fake answers whole"),
                Err(e) => {
                    return Ok(StreamEnd::Failed {
                        offset: pos,
                        len: len as u64,
                        errno: e.raw_os_error().unwrap_or(libc::EIO),
                        also_failed: Vec::new(),
                    })
                }
            }
            emit(Block::new(index, pos, buf, len, Vec::new()))?;
            index += 1;
            pos = block_end;
        }
        Ok(StreamEnd::Done)
    }
}

fn run_streaming(disk: &FakeDisk, o: &RescueOptions) -> (Result<RescueReport>, u32) {
    let p = RescueProgress::default();
    let stop = AtomicBool::new(false);
    let mut stream = FakeStream::new(disk);
    let r = rescue_from(disk, Path::new("fake"), o, &p, &stop, Some(&mut stream));
    (r, stream.streams)
}

/// The report's hashes are those of `image`, as the coreutils would compute them.
fn assert_hashes_of(r: &RescueReport, image: &[u8]) {
    for alg in HashAlgorithm::ALL {
        let mut h = alg.hasher();
        h.update(image);
        assert_eq!(r.hashes.get(alg).unwrap(), h.finish(), "{alg}");
    }
}

#[test]
fn healthy_media_is_streamed_and_hashed_on_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(9 * 1024 * 1024 + 3 * 512, 512).filled(|i| (i * 31 % 251) as u8);
    let o = opts(dir.path());
    let (r, streams) = run_streaming(&disk, &o);
    let r = r.unwrap();
    assert_eq!(r.bad_bytes, 0);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
    assert_hashes_of(&r, &disk.data);
    // 8 MiB in 64 KiB reads, then they grow (128K, 128K, 256K to the 1 MiB grid) and the
    // rest is one stream of 1 MiB reads (two: the last is 3 sectors); every sector once.
    assert_eq!(streams, 1);
    assert_eq!(r.reads, 128 + 3 + 2);
    assert!((0..disk.data.len() as u64 / 512).all(|s| disk.reads_of(s) == 1));
}

#[test]
fn a_failed_stream_block_is_trimmed_with_no_more_reads_of_the_bad_sector() {
    // Trouble after 10 MiB of healthy disk, and again 20 MiB later, past a clean streak.
    let bad = [10 * 2048 + 700, 10 * 2048 + 701, 30 * 2048 + 5];
    let make = || {
        let mut d = FakeDisk::new(40 * 1024 * 1024, 512).filled(|i| (i % 249) as u8);
        for s in bad {
            d = d.bad(s, None, libc::ENODATA);
        }
        d
    };
    let (fast, careful) = (make(), make());
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir.path().join("fast"));
    std::fs::create_dir(dir.path().join("fast")).unwrap();
    let (r, streams) = run_streaming(&fast, &o);
    let r = r.unwrap();
    assert!(streams >= 2, "{streams} streams");
    let map = load_map(&o);
    assert_eq!(bad_sectors(&map, 512), bad);
    let expected = fast.expected(&bad);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), expected);
    assert_hashes_of(&r, &expected);

    std::fs::create_dir(dir.path().join("careful")).unwrap();
    let mut oc = opts(&dir.path().join("careful"));
    oc.careful = true;
    let rc = run(&careful, &oc).unwrap();
    assert_eq!(rc.hashes, r.hashes);
    for s in bad {
        assert!(
            fast.reads_of(s) <= careful.reads_of(s),
            "sector {s}: {} reads streaming, {} careful",
            fast.reads_of(s),
            careful.reads_of(s)
        );
    }
    // Far from trouble the fast run read every sector once; it failed no more reads.
    // (Its failed 1 MiB block costs more single-sector reads to trim than a 64 KiB one:
    // good sectors, each read once.)
    assert_eq!(fast.reads_of(38 * 2048), 1);
    assert_eq!(fast.reads_of(5 * 2048), 1);
    assert!(
        r.read_errors <= rc.read_errors,
        "{} vs {}",
        r.read_errors,
        rc.read_errors
    );
}

#[test]
fn a_sector_rescued_after_it_was_hashed_as_zeros_is_hashed_as_data() {
    let dir = tempfile::tempdir().unwrap();
    // Fails the copy, trim and first retry reads; the second retry pass reads it, long
    // after the hashes went past it (the image behind it was settled).
    let disk = FakeDisk::new(3 * 1024 * 1024, 512)
        .filled(|i| (i % 241) as u8 | 1)
        .bad(300, Some(3), libc::EIO);
    let mut o = opts(dir.path());
    o.retry_passes = 2;
    o.map_interval = Duration::ZERO;
    let (r, _) = run_streaming(&disk, &o);
    let r = r.unwrap();
    assert_eq!(r.bad_bytes, 0);
    assert_eq!(disk.reads_of(300), 4);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
    assert_hashes_of(&r, &disk.data);
}

fn bad_sectors(map: &SectorMap, ss: u64) -> Vec<u64> {
    map.blocks_in(BlockState::BadSector)
        .flat_map(|b| (b.pos / ss..b.end().div_ceil(ss)).collect::<Vec<_>>())
        .collect()
}

fn load_map(o: &RescueOptions) -> SectorMap {
    let p = o.map_path();
    SectorMap::parse(&std::fs::read_to_string(&p).unwrap(), &p).unwrap()
}

#[test]
fn finds_exactly_the_bad_sectors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [0u64, 5, 6, 7, 300, 1001, 2047];
    let mut disk = FakeDisk::new(2048 * 512, 512);
    for &s in &bad {
        disk = disk.bad(s, None, libc::EIO);
    }
    let o = opts(dir.path());
    let r = run(&disk, &o).unwrap();
    assert!(r.complete);
    let map = load_map(&o);
    assert_eq!(bad_sectors(&map, 512), bad);
    assert_eq!(map.bytes_in(BlockState::Finished), (2048 - 7) * 512);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.expected(&bad));
    assert_eq!(r.bad_bytes, 7 * 512);
    assert_eq!(r.bad_runs.len(), 5);
    assert_eq!(r.bad_runs[1].offset, 5 * 512);
    assert_eq!(r.bad_runs[1].length, 3 * 512);
    assert_eq!(r.bad_runs[1].errno, libc::EIO);
    // No sector was read alone more than twice (trim or scrape, then nothing), and no
    // good sector far from trouble was read more than once.
    for &s in &bad {
        assert!(disk.reads_of(s) <= 3, "sector {s}: {}", disk.reads_of(s));
    }
    assert_eq!(disk.reads_of(1500), 1);
    // The hash log names the image and matches it.
    let md5 = std::fs::read_to_string(o.path_with("md5")).unwrap();
    assert!(md5.ends_with("  img.raw\n"), "{md5}");
}

#[test]
fn partial_final_sector_and_final_block() {
    let dir = tempfile::tempdir().unwrap();
    // 1000 sectors + 100 bytes: the last block and the last sector are partial.
    let disk = FakeDisk::new(1000 * 512 + 100, 512)
        .bad(1000, None, libc::EIO)
        .bad(990, None, libc::EIO);
    let o = opts(dir.path());
    run(&disk, &o).unwrap();
    let map = load_map(&o);
    assert_eq!(map.size(), 1000 * 512 + 100);
    assert_eq!(bad_sectors(&map, 512), vec![990, 1000]);
    assert_eq!(map.bytes_in(BlockState::BadSector), 512 + 100);
    assert_eq!(
        std::fs::read(o.image_path()).unwrap(),
        disk.expected(&[990, 1000])
    );
}

#[test]
fn transient_sector_is_recovered_by_retry_passes() {
    let dir = tempfile::tempdir().unwrap();
    // Fails the first 2 reads: the copy read and the trim read fail; retry pass 1 reads it
    // (3 reads in all, like `--retries 3` allows).
    let disk = FakeDisk::new(512 * 512, 512).bad(100, Some(2), libc::EIO);
    let mut o = opts(dir.path());
    o.retry_passes = 3;
    let r = run(&disk, &o).unwrap();
    assert_eq!(r.bad_bytes, 0);
    assert!(r.bad_runs.is_empty());
    assert_eq!(disk.reads_of(100), 3);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
    assert_eq!(r.retry_passes_done, 1);
}

#[test]
fn without_retries_a_transient_sector_stays_bad_until_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(512 * 512, 512).bad(100, Some(3), libc::EIO);
    let mut o = opts(dir.path());
    o.retry_passes = 1;
    let r = run(&disk, &o).unwrap();
    assert_eq!(r.bad_bytes, 512);
    assert_eq!(r.bad_runs[0].attempts, 2);
    assert_eq!(disk.reads_of(100), 3);
    // Running again with the same options reads nothing: the pass is done.
    let r2 = run(&disk, &o).unwrap();
    assert_eq!(r2.reads, 0);
    assert!(r2.resumed);
    // Asking for more passes runs only the extra one; the sector reads now.
    o.retry_passes = 2;
    let r3 = run(&disk, &o).unwrap();
    assert_eq!(r3.reads, 1);
    assert_eq!(r3.bad_bytes, 0);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
}

#[test]
fn enodata_is_a_media_error_and_einval_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(256 * 512, 512).bad(17, None, libc::ENODATA);
    let o = opts(dir.path());
    let r = run(&disk, &o).unwrap();
    assert_eq!(r.bad_runs.len(), 1);
    assert_eq!(r.bad_runs[0].errno, libc::ENODATA);

    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(256 * 512, 512).bad(17, None, libc::EINVAL);
    let o = opts(dir.path());
    match run(&disk, &o) {
        Err(Error::Read { offset, .. }) => assert_eq!(offset, 0),
        other => panic!("expected a read error, got {other:?}"),
    }
    // The map was saved and still says nothing was read there.
    assert_eq!(load_map(&o).bytes_in(BlockState::Finished), 0);

    // A source that vanishes in the middle: what was read before is kept in the map.
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(1024 * 512, 512).bad(900, None, libc::ENODEV);
    let mut o = opts(dir.path());
    o.map_interval = Duration::from_secs(3600);
    o.careful = true; // 64 KiB reads: the one that fails starts at sector 896
    assert!(matches!(run(&disk, &o), Err(Error::Read { .. })));
    let m = load_map(&o);
    assert_eq!(m.bytes_in(BlockState::Finished), 896 * 512);
    let image = std::fs::read(o.image_path()).unwrap();
    assert_eq!(image[..896 * 512], disk.data[..896 * 512]);
}

#[test]
fn sectors_of_4096() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(300 * 4096, 4096)
        .bad(0, None, libc::EIO)
        .bad(299, None, libc::EIO)
        .bad(150, None, libc::EIO)
        .bad(151, None, libc::EIO);
    let o = opts(dir.path());
    let r = run(&disk, &o).unwrap();
    assert_eq!(r.sector_size, 4096);
    assert_eq!(bad_sectors(&load_map(&o), 4096), vec![0, 150, 151, 299]);
    assert_eq!(
        std::fs::read(o.image_path()).unwrap(),
        disk.expected(&[0, 150, 151, 299])
    );
}

#[test]
fn interrupted_runs_resume_without_rereading() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let bad: Vec<u64> = vec![3, 400, 401, 402, 900, 1500, 4095];
    let make = || {
        let mut d = FakeDisk::new(4096 * 512, 512);
        for &s in &bad {
            d = d.bad(s, None, libc::EIO);
        }
        d
    };
    let reference = make();
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path());
    run(&reference, &o).unwrap();
    let want_image = std::fs::read(o.image_path()).unwrap();
    let want_md5 = std::fs::read_to_string(o.path_with("md5")).unwrap();
    let total_reads = reference.total.load(Ordering::SeqCst);

    // Interrupt after every k reads, resume, until complete.
    for step in [7u64, 40, 150] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.map_interval = Duration::from_secs(3600);
        let mut runs = 0;
        let mut reads = 0;
        loop {
            STOP.store(false, Ordering::SeqCst);
            let mut d = make();
            d.interrupt_after = Some((step, &STOP));
            let before = if o.map_path().exists() {
                Some(load_map(&o))
            } else {
                None
            };
            let p = RescueProgress::default();
            let r = rescue_from(&d, Path::new("fake"), &o, &p, &STOP, None);
            reads += d.total.load(Ordering::SeqCst);
            runs += 1;
            // Nothing finished before this run was read again.
            if let Some(m) = before {
                for b in m.blocks_in(BlockState::Finished) {
                    for s in b.pos / 512..b.end() / 512 {
                        assert_eq!(d.reads_of(s), 0, "finished sector {s} re-read");
                    }
                }
            }
            match r {
                Ok(_) => break,
                Err(Error::Interrupted(_)) => continue,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(runs > 2, "step {step}: {runs} runs");
        assert_eq!(std::fs::read(o.image_path()).unwrap(), want_image);
        assert_eq!(
            std::fs::read_to_string(o.path_with("md5")).unwrap(),
            want_md5
        );
        // Resuming costs at most the interrupted read per run.
        assert!(reads <= total_reads + runs, "{reads} vs {total_reads}");
    }
}

#[test]
fn resumes_a_gnu_ddrescue_map_and_refuses_surprises() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(64 * 512, 512).bad(10, None, libc::EIO);
    let o = opts(dir.path());
    // ddrescue got the first 8 sectors, failed a block at 8..16, and stopped.
    let map = "# Mapfile. Created by GNU ddrescue version 1.27\n0x00001000     ?               1\n#      pos        size  status\n0x00000000  0x00001000  +\n0x00001000  0x00001000  *\n0x00002000  0x00006000  ?\n";
    std::fs::write(o.map_path(), map).unwrap();
    // Its image has the data it got.
    let mut img = vec![0u8; 64 * 512];
    img[..4096].copy_from_slice(&disk.data[..4096]);
    std::fs::write(o.image_path(), &img).unwrap();
    let r = run(&disk, &o).unwrap();
    assert!(r.resumed);
    for s in 0..8 {
        assert_eq!(disk.reads_of(s), 0);
    }
    assert_eq!(bad_sectors(&load_map(&o), 512), vec![10]);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.expected(&[10]));

    // An image without a map is refused; a map of another size too.
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path());
    std::fs::write(o.image_path(), b"x").unwrap();
    assert!(matches!(run(&disk, &o), Err(Error::Refused(_))));
    std::fs::write(o.map_path(), "0 ?\n0 0x100 ?\n").unwrap();
    assert!(matches!(run(&disk, &o), Err(Error::Refused(_))));
    let mut o2 = o.clone();
    o2.overwrite = true;
    assert!(run(&disk, &o2).unwrap().complete);
}

#[test]
fn skipping_reads_bad_areas_no_more_than_needed() {
    // A 40-sector bad run: copy fails a block, jumps; trimming reaches each edge once;
    // scraping reads each inner sector once.
    let dir = tempfile::tempdir().unwrap();
    let mut disk = FakeDisk::new(2048 * 512, 512);
    for s in 500..540 {
        disk = disk.bad(s, None, libc::EIO);
    }
    let o = opts(dir.path());
    let r = run(&disk, &o).unwrap();
    assert_eq!(r.bad_bytes, 40 * 512);
    for s in 500..540 {
        assert!(disk.reads_of(s) <= 2, "sector {s}: {}", disk.reads_of(s));
    }
}

#[test]
fn short_reads_are_continued() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = FakeDisk::new(700 * 512 + 300, 512).bad(333, None, libc::EIO);
    disk.short = Some(3 * 512 + 100);
    let o = opts(dir.path());
    let r = run(&disk, &o).unwrap();
    assert_eq!(bad_sectors(&load_map(&o), 512), vec![333]);
    assert_eq!(r.bad_bytes, 512);
    assert_eq!(
        std::fs::read(o.image_path()).unwrap(),
        disk.expected(&[333])
    );
}

#[test]
fn a_map_whose_position_is_past_untried_areas_is_still_completed() {
    // Killed just as copy pass 2 began, with a stale position: areas before it must still
    // be read, not reported complete.
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(512 * 512, 512).bad(7, None, libc::EIO);
    let o = opts(dir.path());
    let map =
        "0x00030000     ?               2\n0x00000000  0x00010000  ?\n0x00010000  0x00030000  +\n";
    std::fs::write(o.map_path(), map).unwrap();
    let mut img = vec![0u8; 512 * 512];
    img[0x10000..0x40000].copy_from_slice(&disk.data[0x10000..0x40000]);
    std::fs::write(o.image_path(), &img).unwrap();
    let r = run(&disk, &o).unwrap();
    assert!(r.complete);
    assert_eq!(bad_sectors(&load_map(&o), 512), vec![7]);
    assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.expected(&[7]));
    assert_eq!(disk.reads_of(0x10000 / 512), 0);
}
