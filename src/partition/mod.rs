//! Partition tables read from the media itself: MBR (primary, extended and logical
//! partitions) and GPT (primary and backup header, their CRCs), for `info`, the acquisition
//! record, `devices` and `mount`. The kernel here has no partition support for loop devices,
//! and examiners get offsets wrong by hand: exhibit reads the tables itself.
//!
//! Everything read is hostile: every count and offset is bounded by the media size, the
//! extended chain by a fixed number of links (a loop is reported, not followed), and every
//! disagreement (a damaged or missing backup GPT, a partition past the end of the media) is a
//! [`PartitionTable::problems`] line, never a panic.
//!
//! Numbering follows Linux (and `sfdisk`): MBR slots 1–4, logical partitions from 5; GPT
//! entries by their index, empty entries skipped.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Result;

mod gpt;
mod mbr;

#[cfg(test)]
mod tests;

/// Reads `buf.len()` bytes at a byte offset of the media; a short read is an error.
pub type ReadFn<'a> = dyn Fn(u64, &mut [u8]) -> Result<()> + 'a;

/// The partitioning scheme found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// A DOS/MBR table.
    Mbr,
    /// A GUID partition table (with its protective MBR).
    Gpt,
}

/// What a partition entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A primary MBR partition or a GPT entry.
    Primary,
    /// The MBR extended partition: a container for the logical ones.
    Extended,
    /// A logical partition inside the extended one.
    Logical,
}

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Number as Linux and sfdisk give it (`disk1`, … ; logical from 5).
    pub number: u32,
    /// Primary, extended or logical.
    pub role: Role,
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub bytes: u64,
    /// The type: MBR `0x83`, or the GPT type GUID.
    pub type_id: String,
    /// What the type means, when known (read back from a record: a name this build does not
    /// know is left out, the type stays in `type_id`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "known_type_name"
    )]
    pub type_name: Option<TypeName>,
    /// GPT partition name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// GPT unique partition GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// MBR boot flag (0x80).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bootable: bool,
}

/// A partition table and what is wrong with it: the one shape `info` (`--json`), mount's
/// `info.yaml`, `devices --json` and the audit record's `partitions` all show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionTable {
    /// MBR or GPT.
    pub scheme: Scheme,
    /// The sector size the table was read with.
    pub sector_size: u32,
    /// MBR disk signature (`0x…`) or GPT disk GUID.
    pub disk_id: String,
    /// The partitions, in number order.
    pub partitions: Vec<Partition>,
    /// Damage and disagreements, one line each (a bad backup GPT, a partition past the end).
    pub problems: Vec<String>,
}

/// A partition type's name, from this build's tables. (An alias, so that serde does not take
/// `&'static str` for text borrowed from the input: it is looked up in the tables instead.)
pub type TypeName = &'static str;

/// The names this build gives partition types, as `&'static str`, so a table read back from
/// a record compares equal to one read from the media.
fn known_type_name<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'static str>, D::Error> {
    let Some(name) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    Ok((0..=255u8)
        .filter_map(mbr::type_name)
        .chain(gpt::TYPE_NAMES.iter().map(|(_, n)| *n))
        .find(|n| *n == name))
}

impl Partition {
    fn new(number: u32, role: Role, start: u64, sectors: u64, sector_size: u32) -> Partition {
        let ss = u64::from(sector_size);
        Partition {
            number,
            role,
            start,
            sectors,
            offset: start.saturating_mul(ss),
            bytes: sectors.saturating_mul(ss),
            type_id: String::new(),
            type_name: None,
            name: None,
            guid: None,
            bootable: false,
        }
    }

    /// The media bytes it covers, clipped to the media (half-open).
    pub fn byte_range(&self, media_size: u64) -> std::ops::Range<u64> {
        let start = self.offset.min(media_size);
        start..self.offset.saturating_add(self.bytes).min(media_size)
    }
}

/// Reads the partition table of media of `media_size` bytes whose sectors are
/// `sector_size` bytes (for raw media that does not say, give 512: a GPT written for 4096-byte
/// sectors is found too). `Ok(None)` when there is no table.
pub fn read(
    read: &ReadFn<'_>,
    media_size: u64,
    sector_size: u32,
) -> Result<Option<PartitionTable>> {
    if media_size < 512 {
        return Ok(None);
    }
    let mut sector0 = [0u8; 512];
    read(0, &mut sector0)?;
    if sector0[510..512] != [0x55, 0xAA] {
        return Ok(None);
    }
    let entries = mbr::entries(&sector0);
    if entries.iter().any(|e| e.kind == 0xEE) {
        // A protective MBR: the GPT header is in the second sector of whichever size.
        for ss in gpt_sector_sizes(sector_size) {
            if let Some(t) = gpt::read(read, media_size, ss)? {
                return Ok(Some(t));
            }
        }
        return Ok(Some(PartitionTable {
            scheme: Scheme::Gpt,
            sector_size,
            disk_id: String::new(),
            partitions: Vec::new(),
            problems: vec![
                "a protective MBR (type 0xee) but no readable GPT header in sector 1".into(),
            ],
        }));
    }
    mbr::read(read, &sector0, media_size, sector_size).map(Some)
}

