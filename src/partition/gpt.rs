//! GUID partition tables: the primary header in sector 1 and its entry array, the backup
//! header (normally in the last sector) and its own array, each with its CRC-32. A damaged
//! primary falls back to the backup; a damaged, missing or disagreeing backup is reported.

use super::{le32, le64, Partition, PartitionTable, ReadFn, Role, Scheme};
use crate::error::Result;

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Entry arrays larger than this are not read (the usual one is 16 KiB; 4 MiB is 32768
/// entries of 128 bytes).
const MAX_ARRAY: u64 = 4 << 20;

/// A header that passed its own checks.
struct Header {
    my_lba: u64,
    alternate_lba: u64,
    disk_guid: [u8; 16],
    entries_lba: u64,
    entry_count: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// CRC-32 (IEEE 802.3, reflected), as the UEFI specification uses for GPT.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// A GUID as text, in the mixed-endian order GPT stores it (upper case, as sfdisk prints).
fn guid(b: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        le32(&b[0..4]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// The GPT type GUIDs this build names.
pub(super) const TYPE_NAMES: &[(&str, &str)] = &[
    ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI system"),
    ("21686148-6449-6E6F-744E-656564454649", "BIOS boot"),
    ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"),
    ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"),
    ("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"),
    ("A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"),
    (
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        "Linux root (x86-64)",
    ),
    ("933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home"),
    (
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        "Microsoft basic data",
    ),
    ("E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved"),
    ("DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery"),
    (
        "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3",
        "Windows LDM metadata",
    ),
    ("AF9B60A0-1431-4F62-BC68-3311714A69AD", "Windows LDM data"),
    ("48465300-0000-11AA-AA11-00306543ECAC", "Apple HFS+"),
    ("7C3457EF-0000-11AA-AA11-00306543ECAC", "Apple APFS"),
    ("516E7CB4-6ECF-11D6-8FF8-00022D09712B", "FreeBSD"),
];

fn type_name(type_guid: &str) -> Option<&'static str> {
    TYPE_NAMES
        .iter()
        .find(|(guid, _)| *guid == type_guid)
        .map(|(_, name)| *name)
}

/// The header at `lba`, if it is one and its CRC holds; otherwise why not.
fn header(
    read: &ReadFn<'_>,
    lba: u64,
    ss: u32,
    media_sectors: u64,
) -> Result<Result<Header, String>> {
    if lba >= media_sectors {
        return Ok(Err(format!("sector {lba} lies past the end of the media")));
    }
    let mut b = vec![0u8; ss as usize];
    read(lba * u64::from(ss), &mut b)?;
    if &b[0..8] != SIGNATURE {
        return Ok(Err(format!("no GPT header signature in sector {lba}")));
    }
    let size = le32(&b[12..16]) as usize;
    if !(92..=ss as usize).contains(&size) {
        return Ok(Err(format!(
            "the GPT header in sector {lba} gives a size of {size} bytes"
        )));
    }
    let stored = le32(&b[16..20]);
    let mut h = b[..size].to_vec();
    h[16..20].fill(0);
    if crc32(&h) != stored {
        return Ok(Err(format!(
            "the GPT header in sector {lba} fails its CRC-32"
        )));
    }
    let mut disk_guid = [0u8; 16];
    disk_guid.copy_from_slice(&b[56..72]);
    Ok(Ok(Header {
        my_lba: le64(&b[24..32]),
        alternate_lba: le64(&b[32..40]),
        disk_guid,
        entries_lba: le64(&b[72..80]),
        entry_count: le32(&b[80..84]),
        entry_size: le32(&b[84..88]),
        entries_crc: le32(&b[88..92]),
    }))
}

/// The entry array a header points to, if its size is sane and its CRC holds.
fn array(
    read: &ReadFn<'_>,
    h: &Header,
    ss: u32,
    media_sectors: u64,
    which: &str,
) -> Result<Result<Vec<u8>, String>> {
    let len = u64::from(h.entry_count) * u64::from(h.entry_size);
    if h.entry_size < 128 || !h.entry_size.is_multiple_of(8) || len > MAX_ARRAY {
        return Ok(Err(format!(
            "the {which} GPT header gives {} entries of {} bytes",
            h.entry_count, h.entry_size
        )));
    }
    let sectors = len.div_ceil(u64::from(ss));
    if h.entries_lba.saturating_add(sectors) > media_sectors {
        return Ok(Err(format!(
            "the {which} GPT entry array (sector {}) runs past the end of the media",
            h.entries_lba
        )));
    }
    let mut b = vec![0u8; len as usize];
    read(h.entries_lba * u64::from(ss), &mut b)?;
    if crc32(&b) != h.entries_crc {
        return Ok(Err(format!(
            "the {which} GPT entry array (sector {}) fails its CRC-32",
            h.entries_lba
        )));
    }
    Ok(Ok(b))
}

/// The header at `lba` and its entry array, when both pass their checks; `found` is set when
/// the header does; why not goes to `problems`.
fn usable(
    read: &ReadFn<'_>,
    lba: u64,
    ss: u32,
    media_sectors: u64,
    which: &str,
    problems: &mut Vec<String>,
    found: &mut bool,
) -> Result<Option<(Header, Vec<u8>)>> {
    let h = match header(read, lba, ss, media_sectors)? {
        Ok(h) => h,
        Err(why) => {
            problems.push(format!("{which} GPT header: {why}"));
            return Ok(None);
        }
    };
    *found = true;
    match array(read, &h, ss, media_sectors, which)? {
        Ok(a) => Ok(Some((h, a))),
        Err(why) => {
            problems.push(why);
            Ok(None)
        }
    }
}

pub(super) fn read(read: &ReadFn<'_>, media_size: u64, ss: u32) -> Result<Option<PartitionTable>> {
    let media_sectors = media_size / u64::from(ss);
    if media_sectors < 3 {
        return Ok(None);
    }
    let mut problems = Vec::new();
    // A header that passed its checks at this sector size: the table is a GPT of this size
    // even when nothing else of it can be used.
    let mut found = false;
    let primary = usable(
        read,
        1,
        ss,
        media_sectors,
        "primary",
        &mut problems,
        &mut found,
    )?;
    let backup_lba = primary
        .as_ref()
        .map(|(h, _)| h.alternate_lba)
        .filter(|&l| l > 1 && l < media_sectors)
        .unwrap_or(media_sectors - 1);
    let backup = usable(
        read,
        backup_lba,
        ss,
        media_sectors,
        "backup",
        &mut problems,
        &mut found,
    )?;
    if !found {
        // Neither header at this sector size: the caller tries the other one.
        return Ok(None);
    }
    match (&primary, &backup) {
        (Some((p, pa)), Some((b, ba))) => {
            if p.disk_guid != b.disk_guid || pa != ba {
                problems.push(format!(
                    "the backup GPT (sector {backup_lba}) disagrees with the primary (disk GUID or entries); the primary is listed"
                ));
            }
            if b.my_lba != backup_lba || b.alternate_lba != 1 {
                problems.push(format!(
                    "the backup GPT header (sector {backup_lba}) names itself sector {} and its primary sector {}",
                    b.my_lba, b.alternate_lba
                ));
            }
            if p.alternate_lba != media_sectors - 1 {
                problems.push(format!(
                    "the primary GPT header puts its backup in sector {}, not in the last sector ({}): the media may have been larger (an image cut short, or an HPA)",
                    p.alternate_lba,
                    media_sectors - 1
                ));
            }
        }
        (None, Some(_)) => problems.push(format!(
            "the primary GPT is damaged; the partitions are listed from the backup (sector {backup_lba})"
        )),
        _ => {}
    }
    let Some((h, entries)) = primary.or(backup) else {
        return Ok(Some(PartitionTable {
            scheme: Scheme::Gpt,
            sector_size: ss,
            disk_id: String::new(),
            partitions: Vec::new(),
            problems,
        }));
    };
    let mut partitions = Vec::new();
    for (i, e) in entries.chunks_exact(h.entry_size as usize).enumerate() {
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let first = le64(&e[32..40]);
        let last = le64(&e[40..48]);
        let number = i as u32 + 1;
        if last < first {
            problems.push(format!(
                "GPT entry {number} ends (sector {last}) before it starts (sector {first})"
            ));
            continue;
        }
        let mut p = Partition::new(number, Role::Primary, first, last - first + 1, ss);
        p.type_id = guid(&e[0..16]);
        p.type_name = type_name(&p.type_id);
        p.guid = Some(guid(&e[16..32]));
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let name = String::from_utf16_lossy(&name);
        p.name = (!name.is_empty()).then_some(name);
        if last >= media_sectors {
            problems.push(format!(
                "partition {number} (sectors {first}..={last}) runs past the end of the media ({media_sectors} sectors)"
            ));
        }
        partitions.push(p);
    }
    Ok(Some(PartitionTable {
        scheme: Scheme::Gpt,
        sector_size: ss,
        disk_id: guid(&h.disk_guid),
        partitions,
        problems,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(super::crc32(b""), 0);
    }
}
