//! A real disk layout (MBR + ext4 with a file) through E01: The Sleuth Kit sees the partition
//! (`mmls`), lists the file (`fls`) and reads it back (`icat`) from our image.

use std::process::Command;

use crate::support::*;

#[test]
fn mbr_ext4_disk_through_tsk() {
    let (Some(_), Some(_), Some(_), Some(_), Some(_)) = (
        tool("mke2fs"),
        tool("sfdisk"),
        tool("mmls"),
        tool("fls"),
        tool("icat"),
    ) else {
        return;
    };
    let dir = tempdir();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let content = b"exhibit E01 marker: chain of custody intact\n".repeat(200);
    std::fs::write(files.join("evidence.txt"), &content).unwrap();

    // 8 MiB + 5 sectors: the last chunk is short.
    let disk_size = 8 * 1024 * 1024 + 5 * 512;
    let disk = dir.path().join("disk.raw");
    std::fs::write(&disk, vec![0u8; disk_size]).unwrap();
    assert!(
        sfdisk(&disk, b"label: dos\nstart=2048, size=14336, type=83\n"),
        "sfdisk failed"
    );
    let fs = dir.path().join("fs.img");
    Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "1024", "-d"])
        .arg(&files)
        .arg(&fs)
        .arg("7168")
        .exits(0);
    let mut data = std::fs::read(&disk).unwrap();
    let fs_bytes = std::fs::read(&fs).unwrap();
    data[1024 * 1024..1024 * 1024 + fs_bytes.len()].copy_from_slice(&fs_bytes);

    let first = write(dir.path(), "disk", &data, options(&data, 512), &[]);
    own_check_clean(&first, &data);

    let text = tool_stdout(Command::new("mmls").arg(&first));
    assert!(
        text.contains("0000002048") && text.contains("Linux (0x83)"),
        "{text}"
    );

    let text = tool_stdout(Command::new("fls").args(["-o", "2048"]).arg(&first));
    let line = text
        .lines()
        .find(|l| l.ends_with("evidence.txt"))
        .unwrap_or_else(|| panic!("fls did not list evidence.txt:\n{text}"));
    // "r/r 12:\tevidence.txt"
    let inode = line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let icat = Command::new("icat")
        .args(["-o", "2048"])
        .arg(&first)
        .arg(&inode)
        .exits(0);
    assert!(icat.stdout == content, "icat read different file content");
}