fn gpt_sector_sizes(given: u32) -> Vec<u32> {
    let mut v = vec![given];
    for ss in [512, 4096] {
        if ss != given {
            v.push(ss);
        }
    }
    v
}

/// Reads the partition table of an image through its reader.
pub fn of_image(image: &crate::image::Image) -> Result<Option<PartitionTable>> {
    of_image_as(image, image.media_size(), image.sector_size(), &[])
}

/// [`of_image`] for media of `media_size` bytes in `sector_size`-byte sectors (what the source
/// said, for an image that does not), whose `unreadable` byte ranges are zeros standing in for
/// sectors that could not be read (a rescue's bad sectors): a read that touches one fails,
/// naming it, rather than taking the zeros for the table (or for the absence of one).
pub fn of_image_as(
    image: &crate::image::Image,
    media_size: u64,
    sector_size: u32,
    unreadable: &[std::ops::Range<u64>],
) -> Result<Option<PartitionTable>> {
    let gaps: Vec<_> = unreadable
        .iter()
        .map(|r| (r.clone(), "unreadable on the source (zeros in the image)"))
        .collect();
    of_image_with_gaps(image, media_size, sector_size, &gaps)
}

/// [`of_image_as`] where each byte range not in the image as it stands says why (unreadable,
/// or not read yet by a rescue that stopped): a read that touches one fails with that.
pub fn of_image_with_gaps(
    image: &crate::image::Image,
    media_size: u64,
    sector_size: u32,
    gaps: &[(std::ops::Range<u64>, &str)],
) -> Result<Option<PartitionTable>> {
    let fetch = |offset: u64, buf: &mut [u8]| -> Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        if let Some((bad, why)) = gaps.iter().find(|(r, _)| r.start < end && offset < r.end) {
            return Err(crate::Error::Damaged {
                range: bad.start.max(offset)..bad.end.min(end),
                detail: (*why).into(),
            });
        }
        let n = image.read_at(buf, offset)?;
        if n < buf.len() {
            return Err(crate::Error::Damaged {
                range: offset + n as u64..offset + buf.len() as u64,
                detail: "past the end of the media".into(),
            });
        }
        Ok(())
    };
    read(&fetch, media_size.min(image.media_size()), sector_size)
}

/// Reads the partition table of an opened source through its own read-only descriptor, before
/// the pass. The descriptor may be O_DIRECT: each read covers whole aligned blocks (the
/// logical sector of a device; 4096 bytes for a file, whose filesystem may need that) into an
/// aligned buffer, and only the bytes asked for are handed on. One attempt per read: a sector
/// that fails is the error, not retried here (the pass reads and maps it).
pub fn of_source(source: &crate::source::Source) -> Result<Option<PartitionTable>> {
    let align = match source.kind() {
        crate::source::SourceKind::File => crate::buffer::ALIGN as u64,
        _ => u64::from(source.logical_sector_size()),
    };
    let size = source.size();
    let fetch = |offset: u64, buf: &mut [u8]| -> Result<()> {
        let failed = |at: u64, e: std::io::Error| crate::Error::Read {
            path: source.path().to_path_buf(),
            offset: at,
            source: e,
        };
        let end = offset.saturating_add(buf.len() as u64);
        let start = offset - offset % align;
        let stop = end
            .div_ceil(align)
            .saturating_mul(align)
            .min(size.next_multiple_of(align));
        let mut block = crate::buffer::AlignedBuf::new((stop - start) as usize);
        let mut got = 0usize;
        while start + (got as u64) < end {
            let n = source
                .read_at(&mut block[got..], start + got as u64)
                .map_err(|e| failed(start + got as u64, e))?;
            if n == 0 {
                return Err(failed(
                    start + got as u64,
                    std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                ));
            }
            got += n;
        }
        let from = (offset - start) as usize;
        buf.copy_from_slice(&block[from..from + buf.len()]);
        Ok(())
    };
    read(&fetch, size, source.logical_sector_size())
}

/// Little-endian fields.
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
