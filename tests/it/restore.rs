//! `exhibit restore`: images (ours, ewfacquire's, split raw) written back onto real loop
//! devices of 512- and 4096-byte sectors, one and several at once, proven by the read-back;
//! every refusal leaves the target's bytes as they were; a target that corrupts writes is
//! caught and the record names the range; one whose writes fail is stopped at the offset that
//! failed.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::support::*;

const MIB: usize = 1 << 20;
/// Media bytes of the test images: 6 MiB and a half, a multiple of 4096.
const MEDIA: usize = 6 * MIB + 512 * 1024;

/// A source file of mixed content and the bytes it holds.
fn source(dir: &Path) -> (PathBuf, Vec<u8>) {
    let data = mixed(MEDIA, 77);
    let p = dir.join("src.bin");
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

/// `exhibit restore IMAGE --to T… EXTRA` with standard input closed; asserts `code`.
fn restore(image: &Path, targets: &[&Path], extra: &[&str], code: i32) -> Output {
    let mut c = exhibit();
    c.arg("restore").arg(image).stdin(Stdio::null());
    for t in targets {
        c.arg("--to").arg(t);
    }
    c.args(extra).exits(code)
}

/// The one restore record beside `image` (default name) or at `path`.
fn restore_record(dir: &Path, stem: &str) -> serde_yaml::Value {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{stem}.restore-")) && n.ends_with(".yaml"))
        })
        .collect();
    assert_eq!(found.len(), 1, "one restore record for {stem}: {found:?}");
    serde_yaml::from_str(&std::fs::read_to_string(&found[0]).unwrap()).unwrap()
}

