//! The drive itself asked who it is and whether it hides sectors from the operating system:
//! for ATA (also behind SAT bridges) IDENTIFY DEVICE, READ NATIVE MAX ADDRESS (EXT) (GET
//! NATIVE MAX ADDRESS EXT on ACS-3 drives) and DEVICE CONFIGURATION IDENTIFY give the current, native and DCO maximum sectors, so a Host
//! Protected Area or a Device Configuration Overlay is named with the sectors it hides; for
//! NVMe the Identify Controller and Namespace data. Only read-only commands exist here
//! ([`AtaCommand`], [`NvmeIdentify`]).
//!
//! The commands go through a small trait ([`AtaPort`], [`NvmePort`]) so that tests feed the
//! parsers and the verdict buffers built to the standards; the real ports are SG_IO and the
//! NVMe admin ioctl (`sys.rs`).

use std::fs::File;

use serde::{Deserialize, Serialize};

use super::ata::{
    errno_error, interpret, AtaCommand, AtaRegisters, CommandError, DcoIdentify, Identify, DATA_LEN,
};
use super::identity::Transport;
use super::nvme::{NvmeController, NvmeIdentify, NvmeNamespace};

/// The longest a drive may take to answer one command.
const TIMEOUT_MS: u32 = 15_000;

/// Sends read-only ATA commands to a drive.
pub trait AtaPort {
    /// Runs `cmd` with `data` (exactly [`AtaCommand::data_len`] bytes) for its answer; the
    /// answer registers when the transport returned them.
    fn run(
        &mut self,
        cmd: AtaCommand,
        data: &mut [u8],
    ) -> Result<Option<AtaRegisters>, CommandError>;
}

/// Sends the NVMe Identify commands to a drive.
pub trait NvmePort {
    /// The namespace this device node is.
    fn namespace_id(&mut self) -> Result<u32, String>;
    /// Identify into `data`.
    fn identify(
        &mut self,
        what: NvmeIdentify,
        data: &mut [u8; super::nvme::DATA_LEN],
    ) -> Result<(), String>;
}

/// Overall: does the drive hide sectors?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HiddenState {
    /// The drive answered, and nothing is hidden.
    None,
    /// An HPA or a DCO hides sectors.
    Hidden,
    /// Could not be told (see the reasons).
    Unknown,
}

/// One of the two ways to hide sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AreaState {
    /// None there.
    None,
    /// There, hiding `hidden_sectors`.
    Present,
    /// Could not be told.
    Unknown,
    /// The drive has no such thing (NVMe).
    NotApplicable,
}

/// What is known about an HPA or a DCO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaVerdict {
    /// none, present, unknown, not-applicable.
    pub state: AreaState,
    /// Sectors it hides (present only).
    pub hidden_sectors: Option<u64>,
    /// Why it is unknown, or why there can be none.
    pub reason: Option<String>,
}

impl AreaVerdict {
    fn none(reason: Option<&str>) -> Self {
        AreaVerdict {
            state: AreaState::None,
            hidden_sectors: None,
            reason: reason.map(str::to_string),
        }
    }
    fn unknown(reason: String) -> Self {
        AreaVerdict {
            state: AreaState::Unknown,
            hidden_sectors: None,
            reason: Some(reason),
        }
    }
    fn compare(larger: u64, smaller: u64, what: &str) -> Self {
        match larger.checked_sub(smaller) {
            Some(0) => AreaVerdict::none(None),
            Some(n) => AreaVerdict {
                state: AreaState::Present,
                hidden_sectors: Some(n),
                reason: None,
            },
            None => AreaVerdict::unknown(format!(
                "the drive's answers disagree: {what} ({larger} sectors, {smaller} expected at least)"
            )),
        }
    }
}

/// The verdict on hidden sectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenAreas {
    /// none, hidden, unknown.
    pub state: HiddenState,
    /// In words: `HPA present: N sectors hidden`, `DCO present: N sectors hidden`, `none`,
    /// `unknown (why: …)`.
    pub summary: String,
    /// The Host Protected Area.
    pub hpa: AreaVerdict,
    /// The Device Configuration Overlay.
    pub dco: AreaVerdict,
}

