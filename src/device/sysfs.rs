//! sysfs, looked up by device number: names, the disk a partition belongs to, partitions,
//! holders and what a device is stacked on. The root is injectable ([`Sysfs::at`]) so that
//! tests run on a fake tree in a temporary directory; [`Sysfs::system`] is `/sys`.
//!
//! Every attribute is read through [`crate::small_file`] (a regular file, bounded), every
//! directory listing is cut at [`MAX_ENTRIES`]: sysfs is the kernel's, but a tree given by a
//! test or a container can hold anything.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An attribute holds a page at most; binary ones (VPD pages) a few hundred bytes.
pub const ATTRIBUTE_LIMIT: u64 = 64 << 10;
/// Entries read from one sysfs directory (devices, partitions, holders).
pub const MAX_ENTRIES: usize = 4096;

/// A sysfs tree.
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
}

/// `major` of a device number.
pub fn major(dev: u64) -> u64 {
    libc::major(dev as libc::dev_t) as u64
}

/// `minor` of a device number.
pub fn minor(dev: u64) -> u64 {
    libc::minor(dev as libc::dev_t) as u64
}

/// `major:minor`.
pub fn dev_text(dev: u64) -> String {
    format!("{}:{}", major(dev), minor(dev))
}

/// A device number from `major:minor`.
pub fn parse_dev(s: &str) -> Option<u64> {
    let (ma, mi) = s.trim().split_once(':')?;
    Some(libc::makedev(ma.parse().ok()?, mi.parse().ok()?) as u64)
}

