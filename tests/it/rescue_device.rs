//! `exhibit rescue` on a real faulty block device (FUSE + loop, O_DIRECT): the image equals
//! the source with exactly the bad sectors zeroed, the map marks exactly those sectors, a
//! sector that fails twice is recovered by retry passes, GNU ddrescue finds the same bad
//! areas, and a rescue killed with SIGKILL resumes without re-reading finished areas.
//!
//! Root-only: without root, /dev/fuse or losetup every test prints SKIP and passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use exhibit::map::{BlockState, SectorMap};
use exhibit::rescue::{rescue, RescueOptions, RescueProgress, RescueReport};
use exhibit::source::Source;

use crate::support::*;

fn run_rescue(dev: &FaultyDevice, base: &Path, retry_passes: u32) -> RescueReport {
    let source = Source::open(&dev.device, true).unwrap();
    assert!(source.is_direct());
    assert_eq!(source.logical_sector_size(), dev.sector_size);
    let mut opts = RescueOptions::new(base);
    opts.retry_passes = retry_passes;
    rescue_with(&source, &opts)
}

/// A rescue that nobody interrupts.
fn rescue_with(source: &Source, opts: &RescueOptions) -> RescueReport {
    rescue(
        source,
        opts,
        &RescueProgress::default(),
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// A device with every awkward case at once, in units of its sector size: the first and the
/// last sector, a run of adjacent sectors, a lone sector, an ENODATA sector, a sector inside
/// the final partial copy block, and a sector that fails only twice.
struct Scenario {
    dev: FaultyDevice,
    always_bad: Vec<u64>,
    transient: u64,
}

fn scenario(ss: u32) -> Scenario {
    let ssz = u64::from(ss);
    // 64 KiB copy blocks; the device is 5125 sectors, so the last copy block is partial (5
    // sectors) and holds two bad sectors.
    let sectors = 40 * 128 + 5;
    let last = sectors - 1;
    let always_bad = vec![
        0,
        700,
        1500,
        1501,
        1502,
        1503,
        1504,
        1505,
        1506,
        3001,
        last - 2,
        last,
    ];
    let transient = 2222;
    let mut b = FaultyDevice::builder(sectors * ssz).sector_size(ss);
    for &s in &always_bad {
        let errno = if s == 3001 { libc::ENODATA } else { libc::EIO };
        b = b.fault(s, 1, Fault::Always(errno));
    }
    b = b.fault(transient, 1, Fault::FirstN(2, libc::EIO));
    Scenario {
        dev: b.build(),
        always_bad,
        transient,
    }
}

fn check_rescue_on(ss: u32) {
    let sc = scenario(ss);
    let dev = &sc.dev;
    let ssz = u64::from(ss);
    let base = dev.dir.join("rescued");
    let r = run_rescue(dev, &base, 3);
    assert!(r.complete);
    assert_eq!(r.sector_size, ss);

    let map = load_map(&base.with_extension("map"));
    assert_eq!(map.size(), dev.size);
    assert_eq!(
        bad_sectors(&map, ssz),
        sc.always_bad,
        "bad sectors in the map"
    );
    assert_eq!(
        map.bytes_in(BlockState::Finished) + map.bytes_in(BlockState::BadSector),
        dev.size,
        "nothing left unread"
    );
    let image = std::fs::read(base.with_extension("raw")).unwrap();
    assert!(image == dev.expected_image(&sc.always_bad), "image differs");
    assert_eq!(r.bad_bytes, sc.always_bad.len() as u64 * ssz);
    let enodata = r.bad_runs.iter().find(|b| b.offset == 3001 * ssz).unwrap();
    assert_eq!(enodata.errno, libc::ENODATA);

    // The transient sector was read three times (copy, trim, first retry pass) and rescued.
    let t = sc.transient * ssz;
    let failed_reads = dev
        .read_log()
        .iter()
        .filter(|rec| rec.touches(t, ssz) && rec.failed)
        .count();
    assert_eq!(failed_reads, 2);
    assert_eq!(r.retry_passes_done, 3.min(r.retry_passes_done));

    // The record says how it ended and lists exactly the bad runs.
    let record = exhibit::audit::AuditRecord::read(&base.with_extension("yaml")).unwrap();
    assert_eq!(record.outcome.status, "complete-with-unreadable-sectors");
    assert_eq!(record.outcome.exit_code, Some(1));
    assert_eq!(record.unreadable.sectors, sc.always_bad.len() as u64);
    assert_eq!(unreadable_runs(&record), runs_of(&sc.always_bad));
    assert_eq!(
        record.hashes.as_ref().unwrap().md5.as_deref(),
        Some(exhibit::hash::to_hex(r.hashes.md5.as_ref().unwrap()).as_str())
    );

    // The hash logs check with coreutils.
    hash_logs_check(&base, &["md5", "sha1", "sha256"]);

    // No finished area was read twice: every good sector outside the failed copy blocks was
    // read exactly once.
    let log = dev.read_log();
    let block = 64 * 1024;
    let troubled: Vec<u64> = sc
        .always_bad
        .iter()
        .chain(std::iter::once(&sc.transient))
        .map(|s| s * ssz / block)
        .collect();
    for sector in (0..dev.size / ssz).step_by(37) {
        if troubled.contains(&(sector * ssz / block)) {
            continue;
        }
        let n = log.iter().filter(|r| r.touches(sector * ssz, ssz)).count();
        assert_eq!(n, 1, "good sector {sector} read {n} times");
    }
}

#[test]
fn rescue_512_byte_sectors() {
    require_faulty_device!();
    check_rescue_on(512);
}

#[test]
fn rescue_4096_byte_sectors() {
    require_faulty_device!();
    check_rescue_on(4096);
}

fn ddrescue_available() -> bool {
    have("ddrescue")
}

fn check_against_ddrescue(ss: u32) {
    let sc = scenario(ss);
    let dev = &sc.dev;
    let ssz = u64::from(ss);
    let base = dev.dir.join("ours");
    run_rescue(dev, &base, 3);
    let ours = load_map(&base.with_extension("map"));

    dev.reset();
    let img = dev.dir.join("dd.img");
    let mapfile = dev.dir.join("dd.map");
    let out = Command::new("ddrescue")
        .args(["-d", "-b", &ss.to_string(), "-r", "3", "-q"])
        .arg(&dev.device)
        .arg(&img)
        .arg(&mapfile)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "ddrescue: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = load_map(&mapfile);
    assert_eq!(theirs.size(), ours.size());
    assert_eq!(
        bad_sectors(&theirs, ssz),
        bad_sectors(&ours, ssz),
        "GNU ddrescue and exhibit disagree on the bad areas"
    );
    assert_eq!(bad_sectors(&ours, ssz), sc.always_bad);
    // ddrescue leaves bad areas unwritten in a new file: zeros, like ours (and a bad last
    // sector not written at all, so its file is that much shorter).
    let mut theirs_image = std::fs::read(&img).unwrap();
    assert!(theirs_image.len() as u64 <= dev.size);
    theirs_image.resize(dev.size as usize, 0);
    assert!(theirs_image == std::fs::read(base.with_extension("raw")).unwrap());
}

#[test]
fn same_bad_areas_as_gnu_ddrescue_512() {
    require_faulty_device!();
    if !ddrescue_available() {
        println!("SKIP: GNU ddrescue is not installed");
        return;
    }
    check_against_ddrescue(512);
}

#[test]
fn same_bad_areas_as_gnu_ddrescue_4096() {
    require_faulty_device!();
    if !ddrescue_available() {
        println!("SKIP: GNU ddrescue is not installed");
        return;
    }
    check_against_ddrescue(4096);
}

/// The rescue as its own process, so that it can be killed with SIGKILL: this same test
/// binary, running only [`child_rescue`] with the device and base in the environment.
fn spawn_child(device: &Path, base: &Path) -> std::process::Child {
    child_test("rescue_device::child_rescue")
        .env("EXHIBIT_TEST_CHILD_DEVICE", device)
        .env("EXHIBIT_TEST_CHILD_BASE", base)
        .spawn()
        .unwrap()
}

/// Not a test of its own: the body of the child process of [`killed_and_resumed`].
#[test]
fn child_rescue() {
    let (Some(device), Some(base)) = (
        std::env::var_os("EXHIBIT_TEST_CHILD_DEVICE"),
        std::env::var_os("EXHIBIT_TEST_CHILD_BASE"),
    ) else {
        return;
    };
    let source = Source::open(Path::new(&device), true).unwrap();
    let mut opts = RescueOptions::new(PathBuf::from(base));
    opts.retry_passes = 2;
    opts.map_interval = Duration::from_millis(100);
    rescue_with(&source, &opts);
}

#[test]
fn killed_and_resumed() {
    require_faulty_device!();
    let ss = 512u64;
    let bad = [5u64, 600, 601, 602, 1800, 2500, 4000, 4095];
    let mut b = FaultyDevice::builder(4096 * ss).read_delay(Duration::from_millis(2));
    for &s in &bad {
        b = b.bad(s);
    }
    let dev = b.build();

    // The uninterrupted run, for reference.
    let reference = dev.dir.join("reference");
    let mut child = spawn_child(&dev.device, &reference);
    assert!(child.wait().unwrap().success());
    let total_reads = dev.read_log().len();
    let want_image = std::fs::read(reference.with_extension("raw")).unwrap();
    assert!(want_image == dev.expected_image(&bad));

    // Kill after k reads of each run (counted by the device), then resume, until done.
    let base = dev.dir.join("killed");
    let mut kills = 0;
    let mut runs = 0;
    let mut phases = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Kill after k reads of a run (counted by the device), or as soon as the saved map says
    // the run is in a given phase; then resume, until a run finishes.
    enum Kill {
        AfterReads(usize),
        InPhase(char),
        Never,
    }
    let map_path = base.with_extension("map");
    let in_phase = |c: char| {
        std::fs::read_to_string(&map_path)
            .ok()
            .and_then(|t| SectorMap::parse(&t, &map_path).ok())
            .is_some_and(|m| m.current_status == c)
    };
    for plan in [
        Kill::AfterReads(10),
        Kill::AfterReads(60),
        Kill::AfterReads(150),
        Kill::InPhase('-'),
        Kill::AfterReads(4),
        Kill::Never,
    ] {
        let before = if base.with_extension("map").exists() {
            Some(load_map(&base.with_extension("map")))
        } else {
            None
        };
        dev.reset();
        let mut child = spawn_child(&dev.device, &base);
        runs += 1;
        let done = loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(st.success(), "resumed run failed");
                break true;
            }
            let kill = match plan {
                Kill::AfterReads(k) => dev.read_log().len() >= k,
                Kill::InPhase(c) => in_phase(c),
                Kill::Never => false,
            };
            if kill {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                break false;
            }
            assert!(Instant::now() < deadline, "rescue did not finish");
            std::thread::sleep(Duration::from_millis(1));
        };
        if !done {
            phases.insert(load_map(&base.with_extension("map")).current_status);
        }
        // Let a read that was in flight at the kill reach the log.
        std::thread::sleep(Duration::from_millis(30));
        if let Some(m) = before {
            for rec in dev.read_log() {
                for f in m.blocks_in(BlockState::Finished) {
                    assert!(
                        !rec.touches(f.pos, f.size),
                        "run {runs} re-read finished area {}+{} (read {}+{})",
                        f.pos,
                        f.size,
                        rec.offset,
                        rec.len
                    );
                }
            }
        }
        if done {
            break;
        }
    }
    assert!(kills >= 3, "only {kills} kills landed");
    // The kills landed in more than one phase (copying `?`, trimming `*`, scraping `/`,
    // retrying `-`).
    assert!(phases.len() >= 2, "all kills in phases {phases:?}");
    assert!(std::fs::read(base.with_extension("raw")).unwrap() == want_image);
    for ext in ["md5", "sha1", "sha256"] {
        let ours = std::fs::read_to_string(base.with_extension(ext)).unwrap();
        let theirs = std::fs::read_to_string(reference.with_extension(ext)).unwrap();
        assert_eq!(
            ours.split_whitespace().next(),
            theirs.split_whitespace().next()
        );
    }
    assert_eq!(
        bad_sectors(&load_map(&base.with_extension("map")), ss),
        bad.to_vec()
    );
    eprintln!(
        "killed {kills} times in {runs} runs (phases {phases:?}); uninterrupted run made {total_reads} reads"
    );
}

