//! ATA drives asked about themselves, read-only: the commands exhibit may send (only those
//! that change nothing: IDENTIFY DEVICE, READ NATIVE MAX ADDRESS (EXT), DEVICE CONFIGURATION
//! IDENTIFY), their ATA PASS-THROUGH(16) command blocks, what the answer registers say, and
//! the parsers of the IDENTIFY DEVICE and DCO IDENTIFY data (ACS-3, ATA8-ACS).
//!
//! On ACS-3 drives with the Accessible Max Address feature set, the native max address is
//! read with GET NATIVE MAX ADDRESS EXT (78h with feature 0000h; 78h with any other feature
//! sets or freezes it, so the feature is fixed here).
//!
//! A write or a SET command cannot be built: [`AtaCommand`] names only the read-only ones,
//! and [`Cdb`], the only thing `sys::sg_io_ata` sends, comes only from an [`AtaCommand`].

/// The read-only ATA commands exhibit knows. There is no way to name SET MAX ADDRESS, DCO
/// RESTORE, DCO SET, FREEZE LOCK or any other command that changes a drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtaCommand {
    /// IDENTIFY DEVICE (ECh): 512 bytes in.
    IdentifyDevice,
    /// READ NATIVE MAX ADDRESS (F8h, 28-bit): the answer is in the LBA registers.
    ReadNativeMaxAddress,
    /// READ NATIVE MAX ADDRESS EXT (27h, 48-bit): the answer is in the LBA registers.
    ReadNativeMaxAddressExt,
    /// GET NATIVE MAX ADDRESS EXT (78h, feature 0000h; ACS-3 Accessible Max Address): the
    /// answer is in the LBA registers.
    GetNativeMaxAddressExt,
    /// DEVICE CONFIGURATION IDENTIFY (B1h, feature C2h): 512 bytes in.
    DcoIdentify,
}

/// Bytes of data IDENTIFY DEVICE and DCO IDENTIFY return.
pub const DATA_LEN: usize = 512;

impl AtaCommand {
    /// The command's name, as the standard spells it.
    pub fn name(self) -> &'static str {
        match self {
            AtaCommand::IdentifyDevice => "IDENTIFY DEVICE",
            AtaCommand::ReadNativeMaxAddress => "READ NATIVE MAX ADDRESS",
            AtaCommand::ReadNativeMaxAddressExt => "READ NATIVE MAX ADDRESS EXT",
            AtaCommand::GetNativeMaxAddressExt => "GET NATIVE MAX ADDRESS EXT",
            AtaCommand::DcoIdentify => "DEVICE CONFIGURATION IDENTIFY",
        }
    }

    /// Bytes of data the command returns (0: the answer is in the registers).
    pub fn data_len(self) -> usize {
        match self {
            AtaCommand::IdentifyDevice | AtaCommand::DcoIdentify => DATA_LEN,
            _ => 0,
        }
    }

    /// The ATA PASS-THROUGH(16) command block (SAT-4, 12.2.2).
    pub fn cdb(self) -> Cdb {
        // (command, features, protocol, extend, device)
        let (command, features, protocol, extend, device) = match self {
            AtaCommand::IdentifyDevice => (0xEC, 0x00, PIO_DATA_IN, false, 0x00),
            AtaCommand::DcoIdentify => (0xB1, 0xC2, PIO_DATA_IN, false, 0x00),
            // LBA mode (device bit 6), as the standard asks of both.
            AtaCommand::ReadNativeMaxAddress => (0xF8, 0x00, NON_DATA, false, 0x40),
            AtaCommand::ReadNativeMaxAddressExt => (0x27, 0x00, NON_DATA, true, 0x40),
            AtaCommand::GetNativeMaxAddressExt => (0x78, 0x00, NON_DATA, true, 0x40),
        };
        let mut c = [0u8; 16];
        c[0] = 0x85;
        c[1] = (protocol << 1) | u8::from(extend);
        c[2] = if protocol == PIO_DATA_IN {
            // T_DIR from the device, BYT_BLOK (count in blocks), T_LENGTH in the count field.
            0x08 | 0x04 | 0x02
        } else {
            // CK_COND: return the registers, where the answer is.
            0x20
        };
        c[4] = features;
        c[6] = u8::from(protocol == PIO_DATA_IN);
        c[13] = device;
        c[14] = command;
        Cdb(c)
    }
}

