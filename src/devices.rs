//! `exhibit devices`: every block device the kernel knows, what it is (size, sector sizes,
//! transport, vendor, model, serial, WWID, firmware, flags), what is on it (the kernel's
//! partitions with their mount points, and the partition table read by exhibit's own parser)
//! and what uses it (mounts, holders, swap, the running system's root). The JSON shape is
//! versioned ([`JSON_VERSION`]) and documented in docs/devices.md.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::device::list::{list, DeviceInfo};
use crate::device::sysfs::parse_dev;
use crate::device::{DriveReport, MountTable, Sysfs};
use crate::error::{Error, Result};
use crate::partition::PartitionTable;

/// The version of the `--json` shape: raised when a field changes meaning or goes away;
/// new fields may be added within a version.
pub const JSON_VERSION: u32 = 1;

/// What to list.
#[derive(Clone, Debug)]
pub struct DevicesOptions {
    /// Also loop devices, zram and RAM disks (default: only disks).
    pub all: bool,
    /// Open every device read-only to read its partition table and to ask the drive who it
    /// is and whether it hides sectors (read-only ATA or NVMe identify commands; default on).
    pub partition_tables: bool,
    /// Only these devices (a partition names its disk); all when empty. Named devices are
    /// shown whatever their kind.
    pub only: Vec<PathBuf>,
}

impl Default for DevicesOptions {
    fn default() -> Self {
        DevicesOptions {
            all: false,
            partition_tables: true,
            only: Vec::new(),
        }
    }
}

/// The whole answer, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct DevicesReport {
    /// [`JSON_VERSION`].
    pub version: u32,
    /// Every device, by kernel name.
    pub devices: Vec<DeviceEntry>,
}

/// One device and its partition table.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceEntry {
    /// What sysfs and the mount table say.
    #[serde(flatten)]
    pub device: DeviceInfo,
    /// The partition table exhibit's own parser found on the device (`null`: none, or not
    /// read).
    pub partition_table: Option<PartitionTable>,
    /// Why the partition table could not be read (`null` when it was, or was not asked).
    pub partition_table_error: Option<String>,
    /// What the drive itself says (identity, current/native/DCO maximum sectors, the HPA
    /// and DCO verdict); `null` when the device was not opened.
    pub drive: Option<DriveReport>,
}

/// Lists the devices of this machine.
pub fn devices(opts: &DevicesOptions) -> Result<DevicesReport> {
    let table = MountTable::read();
    let sysfs = Sysfs::system();
    let mut wanted = Vec::new();
    for path in &opts.only {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.file_type().is_block_device() {
            return Err(Error::InvalidOption(format!(
                "{} is not a block device",
                path.display()
            )));
        }
        wanted.push(sysfs.disk_of(meta.rdev()).0);
    }
    let devices = list(&sysfs, &table, opts.all || !wanted.is_empty())
        .into_iter()
        .filter(|d| {
            wanted.is_empty() || parse_dev(&d.device_number).is_some_and(|n| wanted.contains(&n))
        })
        .map(|device| {
            let (partition_table, partition_table_error) =
                if opts.partition_tables && device.size_bytes > 0 {
                    match partition_table(&device) {
                        Ok(t) => (t, None),
                        Err(e) => (None, Some(e.to_string())),
                    }
                } else {
                    (None, None)
                };
            let drive = opts.partition_tables.then(|| {
                let rdev = parse_dev(&device.device_number).unwrap_or(u64::MAX);
                crate::device::hidden::probe_node(Path::new(&device.path), rdev, device.transport)
            });
            DeviceEntry {
                device,
                partition_table,
                partition_table_error,
                drive,
            }
        })
        .collect();
    Ok(DevicesReport {
        version: JSON_VERSION,
        devices,
    })
}

/// The partition table of a listed device, read through its node, which must be the device
/// sysfs named (a `/dev` that names another device is not read).
fn partition_table(device: &DeviceInfo) -> Result<Option<PartitionTable>> {
    let path = Path::new(&device.path);
    let file = open_device(path)?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.file_type().is_block_device() || Some(meta.rdev()) != parse_dev(&device.device_number)
    {
        return Err(Error::Refused(format!(
            "{} is not device {}; its partition table is not read",
            path.display(),
            device.device_number
        )));
    }
    let size = crate::sys::block_device_size(&file).map_err(|e| Error::io(path, e))?;
    let read = |offset: u64, buf: &mut [u8]| -> Result<()> {
        file.read_exact_at(buf, offset).map_err(|e| Error::Read {
            path: path.to_path_buf(),
            offset,
            source: e,
        })
    };
    crate::partition::read(&read, size, device.logical_sector_size)
}

/// Read-only, never blocking on a drive without a medium, never a controlling terminal.
fn open_device(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io(path, e))
}
