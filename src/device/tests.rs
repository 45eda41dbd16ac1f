//! The device part on fake sysfs trees: an NVMe disk holding the root file system, a SATA
//! disk behind a USB bridge with a partition mounted read-write, a virtio disk, a SATA disk
//! whose partition an LVM volume holds, and a loop device.

use std::path::{Path, PathBuf};

use super::identity::Transport;
use super::list::list;
use super::live::LiveUse;
use super::mounts::MountTable;
use super::sysfs::Sysfs;

fn dev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor) as u64
}

/// A sysfs tree in a temporary directory.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn sysfs(&self) -> Sysfs {
        Sysfs::at(self.root())
    }

    fn write(&self, dir: &Path, attrs: &[(&str, &str)]) {
        for (name, value) in attrs {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{value}\n")).unwrap();
        }
    }

    fn link(&self, at: &Path, to: &Path) {
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(to, at).unwrap();
    }

    /// A device directory at `devices/REL` (ending in the kernel name), with `dev`, `size`
    /// (512-byte units) and `attrs`; linked from `block/` (a disk), `class/block/` and
    /// `dev/block/`.
    fn block(&self, rel: &str, number: (u32, u32), size: u64, attrs: &[(&str, &str)]) -> PathBuf {
        let node = self.root().join("devices").join(rel);
        let name = node.file_name().unwrap().to_owned();
        std::fs::create_dir_all(node.join("holders")).unwrap();
        std::fs::create_dir_all(node.join("slaves")).unwrap();
        let devno = format!("{}:{}", number.0, number.1);
        self.write(
            &node,
            &[("dev", &devno), ("size", &size.to_string()), ("ro", "0")],
        );
        self.write(&node, attrs);
        if !attrs.iter().any(|(n, _)| *n == "partition") {
            self.link(&self.root().join("block").join(&name), &node);
        }
        self.link(&self.root().join("class/block").join(&name), &node);
        self.link(&self.root().join("dev/block").join(devno), &node);
        node
    }

    fn partition(
        &self,
        disk: &Path,
        name: &str,
        n: u32,
        number: (u32, u32),
        start: u64,
        size: u64,
    ) -> PathBuf {
        let rel = disk
            .strip_prefix(self.root().join("devices"))
            .unwrap()
            .join(name);
        self.block(
            rel.to_str().unwrap(),
            number,
            size,
            &[("partition", &n.to_string()), ("start", &start.to_string())],
        )
    }

    /// `from` is held by `holder`: `from/holders/H` and `holder/slaves/F`.
    fn hold(&self, from: &Path, holder: &Path) {
        self.link(
            &from.join("holders").join(holder.file_name().unwrap()),
            holder,
        );
        self.link(&holder.join("slaves").join(from.file_name().unwrap()), from);
    }
}

const QUEUE_SSD: &[(&str, &str)] = &[
    ("queue/logical_block_size", "512"),
    ("queue/physical_block_size", "4096"),
    ("queue/rotational", "0"),
    ("removable", "0"),
];

/// The machine of the tests: nvme0n1 (root on p2), sdb behind USB (sdb1 mounted read-write),
/// vda, sdc on SATA (sdc1 held by LVM volume dm-0, mounted at /data), loop0.
fn machine() -> Tree {
    let t = Tree::new();
    let ctrl = t
        .root()
        .join("devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0");
    t.write(
        &ctrl,
        &[
            ("model", "Samsung SSD 980 PRO 1TB"),
            ("serial", "S5GXNF0R123456A"),
            ("firmware_rev", "5B2QGXA7"),
        ],
    );
    let nvme = t.block(
        "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1",
        (259, 0),
        2_000_409_264,
        &[("wwid", "eui.002538b911b2c3d4")],
    );
    t.write(&nvme, QUEUE_SSD);
    t.link(&nvme.join("device"), &ctrl);
    t.partition(&nvme, "nvme0n1p1", 1, (259, 1), 2048, 1_048_576);
    t.partition(&nvme, "nvme0n1p2", 2, (259, 2), 1_050_624, 1_999_358_607);

    let scsi = t
        .root()
        .join("devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0");
    t.write(
        &scsi,
        &[
            ("vendor", "JMicron "),
            ("model", "Generic         "),
            ("rev", "0508"),
        ],
    );
    let mut vpd = vec![0x00, 0x80, 0x00, 0x0c];
    vpd.extend_from_slice(b"  DD56419883");
    std::fs::write(scsi.join("vpd_pg80"), vpd).unwrap();
    let sdb = t.block(
        "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
        (8, 16),
        976_773_168,
        &[
            ("queue/logical_block_size", "512"),
            ("queue/physical_block_size", "512"),
            ("queue/rotational", "1"),
            ("removable", "0"),
        ],
    );
    t.link(&sdb.join("device"), &scsi);
    t.partition(&sdb, "sdb1", 1, (8, 17), 2048, 976_771_072);

    let vda = t.block(
        "pci0000:00/0000:00:02.0/virtio1/block/vda",
        (254, 0),
        20_971_520,
        &[("serial", "QM00001")],
    );
    t.write(&vda, QUEUE_SSD);

    let ata = t
        .root()
        .join("devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0");
    t.write(
        &ata,
        &[
            ("vendor", "ATA     "),
            ("model", "WDC WD40EFRX-68N"),
            ("rev", "0A82"),
            ("wwid", "naa.50014ee2b5d0c1a2"),
        ],
    );
    let sdc = t.block(
        "pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sdc",
        (8, 32),
        7_814_037_168,
        &[
            ("queue/logical_block_size", "512"),
            ("queue/physical_block_size", "4096"),
            ("queue/rotational", "1"),
        ],
    );
    t.link(&sdc.join("device"), &ata);
    let sdc1 = t.partition(&sdc, "sdc1", 1, (8, 33), 2048, 7_814_035_087);
    let dm = t.block(
        "virtual/block/dm-0",
        (253, 0),
        7_814_035_087,
        &[("dm/uuid", "LVM-k3PzVx0abc"), ("dm/name", "vg-data")],
    );
    t.hold(&sdc1, &dm);

    t.block(
        "virtual/block/loop0",
        (7, 0),
        2048,
        &[("loop/backing_file", "/srv/evidence.img")],
    );
    t
}

