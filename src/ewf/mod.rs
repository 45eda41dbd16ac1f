//! E01 (EWF-E01, EnCase 6 layout) images: the writer ([`E01Sink`]) and a structural
//! checker/reader ([`check`]) for `verify` and `info`.
//!
//! One segment set is `BASE.E01`, `BASE.E02`, … (then `.EAA` …). Layout, per
//! `shared/EWF-NOTES.md` §0/§4/§14 and docs/e01.md:
//!
//! ```text
//! E01:  header2 header2 header volume (sectors table table2)+ next
//! E0n:  data (sectors table table2)+ next
//! last: [data] (sectors table table2)+ [data if single segment] [error2] digest hash done
//! ```
//!
//! Chunks are compressed on all cores by a bounded worker pool; one writer (the sink's own
//! thread) appends them in order. Structures are encoded and decoded by the same code
//! ([`format`]) on both sides.

pub mod check;
pub mod compress;
pub mod format;
pub mod naming;
pub mod reader;
mod writer;

pub use check::{check, CheckReport};
pub use reader::{ChunkPlace, E01Image, Problem};
pub use writer::E01Sink;

use crate::case::CaseMetadata;
use crate::map::BadRun;

/// How chunks are compressed. The volume section records 0 / 1 / 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Stored raw, except all-zero chunks, which are always stored as one precomputed zlib
    /// stream (libewf's "empty block" compression: free, and it makes sparse disks small).
    None,
    /// ISA-L igzip level 2: 5–10× zlib level 1's speed per core, images at most 1 % larger
    /// than zlib level 1's (measured, docs/performance.md). The default.
    #[default]
    Fast,
    /// libdeflate level 9: smaller than zlib level 9, about 3× its speed.
    Best,
}

impl Compression {
    /// The volume section's compression level byte.
    pub fn level_byte(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Fast => 1,
            Compression::Best => 2,
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "fast" => Ok(Compression::Fast),
            "best" => Ok(Compression::Best),
            other => Err(format!("unknown compression '{other}' (none, fast, best)")),
        }
    }
}

/// Default segment size: 2000 MiB. Below 2 GiB because FTK/EnCase have not been tested here
/// with larger segments (libewf issue #67) and some old tools keep 32-bit file offsets; as
/// large as that allows because the `ewf` crate only discovers 775 segments (`.EZZ`), which
/// at 2000 MiB is 1.5 TiB of stored data. libewf's default is 1500 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 2000 * 1024 * 1024;

/// Default sectors per chunk (32 KiB chunks at 512 bytes per sector), what every tool writes.
pub const DEFAULT_SECTORS_PER_CHUNK: u32 = 64;

/// Everything the E01 writer needs to know before the first block.
#[derive(Clone, Debug)]
pub struct E01Options {
    /// Largest segment file in bytes; default [`DEFAULT_SEGMENT_SIZE`]. A segment may exceed
    /// it only by `error2` entries for unreadable runs that were not announced in blocks.
    /// Too small to hold the first segment's headers, one raw chunk and the closing sections
    /// is refused ([`crate::Error::InvalidOption`]).
    pub segment_size: u64,
    /// Chunk compression; default [`Compression::Fast`].
    pub compression: Compression,
    /// Sectors per chunk: a power of two, chunk size 8 KiB to 64 MiB; default 64 (use 8 for
    /// 4096-byte sectors to keep 32 KiB chunks).
    pub sectors_per_chunk: u32,
    /// The source's logical sector size: 512 or 4096.
    pub bytes_per_sector: u32,
    /// Media size in bytes, known up front; a multiple of `bytes_per_sector`.
    pub media_size: u64,
    /// Case metadata for `header2`/`header`.
    pub case: CaseMetadata,
    /// Media model (`md` in header2).
    pub model: Option<String>,
    /// Media serial number (`sn` in header2).
    pub serial: Option<String>,
    /// The source is a whole physical device (media flags bit 1), not a partition or file.
    pub physical_device: bool,
    /// Removable media (media type 0) rather than fixed (1).
    pub removable: bool,
    /// Acquisition time, for the `m`/`u` header fields.
    pub acquired_at: chrono::DateTime<chrono::Utc>,
    /// Compression threads; 0 = one per CPU.
    pub workers: usize,
}

impl E01Options {
    /// Options with the documented defaults for a medium of `media_size` bytes in
    /// `bytes_per_sector`-byte sectors.
    pub fn new(media_size: u64, bytes_per_sector: u32) -> Self {
        E01Options {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compression: Compression::Fast,
            sectors_per_chunk: DEFAULT_SECTORS_PER_CHUNK,
            bytes_per_sector,
            media_size,
            case: CaseMetadata::default(),
            model: None,
            serial: None,
            physical_device: true,
            removable: false,
            acquired_at: chrono::Utc::now(),
            workers: 0,
        }
    }
}

/// The unreadable runs that `error2` cannot address (sectors at or beyond 2^32, i.e. past
/// 2 TiB at 512-byte sectors), as byte runs. [`E01Sink::finish`] records every addressable
/// run in `error2`; the job must report these others loudly in the log and the record.
/// This is the same computation the sink does, so calling it on the summary is exact.
pub fn unaddressable_runs(unreadable: &[BadRun], bytes_per_sector: u32) -> Vec<BadRun> {
    format::error2_entries(unreadable, bytes_per_sector).1
}
