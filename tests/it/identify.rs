//! What a drive says about itself: IDENTIFY DEVICE data built here to the ATA standard (ACS-3:
//! strings byte-swapped per word, word 255 signed) parsed by exhibit and by Debian's
//! `hdparm --Istdin` (the oracle: 256 hex words, 8 a line, as `hdparm --Istdout` writes
//! them), the HPA/DCO verdict from a drive made of such buffers, and the real SG_IO path on a
//! loop device this test made (and a virtio disk, if the machine has one): "unknown", with
//! why, in `devices` and in the acquisition record.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use exhibit::device::ata::{AtaCommand, AtaRegisters, CommandError, Identify};
use exhibit::device::hidden::{probe_ata, AtaPort};
use exhibit::device::HiddenState;

use crate::support::*;

/// IDENTIFY DEVICE words, signed on the way out.
#[derive(Clone)]
struct Words([u16; 256]);

impl Words {
    fn text(&mut self, first: usize, count: usize, s: &str) -> &mut Self {
        let mut b = s.as_bytes().to_vec();
        b.resize(count * 2, b' ');
        for i in 0..count {
            self.0[first + i] = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
        }
        self
    }
    fn set(&mut self, i: usize, v: u16) -> &mut Self {
        self.0[i] = v;
        self
    }
    fn long(&mut self, first: usize, n: usize, v: u64) -> &mut Self {
        for i in 0..n {
            self.0[first + i] = (v >> (16 * i)) as u16;
        }
        self
    }
    /// The 512 bytes as a drive sends them; `checksum_ok` false breaks the checksum.
    fn bytes(&self, checksum_ok: bool) -> [u8; 512] {
        let mut d = [0u8; 512];
        for (i, v) in self.0.iter().enumerate() {
            d[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
        }
        d[510] = 0xa5;
        let sum = d[..511].iter().fold(0u8, |a, &b| a.wrapping_add(b));
        d[511] = sum.wrapping_neg() ^ u8::from(!checksum_ok);
        d
    }
}

/// A disk of `sectors` (48-bit unless `lba28`), with HPA and DCO supported as asked.
fn drive(sectors: u64, lba28: bool, hpa: bool, dco: bool) -> Words {
    let mut w = Words([0; 256]);
    w.set(0, 0x0040)
        .text(10, 10, "Z1D2K3L4")
        .text(23, 4, "CC43")
        .text(27, 20, "ST1000DM003-1ER162")
        .set(49, 1 << 9)
        .long(60, 2, sectors.min(0x0fff_ffff))
        .set(82, 0x4000 | (u16::from(hpa) << 10))
        .set(
            83,
            0x4000 | (u16::from(!lba28) << 10) | (u16::from(dco) << 11),
        )
        .set(84, 0x4000)
        .set(85, u16::from(hpa) << 10)
        .set(86, (u16::from(!lba28) << 10) | (u16::from(dco) << 11))
        .set(87, 0x4000)
        .set(106, 0x4000);
    if !lba28 {
        w.long(100, 4, sectors);
    }
    w
}

/// What hdparm makes of the data.
fn hdparm(data: &[u8; 512]) -> String {
    let mut text = String::new();
    for line in data.chunks(16) {
        let words: Vec<String> = line
            .chunks(2)
            .map(|b| format!("{:04x}", u16::from_le_bytes([b[0], b[1]])))
            .collect();
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    let mut child = Command::new("hdparm")
        .arg("--Istdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hdparm runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value after `label:` on hdparm's line, trimmed.
fn field<'a>(out: &'a str, label: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim_start_matches(':').trim())
}

fn number(out: &str, label: &str) -> Option<u64> {
    field(out, label)?.split_whitespace().next()?.parse().ok()
}

/// hdparm's feature line: (supported, enabled: marked `*`).
fn feature(out: &str, name: &str) -> (bool, bool) {
    match out.lines().find(|l| l.trim_end().ends_with(name)) {
        Some(l) => (true, l.trim_start().starts_with('*')),
        None => (false, false),
    }
}

#[test]
fn identify_parser_agrees_with_hdparm() {
    if !have("hdparm") {
        eprintln!("SKIPPED identify_parser_agrees_with_hdparm: needs hdparm");
        return;
    }
    let cases: Vec<(&str, Words)> = vec![
        ("no HPA", drive(1_953_525_168, false, false, false)),
        ("HPA and DCO", drive(1_953_520_000, false, true, true)),
        ("LBA28 only", drive(0x0fff_0000, true, true, false)),
        (
            "4K physical",
            drive(7_814_037_168, false, true, false)
                .set(106, 0x6003)
                .clone(),
        ),
        (
            "WWN",
            drive(976_773_168, false, false, false)
                .set(84, 0x4100)
                .set(108, 0x5000)
                .set(109, 0xc500)
                .set(110, 0xa1b2)
                .set(111, 0xc3d4)
                .clone(),
        ),
        (
            "4K logical",
            drive(976_754_646, false, false, false)
                .set(106, 0x5000)
                .long(117, 2, 2048)
                .clone(),
        ),
    ];
    for (name, words) in &cases {
        let data = words.bytes(true);
        let out = hdparm(&data);
        let id = Identify::parse(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(field(&out, "Checksum"), Some("correct"), "{name}: {out}");
        assert_eq!(field(&out, "Model Number"), id.model.as_deref(), "{name}");
        assert_eq!(field(&out, "Serial Number"), id.serial.as_deref(), "{name}");
        assert_eq!(
            field(&out, "Firmware Revision"),
            id.firmware.as_deref(),
            "{name}"
        );
        assert_eq!(
            number(&out, "LBA    user addressable sectors"),
            Some(id.lba28_sectors),
            "{name}"
        );
        assert_eq!(
            number(&out, "LBA48  user addressable sectors"),
            id.lba48_sectors,
            "{name}: {out}"
        );
        assert_eq!(
            number(&out, "Logical  Sector size"),
            Some(u64::from(id.logical_sector_size)),
            "{name}"
        );
        assert_eq!(
            number(&out, "Physical Sector size"),
            Some(u64::from(id.physical_sector_size)),
            "{name}"
        );
        assert_eq!(
            field(&out, "Logical Unit WWN Device Identifier"),
            id.wwn.as_deref(),
            "{name}: {out}"
        );
        assert_eq!(
            feature(&out, "Host Protected Area feature set"),
            (id.hpa_supported, id.hpa_enabled),
            "{name}"
        );
        assert_eq!(
            feature(&out, "Device Configuration Overlay feature set").0,
            id.dco_supported,
            "{name}"
        );
    }
    // A broken checksum: hdparm does not call it correct, and exhibit refuses the data.
    let data = drive(1000, false, true, true).bytes(false);
    assert_ne!(field(&hdparm(&data), "Checksum"), Some("correct"));
    assert!(Identify::parse(&data).unwrap_err().contains("checksum"));
}

/// A drive made of buffers.
struct Fake {
    identify: [u8; 512],
    native_sectors: u64,
    dco_sectors: u64,
}

impl AtaPort for Fake {
    fn run(
        &mut self,
        cmd: AtaCommand,
        data: &mut [u8],
    ) -> Result<Option<AtaRegisters>, CommandError> {
        match cmd {
            AtaCommand::IdentifyDevice => data.copy_from_slice(&self.identify),
            AtaCommand::DcoIdentify => {
                let mut w = Words([0; 256]);
                w.set(0, 2).long(3, 4, self.dco_sectors - 1);
                data.copy_from_slice(&w.bytes(true));
            }
            AtaCommand::ReadNativeMaxAddressExt
            | AtaCommand::ReadNativeMaxAddress
            | AtaCommand::GetNativeMaxAddressExt => {
                return Ok(Some(AtaRegisters {
                    status: 0x50,
                    lba: self.native_sectors - 1,
                    lba_complete: true,
                    ..AtaRegisters::default()
                }))
            }
        }
        Ok(None)
    }
}

#[test]
fn hidden_sectors_are_counted_from_the_drives_answers() {
    let current = 1_953_520_000;
    let cases = [
        (current, current, HiddenState::None, "none"),
        (
            1_953_525_168,
            1_953_525_168,
            HiddenState::Hidden,
            "HPA present: 5168 sectors hidden",
        ),
        (
            current,
            1_953_525_168,
            HiddenState::Hidden,
            "DCO present: 5168 sectors hidden",
        ),
    ];
    for (native, dco, state, summary) in cases {
        let mut port = Fake {
            identify: drive(current, false, true, true).bytes(true),
            native_sectors: native,
            dco_sectors: dco,
        };
        let r = probe_ata(&mut port, "/dev/sdz");
        assert_eq!(
            (r.hidden.state, r.hidden.summary.as_str()),
            (state, summary)
        );
        assert_eq!(r.current_max_sectors, Some(current));
        assert_eq!(r.native_max_sectors, Some(native));
        assert_eq!(r.dco_max_sectors, Some(dco));
    }
    let mut port = Fake {
        identify: drive(current, false, true, true).bytes(false),
        native_sectors: current,
        dco_sectors: current,
    };
    let r = probe_ata(&mut port, "/dev/sdz");
    assert_eq!(r.hidden.state, HiddenState::Unknown);
    assert!(
        r.hidden.summary.contains("checksum"),
        "{}",
        r.hidden.summary
    );
}

fn assert_unknown_not_ata(drive: &serde_json::Value, what: &str) {
    assert_eq!(drive["hidden"]["state"], "unknown", "{what}: {drive}");
    let summary = drive["hidden"]["summary"].as_str().unwrap_or("");
    assert!(
        summary.starts_with("unknown (why: not an ATA device"),
        "{what}: {summary}"
    );
    assert!(drive["protocol"].is_null(), "{what}: {drive}");
}

#[test]
fn loop_and_virtio_devices_answer_unknown_with_why() {
    let test = "loop_and_virtio_devices_answer_unknown_with_why";
    if skip_without_loop(test) {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let src = make_source(d, "disk.raw", 2 << 20, 5);
    let dev = LoopDevice::attach(&src, 512, false, false);
    let out = run_ok(&["devices", "--json", dev.as_str()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &v["devices"][0];
    assert_unknown_not_ata(&entry["drive"], "devices --json");
    let text = text(&run_ok(&["devices", dev.as_str()]));
    assert!(
        text.contains("hidden sectors: unknown (why: not an ATA device"),
        "{text}"
    );
    // The record says the same, and nothing is warned about.
    let base = d.join("img");
    let out = run_ok(&[
        "acquire",
        dev.as_str(),
        "-o",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!stderr(&out).contains("hidden"), "{}", stderr(&out));
    let rec = record(&base);
    let drive: serde_json::Value =
        serde_json::to_value(&rec["source"]["drive"]).expect("record has source.drive");
    assert_unknown_not_ata(&drive, "record");
    let base = d.join("rescued");
    run_ok(&[
        "rescue",
        dev.as_str(),
        "-o",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    let drive = serde_json::to_value(&record(&base)["source"]["drive"]).unwrap();
    assert_unknown_not_ata(&drive, "rescue record");
    // An image file has no drive.
    let base = d.join("file");
    acquire(&src, &base, &[], 0);
    assert!(record(&base)["source"].get("drive").is_none());

    // A virtio disk of this machine, if there is one: only asked, never written.
    let virtio = std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("vd"));
    match virtio {
        Some(name) => {
            let path = format!("/dev/{name}");
            if Path::new(&path).exists() {
                let out = run_ok(&["devices", "--json", "--no-partition-tables", &path]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert!(v["devices"][0]["drive"].is_null(), "not opened: {v}");
                let out = run_ok(&["devices", "--json", &path]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let drive = &v["devices"][0]["drive"];
                match std::fs::File::open(&path) {
                    Ok(_) => assert_unknown_not_ata(drive, &path),
                    // A sandbox may keep even root from opening the machine's own disk.
                    Err(e) => {
                        eprintln!("{test}: {path} cannot be opened here ({e})");
                        assert_eq!(drive["hidden"]["state"], "unknown", "{drive}");
                        let summary = drive["hidden"]["summary"].as_str().unwrap_or("");
                        assert!(
                            summary.starts_with("unknown (why: permission: opening"),
                            "{summary}"
                        );
                    }
                }
            }
        }
        None => eprintln!("{test}: no virtio disk on this machine; only the loop device asked"),
    }
}