#[test]
fn rescue_onto_a_target_device() {
    require_faulty_device!();
    let bad = [3u64, 4, 2000];
    let mut b = FaultyDevice::builder(2048 * 512);
    for &s in &bad {
        b = b.bad(s);
    }
    let dev = b.build();
    // The target is larger than the source and full of old data (0xAA).
    let target = LoopDevice::new_file(&dev.dir.join("target.img"), 3 << 20, 0xAA);
    let base = dev.dir.join("cloned");
    let source = Source::open(&dev.device, true).unwrap();
    let mut opts = RescueOptions::new(&base);
    opts.target = Some(target.path.clone());
    let r = rescue_with(&source, &opts);
    assert!(!base.with_extension("raw").exists());
    let mut on_target = std::fs::read(&target.path).unwrap();
    // Past the source size the target is untouched; bad sectors are zeros, not old data.
    assert!(on_target[dev.size as usize..].iter().all(|&b| b == 0xAA));
    on_target.truncate(dev.size as usize);
    assert!(on_target == dev.expected_image(&bad));
    let md5 = std::fs::read_to_string(base.with_extension("md5")).unwrap();
    assert!(md5.ends_with("  -\n"), "{md5}");
    assert_eq!(r.bad_bytes, 3 * 512);
}

#[test]
fn interrupted_rescue_says_so_and_resumes() {
    require_faulty_device!();
    let bad = [10u64, 1000, 1001];
    let mut b = FaultyDevice::builder(8192 * 512).read_delay(Duration::from_millis(1));
    for &s in &bad {
        b = b.bad(s);
    }
    let dev = b.build();
    let base = dev.dir.join("stopped");
    let source = Source::open(&dev.device, true).unwrap();
    let opts = RescueOptions::new(&base);
    let stop = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        // SIGINT arrives (the CLI's signal handler sets this flag) after 10 reads.
        scope.spawn(|| {
            while dev.read_log().len() < 10 {
                std::thread::sleep(Duration::from_millis(1));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        rescue(&source, &opts, &RescueProgress::default(), &stop)
    });
    assert!(matches!(result, Err(exhibit::Error::Interrupted(_))));
    let record = exhibit::audit::AuditRecord::read(&base.with_extension("yaml")).unwrap();
    assert_eq!(record.outcome.status, "interrupted");
    assert_eq!(record.outcome.exit_code, Some(2));
    assert!(record.outcome.reason.unwrap().contains("resume"));
    assert!(!base.with_extension("md5").exists());
    let map = load_map(&base.with_extension("map"));
    assert!(map.bytes_in(BlockState::NonTried) > 0);
    assert!(map.bytes_in(BlockState::Finished) > 0);

    // The same command again finishes the job.
    dev.reset();
    let r = run_rescue(&dev, &base, 1);
    assert!(r.resumed);
    for f in map.blocks_in(BlockState::Finished) {
        assert_eq!(dev.reads_touching(f.pos, f.size), 0);
    }
    assert!(std::fs::read(base.with_extension("raw")).unwrap() == dev.expected_image(&bad));
    let record = exhibit::audit::AuditRecord::read(&base.with_extension("yaml")).unwrap();
    assert_eq!(record.outcome.status, "complete-with-unreadable-sectors");
}

/// Reads of the device, from its log, that touched each of `sectors`.
fn touches_per_sector(dev: &FaultyDevice, sectors: &[u64], ssz: u64) -> Vec<usize> {
    let log = dev.read_log();
    sectors
        .iter()
        .map(|s| log.iter().filter(|r| r.touches(s * ssz, ssz)).count())
        .collect()
}

/// A mostly healthy disk: the healthy stretches are streamed in large reads (through
/// io_uring), the bad sectors are still found exactly, and no bad sector is read more often
/// than GNU ddrescue -d reads it with the same retry count.
#[test]
fn healthy_stretches_in_large_reads_and_bad_sectors_no_more_often_than_ddrescue_512() {
    require_faulty_device!();
    check_streaming_against_ddrescue(512);
}

#[test]
fn healthy_stretches_in_large_reads_and_bad_sectors_no_more_often_than_ddrescue_4096() {
    require_faulty_device!();
    check_streaming_against_ddrescue(4096);
}

fn check_streaming_against_ddrescue(ss: u32) {
    let ssz = u64::from(ss);
    let mib = (1 << 20) / ssz;
    // Trouble after 20 MiB of healthy disk (a bad area spread over several in-flight reads)
    // and again after 20 MiB more.
    let bad = vec![
        20 * mib + 30,
        20 * mib + 31,
        20 * mib + mib / 2,
        21 * mib + 5,
        23 * mib + 1,
        41 * mib + 7,
    ];
    let mut b = FaultyDevice::builder(48 << 20).sector_size(ss);
    for &s in &bad {
        b = b.fault(s, 1, Fault::Always(libc::EIO));
    }
    let dev = b.build();
    let base = dev.dir.join("fast");
    let r = run_rescue(&dev, &base, 1);
    let log = dev.read_log();
    let ours = touches_per_sector(&dev, &bad, ssz);

    assert_eq!(
        bad_sectors(&load_map(&base.with_extension("map")), ssz),
        bad
    );
    let expected = dev.expected_image(&bad);
    assert!(std::fs::read(base.with_extension("raw")).unwrap() == expected);
    // The hashes are those of the image, hashed while it was read.
    assert_eq!(
        exhibit::hash::to_hex(r.hashes.sha256.as_ref().unwrap()),
        sha256_hex(&expected)
    );
    let record = exhibit::audit::AuditRecord::read(&base.with_extension("yaml")).unwrap();
    let reader = record.reader.unwrap();
    assert_eq!(reader.engine, exhibit::reader::EngineKind::Uring);
    // The first 20 MiB went in large reads (the device sees at most 128 KiB per request
    // from FUSE; 64 KiB reads one at a time would be 320 of them).
    let healthy_reads = log.iter().filter(|r| r.offset < 20 << 20).count();
    assert!(
        healthy_reads < 200,
        "{healthy_reads} reads for the first 20 MiB"
    );

    if !ddrescue_available() {
        println!("SKIP (the ddrescue half): GNU ddrescue is not installed");
        return;
    }
    dev.reset();
    let out = Command::new("ddrescue")
        .args(["-d", "-b", &ss.to_string(), "-r", "1", "-q"])
        .arg(&dev.device)
        .arg(dev.dir.join("dd.img"))
        .arg(dev.dir.join("dd.map"))
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1));
    let theirs = touches_per_sector(&dev, &bad, ssz);
    for ((s, o), t) in bad.iter().zip(&ours).zip(&theirs) {
        assert!(
            o <= t,
            "bad sector {s}: read {o} times by exhibit, {t} by ddrescue"
        );
    }
    assert_eq!(
        bad_sectors(&load_map(&dev.dir.join("dd.map")), ssz),
        bad,
        "ddrescue saw other bad sectors"
    );
}

