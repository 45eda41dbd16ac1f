//! The EWF-E01 (EnCase 6) structures, byte by byte: one encoder and one decoder per
//! structure, shared by the writer and the checker so that a layout is written down once.
//!
//! All integers are little-endian; every "checksum" is a standard Adler-32 (initial value 1).
//! Decoders never panic and never trust a size field: they take a byte slice the caller has
//! already bounded and say what is wrong with it.

use crate::map::BadRun;

/// `EVF\t\r\n\xff\0`: the first 8 bytes of every segment file.
pub const EVF_SIGNATURE: [u8; 8] = [0x45, 0x56, 0x46, 0x09, 0x0D, 0x0A, 0xFF, 0x00];
/// Size of the per-segment file header.
pub const FILE_HEADER_SIZE: u64 = 13;
/// Size of a section descriptor.
pub const DESCRIPTOR_SIZE: u64 = 76;
/// Size of the `volume` / `data` / `disk` body (EnCase 5+; the 94-byte body is SMART only).
pub const VOLUME_BODY_SIZE: usize = 1052;
/// Size of a table header (before the entries).
pub const TABLE_HEADER_SIZE: usize = 24;
/// Size of the `error2` header (before the entries).
pub const ERROR2_HEADER_SIZE: usize = 520;
/// Size of the `hash` body.
pub const HASH_BODY_SIZE: usize = 36;
/// Size of the `digest` body.
pub const DIGEST_BODY_SIZE: usize = 80;
/// Most entries we put in one table: EnCase 6+, libewf and Guymager use up to 65 534.
pub const MAX_TABLE_ENTRIES: u32 = 65_534;
/// Table entries hold 31-bit offsets relative to the table's base offset.
pub const MAX_RELATIVE_OFFSET: u64 = 0x7FFF_FFFF;
/// Bit 31 of a table entry: the chunk is zlib-compressed.
pub const COMPRESSED_FLAG: u32 = 0x8000_0000;

/// Adler-32 as EWF uses it (zlib's, initial value 1).
pub fn adler32(data: &[u8]) -> u32 {
    libdeflater::adler32(data)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// The 13-byte header of a segment file: signature and 1-based segment number.
pub fn encode_file_header(segment_number: u16) -> [u8; 13] {
    let mut b = [0u8; 13];
    b[..8].copy_from_slice(&EVF_SIGNATURE);
    b[8] = 1;
    b[9..11].copy_from_slice(&segment_number.to_le_bytes());
    b
}

/// Decodes a file header into its segment number.
pub fn decode_file_header(b: &[u8]) -> Result<u16, String> {
    if b.len() < 13 {
        return Err(format!("file header is {} bytes, need 13", b.len()));
    }
    if b[..8] != EVF_SIGNATURE {
        return Err("no EVF signature (not an E01 segment)".into());
    }
    if b[8] != 1 || b[11] != 0 || b[12] != 0 {
        return Err("file header field markers are not 01 .. 00 00".into());
    }
    Ok(u16_at(b, 9))
}

/// The section types a disk image uses (the others are recognised only by name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionType {
    /// UTF-16 case metadata (written twice).
    Header2,
    /// ASCII case metadata.
    Header,
    /// Media geometry (first segment).
    Volume,
    /// Same body as volume (FTK Imager).
    Disk,
    /// Copy of the volume body.
    Data,
    /// Chunk data.
    Sectors,
    /// Chunk offsets.
    Table,
    /// Copy of the table.
    Table2,
    /// Ends a segment that has a successor.
    Next,
    /// Ends the last segment.
    Done,
    /// Unreadable sector runs.
    Error2,
    /// MD5.
    Hash,
    /// MD5 and SHA-1.
    Digest,
}

