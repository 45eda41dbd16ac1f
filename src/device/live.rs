//! A live source: a device that is mounted, or one of whose partitions is, or that a
//! device-mapper or md device holds, or that is active swap. Such a device changes while it is
//! read, so its image belongs to no moment and its hash describes nothing. `acquire` and
//! `rescue` refuse it unless `--allow-live`; a device whose file systems are all mounted
//! read-only (superblock read-only) is imaged with a warning. Either way the record says so
//! (`source.live_use`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mounts::MountTable;
use super::sysfs::{attribute, dev_text, file_name, Sysfs};
use crate::error::{Error, Result};

/// How a source device is in use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveUse {
    /// File systems on it or on its partitions (or on its disk, for a partition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<LiveMount>,
    /// Devices stacked on it (device-mapper, md, bcache).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<LiveHolder>,
    /// Kernel names of the devices among them that are active swap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swap: Vec<String>,
    /// Why the job went on: `read-only mounts` (nothing writes to it), `--allow-live`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
}

/// One file system on the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMount {
    /// Kernel name of the device it lives on (`sdb1`).
    pub device: String,
    /// Where it is mounted.
    #[serde(with = "crate::text::path")]
    pub mount_point: PathBuf,
    /// Its type.
    pub fs_type: String,
    /// Its superblock is read-only.
    pub read_only: bool,
}

/// One device stacked on the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveHolder {
    /// Kernel name of the device it holds (the source or one of its partitions).
    pub device: String,
    /// Kernel name of the holder (`dm-0`, `md127`).
    pub holder: String,
    /// What it is: `lvm`, `dm-crypt`, `multipath`, `dm`, `md`, `loop` (a writable loop device
    /// over the device node), `other`.
    pub kind: String,
}

/// The writable loop devices whose backing file is a block device: (loop name, that device).
pub(super) fn loops_over_devices(sysfs: &Sysfs) -> Vec<(String, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    sysfs
        .disks()
        .iter()
        .filter(|n| file_name(n).starts_with("loop"))
        .filter(|n| attribute(&n.join("ro")).as_deref() == Some("0"))
        .filter_map(|n| {
            let backing = attribute(&n.join("loop/backing_file"))?;
            // Only device nodes: a regular backing file is not stat'ed through a hung mount.
            if !backing.starts_with("/dev/") {
                return None;
            }
            let m = std::fs::metadata(backing).ok()?;
            m.file_type()
                .is_block_device()
                .then(|| (file_name(n), m.rdev()))
        })
        .collect()
}

/// What a holder is, from its name and its device-mapper UUID prefix.
pub fn holder_kind(sysfs: &Sysfs, holder: &str) -> &'static str {
    if holder.starts_with("md") {
        return "md";
    }
    if !holder.starts_with("dm-") {
        return "other";
    }
    let uuid = sysfs
        .by_name(holder)
        .and_then(|p| attribute(&p.join("dm/uuid")))
        .unwrap_or_default();
    if uuid.starts_with("LVM-") {
        "lvm"
    } else if uuid.starts_with("CRYPT-") {
        "dm-crypt"
    } else if uuid.starts_with("mpath-") {
        "multipath"
    } else {
        "dm"
    }
}

impl LiveUse {
    /// How device `dev` is in use, or `None` when it is not: its own file systems, swap and
    /// holders; for a disk those of its partitions; for a partition those of the whole disk.
    pub fn of(sysfs: &Sysfs, table: &MountTable, dev: u64) -> Option<LiveUse> {
        let mut related: Vec<(u64, Option<PathBuf>)> = Vec::new();
        match sysfs.node(dev) {
            Some(node) if node.join("partition").exists() => {
                let parent = node.parent().map(Path::to_path_buf);
                related.push((dev, Some(node)));
                if let Some((pdev, p)) = parent.and_then(|p| Some((sysfs.dev_of(&p)?, p))) {
                    related.push((pdev, Some(p)));
                }
            }
            Some(node) => {
                for part in sysfs.partitions(&node) {
                    if let Some(pdev) = sysfs.dev_of(&part) {
                        related.push((pdev, Some(part)));
                    }
                }
                related.insert(0, (dev, Some(node)));
            }
            None => related.push((dev, None)),
        }
        let mut live = LiveUse::default();
        // A writable loop device over the device node is a holder sysfs does not list.
        let loops = loops_over_devices(sysfs);
        for (d, node) in &related {
            let name = node
                .as_deref()
                .map(file_name)
                .unwrap_or_else(|| dev_text(*d));
            for m in table.on(*d) {
                live.mounts.push(LiveMount {
                    device: name.clone(),
                    mount_point: m.mount_point.clone(),
                    fs_type: m.fs_type.clone(),
                    read_only: m.read_only,
                });
            }
            if table.swaps_on(*d).is_some() {
                live.swap.push(name.clone());
            }
            for (holder, _) in loops.iter().filter(|(_, over)| over == d) {
                live.holders.push(LiveHolder {
                    device: name.clone(),
                    holder: holder.clone(),
                    kind: "loop".into(),
                });
            }
            for holder in node
                .as_deref()
                .map(|n| sysfs.holders(n))
                .unwrap_or_default()
            {
                live.holders.push(LiveHolder {
                    device: name.clone(),
                    kind: holder_kind(sysfs, &holder).into(),
                    holder,
                });
            }
        }
        let used = !(live.mounts.is_empty() && live.holders.is_empty() && live.swap.is_empty());
        used.then_some(live)
    }

