//! Every block device sysfs knows, with what is on it and what uses it: the part `exhibit
//! devices` shows. Built from a [`Sysfs`] tree and a [`MountTable`] only, so that a fake
//! tree gives the same answers as the machine's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::identity::{Identity, Transport};
use super::live::{holder_kind, loops_over_devices};
use super::mounts::MountTable;
use super::sysfs::{attribute, dev_text, file_name, number, Sysfs};

/// One file system mounted from a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MountPoint {
    /// Where.
    #[serde(with = "crate::text::path")]
    pub mount_point: PathBuf,
    /// The file system type.
    pub fs_type: String,
    /// Its superblock is read-only.
    pub read_only: bool,
}

/// A device stacked on another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// Kernel name (`dm-0`).
    pub name: String,
    /// `lvm`, `dm-crypt`, `multipath`, `dm`, `md`, `loop` (a writable loop device over the
    /// device node: sysfs lists it nowhere, yet it writes to the device), `other`.
    pub kind: String,
    /// Its device-mapper name (`vg0-root`) or md name, when it has one.
    pub mapped_name: Option<String>,
    /// Where the holder itself is mounted.
    pub mounts: Vec<MountPoint>,
}

/// What a disk and a partition both have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// File systems mounted from it.
    pub mounts: Vec<MountPoint>,
    /// Devices stacked on it.
    pub holders: Vec<Holder>,
    /// Active swap.
    pub swap: bool,
    /// The running system's root file system lives on it (directly or through holders or
    /// a loop device's backing file).
    pub system_root: bool,
}

/// A partition as the kernel sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionDevice {
    /// Kernel name (`sda1`).
    pub name: String,
    /// Device node (`/dev/sda1`).
    pub path: String,
    /// `major:minor`.
    pub device_number: String,
    /// Partition number.
    pub number: Option<u64>,
    /// First sector on the disk, in 512-byte units (as sysfs counts).
    pub start_512: Option<u64>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The kernel's read-only flag.
    pub read_only: Option<bool>,
    /// Mounts, holders, swap, root.
    #[serde(flatten)]
    pub usage: Usage,
}

/// A whole block device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Kernel name (`sda`, `nvme0n1`).
    pub name: String,
    /// Device node (`/dev/sda`).
    pub path: String,
    /// `major:minor`.
    pub device_number: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Size in logical sectors.
    pub size_sectors: u64,
    /// Logical sector size (the unit of reads).
    pub logical_sector_size: u32,
    /// Physical sector size.
    pub physical_sector_size: u32,
    /// How it is attached.
    pub transport: Transport,
    /// Vendor.
    pub vendor: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// WWN / WWID.
    pub wwid: Option<String>,
    /// Firmware revision.
    pub firmware: Option<String>,
    /// Removable medium.
    pub removable: Option<bool>,
    /// Spinning disk.
    pub rotational: Option<bool>,
    /// The kernel's read-only flag (`blockdev --getro`).
    pub read_only: Option<bool>,
    /// For a loop device, the file behind it.
    pub loop_backing_file: Option<String>,
    /// Mounts, holders, swap, root of the whole device.
    #[serde(flatten)]
    pub usage: Usage,
    /// Its partitions as the kernel sees them.
    pub partitions: Vec<PartitionDevice>,
}

impl DeviceInfo {
    /// True when this disk or one of its partitions holds the running system's root.
    pub fn holds_system_root(&self) -> bool {
        self.usage.system_root || self.partitions.iter().any(|p| p.usage.system_root)
    }
}

/// The device node of a kernel name (`cciss!c0d0` is `/dev/cciss/c0d0`).
pub fn dev_path(name: &str) -> String {
    format!("/dev/{}", name.replace('!', "/"))
}

/// Devices only shown with `--all`: not disks anyone images as evidence.
pub fn hidden_by_default(t: Transport) -> bool {
    matches!(t, Transport::Loop | Transport::Zram | Transport::Ram)
}

/// Every disk under `sysfs` (loop, zram and RAM disks only with `all`), by name.
pub fn list(sysfs: &Sysfs, table: &MountTable, all: bool) -> Vec<DeviceInfo> {
    let seen = Seen {
        root_devs: root_devices(sysfs, table),
        loops: loops_over_devices(sysfs),
    };
    sysfs
        .disks()
        .iter()
        .filter_map(|node| device(sysfs, table, &seen, node))
        .filter(|d| all || !hidden_by_default(d.transport))
        .collect()
}