/// `--careful` reads like GNU ddrescue everywhere: 64 KiB reads one at a time, no io_uring.
#[test]
fn careful_reads_one_block_at_a_time() {
    require_faulty_device!();
    let dev = FaultyDevice::builder(4 << 20).bad(5000).build();
    let source = Source::open(&dev.device, true).unwrap();
    let mut opts = RescueOptions::new(dev.dir.join("careful"));
    opts.careful = true;
    let r = rescue_with(&source, &opts);
    assert_eq!(r.bad_bytes, 512);
    assert!(dev.read_log().iter().all(|rec| rec.len <= 64 * 1024));
    let record = exhibit::audit::AuditRecord::read(&dev.dir.join("careful.yaml")).unwrap();
    let reader = record.reader.unwrap();
    assert_eq!(reader.engine, exhibit::reader::EngineKind::Sync);
    assert_eq!(reader.queue_depth, 1);
}

/// A loop device (a [`LoopDevice`]) holding an ext4 file system mounted under its
/// directory; unmounted on drop, before the loop device is detached, also when a test panics.
/// Mounted read-only, with its file made by mkfs and its inode tables written at once: a
/// read-write ext4 writes to its device by itself (lazy inode-table init, writeback), and the
/// test asserts that nobody changed a byte of it.
struct MountedExt4 {
    target: LoopDevice,
    mount_point: PathBuf,
}