impl SectionType {
    /// The on-disk name.
    pub fn name(self) -> &'static str {
        match self {
            SectionType::Header2 => "header2",
            SectionType::Header => "header",
            SectionType::Volume => "volume",
            SectionType::Disk => "disk",
            SectionType::Data => "data",
            SectionType::Sectors => "sectors",
            SectionType::Table => "table",
            SectionType::Table2 => "table2",
            SectionType::Next => "next",
            SectionType::Done => "done",
            SectionType::Error2 => "error2",
            SectionType::Hash => "hash",
            SectionType::Digest => "digest",
        }
    }

    /// Parses an on-disk name.
    pub fn from_name(name: &str) -> Option<SectionType> {
        Some(match name {
            "header2" => SectionType::Header2,
            "header" => SectionType::Header,
            "volume" => SectionType::Volume,
            "disk" => SectionType::Disk,
            "data" => SectionType::Data,
            "sectors" => SectionType::Sectors,
            "table" => SectionType::Table,
            "table2" => SectionType::Table2,
            "next" => SectionType::Next,
            "done" => SectionType::Done,
            "error2" => SectionType::Error2,
            "hash" => SectionType::Hash,
            "digest" => SectionType::Digest,
            _ => return None,
        })
    }
}

/// Other section names that exist in the wild and are not damage when found.
pub const OTHER_KNOWN_SECTIONS: &[&str] = &[
    "session",
    "xheader",
    "xhash",
    "ltree",
    "ltypes",
    "map",
    "incomplete",
];

/// A decoded 76-byte section descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The type name (NUL padding removed, lossy for non-ASCII garbage).
    pub type_name: String,
    /// Absolute offset of the next descriptor (itself for `next`/`done`).
    pub next: u64,
    /// Section size including the descriptor (0 for `next`/`done` in EnCase style).
    pub size: u64,
    /// Whether the stored Adler-32 matches bytes 0..72.
    pub checksum_ok: bool,
}

/// Encodes a descriptor: `next` and `size` as given, Adler-32 over the first 72 bytes.
pub fn encode_descriptor(kind: SectionType, next: u64, size: u64) -> [u8; 76] {
    let mut b = [0u8; 76];
    let name = kind.name().as_bytes();
    b[..name.len()].copy_from_slice(name);
    b[16..24].copy_from_slice(&next.to_le_bytes());
    b[24..32].copy_from_slice(&size.to_le_bytes());
    let sum = adler32(&b[..72]);
    b[72..76].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Decodes a descriptor from exactly 76 bytes (shorter input is an error).
pub fn decode_descriptor(b: &[u8]) -> Result<Descriptor, String> {
    if b.len() < 76 {
        return Err(format!(
            "section descriptor cut short ({} of 76 bytes)",
            b.len()
        ));
    }
    let end = b[..16].iter().position(|&c| c == 0).unwrap_or(16);
    Ok(Descriptor {
        type_name: String::from_utf8_lossy(&b[..end]).into_owned(),
        next: u64_at(b, 16),
        size: u64_at(b, 24),
        checksum_ok: adler32(&b[..72]) == u32_at(b, 72),
    })
}

/// The `volume` body: media geometry and the set's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// 0 removable, 1 fixed, 3 optical, 0x0E logical, 0x10 memory.
    pub media_type: u8,
    /// ceil(media size / chunk size).
    pub chunk_count: u32,
    /// Sectors per chunk (64 by default).
    pub sectors_per_chunk: u32,
    /// Bytes per sector (512 or 4096).
    pub bytes_per_sector: u32,
    /// Sector count: this defines the media size for every reader.
    pub sector_count: u64,
    /// bit0 image file, bit1 physical device.
    pub media_flags: u8,
    /// 0 none, 1 fast, 2 best.
    pub compression_level: u8,
    /// Error granularity in sectors.
    pub error_granularity: u32,
    /// Segment-set GUID (Microsoft byte order).
    pub guid: [u8; 16],
}

impl Volume {
    /// Chunk size in bytes (u64: a forged volume can make it large).
    pub fn chunk_size(&self) -> u64 {
        u64::from(self.sectors_per_chunk) * u64::from(self.bytes_per_sector)
    }

