//! NVMe drives asked about themselves, read-only: the two Identify admin commands exhibit
//! may send (controller, namespace; NVMe Base 2.0, 5.17) and the parsers of their 4096-byte
//! answers. Nothing else can be named, so nothing else can be sent.

use serde::{Deserialize, Serialize};

/// Bytes of an Identify answer.
pub const DATA_LEN: usize = 4096;

/// The read-only NVMe admin commands exhibit knows: Identify (opcode 06h) with one of two CNS
/// values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvmeIdentify {
    /// CNS 01h: the controller.
    Controller,
    /// CNS 00h: namespace `nsid`.
    Namespace(u32),
}

impl NvmeIdentify {
    /// Admin opcode.
    pub const OPCODE: u8 = 0x06;

    /// (namespace id, CDW10) of the command.
    pub fn fields(self) -> (u32, u32) {
        match self {
            NvmeIdentify::Controller => (0, 0x01),
            NvmeIdentify::Namespace(nsid) => (nsid, 0x00),
        }
    }
}

fn ascii(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x))
}

/// A 128-bit little-endian byte count, `None` when it does not fit 64 bits.
fn le128(b: &[u8]) -> Option<u64> {
    b[8..16].iter().all(|&x| x == 0).then(|| le(&b[..8]))
}

/// What Identify Controller says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeController {
    /// PCI vendor id (bytes 0-1).
    pub vendor_id: u16,
    /// Serial number (bytes 4-23).
    pub serial: Option<String>,
    /// Model number (bytes 24-63).
    pub model: Option<String>,
    /// Firmware revision (bytes 64-71).
    pub firmware: Option<String>,
    /// Total NVM capacity in bytes (bytes 280-295), when the controller reports it.
    pub total_capacity_bytes: Option<u64>,
    /// NVM capacity in no namespace, in bytes (bytes 296-311), when reported.
    pub unallocated_capacity_bytes: Option<u64>,
}

impl NvmeController {
    /// Parses Identify Controller data.
    pub fn parse(d: &[u8; DATA_LEN]) -> NvmeController {
        let nonzero = |v: Option<u64>| v.filter(|&n| n > 0);
        NvmeController {
            vendor_id: le(&d[0..2]) as u16,
            serial: ascii(&d[4..24]),
            model: ascii(&d[24..64]),
            firmware: ascii(&d[64..72]),
            total_capacity_bytes: nonzero(le128(&d[280..296])),
            unallocated_capacity_bytes: le128(&d[296..312])
                .filter(|_| nonzero(le128(&d[280..296])).is_some()),
        }
    }
}

/// What Identify Namespace says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeNamespace {
    /// Namespace id.
    pub id: u32,
    /// Namespace size in logical blocks (NSZE, bytes 0-7).
    pub size_blocks: u64,
    /// Capacity in logical blocks (NCAP, bytes 8-15).
    pub capacity_blocks: u64,
    /// Blocks in use (NUSE, bytes 16-23).
    pub utilization_blocks: u64,
    /// The LBA format in use (FLBAS).
    pub lba_format: u8,
    /// Its data size in bytes.
    pub lba_size: u32,
    /// Its metadata bytes per block.
    pub metadata_size: u16,
    /// NGUID (bytes 104-119), hex, when not zero.
    pub nguid: Option<String>,
    /// EUI-64 (bytes 120-127), hex, when not zero.
    pub eui64: Option<String>,
}