impl MountedExt4 {
    fn new(dir: &Path, size: u64) -> MountedExt4 {
        let target = LoopDevice::new_file(&dir.join("target.img"), size as usize, 0);
        let content = dir.join("content");
        std::fs::create_dir(&content).unwrap();
        std::fs::write(content.join("evidence.txt"), b"do not overwrite").unwrap();
        let mount_point = dir.join("mnt");
        std::fs::create_dir(&mount_point).unwrap();
        let mounted = MountedExt4 {
            target,
            mount_point,
        };
        let mkfs = Command::new("mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
                "-d",
            ])
            .arg(&content)
            .arg(&mounted.target.path)
            .output()
            .unwrap();
        assert!(mkfs.status.success(), "{mkfs:?}");
        let mount = Command::new("mount")
            .args(["-o", "ro"])
            .arg(&mounted.target.path)
            .arg(&mounted.mount_point)
            .output()
            .unwrap();
        assert!(mount.status.success(), "{mount:?}");
        mounted
    }
}

impl Drop for MountedExt4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount_point).output();
    }
}

/// SHA-256 of a whole device, read back.
fn device_sha256(device: &Path) -> String {
    crate::support::sha256_hex(&std::fs::read(device).unwrap())
}

/// `exhibit rescue SOURCE -o BASE --target TARGET` refused like `acquire --clone`: exit 2, one
/// line on stderr that says why, no map, and not one byte of the target changed.
fn assert_rescue_onto_refused(source: &Path, target: &Path, base: &Path, why: &str) {
    let before = device_sha256(target);
    let out = Command::new(env!("CARGO_BIN_EXE_exhibit"))
        .arg("rescue")
        .arg(source)
        .arg("-o")
        .arg(base)
        .arg("--target")
        .arg(target)
        .arg("--quiet")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
    assert!(!base.with_extension("map").exists());
    assert_eq!(device_sha256(target), before, "the target was written");
}

