//! DOS/MBR tables: four slots in sector 0, and for an extended partition (type 0x05, 0x0f,
//! 0x85) a chain of extended boot records, each holding one logical partition (relative to
//! that record) and the link to the next (relative to the extended partition's start).

use super::{le32, Partition, PartitionTable, ReadFn, Role, Scheme};
use crate::error::Result;

/// Logical partitions followed at most: Linux stops far below this, and a forged chain must
/// end.
const MAX_LOGICAL: u32 = 256;

pub(super) struct Entry {
    pub(super) status: u8,
    pub(super) kind: u8,
    pub(super) first: u32,
    pub(super) sectors: u32,
}

/// The four slots of a boot record.
pub(super) fn entries(sector: &[u8; 512]) -> [Entry; 4] {
    std::array::from_fn(|i| {
        let e = &sector[446 + 16 * i..446 + 16 * (i + 1)];
        Entry {
            status: e[0],
            kind: e[4],
            first: le32(&e[8..12]),
            sectors: le32(&e[12..16]),
        }
    })
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

pub(super) fn type_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0e => "FAT16",
        0x05 | 0x0f | 0x85 => "extended",
        0x07 => "NTFS/exFAT/HPFS",
        0x0b | 0x0c => "FAT32",
        0x11 | 0x14 | 0x16 | 0x17 | 0x1b | 0x1c | 0x1e => "hidden Windows",
        0x27 => "Windows recovery",
        0x42 => "Windows dynamic",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8e => "Linux LVM",
        0xa5 => "FreeBSD",
        0xa6 => "OpenBSD",
        0xa8 => "Apple UFS",
        0xa9 => "NetBSD",
        0xaf => "Apple HFS/HFS+",
        0xee => "GPT protective",
        0xef => "EFI system",
        0xfb => "VMware VMFS",
        0xfd => "Linux RAID",
        _ => return None,
    })
}

fn partition(
    number: u32,
    role: Role,
    e: &Entry,
    start: u64,
    ss: u32,
    media_sectors: u64,
    problems: &mut Vec<String>,
) -> Partition {
    let mut p = Partition::new(number, role, start, u64::from(e.sectors), ss);
    p.type_id = format!("0x{:02x}", e.kind);
    p.type_name = type_name(e.kind);
    p.bootable = e.status == 0x80;
    if start.saturating_add(u64::from(e.sectors)) > media_sectors {
        problems.push(format!(
            "partition {number} (sectors {start}..{}) runs past the end of the media ({media_sectors} sectors)",
            start.saturating_add(u64::from(e.sectors))
        ));
    }
    p
}

pub(super) fn read(
    read: &ReadFn<'_>,
    sector0: &[u8; 512],
    media_size: u64,
    ss: u32,
) -> Result<PartitionTable> {
    let media_sectors = media_size / u64::from(ss);
    let mut problems = Vec::new();
    let mut partitions = Vec::new();
    let mut extended: Option<u64> = None;
    for (i, e) in entries(sector0).iter().enumerate() {
        if e.kind == 0 || e.sectors == 0 {
            continue;
        }
        let role = if is_extended(e.kind) {
            Role::Extended
        } else {
            Role::Primary
        };
        let number = i as u32 + 1;
        let start = u64::from(e.first);
        partitions.push(partition(
            number,
            role,
            e,
            start,
            ss,
            media_sectors,
            &mut problems,
        ));
        if role == Role::Extended {
            if extended.is_some() {
                problems.push(format!(
                    "a second extended partition in slot {number}; only the first is followed"
                ));
            } else {
                extended = Some(start);
            }
        }
    }
    if let Some(base) = extended {
        logical(
            read,
            base,
            ss,
            media_sectors,
            &mut partitions,
            &mut problems,
        )?;
    }
    Ok(PartitionTable {
        scheme: Scheme::Mbr,
        sector_size: ss,
        disk_id: format!("0x{:08x}", le32(&sector0[440..444])),
        partitions,
        problems,
    })
}

/// Follows the chain of extended boot records from the extended partition at `base`.
fn logical(
    read: &ReadFn<'_>,
    base: u64,
    ss: u32,
    media_sectors: u64,
    partitions: &mut Vec<Partition>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let mut ebr = base;
    let mut seen = std::collections::HashSet::new();
    let mut number = 5u32;
    while number < 5 + MAX_LOGICAL {
        if ebr >= media_sectors {
            problems.push(format!(
                "an extended boot record at sector {ebr} lies past the end of the media"
            ));
            return Ok(());
        }
        if !seen.insert(ebr) {
            problems.push(format!(
                "the extended partition chain loops back to sector {ebr}; stopped there"
            ));
            return Ok(());
        }
        let mut sector = [0u8; 512];
        read(ebr * u64::from(ss), &mut sector)?;
        if sector[510..512] != [0x55, 0xAA] {
            problems.push(format!(
                "the extended boot record at sector {ebr} has no 0x55AA signature; the chain ends there"
            ));
            return Ok(());
        }
        let [first, link, ..] = entries(&sector);
        if first.kind != 0 && first.sectors != 0 {
            let start = ebr + u64::from(first.first);
            partitions.push(partition(
                number,
                Role::Logical,
                &first,
                start,
                ss,
                media_sectors,
                problems,
            ));
            number += 1;
        }
        if link.kind == 0 || link.sectors == 0 || !is_extended(link.kind) {
            return Ok(());
        }
        ebr = base + u64::from(link.first);
    }
    problems.push(format!(
        "more than {MAX_LOGICAL} logical partitions; the rest are not listed"
    ));
    Ok(())
}