/// What one listing learns once for every device: where the root lives, and the writable
/// loop devices over device nodes (each found by a stat of its backing file).
struct Seen {
    root_devs: BTreeSet<u64>,
    loops: Vec<(String, u64)>,
}

fn device(sysfs: &Sysfs, table: &MountTable, seen: &Seen, node: &Path) -> Option<DeviceInfo> {
    let dev = sysfs.dev_of(node)?;
    let id = sysfs.identity_of(node, Identity::default());
    let name = file_name(node);
    let logical = number(&node.join("queue/logical_block_size")).unwrap_or(512) as u32;
    let logical = logical.max(512);
    let physical =
        (number(&node.join("queue/physical_block_size")).unwrap_or(0) as u32).max(logical);
    let size_bytes = number(&node.join("size")).unwrap_or(0).saturating_mul(512);
    let partitions = sysfs
        .partitions(node)
        .iter()
        .filter_map(|p| {
            let pdev = sysfs.dev_of(p)?;
            let pname = file_name(p);
            Some(PartitionDevice {
                path: dev_path(&pname),
                device_number: dev_text(pdev),
                number: number(&p.join("partition")),
                start_512: number(&p.join("start")),
                size_bytes: number(&p.join("size")).unwrap_or(0).saturating_mul(512),
                read_only: attribute(&p.join("ro")).map(|s| s == "1"),
                usage: usage(sysfs, table, seen, pdev, p),
                name: pname,
            })
        })
        .collect();
    Some(DeviceInfo {
        path: dev_path(&name),
        device_number: dev_text(dev),
        size_bytes,
        size_sectors: size_bytes / u64::from(logical),
        logical_sector_size: logical,
        physical_sector_size: physical,
        transport: id.transport.unwrap_or(Transport::Unknown),
        vendor: id.vendor,
        model: id.model,
        serial: id.serial,
        wwid: id.wwid,
        firmware: id.firmware,
        removable: id.removable,
        rotational: id.rotational,
        read_only: attribute(&node.join("ro")).map(|s| s == "1"),
        loop_backing_file: id.loop_backing_file,
        usage: usage(sysfs, table, seen, dev, node),
        partitions,
        name,
    })
}

fn mount_points(table: &MountTable, dev: u64) -> Vec<MountPoint> {
    table
        .on(dev)
        .map(|m| MountPoint {
            mount_point: m.mount_point.clone(),
            fs_type: m.fs_type.clone(),
            read_only: m.read_only,
        })
        .collect()
}

fn usage(sysfs: &Sysfs, table: &MountTable, seen: &Seen, dev: u64, node: &Path) -> Usage {
    let mut holders: Vec<Holder> = sysfs
        .holders(node)
        .into_iter()
        .map(|h| {
            let hnode = sysfs.by_name(&h);
            let mapped_name = hnode.as_deref().and_then(|n| {
                attribute(&n.join("dm/name")).or_else(|| attribute(&n.join("md/array_name")))
            });
            let mounts = hnode
                .as_deref()
                .and_then(|n| sysfs.dev_of(n))
                .map(|d| mount_points(table, d))
                .unwrap_or_default();
            Holder {
                kind: holder_kind(sysfs, &h).into(),
                name: h,
                mapped_name,
                mounts,
            }
        })
        .collect();
    for (name, _) in seen.loops.iter().filter(|(_, over)| *over == dev) {
        // Where the loop device, or a partition of it, is mounted.
        let mounts = sysfs
            .by_name(name)
            .map(|n| {
                std::iter::once(n.clone())
                    .chain(sysfs.partitions(&n))
                    .filter_map(|p| sysfs.dev_of(&p))
                    .flat_map(|d| mount_points(table, d))
                    .collect()
            })
            .unwrap_or_default();
        holders.push(Holder {
            name: name.clone(),
            kind: "loop".into(),
            mapped_name: None,
            mounts,
        });
    }
    Usage {
        mounts: mount_points(table, dev),
        holders,
        swap: table.swaps_on(dev).is_some(),
        system_root: seen.root_devs.contains(&dev),
    }
}

/// The devices the root file system lives on: its own and every one below it (the slaves of
/// dm and md, a loop device's backing file's file system).
pub fn root_devices(sysfs: &Sysfs, table: &MountTable) -> BTreeSet<u64> {
    table
        .root()
        .and_then(|m| m.block_device())
        .map(|d| sysfs.expand(&[d]).into_iter().collect())
        .unwrap_or_default()
}