    /// True when something may write to the device: a read-write file system, a holder, swap.
    pub fn writable(&self) -> bool {
        !self.holders.is_empty()
            || !self.swap.is_empty()
            || self.mounts.iter().any(|m| !m.read_only)
    }

    /// Every use, on one line: `sdb1 is mounted read-write at /mnt (ext4); sdb is held by
    /// dm-0 (lvm)`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .mounts
            .iter()
            .map(|m| {
                format!(
                    "{} is mounted {} at {} ({})",
                    m.device,
                    if m.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    crate::text::printable_path(&m.mount_point),
                    crate::text::printable(&m.fs_type)
                )
            })
            .collect();
        parts.extend(
            self.holders
                .iter()
                .map(|h| format!("{} is held by {} ({})", h.device, h.holder, h.kind)),
        );
        parts.extend(self.swap.iter().map(|s| format!("{s} is active swap")));
        parts.join("; ")
    }

    /// The warning for a job that goes on.
    pub fn warning(&self, source: &Path) -> String {
        let why = if self.writable() {
            "imaged anyway (--allow-live): the image may be inconsistent"
        } else {
            "nothing writes to it"
        };
        format!(
            "{} is in use: {}; {why}; recorded in the record (source.live_use)",
            crate::text::printable_path(source),
            self.describe()
        )
    }
}

/// How the block device `dev` (the source at `path`) is in use on this machine, refused when
/// something may write to it and `allow_live` is not given. `Ok(None)`: not in use.
pub fn guard(path: &Path, dev: u64, allow_live: bool) -> Result<Option<LiveUse>> {
    let table = MountTable::read_checked().map_err(|e| {
        Error::Refused(format!(
            "cannot tell whether {} is mounted ({e}); --allow-live to image it anyway",
            path.display()
        ))
    })?;
    let Some(mut live) = LiveUse::of(&Sysfs::system(), &table, dev) else {
        return Ok(None);
    };
    if !live.writable() {
        live.allowed_by = Some("read-only mounts".into());
    } else if allow_live {
        live.allowed_by = Some("--allow-live".into());
    } else {
        return Err(Error::Refused(format!(
            "{} is live: {}; it changes while it is read, so its image and hashes would \
             describe no moment. Stop using it (umount, swapoff, deactivate what holds it), or \
             pass --allow-live to image it anyway (recorded)",
            path.display(),
            live.describe()
        )));
    }
    Ok(Some(live))
}

/// How the block device `dev` is in use on this machine, if it is (for messages: a mount
/// table that cannot be read says nothing).
pub fn in_use(dev: u64) -> Option<LiveUse> {
    LiveUse::of(&Sysfs::system(), &MountTable::read(), dev)
}

/// [`guard`] for the path of a would-be source: `Ok(None)` for a file or a device not in use.
pub fn guard_path(path: &Path, allow_live: bool) -> Result<Option<LiveUse>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_block_device() => guard(path, m.rdev(), allow_live),
        _ => Ok(None),
    }
}

/// [`guard`] for an opened source: `Ok(None)` for a file.
pub fn guard_source(source: &crate::source::Source, allow_live: bool) -> Result<Option<LiveUse>> {
    match source.device_number() {
        Some(dev) => guard(source.path(), dev, allow_live),
        None => Ok(None),
    }
}