    /// Media size in bytes.
    pub fn media_size(&self) -> u64 {
        self.sector_count
            .saturating_mul(u64::from(self.bytes_per_sector))
    }

    /// The 1052-byte body with its Adler-32 at 1048.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; VOLUME_BODY_SIZE];
        b[0] = self.media_type;
        b[4..8].copy_from_slice(&self.chunk_count.to_le_bytes());
        b[8..12].copy_from_slice(&self.sectors_per_chunk.to_le_bytes());
        b[12..16].copy_from_slice(&self.bytes_per_sector.to_le_bytes());
        b[16..24].copy_from_slice(&self.sector_count.to_le_bytes());
        b[36] = self.media_flags;
        b[52] = self.compression_level;
        b[56..60].copy_from_slice(&self.error_granularity.to_le_bytes());
        b[64..80].copy_from_slice(&self.guid);
        let sum = adler32(&b[..1048]);
        b[1048..1052].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes a body; the bool says whether its Adler-32 matches.
    pub fn decode(b: &[u8]) -> Result<(Volume, bool), String> {
        if b.len() < VOLUME_BODY_SIZE {
            return Err(format!(
                "volume body is {} bytes, need {VOLUME_BODY_SIZE}",
                b.len()
            ));
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&b[64..80]);
        let v = Volume {
            media_type: b[0],
            chunk_count: u32_at(b, 4),
            sectors_per_chunk: u32_at(b, 8),
            bytes_per_sector: u32_at(b, 12),
            sector_count: u64_at(b, 16),
            media_flags: b[36],
            compression_level: b[52],
            error_granularity: u32_at(b, 56),
            guid,
        };
        Ok((v, adler32(&b[..1048]) == u32_at(b, 1048)))
    }
}

/// Size of a `table` (or `table2`) section with `entries` entries, descriptor included.
pub fn table_section_size(entries: u64) -> u64 {
    DESCRIPTOR_SIZE + TABLE_HEADER_SIZE as u64 + 4 * entries + 4
}

/// Encodes a table body: header (count, base offset, Adler-32) then the entries and their
/// Adler-32.
pub fn encode_table(base_offset: u64, entries: &[u32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(TABLE_HEADER_SIZE + 4 * entries.len() + 4);
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0u8; 4]);
    b.extend_from_slice(&base_offset.to_le_bytes());
    b.extend_from_slice(&[0u8; 4]);
    let sum = adler32(&b[..20]);
    b.extend_from_slice(&sum.to_le_bytes());
    let start = b.len();
    for e in entries {
        b.extend_from_slice(&e.to_le_bytes());
    }
    let sum = adler32(&b[start..]);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// A decoded table body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Base offset the entries are relative to.
    pub base_offset: u64,
    /// Raw entries (bit 31 = compressed).
    pub entries: Vec<u32>,
    /// Whether the header Adler-32 matches.
    pub header_ok: bool,
    /// Whether the entry array's Adler-32 matches (false also when it is missing).
    pub entries_ok: bool,
}

/// Decodes a table body. The entry count is checked against the body length before any
/// allocation, so a forged count cannot make us allocate more than the section holds.
pub fn decode_table(b: &[u8]) -> Result<Table, String> {
    if b.len() < TABLE_HEADER_SIZE {
        return Err(format!("table body is {} bytes, need at least 24", b.len()));
    }
    let count = u32_at(b, 0) as usize;
    let header_ok = adler32(&b[..20]) == u32_at(b, 20);
    let room = (b.len() - TABLE_HEADER_SIZE) / 4;
    if count > room {
        return Err(format!(
            "table claims {count} entries but its section holds at most {room}"
        ));
    }
    let entries: Vec<u32> = (0..count)
        .map(|i| u32_at(b, TABLE_HEADER_SIZE + 4 * i))
        .collect();
    let end = TABLE_HEADER_SIZE + 4 * count;
    let entries_ok = b.len() >= end + 4 && adler32(&b[TABLE_HEADER_SIZE..end]) == u32_at(b, end);
    Ok(Table {
        base_offset: u64_at(b, 8),
        entries,
        header_ok,
        entries_ok,
    })
}

