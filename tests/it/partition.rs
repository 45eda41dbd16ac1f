//! exhibit's own partition table reader (`exhibit::partition`) against `sfdisk --json` on
//! tables that sfdisk made: MBR with an extended partition and logical ones, GPT with many
//! named entries, a damaged backup or primary GPT, 4096-byte sectors, and the same table read
//! through an E01 of the disk.

use std::path::Path;
use std::process::Command;

use exhibit::image::Image;
use exhibit::partition::{self, PartitionTable, Role, Scheme};

use crate::support::*;

/// sfdisk's view: (number, start, size, type, name, uuid) per partition.
type Row = (u32, u64, u64, String, Option<String>, Option<String>);

fn sfdisk_rows(disk: &Path) -> Option<(String, Vec<Row>)> {
    let out = Command::new("sfdisk").arg("-J").arg(disk).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["partitiontable"];
    let rows = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let digits: String = node
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            (
                digits.parse().unwrap(),
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                p["type"].as_str().unwrap().to_string(),
                p["name"].as_str().map(str::to_string),
                p["uuid"].as_str().map(str::to_string),
            )
        })
        .collect();
    Some((t["id"].as_str().unwrap_or("").to_string(), rows))
}

fn ours(t: &PartitionTable) -> Vec<Row> {
    t.partitions
        .iter()
        .map(|p| {
            let kind = match t.scheme {
                // sfdisk prints MBR types as bare hex: "83", "5", "c".
                Scheme::Mbr => format!("{:x}", u8::from_str_radix(&p.type_id[2..], 16).unwrap()),
                Scheme::Gpt => p.type_id.clone(),
            };
            (
                p.number,
                p.start,
                p.sectors,
                kind,
                p.name.clone(),
                p.guid.clone(),
            )
        })
        .collect()
}

/// A sparse file of `len` zero bytes.
fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

fn read_table(path: &Path) -> PartitionTable {
    let image = Image::open(path).unwrap();
    partition::of_image(&image)
        .unwrap()
        .expect("a partition table")
}

const MBR: &str = "label: dos
start=2048, size=4096, type=83, bootable
start=6144, size=2048, type=7
start=8192, size=40960, type=5
start=10240, size=2048, type=83
start=14336, size=4096, type=82
start=20480, size=8192, type=c
";

#[test]
fn mbr_with_logical_partitions_matches_sfdisk() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    let disk = dir.path().join("mbr.img");
    sparse(&disk, 32 << 20);
    assert!(sfdisk(&disk, MBR.as_bytes()));
    let t = read_table(&disk);
    let (id, rows) = sfdisk_rows(&disk).unwrap();
    assert_eq!(t.scheme, Scheme::Mbr);
    assert_eq!(t.disk_id, id);
    assert_eq!(ours(&t), rows);
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    let roles: Vec<Role> = t.partitions.iter().map(|p| p.role).collect();
    use Role::*;
    assert_eq!(
        roles,
        [Primary, Primary, Extended, Logical, Logical, Logical]
    );
    assert!(t.partitions[0].bootable && !t.partitions[1].bootable);
    assert_eq!(t.partitions[3].offset, 10240 * 512);
    assert_eq!(t.partitions[3].bytes, 2048 * 512);
}

fn gpt_script(n: usize) -> String {
    let mut s = String::from("label: gpt\n");
    for i in 0..n {
        let kind = ["L", "S", "U", "linux"][i % 4];
        s.push_str(&format!("size=512KiB, type={kind}, name=\"part {i} é\"\n"));
    }
    s
}

#[test]
fn gpt_with_many_named_entries_matches_sfdisk() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    let disk = dir.path().join("gpt.img");
    sparse(&disk, 64 << 20);
    assert!(sfdisk(&disk, gpt_script(40).as_bytes()));
    let t = read_table(&disk);
    let (id, rows) = sfdisk_rows(&disk).unwrap();
    assert_eq!(t.scheme, Scheme::Gpt);
    assert_eq!(t.disk_id, id);
    assert_eq!(rows.len(), 40);
    assert_eq!(ours(&t), rows);
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    assert_eq!(t.partitions[0].type_name, Some("Linux filesystem"));
    assert_eq!(t.partitions[2].type_name, Some("EFI system"));
    // mmls (The Sleuth Kit) sees the same first partition.
    if have("mmls") {
        let text = tool_stdout(Command::new("mmls").arg(&disk));
        let start = format!("{:010}", t.partitions[0].start);
        assert!(text.contains(&start), "{text}");
    }
}

#[test]
fn a_damaged_backup_or_primary_gpt_is_reported_and_the_other_used() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    let disk = dir.path().join("gpt.img");
    let size = 16u64 << 20;
    sparse(&disk, size);
    assert!(sfdisk(&disk, gpt_script(5).as_bytes()));
    let (_, rows) = sfdisk_rows(&disk).unwrap();

    // The backup header lives in the last sector (its CRC covers its first 92 bytes).
    flip(&disk, size - 512 + 20);
    let t = read_table(&disk);
    assert_eq!(ours(&t), rows);
    assert!(
        t.problems
            .iter()
            .any(|p| p.contains("backup GPT header") && p.contains("CRC")),
        "{:?}",
        t.problems
    );

    // Now the primary too, but the backup repaired: the table comes from the backup.
    flip(&disk, size - 512 + 20);
    flip(&disk, 512 + 60);
    let t = read_table(&disk);
    assert_eq!(ours(&t), rows);
    assert!(
        t.problems
            .iter()
            .any(|p| p.contains("listed from the backup")),
        "{:?}",
        t.problems
    );
}

#[test]
fn the_table_reads_the_same_through_an_e01_of_the_disk() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    let disk = dir.path().join("disk.img");
    sparse(&disk, 16 << 20);
    assert!(sfdisk(&disk, gpt_script(6).as_bytes()));
    let base = dir.path().join("ev");
    acquire(&disk, &base, &["--format", "e01"], 0);
    let from_e01 = read_table(&with_ext(&base, "E01"));
    assert_eq!(from_e01, read_table(&disk));
}

#[test]
fn gpt_on_4096_byte_sectors() {
    if skip_without_loop("gpt_on_4096_byte_sectors") || !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    let file = dir.path().join("4k.img");
    sparse(&file, 32 << 20);
    let dev = LoopDevice::attach(&file, 4096, false, false);
    assert!(sfdisk(
        &dev.path,
        b"label: gpt\nsize=4MiB, type=L, name=\"a\"\nsize=2MiB, type=S\n"
    ));
    let (_, rows) = sfdisk_rows(&dev.path).unwrap();
    drop(dev);
    // The image file says nothing of its sectors: the reader finds the 4096-byte GPT itself.
    let t = read_table(&file);
    assert_eq!(t.sector_size, 4096);
    assert_eq!(ours(&t), rows);
    assert_eq!(t.partitions[0].offset, rows[0].1 * 4096);
}

#[test]
fn info_shows_the_partition_table_of_an_image() {
    let s = sample();
    let (code, json) = run_text(&["info", "--json", s.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let parts = v["partitions"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["start"].as_u64(), Some(2048));
    assert_eq!(parts[1]["type_id"].as_str(), Some("0x01"));
    let (code, text) = run_text(&["info", s.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("partitions    MBR (disk id 0x45584849"),
        "{text}"
    );
    assert!(
        text.contains("p2   primary   sectors 8192..11264"),
        "{text}"
    );
}