const NON_DATA: u8 = 3;
const PIO_DATA_IN: u8 = 4;

/// An ATA PASS-THROUGH(16) command block for one of the read-only [`AtaCommand`]s; it can be
/// made no other way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cdb([u8; 16]);

impl Cdb {
    /// The 16 bytes.
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// The ATA registers a drive answered with (from the ATA Status Return sense descriptor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtaRegisters {
    /// Error register.
    pub error: u8,
    /// Status register.
    pub status: u8,
    /// Device register.
    pub device: u8,
    /// LBA (48 bits in the descriptor format; 24 of the fixed format, with `lba_complete`
    /// false when the upper bits were not zero).
    pub lba: u64,
    /// The LBA holds every bit the drive returned.
    pub lba_complete: bool,
}

impl AtaRegisters {
    /// The address a READ NATIVE MAX ADDRESS answered with: 28 bits from LBA and device.
    pub fn lba28(&self) -> u64 {
        (u64::from(self.device & 0x0f) << 24) | (self.lba & 0x00ff_ffff)
    }
}

/// SCSI sense: the key, ASC/ASCQ, and the ATA registers when the sense carries them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sense {
    /// Sense key.
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Its qualifier.
    pub ascq: u8,
    /// The ATA registers, if returned.
    pub ata: Option<AtaRegisters>,
}

/// Reads sense data (fixed 70h/71h or descriptor 72h/73h format), bounded by its length.
pub fn parse_sense(s: &[u8]) -> Option<Sense> {
    let code = *s.first()? & 0x7f;
    match code {
        0x72 | 0x73 => {
            let mut sense = Sense {
                key: s.get(1)? & 0x0f,
                asc: *s.get(2)?,
                ascq: *s.get(3)?,
                ata: None,
            };
            let total = (8 + usize::from(*s.get(7)?)).min(s.len());
            let mut at = 8;
            while at + 2 <= total {
                let (kind, len) = (s[at], usize::from(s[at + 1]));
                let d = &s[at..total.min(at + 2 + len)];
                if kind == 0x09 && d.len() >= 14 {
                    let b = |i: usize| u64::from(d[i]);
                    sense.ata = Some(AtaRegisters {
                        error: d[3],
                        lba: (b(10) << 40)
                            | (b(8) << 32)
                            | (b(6) << 24)
                            | (b(11) << 16)
                            | (b(9) << 8)
                            | b(7),
                        lba_complete: true,
                        device: d[12],
                        status: d[13],
                    });
                }
                at += 2 + len;
            }
            Some(sense)
        }
        0x70 | 0x71 => {
            let mut sense = Sense {
                key: s.get(2)? & 0x0f,
                asc: *s.get(12).unwrap_or(&0),
                ascq: *s.get(13).unwrap_or(&0),
                ata: None,
            };
            // "ATA PASS-THROUGH INFORMATION AVAILABLE": registers in the information and
            // command-specific fields (SAT-4, 12.2.2.6).
            if sense.asc == 0x00 && sense.ascq == 0x1d && s.len() >= 12 {
                sense.ata = Some(AtaRegisters {
                    error: s[3],
                    status: s[4],
                    device: s[5],
                    lba: (u64::from(s[11]) << 16) | (u64::from(s[10]) << 8) | u64::from(s[9]),
                    // Byte 8 bit 5: the upper LBA bytes were not zero (and are not here).
                    lba_complete: s[8] & 0x20 == 0,
                });
            }
            Some(sense)
        }
        _ => None,
    }
}

/// What one SG_IO call returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SgOutcome {
    /// SCSI status (0 GOOD, 2 CHECK CONDITION).
    pub status: u8,
    /// The host adapter's status (0: fine).
    pub host_status: u16,
    /// The driver's status (0: fine; its sense bit 0x08 alone is fine too).
    pub driver_status: u16,
    /// Bytes asked for but not transferred.
    pub resid: i32,
    /// The sense bytes written.
    pub sense: Vec<u8>,
}