/// One `error2` entry: a run of unreadable sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error2Entry {
    /// First sector.
    pub first_sector: u32,
    /// Number of sectors.
    pub sector_count: u32,
}

/// Encodes an `error2` body: 520-byte header (count, zeros, Adler-32 at 516), entries, Adler-32.
pub fn encode_error2(entries: &[Error2Entry]) -> Vec<u8> {
    let mut b = vec![0u8; ERROR2_HEADER_SIZE];
    b[..4].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    let sum = adler32(&b[..516]);
    b[516..520].copy_from_slice(&sum.to_le_bytes());
    for e in entries {
        b.extend_from_slice(&e.first_sector.to_le_bytes());
        b.extend_from_slice(&e.sector_count.to_le_bytes());
    }
    let sum = adler32(&b[ERROR2_HEADER_SIZE..]);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// Decodes an `error2` body; the bool says whether both Adler-32s match.
pub fn decode_error2(b: &[u8]) -> Result<(Vec<Error2Entry>, bool), String> {
    if b.len() < ERROR2_HEADER_SIZE {
        return Err(format!(
            "error2 body is {} bytes, need at least 520",
            b.len()
        ));
    }
    let count = u32_at(b, 0) as usize;
    let room = (b.len() - ERROR2_HEADER_SIZE) / 8;
    if count > room {
        return Err(format!(
            "error2 claims {count} entries but its section holds at most {room}"
        ));
    }
    let entries = (0..count)
        .map(|i| Error2Entry {
            first_sector: u32_at(b, ERROR2_HEADER_SIZE + 8 * i),
            sector_count: u32_at(b, ERROR2_HEADER_SIZE + 8 * i + 4),
        })
        .collect();
    let end = ERROR2_HEADER_SIZE + 8 * count;
    let ok = adler32(&b[..516]) == u32_at(b, 516)
        && b.len() >= end + 4
        && adler32(&b[ERROR2_HEADER_SIZE..end]) == u32_at(b, end);
    Ok((entries, ok))
}

/// Converts unreadable byte runs into `error2` entries of `bytes_per_sector` sectors, merged
/// and sorted. Sectors at or beyond 2^32 cannot be written into the 32-bit fields: they are
/// returned as byte runs (second value) so the caller can report them loudly; they are never
/// dropped silently.
pub fn error2_entries(runs: &[BadRun], bytes_per_sector: u32) -> (Vec<Error2Entry>, Vec<BadRun>) {
    let bps = u64::from(bytes_per_sector.max(1));
    let mut spans: Vec<(u64, u64)> = runs
        .iter()
        .filter(|r| r.length > 0)
        .map(|r| {
            (
                r.offset / bps,
                r.offset.saturating_add(r.length).div_ceil(bps),
            )
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    const LIMIT: u64 = 1 << 32;
    let mut entries = Vec::new();
    let mut unaddressable = Vec::new();
    for (s, e) in merged {
        let addressable_end = e.min(LIMIT);
        let mut at = s;
        while at < addressable_end {
            let n = (addressable_end - at).min(u64::from(u32::MAX));
            entries.push(Error2Entry {
                first_sector: at as u32,
                sector_count: n as u32,
            });
            at += n;
        }
        if e > LIMIT {
            let first = s.max(LIMIT);
            unaddressable.push(BadRun {
                offset: first * bps,
                length: (e - first) * bps,
                errno: 0,
                attempts: 0,
            });
        }
    }
    (entries, unaddressable)
}

/// Encodes the `hash` body: MD5, 16 zero bytes, Adler-32 of the first 32.
pub fn encode_hash(md5: &[u8; 16]) -> Vec<u8> {
    let mut b = vec![0u8; HASH_BODY_SIZE];
    b[..16].copy_from_slice(md5);
    let sum = adler32(&b[..32]);
    b[32..36].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Decodes the `hash` body into the MD5 and whether its Adler-32 matches.
pub fn decode_hash(b: &[u8]) -> Result<([u8; 16], bool), String> {
    if b.len() < HASH_BODY_SIZE {
        return Err(format!("hash body is {} bytes, need 36", b.len()));
    }
    let mut md5 = [0u8; 16];
    md5.copy_from_slice(&b[..16]);
    Ok((md5, adler32(&b[..32]) == u32_at(b, 32)))
}

/// Encodes the `digest` body: MD5, SHA-1, 40 zero bytes, Adler-32 of the first 76.
pub fn encode_digest(md5: &[u8; 16], sha1: &[u8; 20]) -> Vec<u8> {
    let mut b = vec![0u8; DIGEST_BODY_SIZE];
    b[..16].copy_from_slice(md5);
    b[16..36].copy_from_slice(sha1);
    let sum = adler32(&b[..76]);
    b[76..80].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Decodes the `digest` body into MD5, SHA-1 and whether its Adler-32 matches.
pub fn decode_digest(b: &[u8]) -> Result<([u8; 16], [u8; 20], bool), String> {
    if b.len() < DIGEST_BODY_SIZE {
        return Err(format!("digest body is {} bytes, need 80", b.len()));
    }
    let mut md5 = [0u8; 16];
    md5.copy_from_slice(&b[..16]);
    let mut sha1 = [0u8; 20];
    sha1.copy_from_slice(&b[16..36]);
    Ok((md5, sha1, adler32(&b[..76]) == u32_at(b, 76)))
}

/// Case metadata as stored in `header2` / `header` (`main` category), by field identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFields {
    /// (identifier, value) pairs in stored order: `a`, `c`, `n`, `e`, `t`, `md`, `sn`, `av`,
    /// `ov`, `m`, `u`, `p`, ….
    pub fields: Vec<(String, String)>,
}

impl HeaderFields {
    /// The value of one identifier, if present.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.as_str())
    }
}

/// Makes a value safe for a header line: TAB, CR and LF have no escaping in EWF headers, so
/// each becomes a space; other control characters go too.
pub fn clean_value(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Folds a value to printable ASCII for the `header` section: accents are dropped where a
/// base letter is obvious, anything else becomes `?` (the Unicode original is in `header2`).
pub fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() {
                return c;
            }
            match c {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
                'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
                'è' | 'é' | 'ê' | 'ë' => 'e',
                'È' | 'É' | 'Ê' | 'Ë' => 'E',
                'ì' | 'í' | 'î' | 'ï' => 'i',
                'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
                'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
                'ù' | 'ú' | 'û' | 'ü' => 'u',
                'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
                'ç' => 'c',
                'Ç' => 'C',
                'ñ' => 'n',
                'Ñ' => 'N',
                'ý' | 'ÿ' => 'y',
                'Ý' => 'Y',
                'ß' => 's',
                _ => '?',
            }
        })
        .collect()
}

/// The `header2` text (EnCase 6 layout, 17 lines, LF, TAB-separated), before UTF-16 encoding.
/// `main` holds (identifier, value) pairs in the order they are written.
pub fn header2_text(main: &[(&str, String)]) -> String {
    let ids: Vec<&str> = main.iter().map(|(k, _)| *k).collect();
    let vals: Vec<String> = main.iter().map(|(_, v)| clean_value(v)).collect();
    format!(
        "3\nmain\n{}\n{}\n\nsrce\n0\t1\np\tn\tid\tev\ttb\tlo\tpo\tah\tgu\taq\n0\t0\n\t\t\t\t\t-1\t-1\t\t\t\n\nsub\n0\t1\np\tn\tid\tnu\tco\tgu\n0\t0\n\t\t\t\t1\t\n\n",
        ids.join("\t"),
        vals.join("\t")
    )
}

/// UTF-16LE with a byte-order mark, as `header2` stores its text.
pub fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut b = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        b.extend_from_slice(&u.to_le_bytes());
    }
    b
}