impl NvmeNamespace {
    /// Parses Identify Namespace data of namespace `id`.
    pub fn parse(id: u32, d: &[u8; DATA_LEN]) -> Result<NvmeNamespace, String> {
        let nlbaf = usize::from(d[25]) + 1;
        // FLBAS bits 3:0, with bits 6:5 above them when there are more than 16 formats.
        let flbas = d[26];
        let index = usize::from(flbas & 0x0f) | (usize::from((flbas >> 5) & 0x03) << 4);
        if index >= nlbaf.min(64) {
            return Err(format!(
                "Identify Namespace: LBA format {index} in use, but only {nlbaf} listed"
            ));
        }
        let f = &d[128 + 4 * index..132 + 4 * index];
        let lbads = f[2];
        if !(9..=16).contains(&lbads) {
            return Err(format!(
                "Identify Namespace: LBA format {index} has 2^{lbads}-byte blocks"
            ));
        }
        let hex = |b: &[u8]| -> Option<String> {
            b.iter()
                .any(|&x| x != 0)
                .then(|| b.iter().map(|x| format!("{x:02x}")).collect())
        };
        Ok(NvmeNamespace {
            id,
            size_blocks: le(&d[0..8]),
            capacity_blocks: le(&d[8..16]),
            utilization_blocks: le(&d[16..24]),
            lba_format: index as u8,
            lba_size: 1 << lbads,
            metadata_size: le(&f[0..2]) as u16,
            nguid: hex(&d[104..120]),
            eui64: hex(&d[120..128]),
        })
    }

    /// The namespace's size in bytes (saturating).
    pub fn size_bytes(&self) -> u64 {
        self.size_blocks.saturating_mul(u64::from(self.lba_size))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn controller() -> [u8; DATA_LEN] {
        let mut d = [0u8; DATA_LEN];
        d[0..2].copy_from_slice(&0x144du16.to_le_bytes());
        let put = |d: &mut [u8; DATA_LEN], at: usize, len: usize, s: &str| {
            let mut b = s.as_bytes().to_vec();
            b.resize(len, b' ');
            d[at..at + len].copy_from_slice(&b);
        };
        put(&mut d, 4, 20, "S4EWNX0R123456");
        put(&mut d, 24, 40, "Samsung SSD 970 EVO Plus 500GB");
        put(&mut d, 64, 8, "2B2QEXM7");
        d[280..288].copy_from_slice(&500_107_862_016u64.to_le_bytes());
        d
    }

    pub(crate) fn namespace(blocks: u64, lbads: u8) -> [u8; DATA_LEN] {
        let mut d = [0u8; DATA_LEN];
        d[0..8].copy_from_slice(&blocks.to_le_bytes());
        d[8..16].copy_from_slice(&blocks.to_le_bytes());
        d[16..24].copy_from_slice(&(blocks / 2).to_le_bytes());
        d[25] = 1; // two formats
        d[26] = 1; // the second in use
        d[128 + 2] = 9;
        d[132 + 2] = lbads;
        d[120..128].copy_from_slice(&[0x00, 0x25, 0x38, 0x5a, 0x91, 0x50, 0x12, 0x34]);
        d
    }

    #[test]
    fn identify_controller_and_namespace() {
        let c = NvmeController::parse(&controller());
        assert_eq!(c.vendor_id, 0x144d);
        assert_eq!(c.serial.as_deref(), Some("S4EWNX0R123456"));
        assert_eq!(c.model.as_deref(), Some("Samsung SSD 970 EVO Plus 500GB"));
        assert_eq!(c.firmware.as_deref(), Some("2B2QEXM7"));
        assert_eq!(c.total_capacity_bytes, Some(500_107_862_016));
        assert_eq!(c.unallocated_capacity_bytes, Some(0));

        let n = NvmeNamespace::parse(1, &namespace(122_096_646, 12)).unwrap();
        assert_eq!(
            (n.size_blocks, n.lba_size, n.lba_format),
            (122_096_646, 4096, 1)
        );
        assert_eq!(n.size_bytes(), 122_096_646 * 4096);
        assert_eq!(n.eui64.as_deref(), Some("0025385a91501234"));
        assert_eq!(n.nguid, None);

        let mut bad = namespace(10, 12);
        bad[26] = 5;
        assert!(NvmeNamespace::parse(1, &bad)
            .unwrap_err()
            .contains("only 2"));
        assert!(NvmeNamespace::parse(1, &namespace(10, 3)).is_err());
    }
}