impl HiddenAreas {
    fn from(hpa: AreaVerdict, dco: AreaVerdict) -> Self {
        use AreaState::*;
        let state = if hpa.state == Present || dco.state == Present {
            HiddenState::Hidden
        } else if hpa.state == Unknown || dco.state == Unknown {
            HiddenState::Unknown
        } else {
            HiddenState::None
        };
        let summary = if hpa.state == Unknown && dco.state == Unknown && hpa.reason == dco.reason {
            format!("unknown (why: {})", hpa.reason.as_deref().unwrap_or("?"))
        } else {
            let mut parts = Vec::new();
            for (name, v) in [("HPA", &hpa), ("DCO", &dco)] {
                match v.state {
                    Present => parts.push(format!(
                        "{name} present: {} sectors hidden",
                        v.hidden_sectors.unwrap_or(0)
                    )),
                    Unknown => parts.push(format!(
                        "{name} unknown (why: {})",
                        v.reason.as_deref().unwrap_or("?")
                    )),
                    None | NotApplicable => {}
                }
            }
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join("; ")
            }
        };
        HiddenAreas {
            state,
            summary,
            hpa,
            dco,
        }
    }

    fn unknown(reason: String) -> Self {
        HiddenAreas::from(
            AreaVerdict::unknown(reason.clone()),
            AreaVerdict::unknown(reason),
        )
    }
}

/// What NVMe Identify said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeDrive {
    /// Identify Controller.
    pub controller: NvmeController,
    /// Identify Namespace of this device's namespace.
    pub namespace: NvmeNamespace,
    /// The raw Identify Controller data, hex.
    pub identify_controller_hex: String,
    /// The raw Identify Namespace data, hex.
    pub identify_namespace_hex: String,
}

/// What the drive said about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveReport {
    /// The device node asked (for a partition: its disk).
    pub device: String,
    /// `ata` or `nvme`: what answered; absent when nothing did.
    pub protocol: Option<String>,
    /// Model, as the drive (not a bridge) reports it.
    pub model: Option<String>,
    /// Serial number, from the drive.
    pub serial: Option<String>,
    /// Firmware revision, from the drive.
    pub firmware: Option<String>,
    /// ATA world wide name (16 hex digits).
    pub wwn: Option<String>,
    /// Logical sector size the drive reports.
    pub logical_sector_size: Option<u32>,
    /// Physical sector size the drive reports.
    pub physical_sector_size: Option<u32>,
    /// The 48-bit address feature set is in use.
    pub lba48: Option<bool>,
    /// HPA feature set supported, enabled; DCO supported (IDENTIFY words 82, 85, 83).
    pub hpa_supported: Option<bool>,
    /// HPA feature set enabled.
    pub hpa_enabled: Option<bool>,
    /// DCO feature set supported.
    pub dco_supported: Option<bool>,
    /// Sectors the drive now shows (IDENTIFY).
    pub current_max_sectors: Option<u64>,
    /// Sectors up to the native max address (READ NATIVE MAX ADDRESS): with an HPA, more.
    pub native_max_sectors: Option<u64>,
    /// Sectors up to the DCO maximum (DEVICE CONFIGURATION IDENTIFY): with a DCO, more.
    pub dco_max_sectors: Option<u64>,
    /// The verdict.
    pub hidden: HiddenAreas,
    /// The raw IDENTIFY DEVICE data (512 bytes), hex, as received.
    pub identify_hex: Option<String>,
    /// The raw DEVICE CONFIGURATION IDENTIFY data, hex, as received.
    pub dco_identify_hex: Option<String>,
    /// NVMe Identify data.
    pub nvme: Option<NvmeDrive>,
}

impl DriveReport {
    fn unknown(device: &str, reason: String) -> Self {
        DriveReport {
            device: device.to_string(),
            protocol: None,
            model: None,
            serial: None,
            firmware: None,
            wwn: None,
            logical_sector_size: None,
            physical_sector_size: None,
            lba48: None,
            hpa_supported: None,
            hpa_enabled: None,
            dco_supported: None,
            current_max_sectors: None,
            native_max_sectors: None,
            dco_max_sectors: None,
            hidden: HiddenAreas::unknown(reason),
            identify_hex: None,
            dco_identify_hex: None,
            nvme: None,
        }
    }

