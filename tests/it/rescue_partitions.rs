//! A rescue that stops before finishing reads the partition table from its image as it
//! stands, and only from sectors its map calls rescued: with nothing read yet the record
//! says so; with LBA 0–33 and the GPT backup rescued (a resumed GNU ddrescue map) it holds
//! the table `sfdisk --dump` shows; an MBR whose logical partitions' chain lies in sectors
//! not read yet is refused with that reason, never read from the zeros there. A rescue
//! stopped while it hashes the finished image (its last step) records the table too.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use exhibit::audit::AuditRecord;
use exhibit::rescue::{rescue, RescueOptions, RescueProgress};
use exhibit::source::Source;

use crate::support::*;

const SIZE: u64 = 16 << 20;

fn disk(dir: &Path, name: &str, script: &str) -> std::path::PathBuf {
    let disk = dir.join(name);
    std::fs::File::create(&disk).unwrap().set_len(SIZE).unwrap();
    assert!(sfdisk(&disk, script.as_bytes()));
    disk
}

/// Rescues `disk` into `base`, stopped (as by SIGINT) before the first read.
fn stopped_rescue(disk: &Path, base: &Path) -> AuditRecord {
    let source = Source::open(disk, true).unwrap();
    let stop = AtomicBool::new(true);
    let r = rescue(
        &source,
        &RescueOptions::new(base),
        &RescueProgress::default(),
        &stop,
    );
    assert!(matches!(r, Err(exhibit::Error::Interrupted(_))), "{r:?}");
    AuditRecord::read(&base.with_extension("yaml")).unwrap()
}

/// An image and a GNU ddrescue map in which only LBA 0–33 and the last 33 sectors are
/// rescued; the rest of the image is zeros.
fn half_done(disk: &Path, base: &Path) {
    let mut image = std::fs::read(disk).unwrap();
    let (head, tail) = (34 * 512u64, SIZE - 33 * 512);
    image[head as usize..tail as usize].fill(0);
    std::fs::write(base.with_extension("raw"), &image).unwrap();
    let map = format!(
        "# Mapfile. Created by GNU ddrescue version 1.27\n\
         # current_pos  current_status  current_pass\n\
         {head:#x}     ?               1\n\
         #      pos        size  status\n\
         0x00000000  {head:#x}  +\n\
         {head:#x}  {:#x}  ?\n\
         {tail:#x}  {:#x}  +\n",
        tail - head,
        SIZE - tail
    );
    std::fs::write(base.with_extension("map"), map).unwrap();
}

#[test]
fn a_stopped_rescue_reads_the_table_only_from_rescued_sectors() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    let gpt = disk(
        dir.path(),
        "gpt.img",
        "label: gpt\nstart=2048, size=8192, name=\"one\"\nstart=10240, size=8192\n",
    );
    // Nothing read yet: no table, and why.
    let rec = stopped_rescue(&gpt, &dir.path().join("none"));
    assert_eq!(rec.partitions, Some(None));
    let why = rec.partitions_error.expect("partitions_error");
    assert!(
        why.contains("not read yet") && why.contains("media bytes 0.."),
        "{why}"
    );

    // LBA 0–33 and the backup rescued: the table, as the finished rescue would have it.
    let base = dir.path().join("half");
    half_done(&gpt, &base);
    let rec = stopped_rescue(&gpt, &base);
    let full = dir.path().join("full");
    rescue_cmd(&gpt, &full, &[]).exits(0);
    let finished = AuditRecord::read(&full.with_extension("yaml")).unwrap();
    assert!(finished.partitions.clone().flatten().is_some());
    assert_eq!(rec.partitions, finished.partitions);
    assert_eq!(rec.partitions_error, None);

    // Logical partitions' boot records beyond LBA 33 are not read yet: refused, not zeros.
    let mbr = disk(
        dir.path(),
        "mbr.img",
        "label: dos\nstart=2048, size=4096, type=83\nstart=8192, size=16384, type=5\n\
         start=10240, size=2048, type=83\n",
    );
    let base = dir.path().join("mbr-half");
    half_done(&mbr, &base);
    let rec = stopped_rescue(&mbr, &base);
    assert_eq!(rec.partitions, Some(None));
    let why = rec.partitions_error.expect("partitions_error");
    assert!(
        why.contains("not read yet") && why.contains(&format!("{}..", 8192 * 512)),
        "{why}"
    );
}

#[test]
fn a_rescue_stopped_while_it_hashes_the_image_records_the_table() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    // Large enough that hashing it takes far longer than the 20 ms in which a stop is seen.
    let size = 1u64 << 30;
    let disk = dir.path().join("big.img");
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    assert!(sfdisk(
        &disk,
        b"label: gpt\nstart=2048, size=8192, name=\"one\"\nstart=10240, size=8192\n"
    ));
    // Every sector rescued already (a GNU ddrescue map of `+` only): the run only hashes.
    let base = dir.path().join("done");
    std::fs::copy(&disk, base.with_extension("raw")).unwrap();
    std::fs::write(
        base.with_extension("map"),
        format!(
            "# Mapfile. Created by GNU ddrescue version 1.27\n\
             # current_pos  current_status  current_pass\n\
             {size:#x}     +               1\n\
             #      pos        size  status\n\
             0x00000000  {size:#x}  +\n"
        ),
    )
    .unwrap();
    let source = Source::open(&disk, true).unwrap();
    let stop = AtomicBool::new(false);
    let progress = RescueProgress::default();
    let r = std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while progress.phase() != exhibit::rescue::Phase::Hashing
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        rescue(&source, &RescueOptions::new(&base), &progress, &stop)
    });
    assert!(matches!(r, Err(exhibit::Error::Interrupted(_))), "{r:?}");
    let rec = AuditRecord::read(&base.with_extension("yaml")).unwrap();
    assert_eq!(rec.outcome.status, "interrupted", "{:?}", rec.outcome);
    let table = rec.partitions.clone().flatten().expect("the table");
    let finished = dir.path().join("finished");
    rescue_cmd(&disk, &finished, &[]).exits(0);
    let whole = AuditRecord::read(&finished.with_extension("yaml")).unwrap();
    assert_eq!(Some(Some(table)), whole.partitions);
    assert_eq!(rec.partitions_error, None);
}