const MOUNTS: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw
28 27 259:1 / /boot/efi rw,relatime - vfat /dev/nvme0n1p1 rw
40 27 8:17 / /media/ev rw,nosuid - ext4 /dev/sdb1 rw
41 27 253:0 / /data ro,relatime - xfs /dev/mapper/vg-data ro
";

#[test]
fn lists_disks_with_identity_transport_and_sizes() {
    let t = machine();
    let table = MountTable::parse(MOUNTS);
    let devices = list(&t.sysfs(), &table, false);
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["dm-0", "nvme0n1", "sdb", "sdc", "vda"],
        "loop0 only with --all"
    );

    let nvme = &devices[1];
    assert_eq!(nvme.transport, Transport::Nvme);
    assert_eq!(nvme.path, "/dev/nvme0n1");
    assert_eq!(nvme.device_number, "259:0");
    assert_eq!(nvme.size_bytes, 2_000_409_264 * 512);
    assert_eq!(nvme.size_sectors, 2_000_409_264);
    assert_eq!(
        (nvme.logical_sector_size, nvme.physical_sector_size),
        (512, 4096)
    );
    assert_eq!(nvme.model.as_deref(), Some("Samsung SSD 980 PRO 1TB"));
    assert_eq!(nvme.serial.as_deref(), Some("S5GXNF0R123456A"));
    assert_eq!(nvme.firmware.as_deref(), Some("5B2QGXA7"));
    assert_eq!(nvme.wwid.as_deref(), Some("eui.002538b911b2c3d4"));
    assert_eq!(
        (nvme.rotational, nvme.removable, nvme.read_only),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(nvme.partitions.len(), 2);
    let p2 = &nvme.partitions[1];
    assert_eq!(
        (p2.name.as_str(), p2.number, p2.start_512),
        ("nvme0n1p2", Some(2), Some(1_050_624))
    );
    assert_eq!(p2.usage.mounts[0].mount_point, Path::new("/"));
    assert!(p2.usage.system_root && !nvme.partitions[0].usage.system_root);
    assert!(nvme.holds_system_root());

    // A SATA disk behind a USB bridge is attached by USB; its serial from VPD page 0x80.
    let sdb = &devices[2];
    assert_eq!(sdb.transport, Transport::Usb);
    assert_eq!(sdb.vendor.as_deref(), Some("JMicron"));
    assert_eq!(sdb.model.as_deref(), Some("Generic"));
    assert_eq!(sdb.serial.as_deref(), Some("DD56419883"));
    assert_eq!(sdb.firmware.as_deref(), Some("0508"));
    assert_eq!(sdb.rotational, Some(true));
    let sdb1 = &sdb.partitions[0];
    assert_eq!(sdb1.usage.mounts[0].mount_point, Path::new("/media/ev"));
    assert!(!sdb1.usage.mounts[0].read_only);
    assert!(!sdb.holds_system_root());

    let sdc = &devices[3];
    assert_eq!(sdc.transport, Transport::Sata);
    assert_eq!(sdc.wwid.as_deref(), Some("naa.50014ee2b5d0c1a2"));
    let holder = &sdc.partitions[0].usage.holders[0];
    assert_eq!(
        (holder.name.as_str(), holder.kind.as_str()),
        ("dm-0", "lvm")
    );
    assert_eq!(holder.mapped_name.as_deref(), Some("vg-data"));
    assert_eq!(holder.mounts[0].mount_point, Path::new("/data"));
    assert_eq!(devices[0].transport, Transport::Dm);

    let vda = &devices[4];
    assert_eq!(vda.transport, Transport::Virtio);
    assert_eq!(vda.serial.as_deref(), Some("QM00001"));

    let all = list(&t.sysfs(), &table, true);
    let lo = all.iter().find(|d| d.name == "loop0").unwrap();
    assert_eq!(lo.transport, Transport::Loop);
    assert_eq!(lo.loop_backing_file.as_deref(), Some("/srv/evidence.img"));
    assert_eq!(lo.size_bytes, 2048 * 512);
}