/// The `header` text (one category, CRLF, ASCII only).
pub fn header_text(main: &[(&str, String)]) -> String {
    let ids: Vec<&str> = main.iter().map(|(k, _)| *k).collect();
    let vals: Vec<String> = main
        .iter()
        .map(|(_, v)| ascii_fold(&clean_value(v)))
        .collect();
    format!(
        "1\r\nmain\r\n{}\r\n{}\r\n\r\n",
        ids.join("\t"),
        vals.join("\t")
    )
}

/// Decodes the (inflated) bytes of a `header2` or `header` section: UTF-16 when it starts
/// with a byte-order mark, otherwise a single-byte code page (read as Latin-1).
pub fn decode_header_text(b: &[u8]) -> String {
    if b.len() >= 2 && (b[..2] == [0xFF, 0xFE] || b[..2] == [0xFE, 0xFF]) {
        let le = b[0] == 0xFF;
        let units: Vec<u16> = b[2..]
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        b.iter().map(|&c| c as char).collect()
    }
}

/// Finds the `main` category in header text and pairs its identifiers with its values.
pub fn parse_header_fields(text: &str) -> Option<HeaderFields> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let at = lines.iter().position(|l| *l == "main")?;
    let ids = lines.get(at + 1)?;
    let vals = lines.get(at + 2).copied().unwrap_or("");
    let mut values = vals.split('\t');
    let fields = ids
        .split('\t')
        .map(|id| {
            (
                id.to_string(),
                values.next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Some(HeaderFields { fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trip() {
        let b = encode_descriptor(SectionType::Table2, 1234, 567);
        let d = decode_descriptor(&b).unwrap();
        assert_eq!(d.type_name, "table2");
        assert_eq!((d.next, d.size, d.checksum_ok), (1234, 567, true));
        let mut bad = b;
        bad[20] ^= 1;
        assert!(!decode_descriptor(&bad).unwrap().checksum_ok);
    }

    #[test]
    fn table_count_is_bounded_by_body() {
        let mut b = encode_table(13, &[76, 200]);
        assert_eq!(decode_table(&b).unwrap().entries, vec![76, 200]);
        b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_table(&b).is_err());
    }

    #[test]
    fn error2_merges_and_keeps_what_does_not_fit() {
        let runs = [
            BadRun {
                offset: 1024,
                length: 512,
                errno: 5,
                attempts: 1,
            },
            BadRun {
                offset: 1536,
                length: 1000,
                errno: 5,
                attempts: 1,
            },
            BadRun {
                offset: (1u64 << 32) * 512 - 512,
                length: 1024,
                errno: 5,
                attempts: 1,
            },
        ];
        let (e, rest) = error2_entries(&runs, 512);
        assert_eq!(
            e,
            vec![
                Error2Entry {
                    first_sector: 2,
                    sector_count: 3
                },
                Error2Entry {
                    first_sector: u32::MAX,
                    sector_count: 1
                }
            ]
        );
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].offset, (1u64 << 32) * 512);
        assert_eq!(rest[0].length, 512);
    }

    #[test]
    fn header_text_round_trip() {
        let main = vec![("a", "Jürgen's\tdisk".to_string()), ("c", "42".to_string())];
        let t = header2_text(&main);
        let f = parse_header_fields(&decode_header_text(&utf16le_with_bom(&t))).unwrap();
        assert_eq!(f.get("a"), Some("Jürgen's disk"));
        assert_eq!(f.get("c"), Some("42"));
        let f = parse_header_fields(&header_text(&main)).unwrap();
        assert_eq!(f.get("a"), Some("Jurgen's disk"));
    }
}
