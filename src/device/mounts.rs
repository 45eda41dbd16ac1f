//! What is mounted and what swaps, from `/proc/self/mountinfo` and `/proc/swaps`: which
//! device each file system lives on and whether its superblock is read-write. Parsed from
//! text so that tests feed their own tables; read bounded through [`crate::small_file`].

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::sysfs::parse_dev;

/// A mount table of a machine with many containers runs to megabytes; far below this.
pub const MOUNTINFO_LIMIT: u64 = 64 << 20;
/// `/proc/swaps` holds one line per swap area.
pub const SWAPS_LIMIT: u64 = 1 << 20;

/// One mounted file system, as a line of mountinfo gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// `st_dev` of the file system (`major:minor` of mountinfo).
    pub device: u64,
    /// Where it is mounted (octal escapes undone).
    pub mount_point: PathBuf,
    /// The file system type (`ext4`).
    pub fs_type: String,
    /// The mount source (`/dev/sda1`).
    pub source: String,
    /// The superblock is read-only: nothing writes to the device through this file system.
    /// (A read-only mount of a read-write superblock is not: the same file system is
    /// writable through another mount, maybe in another mount namespace, and its journal
    /// still commits.)
    pub read_only: bool,
}

impl Mount {
    /// The block device the file system lives on: its `st_dev`, or for a file system with
    /// an anonymous device number (btrfs, major 0) the device its source names.
    pub fn block_device(&self) -> Option<u64> {
        if libc::major(self.device as libc::dev_t) != 0 {
            return Some(self.device);
        }
        if !self.source.starts_with("/dev/") {
            return None;
        }
        let m = std::fs::metadata(&self.source).ok()?;
        m.file_type().is_block_device().then(|| m.rdev())
    }
}

/// The mount table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountTable {
    /// Every mount, in table order.
    pub mounts: Vec<Mount>,
    /// Block devices in use as swap, by device number.
    pub swaps: Vec<(u64, PathBuf)>,
}

impl MountTable {
    /// This process's mounts and the machine's swap areas. A table that cannot be read is
    /// empty, not an error: `devices` then shows no mount points, and the live-source check
    /// says so itself (see [`MountTable::read_checked`]).
    pub fn read() -> MountTable {
        MountTable::read_checked().unwrap_or_default()
    }

    /// This process's mounts and the machine's swap areas, or why they cannot be read.
    pub fn read_checked() -> crate::Result<MountTable> {
        let info =
            crate::small_file::read_small(Path::new("/proc/self/mountinfo"), MOUNTINFO_LIMIT)?;
        let mut table = MountTable::parse(&String::from_utf8_lossy(&info));
        // No swap support in the kernel: no file, no swap.
        if let Ok(swaps) = crate::small_file::read_small(Path::new("/proc/swaps"), SWAPS_LIMIT) {
            table.swaps = swap_devices(&String::from_utf8_lossy(&swaps));
        }
        Ok(table)
    }

    /// A mountinfo text; malformed lines are skipped.
    pub fn parse(mountinfo: &str) -> MountTable {
        MountTable {
            mounts: mountinfo.lines().filter_map(parse_line).collect(),
            swaps: Vec::new(),
        }
    }

    /// The mounts of the file systems on block device `dev`.
    pub fn on(&self, dev: u64) -> impl Iterator<Item = &Mount> {
        self.mounts
            .iter()
            .filter(move |m| m.block_device() == Some(dev))
    }

    /// The file system mounted at `/` (the last one mounted there is the one seen).
    pub fn root(&self) -> Option<&Mount> {
        self.mounts
            .iter()
            .rev()
            .find(|m| m.mount_point == Path::new("/"))
    }

    /// Whether `dev` is an active swap area.
    pub fn swaps_on(&self, dev: u64) -> Option<&Path> {
        self.swaps
            .iter()
            .find(|(d, _)| *d == dev)
            .map(|(_, p)| p.as_path())
    }
}

/// `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.split(' ').collect();
    let device = parse_dev(left.get(2)?)?;
    let mount_point = PathBuf::from(unescape(left.get(4)?));
    let mount_ro = left.get(5)?.split(',').any(|o| o == "ro");
    let fs_type = String::from_utf8_lossy(unescape(right.first()?).as_encoded_bytes()).into();
    let source = String::from_utf8_lossy(unescape(right.get(1)?).as_encoded_bytes()).into();
    let read_only = match right.get(2) {
        Some(opts) => opts.split(',').any(|o| o == "ro"),
        None => mount_ro,
    };
    Some(Mount {
        device,
        mount_point,
        fs_type,
        source,
        read_only,
    })
}

/// The kernel writes space, tab, newline and backslash in names as `\ooo`.
fn unescape(s: &str) -> OsString {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

/// The block devices of `/proc/swaps` (swap files live in a file system, whose mount is
/// seen anyway).
fn swap_devices(text: &str) -> Vec<(u64, PathBuf)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let name = PathBuf::from(unescape(l.split_whitespace().next()?));
            let m = std::fs::metadata(&name).ok()?;
            m.file_type().is_block_device().then(|| (m.rdev(), name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 7:3 / /mnt/with\\040space ro,relatime - ext4 /dev/loop3 ro
41 27 259:1 / /mnt/p1 ro,relatime - ext4 /dev/loop3p1 rw
garbage line
";

    #[test]
    fn reads_devices_mount_points_and_the_superblock_flag() {
        let t = MountTable::parse(TABLE);
        assert_eq!(t.mounts.len(), 4);
        let dev = |a, b| libc::makedev(a, b) as u64;
        assert_eq!(t.root().unwrap().device, dev(254, 0));
        assert!(!t.root().unwrap().read_only);
        let l3: Vec<_> = t.on(dev(7, 3)).collect();
        assert_eq!(l3.len(), 1);
        assert_eq!(l3[0].mount_point, Path::new("/mnt/with space"));
        assert!(l3[0].read_only);
        assert_eq!(l3[0].fs_type, "ext4");
        // A read-only mount of a read-write superblock is not read-only.
        let p1: Vec<_> = t.on(dev(259, 1)).collect();
        assert!(!p1[0].read_only);
        // proc has an anonymous device and no /dev source: on no block device.
        assert_eq!(t.mounts[0].block_device(), None);
    }

    #[test]
    fn undoes_octal_escapes_only() {
        assert_eq!(unescape("a\\040b\\134c\\011"), OsString::from("a b\\c\t"));
        assert_eq!(unescape("a\\9b\\04"), OsString::from("a\\9b\\04"));
    }
}