    /// The sectors an HPA or a DCO hides, when any: what a warning says.
    pub fn hidden_warning(&self) -> Option<String> {
        (self.hidden.state == HiddenState::Hidden).then(|| {
            format!(
                "{}: {}; the kernel shows only the drive's current size, so an image misses \
                 those sectors",
                self.device, self.hidden.summary
            )
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Asks an ATA drive, through `port`, who it is and what it hides.
pub fn probe_ata(port: &mut dyn AtaPort, device: &str) -> DriveReport {
    let mut data = [0u8; DATA_LEN];
    if let Err(e) = port.run(AtaCommand::IdentifyDevice, &mut data) {
        return DriveReport::unknown(device, e.reason());
    }
    let mut r = DriveReport::unknown(device, String::new());
    r.identify_hex = Some(hex(&data));
    let id = match Identify::parse(&data) {
        Ok(id) => id,
        Err(why) => {
            r.hidden = HiddenAreas::unknown(why);
            return r;
        }
    };
    r.protocol = Some("ata".into());
    let current = id.current_sectors();
    r.model = id.model.clone();
    r.serial = id.serial.clone();
    r.firmware = id.firmware.clone();
    r.wwn = id.wwn.clone();
    r.logical_sector_size = Some(id.logical_sector_size);
    r.physical_sector_size = Some(id.physical_sector_size);
    r.lba48 = Some(id.lba48());
    r.hpa_supported = Some(id.hpa_supported);
    r.hpa_enabled = Some(id.hpa_enabled);
    r.dco_supported = Some(id.dco_supported);
    r.current_max_sectors = Some(current);

    let hpa = match id.native_max_command() {
        None => {
            r.native_max_sectors = Some(current);
            AreaVerdict::none(Some(
                "the drive supports neither the HPA nor the Accessible Max Address feature set",
            ))
        }
        Some(cmd) => match port.run(cmd, &mut []) {
            Ok(Some(regs)) if cmd != AtaCommand::ReadNativeMaxAddress && !regs.lba_complete => {
                AreaVerdict::unknown(format!(
                    "the bridge returned only 24 bits of the {} answer",
                    cmd.name()
                ))
            }
            Ok(Some(regs)) => {
                let lba = if cmd == AtaCommand::ReadNativeMaxAddress {
                    regs.lba28()
                } else {
                    regs.lba
                };
                let native = lba + 1;
                r.native_max_sectors = Some(native);
                AreaVerdict::compare(native, current, "native max address below the current one")
            }
            Ok(None) => AreaVerdict::unknown(format!(
                "the bridge does not pass the command's answer: no ATA registers came back for {}",
                cmd.name()
            )),
            Err(e) => AreaVerdict::unknown(e.reason()),
        },
    };

    let dco = if !id.dco_supported {
        r.dco_max_sectors = r.native_max_sectors;
        AreaVerdict::none(Some("the drive does not support the DCO feature set"))
    } else {
        let mut d = [0u8; DATA_LEN];
        match port.run(AtaCommand::DcoIdentify, &mut d) {
            Err(e) => AreaVerdict::unknown(e.reason()),
            Ok(_) => {
                r.dco_identify_hex = Some(hex(&d));
                match DcoIdentify::parse(&d) {
                    Err(why) => AreaVerdict::unknown(why),
                    Ok(dco) => {
                        r.dco_max_sectors = Some(dco.max_sectors);
                        match r.native_max_sectors {
                            Some(native) => AreaVerdict::compare(
                                dco.max_sectors,
                                native,
                                "DCO maximum below the native max address",
                            ),
                            None => AreaVerdict::unknown(
                                "the native max address, which a DCO is measured against, is unknown"
                                    .into(),
                            ),
                        }
                    }
                }
            }
        }
    };
    r.hidden = HiddenAreas::from(hpa, dco);
    r
}

/// Asks an NVMe drive, through `port`, who it is (NVMe has no HPA or DCO).
pub fn probe_nvme(port: &mut dyn NvmePort, device: &str) -> DriveReport {
    let unknown = |why: String| DriveReport::unknown(device, format!("NVMe: {why}"));
    let nsid = match port.namespace_id() {
        Ok(n) => n,
        Err(e) => return unknown(e),
    };
    let mut c = [0u8; super::nvme::DATA_LEN];
    if let Err(e) = port.identify(NvmeIdentify::Controller, &mut c) {
        return unknown(e);
    }
    let mut n = [0u8; super::nvme::DATA_LEN];
    if let Err(e) = port.identify(NvmeIdentify::Namespace(nsid), &mut n) {
        return unknown(e);
    }
    let controller = NvmeController::parse(&c);
    let namespace = match NvmeNamespace::parse(nsid, &n) {
        Ok(ns) => ns,
        Err(e) => return unknown(e),
    };
    let mut r = DriveReport::unknown(device, String::new());
    let na = || AreaVerdict {
        state: AreaState::NotApplicable,
        hidden_sectors: None,
        reason: Some("NVMe has no HPA or DCO".into()),
    };
    r.hidden = HiddenAreas::from(na(), na());
    if let Some(free) = controller.unallocated_capacity_bytes.filter(|&b| b > 0) {
        r.hidden.summary = format!(
            "none (NVMe has no HPA or DCO; {free} bytes of the drive's capacity are in no namespace)"
        );
    }
    r.protocol = Some("nvme".into());
    r.model = controller.model.clone();
    r.serial = controller.serial.clone();
    r.firmware = controller.firmware.clone();
    r.logical_sector_size = Some(namespace.lba_size);
    r.current_max_sectors = Some(namespace.size_blocks);
    r.nvme = Some(NvmeDrive {
        controller,
        namespace,
        identify_controller_hex: hex(&c),
        identify_namespace_hex: hex(&n),
    });
    r
}

/// ATA commands through SG_IO (ATA PASS-THROUGH(16)).
struct SgPort<'a>(&'a File);

impl AtaPort for SgPort<'_> {
    fn run(
        &mut self,
        cmd: AtaCommand,
        data: &mut [u8],
    ) -> Result<Option<AtaRegisters>, CommandError> {
        let out = crate::sys::sg_io_ata(self.0, &cmd.cdb(), data, TIMEOUT_MS)
            .map_err(|e| errno_error(cmd, &e))?;
        interpret(cmd, &out)
    }
}

/// NVMe Identify through the admin ioctl.
struct AdminPort<'a>(&'a File);

impl NvmePort for AdminPort<'_> {
    fn namespace_id(&mut self) -> Result<u32, String> {
        crate::sys::nvme_namespace_id(self.0).map_err(|e| format!("NVME_IOCTL_ID: {e}"))
    }
    fn identify(
        &mut self,
        what: NvmeIdentify,
        data: &mut [u8; super::nvme::DATA_LEN],
    ) -> Result<(), String> {
        let name = match what {
            NvmeIdentify::Controller => "Identify Controller",
            NvmeIdentify::Namespace(_) => "Identify Namespace",
        };
        match crate::sys::nvme_identify(self.0, what, data, TIMEOUT_MS) {
            Ok(0) => Ok(()),
            Ok(status) => Err(format!("{name}: the drive answered status {status:#x}")),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => Err(format!(
                "permission: {name} through the admin ioctl needs root: {e}"
            )),
            Err(e) => Err(format!("{name} (NVME_IOCTL_ADMIN_CMD): {e}")),
        }
    }
}

