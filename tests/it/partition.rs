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

/// `sfdisk --dump`: the label, its id, the sector size and per partition (number, start,
/// size, type, uuid, name, bootable).
type DumpRow = (u32, u64, u64, String, Option<String>, Option<String>, bool);

fn sfdisk_dump(disk: &Path) -> (String, String, u32, Vec<DumpRow>) {
    let text = tool_stdout(Command::new("sfdisk").arg("--dump").arg(disk));
    let (mut label, mut id, mut sector) = (String::new(), String::new(), 512);
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some((node, fields)) = line.split_once(" : ") {
            let digits: String = node
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let mut row: DumpRow = (
                digits.parse().unwrap(),
                0,
                0,
                String::new(),
                None,
                None,
                false,
            );
            // name="…" may hold commas: take it off first. sfdisk escapes bytes past ASCII
            // as \xNN.
            let (fields, name) = match fields.split_once("name=\"") {
                Some((before, rest)) => (before, Some(unescape(rest.trim_end_matches('"')))),
                None => (fields, None),
            };
            row.5 = name;
            for f in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                match f.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                    Some(("start", v)) => row.1 = v.parse().unwrap(),
                    Some(("size", v)) => row.2 = v.parse().unwrap(),
                    Some(("type", v)) => row.3 = v.to_string(),
                    Some(("uuid", v)) => row.4 = Some(v.to_string()),
                    None if f == "bootable" => row.6 = true,
                    _ => {}
                }
            }
            rows.push(row);
        } else if let Some((k, v)) = line.split_once(": ") {
            match k {
                "label" => label = v.to_string(),
                "label-id" => id = v.to_string(),
                "sector-size" => sector = v.parse().unwrap(),
                _ => {}
            }
        }
    }
    (label, id, sector, rows)
}

/// sfdisk's `\xNN` and `\"` escapes undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else if b[i] == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn as_dump(t: &PartitionTable) -> (String, String, u32, Vec<DumpRow>) {
    let label = match t.scheme {
        Scheme::Mbr => "dos",
        Scheme::Gpt => "gpt",
    };
    let rows = ours(t)
        .into_iter()
        .zip(&t.partitions)
        .map(|((n, start, size, kind, name, uuid), p)| {
            (n, start, size, kind, uuid, name, p.bootable)
        })
        .collect();
    (label.into(), t.disk_id.clone(), t.sector_size, rows)
}

/// The record's `partitions:` of an acquisition (and of a rescue) of an MBR disk with logical
/// partitions and of a GPT disk with many named entries are what `sfdisk --dump` says.
#[test]
fn the_record_holds_the_partition_table_sfdisk_dumps() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempdir();
    for (name, size, script) in [
        ("mbr", 32u64 << 20, MBR.to_string()),
        ("gpt", 64 << 20, gpt_script(40)),
    ] {
        let disk = dir.path().join(format!("{name}.img"));
        sparse(&disk, size);
        assert!(sfdisk(&disk, script.as_bytes()));
        let dump = sfdisk_dump(&disk);
        assert!(!dump.3.is_empty());
        let base = dir.path().join(format!("{name}-acquired"));
        acquire(&disk, &base, &[], 0);
        let record = exhibit::audit::AuditRecord::read(&with_ext(&base, "yaml")).unwrap();
        let table = record
            .partitions
            .clone()
            .flatten()
            .expect("partitions in the record");
        assert_eq!(as_dump(&table), dump, "{name}");
        assert!(table.problems.is_empty(), "{:?}", table.problems);
        assert_eq!(record.partitions_error, None);
        for p in &table.partitions {
            assert_eq!(p.offset, p.start * 512);
            assert_eq!(p.bytes, p.sectors * 512);
        }
        // What info shows of the image is the same table, in the same shape.
        assert_eq!(
            Some(&table),
            read_table_opt(&with_ext(&base, "raw")).as_ref()
        );
        let text = std::fs::read_to_string(with_ext(&base, "yaml")).unwrap();
        assert!(text.contains("\npartitions:\n  scheme: "), "{text}");

        let rbase = dir.path().join(format!("{name}-rescued"));
        rescue_cmd(&disk, &rbase, &[]).exits(0);
        let rescued = exhibit::audit::AuditRecord::read(&with_ext(&rbase, "yaml")).unwrap();
        assert_eq!(rescued.partitions, record.partitions, "{name}");
    }
}

fn read_table_opt(path: &Path) -> Option<PartitionTable> {
    partition::of_image(&Image::open(path).unwrap()).unwrap()
}

/// No table is `partitions: null`; a table that cannot be read is `null` with the reason, and
/// the acquisition goes on (sector 0 is then an unreadable sector of the image like any other).
#[test]
fn a_partition_table_that_cannot_be_read_is_recorded_not_fatal() {
    let dir = tempdir();
    let plain = make_source(dir.path(), "plain.img", 1 << 20, 9);
    let base = dir.path().join("plain");
    acquire(&plain, &base, &[], 0);
    let text = std::fs::read_to_string(with_ext(&base, "yaml")).unwrap();
    assert!(text.contains("\npartitions: null\n"), "{text}");
    assert!(!text.contains("partitions_error"), "{text}");

    require_faulty_device!();
    let dev = FaultyDevice::builder(2 << 20).bad(0).build();
    let base = dev.dir.join("ev");
    acquire(&dev.device, &base, &[], 1);
    let record = exhibit::audit::AuditRecord::read(&with_ext(&base, "yaml")).unwrap();
    assert_eq!(record.partitions, Some(None));
    let why = record.partitions_error.clone().expect("partitions_error");
    assert!(
        why.contains(dev.device.to_str().unwrap()) && why.contains("at byte 0"),
        "{why}"
    );
    assert_eq!(unreadable_runs(&record), vec![(0, 1)]);

    // A rescue reads the table from its image: sector 0 unreadable there is named too.
    let rbase = dev.dir.join("res");
    rescue_cmd(&dev.device, &rbase, &[]).exits(1);
    let rescued = exhibit::audit::AuditRecord::read(&with_ext(&rbase, "yaml")).unwrap();
    assert_eq!(rescued.partitions, Some(None));
    assert!(rescued.partitions_error.unwrap().contains("unreadable"));
}
