//! Which file system a volume holds, from the magic numbers in its first bytes: the three
//! exhibit reads, and the common others by name so that an examiner hears what is there.

/// Bytes read to identify a volume (btrfs's superblock magic is at 64 KiB + 64).
pub const HEAD_BYTES: u64 = 0x10050;

/// What the first bytes show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// ext2, ext3 or ext4.
    Ext4,
    /// FAT12, FAT16 or FAT32.
    Fat,
    /// NTFS.
    Ntfs,
    /// Something else, described (`XFS (magic "XFSB" at byte 0)`).
    Other(String),
}

fn at(head: &[u8], offset: usize, magic: &[u8]) -> bool {
    head.get(offset..offset + magic.len()) == Some(magic)
}

/// A file system that starts at byte 0 by its unmistakable signatures only (no guessing
/// from a boot sector's numbers): how a file system on the whole media, whose boot sector
/// also ends in 55 AA, is told from a partition table.
pub fn identify_strict(head: &[u8]) -> Option<Found> {
    if head.len() >= 1082 && head[1080..1082] == [0x53, 0xEF] {
        return Some(Found::Ext4);
    }
    if at(head, 3, b"NTFS    ") {
        return Some(Found::Ntfs);
    }
    let boot_sig = at(head, 510, &[0x55, 0xAA]);
    (boot_sig && (at(head, 54, b"FAT1") || at(head, 82, b"FAT32   "))).then_some(Found::Fat)
}

/// Identifies the file system whose first bytes are `head`.
pub fn identify(head: &[u8]) -> Found {
    if let Some(f) = identify_strict(head) {
        return f;
    }
    let boot_sig = at(head, 510, &[0x55, 0xAA]);
    if boot_sig && plausible_bpb(head) {
        return Found::Fat;
    }
    let named: &[(usize, &[u8], &str)] = &[
        (3, b"EXFAT   ", "exFAT"),
        (3, b"-FVE-FS-", "BitLocker"),
        (3, b"ReFS", "ReFS"),
        (0, b"XFSB", "XFS"),
        (0x10040, b"_BHRfS_M", "btrfs"),
        (0, b"LUKS\xba\xbe", "LUKS (encrypted)"),
        (0, b"SQSH", "squashfs (big-endian)"),
        (0, b"hsqs", "squashfs"),
        (512, b"LABELONE", "LVM physical volume"),
        (24, b"LABELONE", "LVM physical volume"),
        (0x8001, b"CD001", "ISO 9660"),
        (4086, b"SWAPSPACE2", "Linux swap"),
        (4086, b"SWAP-SPACE", "Linux swap"),
        (1024, b"H+", "HFS+"),
        (1024, b"HX", "HFSX"),
        (32, b"NXSB", "APFS"),
        (
            0x1000,
            &[0xfc, 0x4e, 0x2b, 0xa9],
            "Linux software RAID (md)",
        ),
        (0, b"\x7fELF", "no file system (an ELF executable)"),
    ];
    for (offset, magic, name) in named {
        if at(head, *offset, magic) {
            let shown: String = magic
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() {
                        (b as char).to_string()
                    } else {
                        format!("\\x{b:02x}")
                    }
                })
                .collect();
            return Found::Other(format!(
                "holds {name} (magic \"{shown}\" at byte {offset}), not a file system exhibit reads"
            ));
        }
    }
    if head.iter().all(|&b| b == 0) {
        return Found::Other(format!(
            "no file system: its first {} bytes are zeros",
            head.len()
        ));
    }
    let first: String = head.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Found::Other(format!(
        "no file system exhibit knows (first bytes {first}{})",
        if boot_sig {
            ", a boot sector signature"
        } else {
            ""
        }
    ))
}

/// A FAT boot sector without the type string: bytes per sector a power of two from 512 to
/// 4096, sectors per cluster a power of two, at least one FAT and reserved sector.
fn plausible_bpb(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    let bps = u16::from_le_bytes([head[11], head[12]]);
    let spc = head[13];
    let reserved = u16::from_le_bytes([head[14], head[15]]);
    let fats = head[16];
    matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc.is_power_of_two()
        && reserved > 0
        && (1..=2).contains(&fats)
        && matches!(head[0], 0xEB | 0xE9)
}
