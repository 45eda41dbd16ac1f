//! What a device says about itself through sysfs: vendor, model, serial, firmware, WWID, and
//! how it is attached (the transport, read from the resolved sysfs path: a SATA disk behind a
//! USB bridge sits under `usbN`, so it is `usb`, which is what matters for a write blocker).

use std::path::Path;

use super::sysfs::{attribute, attribute_bytes, dev_text, file_name, Sysfs};

/// How a device is attached, from its place in the sysfs device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Behind a USB host (USB sticks, USB-SATA bridges, UAS).
    Usb,
    /// NVMe (PCIe or fabrics).
    Nvme,
    /// libata: SATA or PATA.
    Sata,
    /// A SAS HBA (an `end_device` or `port` on the way).
    Sas,
    /// virtio-blk or virtio-scsi.
    Virtio,
    /// An SD/MMC card or eMMC.
    Mmc,
    /// Another SCSI host (iSCSI, a RAID controller, a hypervisor's disk).
    Scsi,
    /// A loop device (a file seen as a disk).
    Loop,
    /// device-mapper (LVM, dm-crypt, multipath).
    Dm,
    /// md software RAID.
    Md,
    /// zram (compressed memory).
    Zram,
    /// A RAM disk (`brd`).
    Ram,
    /// Another virtual device.
    Virtual,
    /// Nothing on the path says.
    Unknown,
}

impl Transport {
    /// The word used in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Usb => "usb",
            Transport::Nvme => "nvme",
            Transport::Sata => "sata",
            Transport::Sas => "sas",
            Transport::Virtio => "virtio",
            Transport::Mmc => "mmc",
            Transport::Scsi => "scsi",
            Transport::Loop => "loop",
            Transport::Dm => "dm",
            Transport::Md => "md",
            Transport::Zram => "zram",
            Transport::Ram => "ram",
            Transport::Virtual => "virtual",
            Transport::Unknown => "unknown",
        }
    }

    /// The transport of a disk whose resolved sysfs directory is `node` under `sysfs`.
    pub fn of(sysfs: &Sysfs, node: &Path) -> Transport {
        let root = std::fs::canonicalize(sysfs.root()).unwrap_or_else(|_| sysfs.root().into());
        let rel = node.strip_prefix(root.join("devices")).unwrap_or(node);
        let comps: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let numbered = |c: &str, prefix: &str| {
            c.strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        let any = |f: &dyn Fn(&str) -> bool| comps.iter().any(|c| f(c));
        // Outermost first: the bus nearest the machine decides (SATA behind USB is USB).
        if any(&|c| numbered(c, "usb")) {
            return Transport::Usb;
        }
        if any(&|c| c == "nvme" || c == "nvme-subsystem" || numbered(c, "nvme")) {
            return Transport::Nvme;
        }
        if any(&|c| numbered(c, "ata")) {
            return Transport::Sata;
        }
        if any(&|c| c.starts_with("end_device-") || c.starts_with("expander-")) {
            return Transport::Sas;
        }
        if any(&|c| numbered(c, "virtio")) {
            return Transport::Virtio;
        }
        if any(&|c| numbered(c, "mmc") || c.starts_with("mmc_host")) {
            return Transport::Mmc;
        }
        if any(&|c| numbered(c, "host")) {
            return Transport::Scsi;
        }
        if comps.first().map(String::as_str) == Some("virtual") {
            let name = file_name(node);
            return if name.starts_with("loop") {
                Transport::Loop
            } else if name.starts_with("dm-") {
                Transport::Dm
            } else if name.starts_with("md") {
                Transport::Md
            } else if name.starts_with("zram") {
                Transport::Zram
            } else if numbered(&name, "ram") {
                Transport::Ram
            } else {
                Transport::Virtual
            };
        }
        Transport::Unknown
    }
}

/// What the device says about itself (from sysfs); empty for files.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// Kernel name (`sda`, `nvme0n1p2`, `loop3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_name: Option<String>,
    /// Kernel name of the parent disk, for a partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_disk: Option<String>,
    /// Device number `major:minor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_number: Option<String>,
    /// How the (parent) disk is attached: `usb`, `nvme`, `sata`, `sas`, `virtio`, `loop`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Vendor string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Firmware revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// World-wide identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwid: Option<String>,
    /// Removable medium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removable: Option<bool>,
    /// Spinning disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    /// For a loop device: the file behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_backing_file: Option<String>,
    /// For a partition: first sector on the parent disk (512-byte units, as sysfs says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_start_sector: Option<u64>,
}

impl Sysfs {
    /// Identity of a block device from sysfs; for a partition, from its parent disk.
    pub fn identity(&self, dev: u64) -> Identity {
        let id = Identity {
            device_number: Some(dev_text(dev)),
            ..Identity::default()
        };
        match self.node(dev) {
            Some(p) => self.identity_of(&p, id),
            None => id,
        }
    }

    /// Identity of the device whose resolved directory is `p`, added to `id`.
    pub fn identity_of(&self, p: &Path, mut id: Identity) -> Identity {
        id.kernel_name = Some(file_name(p)).filter(|n| !n.is_empty());
        let mut disk = p.to_path_buf();
        if p.join("partition").exists() {
            id.partition_start_sector = attribute(&p.join("start")).and_then(|s| s.parse().ok());
            if let Some(parent) = p.parent() {
                disk = parent.to_path_buf();
                id.parent_disk = Some(file_name(parent)).filter(|n| !n.is_empty());
            }
        }
        let dev_dir = disk.join("device");
        id.transport = Some(Transport::of(self, &disk));
        id.vendor = attribute(&dev_dir.join("vendor"));
        id.model = attribute(&dev_dir.join("model")).or_else(|| attribute(&dev_dir.join("name")));
        id.serial = attribute(&dev_dir.join("serial"))
            .or_else(|| attribute(&disk.join("serial")))
            .or_else(|| vpd_serial(&dev_dir.join("vpd_pg80")));
        id.firmware =
            attribute(&dev_dir.join("rev")).or_else(|| attribute(&dev_dir.join("firmware_rev")));
        id.wwid = attribute(&dev_dir.join("wwid")).or_else(|| attribute(&disk.join("wwid")));
        id.removable = attribute(&disk.join("removable")).map(|s| s == "1");
        id.rotational = attribute(&disk.join("queue/rotational")).map(|s| s == "1");
        id.loop_backing_file = attribute(&disk.join("loop/backing_file"));
        id
    }
}

/// Unit serial number from a SCSI VPD page 0x80 (4-byte header, then ASCII).
fn vpd_serial(path: &Path) -> Option<String> {
    let raw = attribute_bytes(path)?;
    let text = String::from_utf8_lossy(raw.get(4..)?).trim().to_string();
    (!text.is_empty()).then_some(text)
}