#[test]
fn the_root_is_found_below_a_holder() {
    let t = machine();
    let table = MountTable::parse("27 1 253:0 / / rw,relatime - xfs /dev/mapper/vg-data rw\n");
    let devices = list(&t.sysfs(), &table, false);
    let holds: Vec<&str> = devices
        .iter()
        .filter(|d| d.holds_system_root())
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(holds, ["dm-0", "sdc"]);
}

#[test]
fn a_live_device_is_told_apart_from_one_mounted_read_only() {
    let t = machine();
    let sysfs = t.sysfs();
    let table = MountTable::parse(MOUNTS);
    // The whole disk: its partition is mounted read-write.
    let live = LiveUse::of(&sysfs, &table, dev(8, 16)).unwrap();
    assert!(live.writable());
    assert_eq!(
        live.describe(),
        "sdb1 is mounted read-write at /media/ev (ext4)"
    );
    // The partition itself, too.
    assert!(LiveUse::of(&sysfs, &table, dev(8, 17)).unwrap().writable());
    // A holder is live, whatever is mounted on it.
    let held = LiveUse::of(&sysfs, &table, dev(8, 32)).unwrap();
    assert!(held.writable());
    assert_eq!(held.describe(), "sdc1 is held by dm-0 (lvm)");
    // The volume itself is mounted read-only: not written, so allowed (and warned).
    let ro = LiveUse::of(&sysfs, &table, dev(253, 0)).unwrap();
    assert!(!ro.writable());
    assert!(
        ro.describe().contains("read-only at /data (xfs)"),
        "{}",
        ro.describe()
    );
    // Nothing uses these.
    assert_eq!(LiveUse::of(&sysfs, &table, dev(254, 0)), None);
    assert_eq!(LiveUse::of(&sysfs, &table, dev(7, 0)), None);
    // A device sysfs does not know is still checked against the mounts.
    let unknown = MountTable::parse("50 27 9:9 / /x rw - ext4 /dev/odd rw\n");
    assert!(LiveUse::of(&sysfs, &unknown, dev(9, 9)).unwrap().writable());
}

#[test]
fn partitions_and_stacking_resolve_through_the_tree() {
    let t = machine();
    let s = t.sysfs();
    assert_eq!(s.name(dev(8, 33)), "sdc1");
    assert_eq!(s.name(dev(99, 1)), "99:1");
    assert_eq!(s.disk_of(dev(8, 33)), (dev(8, 32), Some(dev(8, 33))));
    assert!(s.overlap(dev(8, 32), dev(8, 33)));
    assert!(!s.overlap(dev(8, 33), dev(8, 16)));
    assert_eq!(s.expand(&[dev(253, 0)]), vec![dev(8, 33), dev(253, 0)]);
    let id = s.identity(dev(8, 17));
    assert_eq!(id.parent_disk.as_deref(), Some("sdb"));
    assert_eq!(id.partition_start_sector, Some(2048));
    assert_eq!(id.transport, Some(Transport::Usb));
    assert_eq!(id.serial.as_deref(), Some("DD56419883"));
}

#[test]
fn an_oversized_attribute_is_not_read() {
    let t = machine();
    let node = t
        .root()
        .join("devices/pci0000:00/0000:00:02.0/virtio1/block/vda");
    std::fs::write(node.join("serial"), vec![b'x'; 1 << 20]).unwrap();
    let devices = list(&t.sysfs(), &MountTable::default(), false);
    let vda = devices.iter().find(|d| d.name == "vda").unwrap();
    assert_eq!(vda.serial, None);
}

#[test]
fn the_transport_is_the_outermost_bus_on_the_path() {
    let t = Tree::new();
    let cases = [
        ("pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", Transport::Sata),
        (
            "pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host3/target3:0:0/3:0:0:0/block/sdd",
            Transport::Usb,
        ),
        (
            "pci0000:00/0000:00:01.0/0000:01:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sde",
            Transport::Sas,
        ),
        ("pci0000:00/0000:00:1a.0/mmc_host/mmc0/mmc0:0001/block/mmcblk0", Transport::Mmc),
        ("platform/host7/session1/target7:0:0/7:0:0:0/block/sdf", Transport::Scsi),
        ("pci0000:00/0000:00:04.0/virtio2/host1/target1:0:0/1:0:0:1/block/sdg", Transport::Virtio),
        ("virtual/nvme-fabrics/ctl/nvme1/nvme1n1", Transport::Nvme),
        ("virtual/block/md127", Transport::Md),
        ("virtual/block/zram0", Transport::Zram),
        ("virtual/block/ram3", Transport::Ram),
        ("virtual/block/nbd0", Transport::Virtual),
        ("platform/weird/block/xyz", Transport::Unknown),
    ];
    for (i, (rel, want)) in cases.iter().enumerate() {
        let node = t.block(rel, (240, i as u32), 8, &[]);
        assert_eq!(Transport::of(&t.sysfs(), &node), *want, "{rel}");
    }
}