#[test]
fn rescue_refuses_a_target_that_is_mounted_too_small_or_the_source() {
    require_faulty_device!();
    // No bad sectors: the source is also a target here, and its bytes are hashed whole.
    let dev = FaultyDevice::builder(2048 * 512).build();
    let base = dev.dir.join("refused");

    let mounted_dir = dev.dir.join("mounted");
    std::fs::create_dir(&mounted_dir).unwrap();
    let mounted = MountedExt4::new(&mounted_dir, 16 << 20);
    assert_rescue_onto_refused(&dev.device, &mounted.target.path, &base, "in use");
    // The message names the mount (from the shared device part).
    let named = format!("mounted read-only at {}", mounted.mount_point.display());
    assert_rescue_onto_refused(&dev.device, &mounted.target.path, &base, &named);
    assert_eq!(
        std::fs::read(mounted.mount_point.join("evidence.txt")).unwrap(),
        b"do not overwrite"
    );
    drop(mounted);

    let small_dir = dev.dir.join("small");
    std::fs::create_dir(&small_dir).unwrap();
    let small = LoopDevice::new_file(&small_dir.join("target.img"), 512 * 1024, 0x5A);
    assert_rescue_onto_refused(&dev.device, &small.path, &base, "would not fit");

    assert_rescue_onto_refused(&dev.device, &dev.device, &base, "is the source itself");
}