fn read_record(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every target of the record read back and matched.
fn assert_verified(rec: &serde_yaml::Value, targets: usize) {
    assert_eq!(rec["outcome"]["status"], "complete", "{rec:?}");
    let r = &rec["restore"];
    assert_eq!(r["verified"], true);
    let ts = r["targets"].as_sequence().unwrap();
    assert_eq!(ts.len(), targets);
    for t in ts {
        assert_eq!(t["status"], "written", "{t:?}");
        assert_eq!(t["bytes_written"].as_u64(), Some(MEDIA as u64));
        assert_eq!(t["read_back"]["verdict"], "matches", "{t:?}");
        assert!(t["read_back"]["differing_ranges"]
            .as_sequence()
            .unwrap()
            .is_empty());
        // One hash a target: the strongest the image claims, equal to that claim.
        let read: Vec<(&str, &str)> = ["sha256", "sha1", "md5"]
            .into_iter()
            .filter_map(|a| t["read_back"][a].as_str().map(|h| (a, h)))
            .collect();
        assert_eq!(read.len(), 1, "{t:?}");
        let claims = r["claimed_hashes"].as_sequence().unwrap();
        let strongest = ["sha256", "sha1", "md5"]
            .into_iter()
            .find(|a| claims.iter().any(|c| c["algorithm"] == *a))
            .unwrap_or("sha256");
        assert_eq!(read[0].0, strongest, "{claims:?}");
        for c in claims.iter().filter(|c| c["algorithm"] == strongest) {
            assert_eq!(c["claimed"].as_str(), Some(read[0].1), "{c:?}");
        }
    }
}

/// A loop device over a new file of `size` bytes of `fill`, with `sector` sectors.
fn target(dir: &Path, name: &str, size: usize, fill: u8, sector: u32) -> (PathBuf, LoopDevice) {
    let f = dir.join(name);
    std::fs::write(&f, vec![fill; size]).unwrap();
    let lo = LoopDevice::attach(&f, sector, false, false);
    (f, lo)
}

fn assert_restored(file: &Path, data: &[u8], tail_fill: u8) {
    let got = std::fs::read(file).unwrap();
    assert!(
        got[..data.len()] == *data,
        "{} holds the media",
        file.display()
    );
    assert!(
        got[data.len()..].iter().all(|&b| b == tail_fill),
        "{}: the tail is left as it was",
        file.display()
    );
}

#[test]
fn our_e01_ewfacquires_e01_and_split_raw_onto_512_and_4096_byte_sectors() {
    if skip_without_loop("restore onto loop devices") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let (src, data) = source(d);
    let ours = d.join("ours");
    acquire(&src, &ours, &["--format", "e01"], 0);
    let split = d.join("split");
    acquire(&src, &split, &["--split", "2M"], 0);
    let mut images: Vec<(PathBuf, &str, u32)> = vec![
        (with_ext(&ours, "E01"), "ours", 512),
        (with_ext(&ours, "E01"), "ours", 4096),
        (with_ext(&split, "002"), "split", 4096),
    ];
    let theirs = ewfacquire(&src, &d.join("theirs"), "fast", None);
    match &theirs {
        Some(first) => images.push((first.clone(), "theirs", 512)),
        None => eprintln!("SKIPPED the ewfacquire image: ewfacquire is missing"),
    }
    for (i, (image, stem, sector)) in images.iter().enumerate() {
        let (file, lo) = target(d, &format!("t{i}"), MEDIA + MIB, 0xEE, *sector);
        let record = d.join(format!("r{i}.yaml"));
        let out = restore(
            image,
            &[&lo.path],
            &["--yes", "--record", record.to_str().unwrap()],
            0,
        );
        assert!(text(&out).contains("verified"), "{}", text(&out));
        drop(lo);
        assert_restored(&file, &data, 0xEE);
        let rec = read_record(&record);
        assert_verified(&rec, 1);
        let t = &rec["restore"]["targets"][0];
        assert_eq!(t["kind"], "device");
        assert_eq!(t["logical_sector_size"].as_u64(), Some(u64::from(*sector)));
        assert_eq!(t["tail"]["action"], "left-as-it-was");
        assert_eq!(t["tail"]["length"].as_u64(), Some(MIB as u64));
        // Proven against what the image claims, not only against itself.
        let claimed = rec["restore"]["claimed_hashes"].as_sequence().unwrap();
        assert!(!claimed.is_empty(), "{stem}: the image's hashes are used");
        assert!(claimed.iter().all(|c| c["matches"] == true));
        if *stem == "theirs" {
            assert!(
                claimed
                    .iter()
                    .any(|c| c["source"].as_str().unwrap().contains("stored MD5")),
                "{claimed:?}"
            );
        }
    }
    assert!(
        theirs.is_none() || images.len() == 4,
        "every image was restored"
    );
}

#[test]
fn three_targets_at_once_from_one_read_and_the_default_record() {
    if skip_without_loop("restore onto three targets") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let (src, data) = source(d);
    let base = d.join("disk");
    acquire(&src, &base, &["--format", "e01"], 0);
    let (f1, l1) = target(d, "a", MEDIA, 0x11, 512);
    let (f2, l2) = target(d, "b", MEDIA + 3 * MIB, 0x22, 4096);
    let file_target = d.join("copy.raw");
    let out = restore(
        &with_ext(&base, "E01"),
        &[&l1.path, &l2.path, &file_target],
        &["--yes"],
        0,
    );
    assert_eq!(text(&out).matches("verified").count(), 3, "{}", text(&out));
    drop((l1, l2));
    assert_restored(&f1, &data, 0x11);
    assert_restored(&f2, &data, 0x22);
    assert_eq!(std::fs::read(&file_target).unwrap(), data);
    let rec = restore_record(d, "disk");
    assert_verified(&rec, 3);
    assert!(rec["restore"]["targets"][0]["tail"].is_null(), "no tail");
    assert_eq!(rec["restore"]["targets"][2]["kind"], "file");
    assert_eq!(rec["restore"]["pieces_from"], "disk.crc64");
}

#[test]
fn wipe_tail_zeroes_only_the_tail_and_sparse_leaves_holes() {
    if skip_without_loop("restore --wipe-tail") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let (src, data) = source(d);
    let base = d.join("disk");
    acquire(&src, &base, &[], 0);
    let (f, lo) = target(d, "t", MEDIA + 2 * MIB + 4096, 0xEE, 4096);
    let rec = d.join("r.yaml");
    restore(
        &with_ext(&base, "raw"),
        &[&lo.path],
        &["--yes", "--wipe-tail", "--record", rec.to_str().unwrap()],
        0,
    );
    drop(lo);
    assert_restored(&f, &data, 0);
    let r = read_record(&rec);
    assert_verified(&r, 1);
    assert_eq!(r["restore"]["targets"][0]["tail"]["action"], "zeroed");

    // A sparse file: the same bytes, fewer blocks.
    let mut holey = vec![0u8; 8 * MIB];
    holey[..MIB].copy_from_slice(&mixed(MIB, 3));
    holey[7 * MIB..].copy_from_slice(&mixed(MIB, 4));
    let src2 = d.join("holey.bin");
    std::fs::write(&src2, &holey).unwrap();
    let out_file = d.join("sparse.raw");
    let rec2 = d.join("r2.yaml");
    restore(
        &src2,
        &[&out_file],
        &["--sparse", "--record", rec2.to_str().unwrap()],
        0,
    );
    assert_eq!(std::fs::read(&out_file).unwrap(), holey);
    use std::os::unix::fs::MetadataExt;
    let blocks = std::fs::metadata(&out_file).unwrap().blocks() * 512;
    assert!(
        blocks < 4 * MIB as u64,
        "holes left: {blocks} bytes allocated"
    );
    let r2 = read_record(&rec2);
    assert_eq!(r2["restore"]["targets"][0]["sparse"], true);
    assert_eq!(
        r2["restore"]["compared_with"],
        "the image claims no hash: the hashes of the image as read while writing"
    );
}

/// Runs a restore that must be refused with `needle` in its message, and checks that the
/// target file's bytes did not change.
fn assert_refused(image: &Path, targets: &[&Path], extra: &[&str], needle: &str, watch: &Path) {
    let before = std::fs::read(watch).unwrap();
    let out = restore(image, targets, extra, 2);
    let said = stderr(&out);
    assert!(said.contains("refused"), "{said}");
    assert!(said.contains(needle), "{needle:?} not in {said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert!(
        std::fs::read(watch).unwrap() == before,
        "{} changed",
        watch.display()
    );
}

#[test]
fn refusals_leave_the_target_as_it_was() {
    if skip_without_loop("restore refusals") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let (src, _) = source(d);
    let base = d.join("disk");
    acquire(&src, &base, &["--format", "e01"], 0);
    let image = with_ext(&base, "E01");

    let (small_file, small) = target(d, "small", MEDIA - 512, 0x5A, 512);
    assert_refused(
        &image,
        &[&small.path],
        &["--yes"],
        "would not fit",
        &small_file,
    );

    let (tf, t) = target(d, "t", MEDIA, 0x5A, 512);
    assert_refused(&image, &[&t.path, &t.path], &["--yes"], "same target", &tf);
    let link = d.join("another-name");
    std::os::unix::fs::symlink(&t.path, &link).unwrap();
    assert_refused(&image, &[&t.path, &link], &["--yes"], "same target", &tf);
    // The loop device and the file behind it are one target too.
    assert_refused(&image, &[&t.path, &tf], &["--yes"], "same target", &tf);

    assert_refused(&image, &[&t.path], &[], "give --yes", &tf);
    // A file target made for a refused run is not left behind.
    let new_file = d.join("new.raw");
    let out = restore(&image, &[&t.path, &new_file], &[], 2);
    assert!(stderr(&out).contains("give --yes"), "{}", stderr(&out));
    assert!(!new_file.exists(), "the new file target was removed");

    // A mounted target, and a target with a mounted partition (read-only mounts: the
    // bytes stay still while the run is refused).
    if mkfs_ext4(&t.path) {
        let m = Mount::with_options(&t.path, &d.join("m1"), None, "ro");
        assert_refused(&image, &[&t.path], &["--yes"], "in use", &tf);
        drop(m);
    }
    let pf = d.join("parted");
    std::fs::write(&pf, vec![0u8; 16 * MIB]).unwrap();
    if sfdisk(&pf, b"label: dos\n2048,8192,83\n") {
        let p = LoopDevice::attach(&pf, 512, false, true);
        let part = PathBuf::from(format!("{}p1", p.path.display()));
        if part.exists() && mkfs_ext4(&part) {
            let m = Mount::with_options(&part, &d.join("m2"), None, "ro");
            assert_refused(&image, &[&p.path], &["--yes"], "in use", &pf);
            drop(m);
        }
    }

    // The image's own file system.
    let tree = d.join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::copy(&image, tree.join("disk.E01")).unwrap();
    let fsfile = d.join("fs.img");
    ext4_image(&tree, &fsfile, 32);
    let fsdev = LoopDevice::attach(&fsfile, 512, false, false);
    let mnt = d.join("m3");
    let m = Mount::with_options(&fsdev.path, &mnt, None, "ro");
    assert_refused(
        &mnt.join("disk.E01"),
        &[&fsdev.path],
        &["--yes", "--record", d.join("r3.yaml").to_str().unwrap()],
        "a file of the image being restored",
        &fsfile,
    );
    drop(m);

    // An image file as its own target.
    let raw = d.join("plain");
    acquire(&src, &raw, &[], 0);
    let raw_image = with_ext(&raw, "raw");
    assert_refused(
        &raw_image,
        &[&raw_image],
        &["--overwrite"],
        "the image being restored",
        &raw_image,
    );
    // An existing file without --overwrite.
    assert_refused(&raw_image, &[&src], &[], "already exists", &src);
}

#[test]
fn the_device_the_image_was_acquired_from_needs_force() {
    if skip_without_loop("restore onto the acquired device") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let (src, data) = source(d);
    let dev = LoopDevice::attach(&src, 512, false, false);
    let base = d.join("disk");
    acquire(&dev.path, &base, &["--format", "e01"], 0);
    let image = with_ext(&base, "E01");
    assert_refused(&image, &[&dev.path], &["--yes"], "acquired from", &src);
    restore(&image, &[&dev.path], &["--yes", "--force"], 0);
    drop(dev);
    assert_eq!(std::fs::read(&src).unwrap(), data);
}

#[test]
fn a_target_that_corrupts_writes_is_caught_by_the_read_back() {
    require_faulty_device!();
    let dir = tempdir();
    let d = dir.path();
    let (src, _) = source(d);
    let base = d.join("disk");
    acquire(&src, &base, &["--format", "e01"], 0);
    let flip = 5 * MIB as u64 + 1234;
    let bad = CorruptingDevice::new(MEDIA, 0, flip, 512);
    let rec = d.join("r.yaml");
    let out = restore(
        &with_ext(&base, "E01"),
        &[&bad.device],
        &["--yes", "--record", rec.to_str().unwrap()],
        1,
    );
    assert!(text(&out).contains("DIFFERS"), "{}", text(&out));
    let r = read_record(&rec);
    assert_eq!(r["outcome"]["status"], "complete-with-findings");
    assert_eq!(r["outcome"]["exit_code"].as_u64(), Some(1));
    let t = &r["restore"]["targets"][0];
    assert_eq!(t["read_back"]["verdict"], "differs");
    let ranges = t["read_back"]["differing_ranges"].as_sequence().unwrap();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_eq!(ranges[0]["offset"].as_u64(), Some(5 * MIB as u64));
    assert_eq!(ranges[0]["length"].as_u64(), Some(MIB as u64));
    assert!(r["outcome"]["reason"]
        .as_str()
        .unwrap()
        .contains(&bad.device.display().to_string()));
    assert_ne!(bad.contents()[flip as usize], 0, "the device did corrupt");

    // --no-verify writes and says it did not look.
    let good = d.join("unchecked.raw");
    let rec2 = d.join("r2.yaml");
    let out = restore(
        &with_ext(&base, "E01"),
        &[&good],
        &["--no-verify", "--record", rec2.to_str().unwrap()],
        0,
    );
    assert!(stderr(&out).contains("--no-verify"), "{}", stderr(&out));
    let r2 = read_record(&rec2);
    assert_eq!(r2["restore"]["verified"], false);
    assert!(r2["restore"]["targets"][0]["read_back"].is_null());
}

/// An image that claims only an MD5 proves several targets by MD5, hashed in lockstep (one
/// lane each): every target's own MD5 must still be its own, the corrupted one's included.
#[test]
fn an_md5_only_image_onto_three_targets_proves_each_by_its_own_md5() {
    require_faulty_device!();
    let dir = tempdir();
    let d = dir.path();
    let (src, data) = source(d);
    let base = d.join("disk");
    acquire(&src, &base, &["--hash", "md5"], 0);
    let (f1, l1) = target(d, "a", MEDIA, 0x11, 512);
    let flip = 3 * MIB as u64 + 77;
    let bad = CorruptingDevice::new(MEDIA, 0, flip, 512);
    let file_target = d.join("copy.raw");
    let rec_path = d.join("r.yaml");
    let out = restore(
        &with_ext(&base, "raw"),
        &[&bad.device, &l1.path, &file_target],
        &["--yes", "--record", rec_path.to_str().unwrap()],
        1,
    );
    assert!(text(&out).contains("DIFFERS"), "{}", text(&out));
    drop(l1);
    assert_restored(&f1, &data, 0x11);
    assert_eq!(std::fs::read(&file_target).unwrap(), data);
    let rec = read_record(&rec_path);
    let claims = rec["restore"]["claimed_hashes"].as_sequence().unwrap();
    assert!(claims.iter().all(|c| c["algorithm"] == "md5"), "{claims:?}");
    let source_md5 = coreutils_sum("md5sum", &src);
    let written = d.join("what-the-bad-target-holds");
    std::fs::write(&written, &bad.contents()[..MEDIA]).unwrap();
    let bad_md5 = coreutils_sum("md5sum", &written);
    assert_ne!(bad_md5, source_md5, "the device did corrupt");
    let ts = rec["restore"]["targets"].as_sequence().unwrap();
    let verdicts: Vec<(&str, &str)> = ts
        .iter()
        .map(|t| {
            (
                t["read_back"]["verdict"].as_str().unwrap(),
                t["read_back"]["md5"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("differs", bad_md5.as_str()),
            ("matches", source_md5.as_str()),
            ("matches", source_md5.as_str())
        ]
    );
    let ranges = ts[0]["read_back"]["differing_ranges"]
        .as_sequence()
        .unwrap();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_eq!(ranges[0]["offset"].as_u64(), Some(3 * MIB as u64));
}

#[test]
fn a_write_that_fails_in_the_middle_is_reported_at_its_offset_and_nothing_after_it_counts() {
    require_faulty_device!();
    let dir = tempdir();
    let d = dir.path();
    // Six 4 MiB blocks, several writes in flight: the one at 8 MiB fails, those after it may
    // land, and none of them is claimed.
    let size = 24 * MIB;
    let data = mixed(size, 5);
    let src = d.join("six.raw");
    std::fs::write(&src, &data).unwrap();
    let bad = CorruptingDevice::failing_writes_at(size, 0, 10 * MIB as u64 + 4096, 512);
    let rec = d.join("r.yaml");
    let out = restore(
        &src,
        &[&bad.device],
        &["--yes", "--record", rec.to_str().unwrap()],
        2,
    );
    let at = format!("writing {} at byte {}", bad.device.display(), 8 * MIB);
    assert!(stderr(&out).contains(&at), "{}", stderr(&out));
    let r = read_record(&rec);
    assert_eq!(r["outcome"]["status"], "failed");
    assert!(
        r["outcome"]["reason"].as_str().unwrap().contains(&at),
        "{r:?}"
    );
    let t = &r["restore"]["targets"][0];
    assert_eq!(t["status"], "not-finished", "{t:?}");
    assert_eq!(t["bytes_written"].as_u64(), Some(8 * MIB as u64), "{t:?}");
    assert!(t["read_back"].is_null());
    assert!(
        bad.contents()[..8 * MIB] == data[..8 * MIB],
        "what is claimed is there"
    );
}

#[test]
fn a_record_that_exists_is_never_replaced() {
    let dir = tempdir();
    let d = dir.path();
    let (src, _) = source(d);
    let rec = d.join("r.yaml");
    std::fs::write(&rec, b"mine").unwrap();
    let t = d.join("t.raw");
    let out = exhibit()
        .arg("restore")
        .arg(&src)
        .arg("--to")
        .arg(&t)
        .arg("--record")
        .arg(&rec)
        .stdin(Stdio::null())
        .exits(2);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&rec).unwrap(), b"mine");
    assert!(!t.exists());
}

#[test]
fn sectors_unreadable_at_acquisition_are_listed_as_target_ranges() {
    require_faulty_device!();
    let dev = FaultyDevice::builder(2 << 20).bad(100).bad(101).build();
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("disk");
    acquire(&dev.device, &base, &[], 1);
    let target = d.join("t.raw");
    let out = restore(&with_ext(&base, "raw"), &[&target], &[], 0);
    assert!(
        text(&out).contains("unreadable at acquisition"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        dev.expected_image(&[100, 101])
    );
    let rec = restore_record(d, "disk");
    assert_verified_size(&rec, 2 << 20);
    assert_eq!(rec["restore"]["unreadable_from"], "disk.yaml");
    let runs = rec["unreadable"]["runs"].as_sequence().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["offset"].as_u64(), Some(100 * 512));
    assert_eq!(runs[0]["length"].as_u64(), Some(2 * 512));
}

/// [`assert_verified`] for one target of another media size.
fn assert_verified_size(rec: &serde_yaml::Value, media: u64) {
    assert_eq!(rec["outcome"]["status"], "complete", "{rec:?}");
    let t = &rec["restore"]["targets"][0];
    assert_eq!(t["bytes_written"].as_u64(), Some(media));
    assert_eq!(t["read_back"]["verdict"], "matches", "{t:?}");
}

#[test]
fn a_device_is_written_only_when_its_name_is_typed_on_a_terminal() {
    if skip_without_loop("restore confirmation") || !have("script") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let (src, data) = source(d);
    let (tf, t) = target(d, "t", MEDIA, 0x77, 512);
    let name = t.path.file_name().unwrap().to_str().unwrap().to_string();
    // `script` gives the restore a terminal; what is echoed is what the user types.
    let typed = |answer: &str, record: &str| {
        let inner = format!(
            "{} restore {} --to {} --record {}",
            env!("CARGO_BIN_EXE_exhibit"),
            src.display(),
            t.path.display(),
            d.join(record).display()
        );
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "(sleep 1; echo {answer}) | script -qec '{inner}' /dev/null"
            ))
            .output()
            .unwrap()
    };
    let out = typed("sdz", "r1.yaml");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not confirmed"), "{}", text(&out));
    assert!(std::fs::read(&tf).unwrap().iter().all(|&b| b == 0x77));
    let out = typed(&name, "r2.yaml");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Type the device name"),
        "{}",
        text(&out)
    );
    drop(t);
    assert_eq!(std::fs::read(&tf).unwrap(), data);
}