/// Asks the drive behind `file` (a whole disk's device node, opened read-only) through the
/// path its transport has: the NVMe admin ioctl for NVMe, SG_IO for everything else (a device
/// without SCSI pass-through, such as a loop or virtio-blk disk, answers "unknown" with why).
pub fn probe(file: &File, device: &str, transport: Transport) -> DriveReport {
    match transport {
        Transport::Nvme => probe_nvme(&mut AdminPort(file), device),
        _ => probe_ata(&mut SgPort(file), device),
    }
}

/// What the drive under `path` says, when `path` is a block device (for a partition, its
/// disk is asked); `None` for anything else.
pub fn probe_path(path: &std::path::Path) -> Option<DriveReport> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let sysfs = super::Sysfs::system();
    let disk = sysfs.disk_of(meta.rdev()).0;
    let transport = sysfs.identity(disk).transport.unwrap_or(Transport::Unknown);
    let node = super::list::dev_path(&sysfs.name(disk));
    Some(probe_node(std::path::Path::new(&node), disk, transport))
}

/// [`probe`] of the whole disk at `path`, opened read-only here, which must be the block
/// device `rdev` (a node that names another device is not asked).
pub fn probe_node(path: &std::path::Path, rdev: u64, transport: Transport) -> DriveReport {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let device = path.to_string_lossy();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return DriveReport::unknown(&device, format!("permission: opening {device}: {e}"))
        }
        Err(e) => return DriveReport::unknown(&device, format!("opening {device}: {e}")),
    };
    match file.metadata() {
        Ok(m) if m.file_type().is_block_device() && m.rdev() == rdev => {
            probe(&file, &device, transport)
        }
        _ => DriveReport::unknown(
            &device,
            format!("{device} is not the device sysfs names; not asked"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ata::tests::{disk, Words};
    use super::*;

    /// A drive made of buffers: IDENTIFY, the native max address, DCO IDENTIFY.
    struct FakeAta {
        identify: Result<[u8; DATA_LEN], CommandError>,
        native_lba: Result<Option<AtaRegisters>, CommandError>,
        dco: Result<[u8; DATA_LEN], CommandError>,
        sent: Vec<AtaCommand>,
    }

    impl AtaPort for FakeAta {
        fn run(
            &mut self,
            cmd: AtaCommand,
            data: &mut [u8],
        ) -> Result<Option<AtaRegisters>, CommandError> {
            assert_eq!(data.len(), cmd.data_len());
            self.sent.push(cmd);
            match cmd {
                AtaCommand::IdentifyDevice => data.copy_from_slice(&self.identify.clone()?),
                AtaCommand::DcoIdentify => data.copy_from_slice(&self.dco.clone()?),
                _ => return self.native_lba.clone(),
            }
            Ok(None)
        }
    }

    fn regs(lba: u64) -> Result<Option<AtaRegisters>, CommandError> {
        Ok(Some(AtaRegisters {
            status: 0x50,
            lba,
            lba_complete: true,
            ..AtaRegisters::default()
        }))
    }

    fn dco(max_sectors: u64) -> [u8; DATA_LEN] {
        let mut w = Words::new();
        w.set(0, 2).u64_at(3, 4, max_sectors - 1);
        w.bytes()
    }

    fn fake(identify: [u8; DATA_LEN], native: u64, dco_max: u64) -> FakeAta {
        FakeAta {
            identify: Ok(identify),
            native_lba: regs(native - 1),
            dco: Ok(dco(dco_max)),
            sent: Vec::new(),
        }
    }

    #[test]
    fn no_hpa_no_dco() {
        let mut f = fake(disk(1_000_000, true, true).bytes(), 1_000_000, 1_000_000);
        let r = probe_ata(&mut f, "/dev/sdb");
        assert_eq!(r.hidden.state, HiddenState::None);
        assert_eq!(r.hidden.summary, "none");
        assert_eq!(
            (
                r.current_max_sectors,
                r.native_max_sectors,
                r.dco_max_sectors
            ),
            (Some(1_000_000), Some(1_000_000), Some(1_000_000))
        );
        assert_eq!(r.identify_hex.as_deref().map(str::len), Some(1024));
        assert_eq!(r.serial.as_deref(), Some("WD-WCC4N1234567"));
        assert_eq!(
            f.sent,
            [
                AtaCommand::IdentifyDevice,
                AtaCommand::ReadNativeMaxAddressExt,
                AtaCommand::DcoIdentify
            ]
        );
    }

    #[test]
    fn an_hpa_and_a_dco_are_named_with_the_sectors_they_hide() {
        let mut f = fake(disk(1_000_000, true, true).bytes(), 1_000_800, 1_000_800);
        let r = probe_ata(&mut f, "/dev/sdb");
        assert_eq!(r.hidden.state, HiddenState::Hidden);
        assert_eq!(r.hidden.summary, "HPA present: 800 sectors hidden");
        assert!(r.hidden_warning().unwrap().contains("800 sectors hidden"));

        let mut f = fake(disk(1_000_000, true, true).bytes(), 1_000_000, 1_200_000);
        let r = probe_ata(&mut f, "/dev/sdb");
        assert_eq!(r.hidden.summary, "DCO present: 200000 sectors hidden");
        assert_eq!(r.hidden.dco.hidden_sectors, Some(200_000));

        let mut f = fake(disk(1_000_000, true, true).bytes(), 1_000_100, 1_200_000);
        let r = probe_ata(&mut f, "/dev/sdb");
        assert_eq!(
            r.hidden.summary,
            "HPA present: 100 sectors hidden; DCO present: 199900 sectors hidden"
        );
    }

    #[test]
    fn lba28_only_drives_use_the_28_bit_command() {
        let mut w = disk(0, true, false);
        // No 48-bit feature set: words 83 bit 10 clear, words 100-103 zero.
        w.set(83, 0x4000)
            .u64_at(60, 2, 0x0fff_0000)
            .u64_at(100, 4, 0);
        let mut f = FakeAta {
            identify: Ok(w.bytes()),
            // LBA 0x0fff_ffff: 24 bits in the LBA registers, 4 in the device register.
            native_lba: Ok(Some(AtaRegisters {
                device: 0x4f,
                lba: 0xff_ffff,
                lba_complete: true,
                status: 0x50,
                ..AtaRegisters::default()
            })),
            dco: Err(CommandError::Failed("never asked".into())),
            sent: Vec::new(),
        };
        let r = probe_ata(&mut f, "/dev/sdc");
        assert_eq!(f.sent[1], AtaCommand::ReadNativeMaxAddress);
        assert_eq!(r.lba48, Some(false));
        assert_eq!(r.hidden.hpa.hidden_sectors, Some(0x1000_0000 - 0x0fff_0000));
        assert_eq!(r.hidden.dco.state, AreaState::None);
    }

    #[test]
    fn acs3_drives_are_asked_with_get_native_max_address() {
        // Accessible Max Address (word 80 bit 10: ACS-3; word 119 bit 8), no HPA bit.
        let mut w = disk(1_000_000, false, false);
        w.set(80, 1 << 10).set(119, 0x4000 | (1 << 8));
        let mut f = fake(w.bytes(), 1_000_016, 1_000_016);
        let r = probe_ata(&mut f, "/dev/sdd");
        assert_eq!(f.sent[1], AtaCommand::GetNativeMaxAddressExt);
        assert_eq!(r.hidden.summary, "HPA present: 16 sectors hidden");
    }

    #[test]
    fn what_cannot_be_told_is_unknown_with_why() {
        let mut f = fake(disk(1000, true, true).bytes(), 1000, 1000);
        f.identify = Err(CommandError::NoPassThrough(
            "its driver does not take SCSI commands".into(),
        ));
        let r = probe_ata(&mut f, "/dev/loop0");
        assert_eq!(r.hidden.state, HiddenState::Unknown);
        assert_eq!(
            r.hidden.summary,
            "unknown (why: not an ATA device: its driver does not take SCSI commands)"
        );
        assert_eq!(f.sent, [AtaCommand::IdentifyDevice]);

        let mut bad = disk(1000, true, true).bytes();
        bad[100] ^= 0x40;
        let mut f = fake(bad, 1000, 1000);
        let r = probe_ata(&mut f, "/dev/sdb");
        assert_eq!(r.hidden.state, HiddenState::Unknown);
        assert!(
            r.hidden.summary.contains("checksum"),
            "{}",
            r.hidden.summary
        );
        assert_eq!(r.protocol, None);
        assert!(
            r.identify_hex.is_some(),
            "the raw data is kept even when refused"
        );

        // The bridge passes IDENTIFY but returns no registers; the drive aborts DCO IDENTIFY.
        let mut f = fake(disk(1000, true, true).bytes(), 1000, 1000);
        f.native_lba = Ok(None);
        f.dco = Err(CommandError::Aborted(
            "the drive aborted DEVICE CONFIGURATION IDENTIFY".into(),
        ));
        let r = probe_ata(&mut f, "/dev/sdb");
        assert_eq!(r.hidden.state, HiddenState::Unknown);
        assert!(r
            .hidden
            .summary
            .starts_with("HPA unknown (why: the bridge does not pass"));
        assert!(r
            .hidden
            .summary
            .contains("DCO unknown (why: the drive aborted"));
    }

    struct FakeNvme;

    impl NvmePort for FakeNvme {
        fn namespace_id(&mut self) -> Result<u32, String> {
            Ok(1)
        }
        fn identify(
            &mut self,
            what: NvmeIdentify,
            data: &mut [u8; super::super::nvme::DATA_LEN],
        ) -> Result<(), String> {
            use super::super::nvme::tests::{controller, namespace};
            *data = match what {
                NvmeIdentify::Controller => controller(),
                NvmeIdentify::Namespace(1) => namespace(976_773_168, 9),
                NvmeIdentify::Namespace(n) => return Err(format!("no namespace {n}")),
            };
            Ok(())
        }
    }

    #[test]
    fn nvme_identity() {
        let r = probe_nvme(&mut FakeNvme, "/dev/nvme0n1");
        assert_eq!(r.protocol.as_deref(), Some("nvme"));
        assert_eq!(r.serial.as_deref(), Some("S4EWNX0R123456"));
        assert_eq!(r.current_max_sectors, Some(976_773_168));
        assert_eq!(r.logical_sector_size, Some(512));
        assert_eq!(r.hidden.state, HiddenState::None);
        assert_eq!(r.hidden.hpa.state, AreaState::NotApplicable);
        assert_eq!(r.nvme.unwrap().identify_namespace_hex.len(), 8192);
    }
}
