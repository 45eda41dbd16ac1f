//! `exhibit mount` on disks with the partition tables examiners meet, checked against other
//! people's tools: every `pN.raw` equals the bytes at the offsets The Sleuth Kit's `mmls`
//! gives (MBR with an extended partition and logical ones, GPT), for E01 sets of every
//! compression level; the kernel mounts the ext4 partition file read-only and shows its
//! files; `fls`/`icat` read `disk.raw` like the disk itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mount::Mounted;
use crate::support::*;

const MBR: &str = "label: dos
start=2048, size=16384, type=83
start=18432, size=2048, type=7
start=20480, size=57344, type=5
start=22528, size=8192, type=83
start=32768, size=4096, type=c
";

const GPT: &str = "label: gpt
start=2048, size=16384, name=\"root\"
start=18432, size=4096, name=\"two\"
start=24576, size=20000, name=\"three\"
";

/// Files of the ext4 file system in the first partition.
const FILES: &[(&str, &[u8])] = &[
    ("README.txt", b"evidence, do not alter\n"),
    ("docs/notes.txt", b"second file, in a directory\n"),
];

/// A 48 MiB disk with `script`'s table, an ext4 file system (with [`FILES`]) in its first
/// partition and mixed data in every other sector, so that each partition differs.
fn disk(dir: &Path, script: &str) -> Option<(PathBuf, Vec<u8>)> {
    if !have_all(&["sfdisk", "mkfs.ext4", "mmls", "fls", "icat"]) {
        eprintln!("SKIP: sfdisk, mkfs.ext4 or The Sleuth Kit missing");
        return None;
    }
    let disk = dir.join("disk.img");
    std::fs::write(&disk, mixed(48 << 20, 7)).unwrap();
    assert!(sfdisk(&disk, script.as_bytes()), "sfdisk failed");
    let tree = dir.join("tree");
    write_tree(&tree, FILES);
    let fs = dir.join("fs.img");
    ext4_image(&tree, &fs, 8);
    Command::new("dd")
        .arg(format!("if={}", fs.display()))
        .arg(format!("of={}", disk.display()))
        .args(["bs=1M", "oflag=seek_bytes", "conv=notrunc", "status=none"])
        .arg(format!("seek={}", 2048 * 512))
        .exits(0);
    let bytes = std::fs::read(&disk).unwrap();
    Some((disk, bytes))
}

/// `mmls`'s partitions (not its meta and unallocated rows): (start, length) in sectors, in
/// table order.
fn mmls_partitions(disk: &Path) -> Vec<(u64, u64)> {
    tool_stdout(Command::new("mmls").arg(disk))
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let slot = *cols.get(1)?;
            if !slot.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            Some((cols.get(2)?.parse().ok()?, cols.get(4)?.parse().ok()?))
        })
        .collect()
}

/// The `pN.raw` files of a mount, in partition number order.
fn partition_files(mnt: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(mnt)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let n = name.strip_prefix('p')?.strip_suffix(".raw")?.parse().ok()?;
            Some((n, mnt.join(name)))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Mounts the E01 of `disk` and checks every partition file and the ext4 file system on it.
fn check_mount(dir: &Path, e01: &Path, disk: &Path, bytes: &[u8]) {
    let mnt = dir.join("mnt");
    let mut m = Mounted::start(e01, &mnt);

    assert_eq!(
        coreutils_sum("sha256sum", &mnt.join("disk.raw")),
        coreutils_sum("sha256sum", disk)
    );
    let expected = mmls_partitions(disk);
    let files = partition_files(&mnt);
    assert_eq!(
        files.len(),
        expected.len(),
        "{files:?} against mmls {expected:?}"
    );
    for (file, (start, len)) in files.iter().zip(&expected) {
        let got = std::fs::read(file).unwrap();
        let want = &bytes[(start * 512) as usize..((start + len) * 512) as usize];
        assert!(
            got == want,
            "{} differs from mmls's {start}+{len}",
            file.display()
        );
    }

    // The kernel mounts the partition file: README's next step.
    let fs_dir = dir.join("p1");
    {
        let _fs = Mount::with_options(&files[0], &fs_dir, None, "ro,loop,noload");
        for (rel, data) in FILES {
            assert_eq!(std::fs::read(fs_dir.join(rel)).unwrap(), *data, "{rel}");
        }
    }

    // The Sleuth Kit reads disk.raw as it reads the disk.
    let entries = fls(&mnt.join("disk.raw"), Some(2048));
    assert_eq!(entries, fls(disk, Some(2048)));
    for (rel, data) in FILES {
        let e = entries.iter().find(|e| e.path == *rel).expect(rel);
        assert_eq!(icat(&mnt.join("disk.raw"), Some(2048), &e.inode), *data);
    }

    assert_eq!(m.terminate(), 0, "{}", m.stderr_text());
}

#[test]
fn mbr_with_logical_partitions_every_compression_level() {
    require_faulty_device!();
    let dir = tempdir();
    let Some((disk, bytes)) = disk(dir.path(), MBR) else {
        return;
    };
    // Primaries 1 and 2, logicals 5 and 6; the extended container is no file.
    assert_eq!(mmls_partitions(&disk).len(), 4);
    for level in ["none", "fast", "best"] {
        let work = dir.path().join(level);
        std::fs::create_dir(&work).unwrap();
        let base = work.join("ev");
        acquire(
            &disk,
            &base,
            &[
                "--format",
                "e01",
                "--compression",
                level,
                "--segment-size",
                "4M",
            ],
            0,
        );
        assert!(with_ext(&base, "E02").exists(), "{level}: one segment only");
        check_mount(&work, &with_ext(&base, "E01"), &disk, &bytes);
        let names: Vec<String> = partition_files(&work.join("mnt"))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.is_empty(), "{level}: left mounted: {names:?}");
    }
}

#[test]
fn gpt_partitions_are_the_files_mmls_places() {
    require_faulty_device!();
    let dir = tempdir();
    let Some((disk, bytes)) = disk(dir.path(), GPT) else {
        return;
    };
    assert_eq!(mmls_partitions(&disk).len(), 3);
    let base = dir.path().join("ev");
    acquire(&disk, &base, &["--format", "e01"], 0);
    check_mount(dir.path(), &with_ext(&base, "E01"), &disk, &bytes);
}