/// An attribute's text, trimmed; `None` when missing, empty, unreadable or too large.
pub fn attribute(path: &Path) -> Option<String> {
    let bytes = crate::small_file::read_small(path, ATTRIBUTE_LIMIT).ok()?;
    let s = String::from_utf8_lossy(&bytes);
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A binary attribute's bytes.
pub fn attribute_bytes(path: &Path) -> Option<Vec<u8>> {
    crate::small_file::read_small(path, ATTRIBUTE_LIMIT).ok()
}

/// A numeric attribute.
pub fn number(path: &Path) -> Option<u64> {
    attribute(path)?.parse().ok()
}

/// The entries of a directory (at most [`MAX_ENTRIES`]), sorted by name.
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(list) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = list.take(MAX_ENTRIES).flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

/// The last component of a path, as text.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Sysfs {
    /// The machine's own, `/sys`.
    pub fn system() -> Sysfs {
        Sysfs::at("/sys")
    }

    /// A tree rooted at `root` (a test's fake tree).
    pub fn at(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The device's directory, resolved (`…/devices/pci…/block/sda`).
    pub fn node(&self, dev: u64) -> Option<PathBuf> {
        std::fs::canonicalize(self.root.join("dev/block").join(dev_text(dev))).ok()
    }

    /// The whole disks, `/sys/block/*`, resolved, by name.
    pub fn disks(&self) -> Vec<PathBuf> {
        entries(&self.root.join("block"))
            .into_iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect()
    }

    /// A disk's partitions (the subdirectories with a `partition` attribute), by number.
    pub fn partitions(&self, disk: &Path) -> Vec<PathBuf> {
        let mut parts: Vec<(u64, PathBuf)> = entries(disk)
            .into_iter()
            .filter_map(|p| number(&p.join("partition")).map(|n| (n, p)))
            .collect();
        parts.sort();
        parts.into_iter().map(|(_, p)| p).collect()
    }

    /// The device number of a device directory.
    pub fn dev_of(&self, node: &Path) -> Option<u64> {
        attribute(&node.join("dev")).and_then(|s| parse_dev(&s))
    }

    /// The kernel names of what holds a device (`holders/`: dm, md, bcache).
    pub fn holders(&self, node: &Path) -> Vec<String> {
        entries(&node.join("holders"))
            .iter()
            .map(|p| file_name(p))
            .collect()
    }

    /// The directory of a device by kernel name (`dm-0`), resolved.
    pub fn by_name(&self, name: &str) -> Option<PathBuf> {
        if name.contains('/') || name.starts_with('.') {
            return None;
        }
        std::fs::canonicalize(self.root.join("class/block").join(name))
            .or_else(|_| std::fs::canonicalize(self.root.join("block").join(name)))
            .ok()
    }

    /// Kernel name of a device number, or `major:minor` if sysfs does not know it.
    pub fn name(&self, dev: u64) -> String {
        self.node(dev)
            .map(|p| file_name(&p))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| dev_text(dev))
    }

    /// (disk, partition) for a device: a partition's parent disk, or the disk itself.
    pub fn disk_of(&self, dev: u64) -> (u64, Option<u64>) {
        if let Some(p) = self.node(dev) {
            if p.join("partition").exists() {
                if let Some(pdev) = p.parent().and_then(|d| self.dev_of(d)) {
                    return (pdev, Some(dev));
                }
            }
        }
        (dev, None)
    }

    /// True if writing to one could change the other: the same disk, and either is the
    /// whole disk or both are the same partition.
    pub fn overlap(&self, a: u64, b: u64) -> bool {
        let (da, pa) = self.disk_of(a);
        let (db, pb) = self.disk_of(b);
        da == db && (pa.is_none() || pb.is_none() || pa == pb)
    }

    /// The devices themselves and every device they are stacked on (device-mapper, md and
    /// loop backing files), so that an output on LVM on the source is still caught.
    pub fn expand(&self, devs: &[u64]) -> Vec<u64> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<u64> = devs.to_vec();
        while let Some(d) = todo.pop() {
            if !seen.insert(d) || seen.len() > 256 {
                continue;
            }
            let Some(p) = self.node(d) else { continue };
            for slave in entries(&p.join("slaves")) {
                if let Some(sd) = self.dev_of(&slave) {
                    todo.push(sd);
                }
            }
            if let Some(backing) = attribute(&p.join("loop/backing_file")) {
                if let Ok(m) = std::fs::metadata(&backing) {
                    todo.push(m.dev());
                }
            }
        }
        seen.into_iter().collect()
    }

    /// The file behind a loop device, by (st_dev, st_ino), if it has one that still exists.
    fn backing_file_id(p: &Path) -> Option<(u64, u64)> {
        let backing = attribute(&p.join("loop/backing_file"))?;
        let m = std::fs::metadata(backing).ok()?;
        Some((m.dev(), m.ino()))
    }

    /// Every loop device whose backing file is the file `id` (st_dev, st_ino).
    pub fn loops_backed_by(&self, id: (u64, u64)) -> Vec<u64> {
        entries(&self.root.join("block"))
            .into_iter()
            .filter(|p| file_name(p).starts_with("loop"))
            .filter(|p| Self::backing_file_id(p) == Some(id))
            .filter_map(|p| self.dev_of(&p))
            .collect()
    }

    /// The loop device in or below `devs` (see [`Sysfs::expand`]) whose backing file is `id`.
    pub fn loops_reading(&self, devs: &[u64], id: (u64, u64)) -> Option<u64> {
        // A partition reads from its disk's backing file.
        self.expand(devs).into_iter().find(|&d| {
            [d, self.disk_of(d).0]
                .iter()
                .any(|&x| self.node(x).and_then(|p| Self::backing_file_id(&p)) == Some(id))
        })
    }

    /// Whether sysfs still knows the device (an unplugged disk's node goes away).
    pub fn present(&self, dev: u64) -> bool {
        self.root.join("dev/block").join(dev_text(dev)).exists()
    }

    /// A loop device's backing file as sysfs names it now.
    pub fn loop_backing_file(&self, dev: u64) -> Option<String> {
        attribute(&self.node(dev)?.join("loop/backing_file"))
    }

    /// The block device a filesystem (by st_dev) lives on, if it is a real one.
    pub fn block_device_of_filesystem(&self, st_dev: u64) -> Option<u64> {
        self.node(st_dev).map(|_| st_dev)
    }
}
