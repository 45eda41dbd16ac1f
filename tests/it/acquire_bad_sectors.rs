//! `exhibit acquire` (the binary) on a real faulty block device: exit code 1, the image equals
//! the source with exactly the bad sectors zeroed, `BASE.map` marks exactly those sectors,
//! `BASE.yaml` lists them as runs, and a sector that fails twice is recovered with
//! `--retries 3`. Both read engines, 512- and 4096-byte sectors; bad sectors at the first and
//! last sector, a run of adjacent ones, an ENODATA one, one inside the final partial block.
//!
//! Root-only: without root, /dev/fuse or losetup every test prints SKIP and passes.

use exhibit::audit::AuditRecord;
use exhibit::map::BlockState;

use crate::support::*;

fn check_acquire(ss: u32, io: &str) {
    let ssz = u64::from(ss);
    // 1 MiB reads: the device is 3 MiB and 5 sectors, so the last read is partial and holds
    // bad sectors.
    let sectors = 3 * (1 << 20) / ssz + 5;
    let last = sectors - 1;
    let always_bad = vec![0, 100, 150, 151, 152, 153, 300, last - 2, last];
    let transient = 200;
    let mut b = FaultyDevice::builder(sectors * ssz).sector_size(ss);
    for &s in &always_bad {
        let errno = if s == 300 { libc::ENODATA } else { libc::EIO };
        b = b.fault(s, 1, Fault::Always(errno));
    }
    let dev = b.fault(transient, 1, Fault::FirstN(2, libc::EIO)).build();
    let base = dev.dir.join("acquired");
    acquire(&dev.device, &base, &["--retries", "3", "--io", io], 1);

    let map = load_map(&with_ext(&base, "map"));
    assert_eq!(map.size(), dev.size);
    assert_eq!(bad_sectors(&map, ssz), always_bad, "bad sectors in the map");
    assert_eq!(
        map.bytes_in(BlockState::Finished) + map.bytes_in(BlockState::BadSector),
        dev.size
    );

    let image = std::fs::read(with_ext(&base, "raw")).unwrap();
    assert_eq!(image.len() as u64, dev.size);
    let want = dev.expected_image(&always_bad);
    if image != want {
        let first = image.iter().zip(&want).position(|(a, b)| a != b).unwrap();
        panic!(
            "image differs first at byte {first} (sector {})",
            first as u64 / ssz
        );
    }

    let record = AuditRecord::read(&with_ext(&base, "yaml")).unwrap();
    assert_eq!(record.outcome.status, "complete-with-unreadable-sectors");
    assert_eq!(record.outcome.exit_code, Some(1));
    assert_eq!(unreadable_runs(&record), runs_of(&always_bad));
    let enodata = record
        .unreadable
        .runs
        .iter()
        .find(|r| r.first_sector == 300)
        .unwrap();
    assert_eq!(enodata.errno, libc::ENODATA);
    assert_eq!(record.unreadable.sectors, always_bad.len() as u64);

    hash_logs_check(&base, &["md5", "sha256"]);
}

#[test]
fn acquire_uring_512() {
    require_faulty_device!();
    check_acquire(512, "uring");
}

#[test]
fn acquire_sync_512() {
    require_faulty_device!();
    check_acquire(512, "sync");
}

#[test]
fn acquire_uring_4096() {
    require_faulty_device!();
    check_acquire(4096, "uring");
}

#[test]
fn acquire_sync_4096() {
    require_faulty_device!();
    check_acquire(4096, "sync");
}

#[test]
fn too_few_retries_leave_a_transient_sector_bad() {
    require_faulty_device!();
    // Fails 5 times: more than 1 + --retries 1 reads alone can get past.
    let dev = FaultyDevice::builder(1 << 20)
        .fault(100, 1, Fault::FirstN(50, libc::EIO))
        .build();
    let base = dev.dir.join("acquired");
    acquire(&dev.device, &base, &["--retries", "1"], 1);
    let record = AuditRecord::read(&with_ext(&base, "yaml")).unwrap();
    assert_eq!(record.unreadable.runs.len(), 1);
    assert_eq!(record.unreadable.runs[0].first_sector, 100);
    assert_eq!(record.unreadable.runs[0].attempts, 2);
}