/// Why a command did not give an answer, in the words the record uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The device's driver does not take SCSI commands at all (a loop, virtio-blk, NVMe
    /// device: SG_IO is not there).
    NoPassThrough(String),
    /// Not allowed (needs CAP_SYS_RAWIO: root).
    Permission(String),
    /// The SCSI layer or the bridge refused ATA PASS-THROUGH(16): not an ATA device, or a
    /// bridge that does not pass the command.
    NotPassed(String),
    /// The drive aborted the command (ABRT): it does not support it, or it is frozen.
    Aborted(String),
    /// Anything else (a timeout, a host error, a short answer).
    Failed(String),
}

impl CommandError {
    /// The reason as the report says it.
    pub fn reason(&self) -> String {
        match self {
            CommandError::NoPassThrough(s) => format!("not an ATA device: {s}"),
            CommandError::Permission(s) => format!("permission: {s}"),
            CommandError::NotPassed(s) => {
                format!("not an ATA device, or the bridge does not pass the command: {s}")
            }
            CommandError::Aborted(s) | CommandError::Failed(s) => s.clone(),
        }
    }
}

/// What SG_IO itself failing (errno) means for an ATA command.
pub fn errno_error(cmd: AtaCommand, e: &std::io::Error) -> CommandError {
    match e.raw_os_error() {
        Some(libc::ENOTTY | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
            CommandError::NoPassThrough(format!(
                "its driver does not take SCSI commands (SG_IO: {e})"
            ))
        }
        Some(libc::EPERM | libc::EACCES) => CommandError::Permission(format!(
            "{} through SG_IO needs CAP_SYS_RAWIO (run as root): {e}",
            cmd.name()
        )),
        _ => CommandError::Failed(format!("{}: SG_IO failed: {e}", cmd.name())),
    }
}

/// The answer registers of `cmd` from what SG_IO returned, or why there is no answer.
pub fn interpret(cmd: AtaCommand, out: &SgOutcome) -> Result<Option<AtaRegisters>, CommandError> {
    let name = cmd.name();
    // DRIVER_SENSE (0x08) only says that sense data came back.
    if out.host_status != 0 || (out.driver_status & !0x08) != 0 {
        return Err(CommandError::Failed(format!(
            "{name}: host status {:#x}, driver status {:#x}",
            out.host_status, out.driver_status
        )));
    }
    let sense = parse_sense(&out.sense);
    if let Some(regs) = sense.and_then(|s| s.ata) {
        // ERR (bit 0) with ABRT (bit 2): the drive refused the command.
        if regs.status & 0x01 != 0 {
            return Err(CommandError::Aborted(format!(
                "the drive aborted {name} (status {:#04x}, error {:#04x})",
                regs.status, regs.error
            )));
        }
    }
    match (out.status, sense) {
        (0, _) => {}
        // CK_COND answers with CHECK CONDITION and RECOVERED ERROR (or NO SENSE).
        (2, Some(s)) if s.key <= 1 => {}
        (2, Some(s)) if s.key == 0x05 => {
            return Err(CommandError::NotPassed(format!(
                "ATA PASS-THROUGH(16) for {name} refused (ILLEGAL REQUEST, ASC/ASCQ {:02x}/{:02x})",
                s.asc, s.ascq
            )))
        }
        (2, Some(s)) => {
            return Err(CommandError::Failed(format!(
                "{name}: sense key {:#x}, ASC/ASCQ {:02x}/{:02x}",
                s.key, s.asc, s.ascq
            )))
        }
        (status, _) => {
            return Err(CommandError::Failed(format!(
                "{name}: SCSI status {status:#04x} without usable sense data"
            )))
        }
    }
    if cmd.data_len() > 0 && out.resid != 0 {
        return Err(CommandError::Failed(format!(
            "{name}: {} of {} bytes came back",
            cmd.data_len() as i64 - i64::from(out.resid),
            cmd.data_len()
        )));
    }
    Ok(sense.and_then(|s| s.ata))
}

/// The 16-bit words of 512 bytes of ATA data (little-endian, as the drive sends them).
fn words(data: &[u8; DATA_LEN]) -> [u16; 256] {
    let mut w = [0u16; 256];
    for (i, v) in w.iter_mut().enumerate() {
        *v = u16::from_le_bytes([data[2 * i], data[2 * i + 1]]);
    }
    w
}

