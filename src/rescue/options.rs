//! What the caller decides about a rescue ([`RescueOptions`]), and the read sizes and jumps
//! that follow from it for one source ([`Geometry`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::audit::SideFiles;
use crate::case::CaseMetadata;
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::reader::{EngineChoice, GiveUp};
use crate::sink::E01Settings;

/// Everything the caller decides about a rescue. [`RescueOptions::new`] gives the defaults.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RescueOptions {
    /// Output base name: the image is `BASE.raw`, the map `BASE.map`, the hash logs
    /// `BASE.md5`, `BASE.sha1`, `BASE.sha256`, the record `BASE.yaml` (written by
    /// [`rescue`], not by [`rescue_from`]).
    #[serde(with = "crate::text::path")]
    pub output: PathBuf,
    /// Write the image to this block device instead of `BASE.raw` (its first `size` bytes;
    /// unreadable sectors are written as zeros, unread areas are left as they were).
    #[serde(with = "crate::text::path::option")]
    pub target: Option<PathBuf>,
    /// Bytes per read in the copy phase; 0 means 64 KiB (GNU ddrescue's default cluster),
    /// at least one sector. Rounded up to whole sectors. Larger blocks copy healthy areas
    /// faster but make every failed block longer to trim.
    pub block_size: u64,
    /// First jump after a failed read in the first copy pass (default 64 KiB).
    pub min_skip: u64,
    /// Largest jump; 0 means 1% of the source, at least `min_skip`, at most 1 GiB.
    pub max_skip: u64,
    /// Passes over the bad sectors after scraping (default 1): each gives every bad sector
    /// one more read, alone. The map remembers how many passes were done, so asking again
    /// with a higher number runs only the extra passes.
    pub retry_passes: u32,
    /// Start afresh, replacing an existing image, map and hash logs. Without it an existing
    /// map is resumed, and an image without a map is refused.
    pub overwrite: bool,
    /// Longest time between two map saves (default 1 s).
    #[serde(serialize_with = "seconds")]
    pub map_interval: Duration,
    /// Hashes computed over the finished image (default all three).
    pub hashes: Vec<HashAlgorithm>,
    /// Extra comment lines for the map's header.
    pub map_header: Vec<String>,
    /// Case metadata for the record.
    pub case: CaseMetadata,
    /// argv, for the record.
    #[serde(skip)]
    pub command_line: Vec<String>,
    /// Also seal the finished image into an E01 set (`BASE.E01`, …) with the bad sectors in
    /// its error section (default: no).
    pub e01: Option<E01Settings>,
    /// Read like GNU ddrescue everywhere: `block_size` reads, one at a time, also on healthy
    /// stretches (default: no; see [`FAST_BLOCK_SIZE`]).
    pub careful: bool,
    /// The engine for healthy stretches: io_uring where available (`Auto`), or never
    /// (`Sync`: the copy pass grows its single reads up to [`FAST_BLOCK_SIZE`] instead).
    pub io: EngineChoice,
    /// When a source that keeps failing is given up on, as in acquire (see
    /// [`crate::reader::liveness`]); a vanished source always stops the run.
    pub give_up: GiveUp,
    /// Resume a map that names another source (default: refused, since the image would mix
    /// two disks).
    pub force_source: bool,
    /// Rescue a live source (mounted read-write, held, swap): refused without it (default
    /// off); with it, recorded in `source.live_use`.
    pub allow_live: bool,
}

/// Largest read of the copy pass on a healthy stretch. Reads are `block_size` until
/// [`CLEAN_STREAK`] bytes have read cleanly in a row, then double after each clean read; at
/// this size the stretch is streamed through io_uring with [`FAST_QUEUE_DEPTH`] reads in
/// flight, as `exhibit acquire` reads. A failure goes back to `block_size`.
pub const FAST_BLOCK_SIZE: u64 = crate::reader::DEFAULT_BLOCK_SIZE as u64;
/// Reads in flight on a healthy stretch.
pub const FAST_QUEUE_DEPTH: usize = crate::reader::DEFAULT_QUEUE_DEPTH;
/// Clean bytes in a row, read one `block_size` block at a time, before reads grow (at the
/// start of a run too: nothing is known about the disk yet). Failing areas cluster; a larger
/// failed read only costs more single-sector reads in trimming (never more reads of bad
/// sectors), but near trouble that adds up. On healthy media the first 8 MiB cost a few
/// dozen milliseconds more.
pub const CLEAN_STREAK: u64 = 8 << 20;

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl RescueOptions {
    /// The defaults, writing `BASE.raw` and `BASE.map`.
    pub fn new(output: impl Into<PathBuf>) -> Self {
        RescueOptions {
            output: output.into(),
            target: None,
            block_size: 0,
            min_skip: 64 * 1024,
            max_skip: 0,
            retry_passes: 1,
            overwrite: false,
            map_interval: Duration::from_secs(1),
            hashes: HashAlgorithm::ALL.to_vec(),
            map_header: Vec::new(),
            case: CaseMetadata::default(),
            command_line: Vec::new(),
            e01: None,
            careful: false,
            io: EngineChoice::Auto,
            give_up: GiveUp::default(),
            force_source: false,
            allow_live: false,
        }
    }

    /// `BASE` with `ext` appended (`BASE.map`, not a replaced extension).
    pub fn path_with(&self, ext: &str) -> PathBuf {
        crate::audit::with_extension(&self.output, ext)
    }

    /// The files beside the image, named after `BASE`.
    pub fn side_files(&self) -> SideFiles {
        SideFiles::new(&self.output)
    }

    /// The image path: the target device, or `BASE.raw`.
    pub fn image_path(&self) -> PathBuf {
        self.target
            .clone()
            .unwrap_or_else(|| self.side_files().raw())
    }

    /// The map path, `BASE.map`.
    pub fn map_path(&self) -> PathBuf {
        self.side_files().map()
    }

    /// The record path, `BASE.yaml`.
    pub fn record_path(&self) -> PathBuf {
        self.side_files().record()
    }
}

/// The sizes a rescue of one source works with, from its options.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    /// Source size in bytes.
    pub size: u64,
    /// Sector size: the unit of every narrowed read.
    pub ss: u64,
    /// Copy read size near trouble.
    pub block_size: u64,
    /// First jump after a failed copy read.
    pub min_skip: u64,
    /// Largest jump.
    pub max_skip: u64,
}

impl Geometry {
    /// The geometry for a source of `size` bytes in `sector`-byte sectors.
    pub fn new(opts: &RescueOptions, size: u64, sector: u32) -> Result<Self> {
        let ss = u64::from(sector.max(512));
        if !ss.is_power_of_two() {
            return Err(Error::InvalidOption(format!(
                "sector size {ss} is not a power of two"
            )));
        }
        let block_size = if opts.block_size == 0 {
            (64 * 1024u64).max(ss)
        } else {
            opts.block_size.div_ceil(ss) * ss
        };
        if block_size > 64 << 20 {
            return Err(Error::InvalidOption(format!(
                "block size {block_size} is larger than 64 MiB"
            )));
        }
        let min_skip = opts.min_skip.max(ss);
        let max_skip = if opts.max_skip == 0 {
            (size / 100).clamp(min_skip, 1 << 30)
        } else {
            opts.max_skip.max(min_skip)
        };
        Ok(Geometry {
            size,
            ss,
            block_size,
            min_skip,
            max_skip,
        })
    }
}