/// Checks word 255: signature A5h, and all 512 bytes summing to 0 modulo 256. Data without
/// the signature is not trusted either: nothing then says it arrived whole.
pub fn check_integrity(data: &[u8; DATA_LEN], what: &str) -> Result<(), String> {
    if data[510] != 0xa5 {
        return Err(format!(
            "{what} data has no integrity word (word 255 signature is {:#04x}, not 0xa5); not trusted",
            data[510]
        ));
    }
    let sum = data.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    if sum != 0 {
        return Err(format!(
            "{what} data fails its checksum (word 255: the bytes sum to {sum:#04x}, not 0); not trusted"
        ));
    }
    Ok(())
}

/// An ATA string: bytes swapped in each word, trimmed; `None` when empty.
fn ata_string(w: &[u16]) -> Option<String> {
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_be_bytes()).collect();
    let s = String::from_utf8_lossy(&bytes);
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}

/// Bits 15:14 of a feature word are 01 when the word is valid.
fn valid(w: u16) -> bool {
    w & 0xc000 == 0x4000
}

/// What IDENTIFY DEVICE says, as far as exhibit uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identify {
    /// Model number (words 27-46).
    pub model: Option<String>,
    /// Serial number (words 10-19).
    pub serial: Option<String>,
    /// Firmware revision (words 23-26).
    pub firmware: Option<String>,
    /// World wide name (words 108-111), 16 hex digits.
    pub wwn: Option<String>,
    /// User addressable sectors, 28-bit (words 60-61).
    pub lba28_sectors: u64,
    /// User addressable sectors, 48-bit (words 100-103), when the 48-bit feature set is
    /// supported.
    pub lba48_sectors: Option<u64>,
    /// HPA feature set supported (word 82 bit 10).
    pub hpa_supported: bool,
    /// HPA feature set enabled (word 85 bit 10).
    pub hpa_enabled: bool,
    /// DCO feature set supported (word 83 bit 11).
    pub dco_supported: bool,
    /// ACS-3 Accessible Max Address Configuration supported (word 80 bit 10 and word 119
    /// bit 8): the native max address is read with GET NATIVE MAX ADDRESS EXT.
    pub amax_supported: bool,
    /// The 48-bit address feature set is supported and enabled (words 83 and 86 bit 10).
    pub lba48_enabled: bool,
    /// Logical sector size in bytes (word 106, 117-118).
    pub logical_sector_size: u32,
    /// Physical sector size in bytes (word 106).
    pub physical_sector_size: u32,
}

impl Identify {
    /// Parses IDENTIFY DEVICE data after checking word 255; an ATAPI device (word 0 bit 15)
    /// is refused.
    pub fn parse(data: &[u8; DATA_LEN]) -> Result<Identify, String> {
        check_integrity(data, "IDENTIFY DEVICE")?;
        let w = words(data);
        if w[0] & 0x8000 != 0 {
            return Err("an ATAPI device (IDENTIFY word 0 bit 15), not an ATA disk".into());
        }
        let lba48 = valid(w[83]) && w[83] & (1 << 10) != 0;
        let lba48_sectors = lba48.then(|| {
            (u64::from(w[103]) << 48)
                | (u64::from(w[102]) << 32)
                | (u64::from(w[101]) << 16)
                | u64::from(w[100])
        });
        let (mut logical, mut physical) = (512u32, 512u32);
        if valid(w[106]) {
            if w[106] & (1 << 12) != 0 {
                let words = (u32::from(w[118]) << 16) | u32::from(w[117]);
                // At most 64 KiB: more is not a sector size any drive has.
                if (256..=32768).contains(&words) {
                    logical = words * 2;
                }
            }
            physical = logical;
            if w[106] & (1 << 13) != 0 {
                physical = logical << (w[106] & 0x0f).min(7);
            }
        }
        // Word 84 bit 8 says a WWN is there; word 87 bit 8 repeats it.
        let has_wwn =
            (valid(w[84]) && w[84] & (1 << 8) != 0) || (valid(w[87]) && w[87] & (1 << 8) != 0);
        let wwn = (has_wwn && w[108..112].iter().any(|&v| v != 0))
            .then(|| w[108..112].iter().map(|v| format!("{v:04x}")).collect());
        Ok(Identify {
            model: ata_string(&w[27..47]),
            serial: ata_string(&w[10..20]),
            firmware: ata_string(&w[23..27]),
            wwn,
            lba28_sectors: (u64::from(w[61]) << 16) | u64::from(w[60]),
            lba48_sectors,
            hpa_supported: valid(w[83]) && w[82] & (1 << 10) != 0,
            hpa_enabled: valid(w[87]) && w[85] & (1 << 10) != 0,
            dco_supported: valid(w[83]) && w[83] & (1 << 11) != 0,
            amax_supported: w[80] & (1 << 10) != 0 && valid(w[119]) && w[119] & (1 << 8) != 0,
            lba48_enabled: lba48 && w[86] & (1 << 10) != 0,
            logical_sector_size: logical,
            physical_sector_size: physical,
        })
    }

    /// The sectors the drive now shows (its current max address + 1): the 48-bit count
    /// where it has one, else the 28-bit.
    pub fn current_sectors(&self) -> u64 {
        match self.lba48_sectors {
            Some(n) if n > 0 => n,
            _ => self.lba28_sectors,
        }
    }

    /// Whether the 48-bit address commands are the ones to use.
    pub fn lba48(&self) -> bool {
        self.lba48_enabled && self.lba48_sectors.is_some_and(|n| n > 0)
    }

    /// The command that reads the native max address, if the drive has one.
    pub fn native_max_command(&self) -> Option<AtaCommand> {
        if self.amax_supported {
            Some(AtaCommand::GetNativeMaxAddressExt)
        } else if !self.hpa_supported {
            None
        } else if self.lba48() {
            Some(AtaCommand::ReadNativeMaxAddressExt)
        } else {
            Some(AtaCommand::ReadNativeMaxAddress)
        }
    }
}

/// The DEVICE CONFIGURATION IDENTIFY data: the largest address the drive can be set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DcoIdentify {
    /// Data structure revision (word 0).
    pub revision: u16,
    /// Sectors up to the maximum LBA (words 3-6, plus one).
    pub max_sectors: u64,
}

impl DcoIdentify {
    /// Parses DCO IDENTIFY data after checking word 255.
    pub fn parse(data: &[u8; DATA_LEN]) -> Result<DcoIdentify, String> {
        check_integrity(data, "DEVICE CONFIGURATION IDENTIFY")?;
        let w = words(data);
        let max_lba = (u64::from(w[6]) << 48)
            | (u64::from(w[5]) << 32)
            | (u64::from(w[4]) << 16)
            | u64::from(w[3]);
        if max_lba >= 1 << 48 {
            return Err(format!(
                "DEVICE CONFIGURATION IDENTIFY gives a maximum LBA of {max_lba}, beyond 48 bits"
            ));
        }
        Ok(DcoIdentify {
            revision: w[0],
            max_sectors: max_lba + 1,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// IDENTIFY-shaped data built to the standard: words set, strings byte-swapped, word 255
    /// signed with a correct checksum.
    #[derive(Clone)]
    pub(crate) struct Words(pub [u16; 256]);

    impl Words {
        pub(crate) fn new() -> Words {
            Words([0; 256])
        }
        pub(crate) fn text(&mut self, first: usize, count: usize, s: &str) -> &mut Self {
            let mut b = s.as_bytes().to_vec();
            b.resize(count * 2, b' ');
            for i in 0..count {
                self.0[first + i] = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
            }
            self
        }
        pub(crate) fn set(&mut self, i: usize, v: u16) -> &mut Self {
            self.0[i] = v;
            self
        }
        pub(crate) fn u64_at(&mut self, first: usize, n: usize, v: u64) -> &mut Self {
            for i in 0..n {
                self.0[first + i] = (v >> (16 * i)) as u16;
            }
            self
        }
        /// The 512 bytes, with word 255 signed.
        pub(crate) fn bytes(&self) -> [u8; DATA_LEN] {
            let mut d = [0u8; DATA_LEN];
            for (i, v) in self.0.iter().enumerate() {
                d[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
            }
            d[510] = 0xa5;
            let sum = d[..511].iter().fold(0u8, |a, &b| a.wrapping_add(b));
            d[511] = sum.wrapping_neg();
            d
        }
    }

    /// A SATA disk: `sectors` current (48-bit), HPA and DCO supported as asked.
    pub(crate) fn disk(sectors: u64, hpa: bool, dco: bool) -> Words {
        let mut w = Words::new();
        w.set(0, 0x0040)
            .text(10, 10, "WD-WCC4N1234567")
            .text(23, 4, "82.00A82")
            .text(27, 20, "WDC WD10EZEX-08WN4A0")
            .set(49, 1 << 9)
            .u64_at(60, 2, sectors.min(0x0fff_ffff))
            .set(82, 0x4000 | (u16::from(hpa) << 10))
            .set(83, 0x4000 | (1 << 10) | (u16::from(dco) << 11))
            .set(84, 0x4000)
            .set(85, u16::from(hpa) << 10)
            .set(86, (1 << 10) | (u16::from(dco) << 11))
            .set(87, 0x4000 | (1 << 8))
            .u64_at(100, 4, sectors)
            .set(106, 0x4000)
            // The WWN's most significant word first (NAA 5, then the OUI).
            .set(108, 0x5001)
            .set(109, 0x4ee2)
            .set(110, 0x0abc)
            .set(111, 0xdef1);
        w
    }

    #[test]
    fn read_only_commands_encode_as_the_standard_says() {
        let c = AtaCommand::IdentifyDevice.cdb();
        assert_eq!(
            c.bytes(),
            &[0x85, 0x08, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xec, 0]
        );
        let c = AtaCommand::ReadNativeMaxAddressExt.cdb();
        assert_eq!(
            c.bytes(),
            &[0x85, 0x07, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x27, 0]
        );
        let c = AtaCommand::DcoIdentify.cdb();
        assert_eq!((c.bytes()[4], c.bytes()[14]), (0xc2, 0xb1));
        // The command bytes of SET MAX ADDRESS (F9h, 37h), DCO RESTORE/FREEZE/SET
        // (B1h with C0h, C1h, C3h) and every write: none is ever built.
        for cmd in [
            AtaCommand::IdentifyDevice,
            AtaCommand::ReadNativeMaxAddress,
            AtaCommand::ReadNativeMaxAddressExt,
            AtaCommand::GetNativeMaxAddressExt,
            AtaCommand::DcoIdentify,
        ] {
            let b = cmd.cdb();
            let b = b.bytes();
            assert!(matches!(b[14], 0xec | 0xf8 | 0x27 | 0x78 | 0xb1), "{cmd:?}");
            assert!(b[14] != 0xb1 || b[4] == 0xc2, "{cmd:?}");
            // 78h with feature 0001h/0002h sets or freezes the accessible max address.
            assert!(b[14] != 0x78 || (b[3], b[4]) == (0, 0), "{cmd:?}");
            // No data goes to the drive: T_DIR is "from device" or there is no data.
            assert!(b[2] & 0x08 != 0 || b[2] & 0x03 == 0, "{cmd:?}");
        }
    }

    #[test]
    fn identify_data_is_parsed_and_checked() {
        let id = Identify::parse(&disk(1_953_525_168, true, true).bytes()).unwrap();
        assert_eq!(id.model.as_deref(), Some("WDC WD10EZEX-08WN4A0"));
        assert_eq!(id.serial.as_deref(), Some("WD-WCC4N1234567"));
        assert_eq!(id.firmware.as_deref(), Some("82.00A82"));
        assert_eq!(id.wwn.as_deref(), Some("50014ee20abcdef1"));
        assert_eq!(id.current_sectors(), 1_953_525_168);
        assert!(id.hpa_supported && id.hpa_enabled && id.dco_supported && id.lba48());
        assert_eq!(
            (id.logical_sector_size, id.physical_sector_size),
            (512, 512)
        );

        let mut bad = disk(1000, false, false).bytes();
        bad[54] ^= 1;
        assert!(Identify::parse(&bad).unwrap_err().contains("checksum"));
        let mut unsigned = disk(1000, false, false).bytes();
        unsigned[510] = 0;
        assert!(Identify::parse(&unsigned)
            .unwrap_err()
            .contains("no integrity word"));
        let atapi = disk(1000, false, false).set(0, 0x8580).bytes();
        assert!(Identify::parse(&atapi).unwrap_err().contains("ATAPI"));
    }

    #[test]
    fn sector_sizes_from_word_106() {
        // 4096-byte physical sectors of 512-byte logical ones (2^3 per physical).
        let d = disk(1000, false, false).set(106, 0x6003).bytes();
        let id = Identify::parse(&d).unwrap();
        assert_eq!(
            (id.logical_sector_size, id.physical_sector_size),
            (512, 4096)
        );
        // 4096-byte logical sectors (words 117-118: 2048 words).
        let d = disk(1000, false, false)
            .set(106, 0x5000)
            .u64_at(117, 2, 2048)
            .bytes();
        let id = Identify::parse(&d).unwrap();
        assert_eq!(
            (id.logical_sector_size, id.physical_sector_size),
            (4096, 4096)
        );
    }

    #[test]
    fn dco_identify_gives_the_real_maximum() {
        let mut w = Words::new();
        w.set(0, 2).u64_at(3, 4, 1_953_525_167);
        let dco = DcoIdentify::parse(&w.bytes()).unwrap();
        assert_eq!(dco.max_sectors, 1_953_525_168);
        assert_eq!(dco.revision, 2);
        let mut bad = w.bytes();
        bad[6] ^= 0x10;
        assert!(DcoIdentify::parse(&bad).unwrap_err().contains("checksum"));
    }

    #[test]
    fn sense_data_gives_the_registers() {
        // Descriptor format, ATA Status Return: LBA 0x0000_7470_c05f (1953525167).
        let lba: u64 = 1_953_525_167;
        let b = |shift: u32| (lba >> shift) as u8;
        let mut s = vec![0x72, 0x01, 0x00, 0x1d, 0, 0, 0, 14];
        s.extend([
            0x09,
            0x0c,
            0x01,
            0x00,
            0,
            0,
            b(24),
            b(0),
            b(32),
            b(8),
            b(40),
            b(16),
            0x40,
            0x50,
        ]);
        let sense = parse_sense(&s).unwrap();
        let regs = sense.ata.unwrap();
        assert_eq!((sense.key, regs.lba, regs.status), (1, lba, 0x50));
        let out = SgOutcome {
            status: 2,
            driver_status: 0x08,
            sense: s.clone(),
            ..SgOutcome::default()
        };
        assert_eq!(
            interpret(AtaCommand::ReadNativeMaxAddressExt, &out)
                .unwrap()
                .unwrap()
                .lba,
            lba
        );
        // The drive aborted: ERR in status, ABRT in error.
        let mut aborted = s.clone();
        aborted[8 + 3] = 0x04;
        aborted[8 + 13] = 0x51;
        aborted[1] = 0x0b;
        let out = SgOutcome {
            status: 2,
            sense: aborted,
            ..SgOutcome::default()
        };
        assert!(matches!(
            interpret(AtaCommand::DcoIdentify, &out),
            Err(CommandError::Aborted(_))
        ));
        // A SCSI disk or a bridge that refuses the command.
        let out = SgOutcome {
            status: 2,
            sense: vec![0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00],
            ..SgOutcome::default()
        };
        let e = interpret(AtaCommand::IdentifyDevice, &out).unwrap_err();
        assert!(matches!(e, CommandError::NotPassed(_)), "{e:?}");
        assert!(e.reason().contains("bridge does not pass"));
        // Fixed format with the upper LBA bits not given: incomplete.
        let fixed = [
            0x70, 0, 0x01, 0x00, 0x50, 0x40, 0, 10, 0x20, 0x5f, 0xc0, 0x70, 0x00, 0x1d,
        ];
        let regs = parse_sense(&fixed).unwrap().ata.unwrap();
        assert!(!regs.lba_complete);
        assert_eq!(regs.lba, 0x70c05f);
        // A short IDENTIFY answer is not an answer.
        let out = SgOutcome {
            resid: 12,
            ..SgOutcome::default()
        };
        assert!(interpret(AtaCommand::IdentifyDevice, &out).is_err());
        // Truncated or empty sense never panics.
        for n in 0..s.len() {
            let _ = parse_sense(&s[..n]);
        }
    }
}
