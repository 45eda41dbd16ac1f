//! Rescue mode for dying disks: read the easy areas first, come back for the hard ones, and
//! keep the map on disk all the time so that a killed run resumes where it stopped.
//!
//! GNU ddrescue's job, with its mapfile format, in passes over the [`SectorMap`]:
//!
//! 1. **Copy** (`?` areas). Blocks of [`RescueOptions::block_size`] in order; a read that
//!    fails marks its block *non-trimmed* (`*`) and the copy jumps ahead (64 KiB, doubling
//!    after each further failure up to [`RescueOptions::max_skip`]), because a failing disk
//!    is slowest and most fragile exactly where it fails. A second copy pass reads what was
//!    jumped over, without jumping.
//! 2. **Trim** (`*` areas). Sector by sector from the leading edge forwards until a sector
//!    fails, then from the trailing edge backwards until a sector fails; what lies between
//!    becomes *non-scraped* (`/`). Each failed sector is *bad* (`-`).
//! 3. **Scrape** (`/` areas). Every remaining sector alone, once.
//! 4. **Retry** ([`RescueOptions::retry_passes`] passes over the `-` sectors). A sector that
//!    reads is rescued; one that never reads stays bad and is zeros in the image.
//!
//! Near trouble only one read is in flight: the block layer merges adjacent reads that are in
//! flight together, so a sector is called bad only after a read of that sector *alone* failed.
//! Healthy stretches go faster: after [`CLEAN_STREAK`] clean bytes in a row, copy reads double
//! while they succeed up to [`FAST_BLOCK_SIZE`], and then a [`StretchReader`] (io_uring)
//! streams the stretch with several reads in flight.
//! A failed read there is treated like any failed copy block: marked non-trimmed, so its bad
//! sectors are found by single-sector reads and none is read more often than with small blocks.
//!
//! The map (`BASE.map`) is the whole state. Data is written to the image first, the image is
//! synced, and only then the map is replaced atomically (temp file, fsync, rename), at least
//! every [`RescueOptions::map_interval`], at every phase change, on interruption and at the
//! end. So a `kill -9` loses at most the reads of the last interval, and running the same
//! command again resumes from the map without reading anything it marks finished. A mapfile
//! written by GNU ddrescue resumes the same way.
//!
//! The hashes (MD5, SHA-1, SHA-256) follow the image as it settles, on background threads
//! (`rescue/hashing.rs`); when nothing is left to read, the rest is hashed and the hash logs are
//! written next to it. The library never prints: progress is [`RescueProgress`], read
//! by the caller's own thread.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use exhibit::rescue::{rescue, RescueOptions, RescueProgress};
//! use exhibit::source::Source;
//!
//! let source = Source::open("/dev/sdb".as_ref(), true)?;
//! let opts = RescueOptions::new("case42/disk");
//! let progress = RescueProgress::default();
//! let interrupted = AtomicBool::new(false);
//! let report = rescue(&source, &opts, &progress, &interrupted)?;
//! println!("{} bytes unreadable", report.bad_bytes);
//! # Ok::<(), exhibit::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::audit::{
    hash_logs, write_map, HashInfo, JobKind, Outcome, ReaderInfo, RecordBuilder, SideFiles,
    Started, Throughput,
};
use crate::buffer::AlignedBuf;

mod hashing;
use crate::block::Block;
use crate::buffer::BufferPool;
use crate::case::CaseMetadata;
use crate::error::{Error, Result};
use crate::hash::{HashAlgorithm, MediaHashes};
use crate::map::{BadRun, BlockState, SectorMap};
use crate::reader::recover::ReadAt;
use crate::reader::{EngineChoice, EngineKind, RangeStreamer, ReaderOptions, StreamEnd};
use crate::sink::{open_target, ImageFile, OutputFile};
use crate::source::Source;
use hashing::RunningHash;

/// What the rescue reads from: a [`Source`] in production, an in-memory fake in tests. The
/// reads are the acquire reader's [`ReadAt`] (which may answer short: a FUSE-backed file
/// does); a rescue also needs the sector size, the unit of every narrowed read.
///
/// Reads are positioned, sector-aligned (offset and length) and go into 4096-aligned
/// buffers, so an O_DIRECT source is read without the page cache.
pub trait SectorReader: ReadAt {
    /// Logical sector size.
    fn sector_size(&self) -> u32;
}

impl SectorReader for Source {
    fn sector_size(&self) -> u32 {
        self.logical_sector_size()
    }
}

/// Large reads of a healthy stretch, several in flight: io_uring in production
/// ([`RangeStreamer`]).
pub trait StretchReader {
    /// Bytes per read.
    fn block_size(&self) -> u64;
    /// Reads `start..end` and hands on each block that reads, in order, until the first media
    /// error (see [`StreamEnd`]).
    fn stream(
        &mut self,
        start: u64,
        end: u64,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd>;
}

impl StretchReader for RangeStreamer<'_> {
    fn block_size(&self) -> u64 {
        RangeStreamer::block_size(self)
    }

    fn stream(
        &mut self,
        start: u64,
        end: u64,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd> {
        // Interruption is seen between blocks, where the map can be saved first.
        let never = AtomicBool::new(false);
        RangeStreamer::stream(self, start, end, &never, emit)
    }
}

/// True for the errors that mean "this range of the medium cannot be read" (and so go into
/// the map), as opposed to a refused request or a vanished device (which stop the job): the
/// same list as the acquire reader's, [`crate::reader::is_media_error`].
pub fn is_media_error(e: &io::Error) -> bool {
    e.raw_os_error().is_some_and(crate::reader::is_media_error)
}

/// Everything the caller decides about a rescue. [`RescueOptions::new`] gives the defaults.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RescueOptions {
    /// Output base name: the image is `BASE.raw`, the map `BASE.map`, the hash logs
    /// `BASE.md5`, `BASE.sha1`, `BASE.sha256`, the record `BASE.yaml` (written by
    /// [`rescue`], not by [`rescue_from`]).
    pub output: PathBuf,
    /// Write the image to this block device instead of `BASE.raw` (its first `size` bytes;
    /// unreadable sectors are written as zeros, unread areas are left as they were).
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
    pub e01: Option<crate::sink::E01Settings>,
    /// Read like GNU ddrescue everywhere: `block_size` reads, one at a time, also on healthy
    /// stretches (default: no; see [`FAST_BLOCK_SIZE`]).
    pub careful: bool,
    /// The engine for healthy stretches: io_uring where available (`Auto`), or never
    /// (`Sync`: the copy pass grows its single reads up to [`FAST_BLOCK_SIZE`] instead).
    pub io: EngineChoice,
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

/// Which phase a rescue is in (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Phase {
    /// Opening, loading the map.
    Starting = 0,
    /// Copying untried areas in large blocks.
    Copying = 1,
    /// Trimming the edges of failed blocks.
    Trimming = 2,
    /// Reading the inside of failed blocks sector by sector.
    Scraping = 3,
    /// Giving bad sectors more reads.
    Retrying = 4,
    /// Hashing the finished image.
    Hashing = 5,
    /// Done.
    Finished = 6,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Copying,
            2 => Phase::Trimming,
            3 => Phase::Scraping,
            4 => Phase::Retrying,
            5 => Phase::Hashing,
            6 => Phase::Finished,
            _ => Phase::Starting,
        }
    }

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Copying => "copying",
            Phase::Trimming => "trimming",
            Phase::Scraping => "scraping",
            Phase::Retrying => "retrying",
            Phase::Hashing => "hashing",
            Phase::Finished => "finished",
        }
    }
}

/// Live progress of a rescue, updated by the job after every read and read by any other
/// thread (a progress bar, a log line every minute) without locks.
#[derive(Debug, Default)]
pub struct RescueProgress {
    phase: AtomicU8,
    /// Pass number within the phase (1-based; the retry pass while retrying).
    pub pass: AtomicU32,
    /// Source size in bytes.
    pub size: AtomicU64,
    /// Byte offset of the current read.
    pub position: AtomicU64,
    /// Bytes read and in the image (`+`).
    pub rescued: AtomicU64,
    /// Bytes in bad sectors (`-`).
    pub bad_bytes: AtomicU64,
    /// Number of separate bad areas (runs of `-`).
    pub bad_areas: AtomicU64,
    /// Bytes not tried yet (`?`).
    pub non_tried: AtomicU64,
    /// Bytes in failed blocks still to trim or scrape (`*` and `/`).
    pub pending: AtomicU64,
    /// Reads issued by this run.
    pub reads: AtomicU64,
    /// Reads that failed with a media error in this run.
    pub read_errors: AtomicU64,
    /// Bytes hashed so far in the hashing phase.
    pub hashed: AtomicU64,
}

impl RescueProgress {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    fn set_phase(&self, phase: Phase, pass: u32) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        self.pass.store(pass, Ordering::Relaxed);
    }

    fn update_from(&self, map: &SectorMap) {
        self.rescued
            .store(map.bytes_in(BlockState::Finished), Ordering::Relaxed);
        self.bad_bytes
            .store(map.bytes_in(BlockState::BadSector), Ordering::Relaxed);
        self.non_tried
            .store(map.bytes_in(BlockState::NonTried), Ordering::Relaxed);
        self.pending.store(
            map.bytes_in(BlockState::NonTrimmed) + map.bytes_in(BlockState::NonScraped),
            Ordering::Relaxed,
        );
    }
}

/// What a rescue run did and what the image now holds.
#[derive(Clone, Debug)]
pub struct RescueReport {
    /// The image (`BASE.raw` or the target device).
    pub image: PathBuf,
    /// The map, `BASE.map`.
    pub map: PathBuf,
    /// Source size in bytes.
    pub size: u64,
    /// Logical sector size the rescue worked in.
    pub sector_size: u32,
    /// True when this run continued an existing map (ours or GNU ddrescue's).
    pub resumed: bool,
    /// True when every phase is done: nothing left to read, hashes computed. Then the image
    /// is final, and is what an E01 conversion (`--format e01`) would read: the E01 writer
    /// takes `image` as its source, with `bad_runs` for its error section.
    pub complete: bool,
    /// Bytes read and in the image.
    pub rescued_bytes: u64,
    /// Bytes in bad sectors (zeros in the image).
    pub bad_bytes: u64,
    /// The bad sectors, merged into runs. `errno` and `attempts` describe this run's reads;
    /// a run inherited from a resumed map that this run did not read has errno 0.
    pub bad_runs: Vec<BadRun>,
    /// Media hashes of the image (unreadable sectors as zeros), when complete.
    pub hashes: MediaHashes,
    /// The hash logs written (`BASE.md5` …), when complete.
    pub hash_logs: Vec<PathBuf>,
    /// The shell command that checks each hash log, in the same order.
    pub hash_checks: Vec<String>,
    /// Reads issued by this run, and how many failed.
    pub reads: u64,
    /// Reads that failed with a media error in this run.
    pub read_errors: u64,
    /// Retry passes done in total (over all runs on this map).
    pub retry_passes_done: u32,
    /// When this run started.
    pub started: SystemTime,
    /// When it ended.
    pub finished: SystemTime,
}

/// Refuses, before any reading, an E01 request that could not be honoured at the end: an
/// existing set (without `--overwrite`), one on the source, or a source of partial sectors.
fn refuse_e01_up_front(source: &Source, opts: &RescueOptions) -> Result<()> {
    let sector = u64::from(source.logical_sector_size());
    if source.size() % sector != 0 {
        return Err(Error::InvalidOption(format!(
            "E01 stores whole {sector}-byte sectors and the source is {} bytes; rescue without --format e01",
            source.size()
        )));
    }
    if let Some(first) = crate::ewf::naming::segment_path(&opts.output, 1) {
        source.refuse_output_on_source(&first)?;
        if !opts.overwrite {
            crate::sink::raw::refuse_existing(&first)?;
        }
    }
    Ok(())
}

/// Converts the finished image into an E01 set, with the rescue's bad runs in `error2`.
fn seal_into_e01(
    source: &Source,
    opts: &RescueOptions,
    settings: &crate::sink::E01Settings,
    report: &RescueReport,
    interrupted: &AtomicBool,
) -> Result<Vec<OutputFile>> {
    // The finished image is the source's size in the source's sectors.
    let e = settings.options_for(source, &opts.case);
    crate::ewf::convert::raw_to_e01(
        &report.image,
        &opts.output,
        e,
        opts.overwrite,
        &report.hashes,
        &report.bad_runs,
        interrupted,
    )
}

/// Rescues `source` to `BASE.raw` (or the target device) and `BASE.map`, resuming from an
/// existing map. Returns when everything is done, or with [`Error::Interrupted`] once
/// `interrupted` is seen (after saving the map: run again to continue).
pub fn rescue(
    source: &Source,
    opts: &RescueOptions,
    progress: &RescueProgress,
    interrupted: &AtomicBool,
) -> Result<RescueReport> {
    for path in [opts.image_path(), opts.map_path(), opts.record_path()] {
        source.refuse_output_on_source(&path)?;
    }
    if opts.e01.is_some() {
        refuse_e01_up_front(source, opts)?;
    }
    let started = Started::now();
    let cpu_start = crate::cputime::process_seconds();
    let fast = ReaderOptions {
        block_size: FAST_BLOCK_SIZE as usize,
        queue_depth: FAST_QUEUE_DEPTH,
        engine: opts.io,
        retries: 0,
        direct: true,
    };
    let pool = (!opts.careful && opts.io != EngineChoice::Sync)
        .then(|| BufferPool::new(fast.pool_buffers(), fast.block_size));
    let (mut streamer, engine_note) = match &pool {
        None if opts.careful => (None, "--careful".to_string()),
        None => (None, "--io sync".to_string()),
        Some(pool) => match RangeStreamer::new(source, &fast, pool) {
            Ok(s) => (Some(s), String::new()),
            Err(e) if opts.io == EngineChoice::Uring => return Err(e),
            Err(e) => (None, e.to_string()),
        },
    };
    let mut job = Job::open(
        source,
        source.path(),
        opts,
        progress,
        interrupted,
        streamer.as_mut().map(|s| s as &mut dyn StretchReader),
    )?;
    let mut record = RecordBuilder::start(
        JobKind::Rescue,
        source,
        opts,
        &opts.case,
        &opts.command_line,
        started,
        opts.record_path(),
    );
    record.record_mut().reader = Some(reader_info(source, opts, job.block_size, &engine_note));
    record.write()?;
    let result = job.run_saving();
    let sector = job.ss;
    if let Err(e) = result {
        record.record_mut().outputs = vec![job.output_file()];
        record.set_unreadable(&job.bad_runs(), sector, job.map_path.clone());
        let _ = record.finish(&Outcome::from_error(&e));
        return Err(e);
    }
    let output = job.output_file();
    let report = job.finish(started.utc.into())?;
    record.record_mut().outputs = vec![output];
    if let (Some(settings), true) = (&opts.e01, report.complete) {
        match seal_into_e01(source, opts, settings, &report, interrupted) {
            Ok(files) => record.record_mut().outputs.extend(files),
            Err(e) => {
                // Sealing starts again from the finished image: not a resume of the map.
                let _ = record.finish(&Outcome::Failed(e.to_string()));
                return Err(e);
            }
        }
    }
    record.set_unreadable(&report.bad_runs, sector, report.map.clone());
    let zero_filled_sectors = report.bad_bytes.div_ceil(sector);
    let seconds = record.elapsed();
    let rec = record.record_mut();
    rec.hashes = Some(HashInfo::new(
        &report.hashes,
        report.size,
        report.bad_bytes,
        zero_filled_sectors,
        "rescued",
        report.hash_logs.clone(),
        report.hash_checks.clone(),
    ));
    rec.throughput = Some(Throughput::new(
        report.size,
        seconds,
        [(
            "total".to_string(),
            crate::cputime::process_seconds() - cpu_start,
        )]
        .into_iter()
        .collect(),
    ));
    record.finish(&Outcome::complete(report.bad_bytes != 0))?;
    Ok(report)
}

/// How a rescue run reads, for the record.
fn reader_info(
    source: &Source,
    opts: &RescueOptions,
    block_size: u64,
    engine_note: &str,
) -> ReaderInfo {
    ReaderInfo {
        engine: if engine_note.is_empty() {
            EngineKind::Uring
        } else {
            EngineKind::Sync
        },
        engine_reason: engine_reason(block_size, engine_note),
        direct_io: source.is_direct(),
        block_size: block_size as usize,
        queue_depth: if engine_note.is_empty() {
            FAST_QUEUE_DEPTH
        } else {
            1
        },
        retries: opts.retry_passes,
    }
}

/// How the rescue reads, for the record. `note` is empty when healthy stretches go through
/// io_uring, else why they do not.
fn engine_reason(block_size: u64, note: &str) -> String {
    let near = format!(
        "near failures one read of {} at a time, so the block layer never merges a failing read \
         with its neighbours",
        size_name(block_size)
    );
    let fast = size_name(FAST_BLOCK_SIZE);
    match note {
        "" => format!(
            "healthy stretches through io_uring, {FAST_QUEUE_DEPTH} reads of {fast} in flight; {near}"
        ),
        "--careful" => format!("--careful: {near}, and everywhere else too"),
        why => format!("healthy stretches in single reads growing to {fast} ({why}); {near}"),
    }
}

/// `1 MiB`, `64 KiB`, `512 bytes`.
fn size_name(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1024 && n % 1024 == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// [`rescue`] from any [`SectorReader`]; `source_path` names it in errors. `stretch` reads
/// healthy stretches fast (none: single reads that grow to [`FAST_BLOCK_SIZE`]).
pub fn rescue_from<'a, R: SectorReader + ?Sized>(
    reader: &'a R,
    source_path: &'a Path,
    opts: &'a RescueOptions,
    progress: &'a RescueProgress,
    interrupted: &'a AtomicBool,
    stretch: Option<&'a mut dyn StretchReader>,
) -> Result<RescueReport> {
    let started = SystemTime::now();
    let mut job = Job::open(reader, source_path, opts, progress, interrupted, stretch)?;
    job.run_saving()?;
    job.finish(started)
}

/// Room for gathered small image writes (see `Job::write_image`).
const STAGED_BYTES: usize = 1 << 20;

/// Neighbouring image bytes read but not yet written: `lo..hi` of the image, held at
/// `buf[lo - base..hi - base]`.
struct Staged {
    buf: AlignedBuf,
    base: u64,
    lo: u64,
    hi: u64,
}

/// Settled bytes worth waking the hash threads for at once.
const HASH_BATCH: u64 = 4 << 20;
/// Longest wait before a smaller settled piece is hashed anyway.
const HASH_PAUSE: Duration = Duration::from_millis(250);

/// Map header line that records how many retry passes are done.
const RETRY_DONE_KEY: &str = "exhibit-retry-passes-done:";

struct Job<'a, R: SectorReader + ?Sized> {
    reader: &'a R,
    source_path: &'a Path,
    opts: &'a RescueOptions,
    progress: &'a RescueProgress,
    interrupted: &'a AtomicBool,
    size: u64,
    ss: u64,
    block_size: u64,
    max_skip: u64,
    map: SectorMap,
    map_path: PathBuf,
    image_path: PathBuf,
    /// The image, with an O_DIRECT descriptor for the large aligned writes of healthy
    /// stretches (page-cache writes cost the CPU the hashers need) where there are any.
    image: ImageFile,
    /// Large reads for healthy stretches, if available and allowed.
    stretch: Option<&'a mut dyn StretchReader>,
    /// The hashes, computed as the image settles.
    hash: Option<RunningHash>,
    /// Small image writes gathered into one.
    staged: Staged,
    last_hash_advance: Instant,
    resumed: bool,
    retry_done: u32,
    last_save: Instant,
    last_progress: Instant,
    dirty: bool,
    buf: AlignedBuf,
    zeros: AlignedBuf,
    /// Per failed sector of this run: (last errno, failed reads).
    failures: BTreeMap<u64, (i32, u32)>,
    reads: u64,
    read_errors: u64,
}

/// What a step of the copy pass did.
enum Copied {
    /// Everything up to `end` read.
    Clean { end: u64 },
    /// A read failed: `at..end` was not read alone and goes to trimming.
    Failed { at: u64, end: u64 },
}

enum ReadOutcome {
    /// Everything read and written to the image.
    Ok,
    /// A media error in the read that started at `at` (what came before is in the image
    /// and the map as finished).
    Bad { at: u64 },
}

impl<'a, R: SectorReader + ?Sized> Job<'a, R> {
    fn open(
        reader: &'a R,
        source_path: &'a Path,
        opts: &'a RescueOptions,
        progress: &'a RescueProgress,
        interrupted: &'a AtomicBool,
        stretch: Option<&'a mut dyn StretchReader>,
    ) -> Result<Self> {
        let size = reader.size();
        let ss = u64::from(reader.sector_size().max(512));
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
        let map_path = opts.map_path();
        let image_path = opts.image_path();
        let side = opts.side_files();
        let hash_paths: Vec<PathBuf> = HashAlgorithm::ALL
            .iter()
            .map(|&a| side.hash_log(a))
            .collect();

        let existing_map = if opts.overwrite {
            None
        } else {
            match std::fs::read_to_string(&map_path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io(&map_path, e)),
            }
        };

        // A target device is claimed first, exactly as `acquire --clone` claims its own: not
        // a device, in use or too small is refused before anything is read or written.
        let target = match &opts.target {
            Some(dev) => Some(open_target(dev, size, true, "--target")?),
            None => None,
        };
        let is_device = target.is_some();

        let (map, resumed, retry_done) = match existing_map {
            Some(text) => {
                let mut map = SectorMap::parse(&text, &map_path)?;
                if map.size() != size {
                    return Err(Error::Refused(format!(
                        "{} maps {} bytes but {} has {size}; is it the map of another source?",
                        map_path.display(),
                        map.size(),
                        source_path.display()
                    )));
                }
                if !is_device && !image_path.exists() && map.bytes_in(BlockState::NonTried) != size
                {
                    return Err(Error::Refused(format!(
                        "{} says {} bytes were rescued, but the image {} is missing",
                        map_path.display(),
                        map.bytes_in(BlockState::Finished),
                        image_path.display()
                    )));
                }
                align_to_sectors(&mut map, ss);
                let retry_done = text
                    .lines()
                    .filter_map(|l| {
                        l.trim_start_matches('#')
                            .trim()
                            .strip_prefix(RETRY_DONE_KEY)
                    })
                    .filter_map(|v| v.trim().parse().ok())
                    .next_back()
                    .unwrap_or(0);
                (map, true, retry_done)
            }
            None => {
                if !opts.overwrite {
                    let record = opts.record_path();
                    let mut clash: Vec<&Path> = hash_paths
                        .iter()
                        .chain(std::iter::once(&record))
                        .map(PathBuf::as_path)
                        .filter(|p| p.exists())
                        .collect();
                    if !is_device && image_path.exists() {
                        clash.insert(0, &image_path);
                    }
                    if let Some(p) = clash.first() {
                        return Err(Error::Refused(format!(
                            "{} exists and there is no map {} to resume from; use --overwrite to start afresh",
                            p.display(),
                            map_path.display()
                        )));
                    }
                }
                (SectorMap::new(size, BlockState::NonTried), false, 0)
            }
        };

        let image = match target {
            Some(device) => device,
            None => {
                let mut oo = OpenOptions::new();
                oo.read(true).write(true).create(true);
                if !resumed {
                    oo.truncate(true);
                }
                let f = oo
                    .open(&image_path)
                    .map_err(|e| Error::io(&image_path, e))?;
                let len = f.metadata().map_err(|e| Error::io(&image_path, e))?.len();
                if len != size {
                    // Sparse: unread areas take no space and read as zeros.
                    f.set_len(size).map_err(|e| Error::io(&image_path, e))?;
                }
                let direct = stretch
                    .as_ref()
                    .and_then(|_| ImageFile::open_direct(&image_path));
                ImageFile::new(&image_path, f, direct)
            }
        };
        if opts.overwrite {
            for p in hash_paths.iter().chain([&opts.record_path()]) {
                let _ = std::fs::remove_file(p);
            }
        }

        // Only streamed blocks are written through O_DIRECT.
        let image = if stretch.is_some() {
            image
        } else {
            image.buffered_only()
        };
        let mut hash = RunningHash::start(&opts.hashes, image.file(), &image_path)?;
        hash.confine(true);
        let mut zeros = AlignedBuf::new(ss as usize);
        zeros.fill(0);
        progress.size.store(size, Ordering::Relaxed);
        progress.update_from(&map);
        progress.bad_areas.store(
            map.blocks_in(BlockState::BadSector).count() as u64,
            Ordering::Relaxed,
        );
        let mut job = Job {
            reader,
            source_path,
            opts,
            progress,
            interrupted,
            size,
            ss,
            block_size,
            max_skip,
            map,
            map_path,
            image_path,
            image,
            stretch,
            hash: Some(hash),
            staged: Staged {
                buf: AlignedBuf::new(STAGED_BYTES),
                base: 0,
                lo: 0,
                hi: 0,
            },
            last_hash_advance: Instant::now(),
            resumed,
            retry_done,
            last_save: Instant::now(),
            last_progress: Instant::now(),
            dirty: false,
            // Room for the largest read: copy reads grow up to FAST_BLOCK_SIZE.
            buf: AlignedBuf::new(block_size.max(FAST_BLOCK_SIZE) as usize),
            zeros,
            failures: BTreeMap::new(),
            reads: 0,
            read_errors: 0,
        };
        if !resumed {
            job.save_map()?;
        }
        Ok(job)
    }

    fn min_skip(&self) -> u64 {
        self.opts.min_skip.max(self.ss)
    }

    /// [`Job::run`], saving the map also when a real failure (not a bad sector) stops the
    /// job, so that a resumed run keeps everything read since the last save.
    fn run_saving(&mut self) -> Result<()> {
        let result = self.run();
        if let Err(e) = &result {
            if !matches!(e, Error::Interrupted(_)) {
                // Best effort: the map never claims more than the image holds, even if this
                // fails too (a full target fails the sync, and the old map stays).
                let _ = self.save_map();
            }
        }
        result
    }

    fn run(&mut self) -> Result<()> {
        use BlockState::*;
        // Copy: pass 1 jumps past trouble, pass 2 reads what was jumped over.
        if self.map.any_in(&[NonTried]) {
            let (status, pass, pos) = self.status();
            let resume_pass = if status == '?' && pass == 2 { 2 } else { 1 };
            for pass in resume_pass..=2 {
                let from = if status == '?' && pass == resume_pass {
                    pos
                } else {
                    0
                };
                self.copy_pass(pass, from)?;
            }
            // A pass resumed in the middle (or a foreign map's notion of a position) may
            // leave untried areas before it: read them too.
            while self.map.any_in(&[NonTried]) {
                self.copy_pass(2, 0)?;
            }
        }
        if self.map.any_in(&[NonTrimmed]) {
            self.trim()?;
        }
        if self.map.any_in(&[NonScraped]) {
            self.scrape()?;
        }
        // Retry passes, continuing one that was cut short.
        let (status, pass, pos) = self.status();
        let mut first = self.retry_done + 1;
        let mut from = 0;
        if status == '-' && pass >= first {
            first = pass;
            from = pos;
        }
        for pass in first..=self.opts.retry_passes {
            if !self.map.any_in(&[BadSector]) {
                break;
            }
            self.retry_pass(pass, from)?;
            from = 0;
            self.retry_done = pass;
        }
        self.map.current_status = '+';
        self.map.current_pos = self.size;
        self.map.current_pass = 1;
        self.save_map()
    }

    fn status(&self) -> (char, u32, u64) {
        (
            self.map.current_status,
            self.map.current_pass,
            self.map.current_pos,
        )
    }

    /// Starts a pass at `from`: saved at once, so a resumed run knows where this pass is.
    fn begin(&mut self, phase: Phase, status: char, pass: u32, from: u64) -> Result<()> {
        self.progress.set_phase(phase, pass);
        self.map.current_status = status;
        self.map.current_pass = pass;
        self.map.current_pos = from;
        self.save_map()
    }

    fn copy_pass(&mut self, pass: u32, from: u64) -> Result<()> {
        self.begin(Phase::Copying, '?', pass, from)?;
        let skipping = pass == 1;
        let min_skip = self.min_skip();
        let mut skip = min_skip;
        let mut pos = from;
        // Reads grow while they succeed (see FAST_BLOCK_SIZE) and fall back to block_size
        // at the first failure.
        let mut span = self.block_size;
        let mut clean = 0u64;
        while let Some(b) = self.map.next_in(BlockState::NonTried, pos) {
            self.checkpoint(b.pos)?;
            // Several reads in flight only well clear of trouble: a failure there leaves up to
            // FAST_QUEUE_DEPTH blocks to trim sector by sector.
            let stream = span >= FAST_BLOCK_SIZE && clean >= CLEAN_STREAK;
            let copied = if stream && self.stretch.is_some() {
                match self.stream_stretch(b.pos, b.end())? {
                    StreamEnd::Done => Copied::Clean { end: b.end() },
                    StreamEnd::Failed {
                        offset,
                        len,
                        also_failed,
                        ..
                    } => {
                        // Reads that were in flight with it and failed too go to trimming as
                        // well: read again as copy blocks, their bad sectors would be read
                        // once more than ddrescue reads them. (One that only failed for
                        // sharing a merged request costs single reads of good sectors.)
                        for (at, n) in also_failed {
                            self.map.set(at, n, BlockState::NonTrimmed);
                        }
                        Copied::Failed {
                            at: offset,
                            end: offset + len,
                        }
                    }
                }
            } else {
                // Reads stay on the grid of their size, so one bad sector costs one failed
                // read.
                let grid_end = (b.pos / span + 1) * span;
                let end = b.end().min(grid_end);
                match self.read(b.pos, end - b.pos)? {
                    ReadOutcome::Ok => {
                        self.map.set(b.pos, end - b.pos, BlockState::Finished);
                        self.changed();
                        Copied::Clean { end }
                    }
                    ReadOutcome::Bad { at } => Copied::Failed { at, end },
                }
            };
            match copied {
                Copied::Clean { end } => {
                    clean += end - b.pos;
                    skip = min_skip;
                    pos = end;
                    if !self.opts.careful && clean >= CLEAN_STREAK {
                        span = (span * 2).min(FAST_BLOCK_SIZE.max(self.block_size));
                    }
                }
                Copied::Failed { at, end } => {
                    // Never read alone: trimming finds the bad sectors in it.
                    self.map.set(at, end - at, BlockState::NonTrimmed);
                    self.changed();
                    clean = 0;
                    span = self.block_size;
                    pos = end;
                    if skipping {
                        pos = (end + skip).div_ceil(self.ss) * self.ss;
                        skip = (skip * 2).min(self.max_skip);
                    }
                }
            }
        }
        Ok(())
    }

    /// Streams the untried stretch `start..end` through the fast reader: every block that
    /// reads goes to the image, the map and the hashes as it arrives.
    fn stream_stretch(&mut self, start: u64, end: u64) -> Result<StreamEnd> {
        let Some(stretch) = self.stretch.take() else {
            return Ok(StreamEnd::Done);
        };
        if let Some(h) = &mut self.hash {
            h.confine(false);
        }
        let result = stretch.stream(start, end, &mut |block| self.take_block(block));
        self.stretch = Some(stretch);
        if let Some(h) = &mut self.hash {
            h.confine(true);
        }
        let outcome = result?;
        if let StreamEnd::Failed {
            offset,
            also_failed,
            ..
        } = &outcome
        {
            let failed = 1 + also_failed.len() as u64;
            self.count_reads(failed, *offset);
            self.count_failures(failed);
        }
        Ok(outcome)
    }

    /// `n` reads issued, the last at `at`: for the report and the progress display.
    fn count_reads(&mut self, n: u64, at: u64) {
        self.reads += n;
        self.progress.reads.fetch_add(n, Ordering::Relaxed);
        self.progress.position.store(at, Ordering::Relaxed);
    }

    /// `n` of them failed with a media error.
    fn count_failures(&mut self, n: u64) {
        self.read_errors += n;
        self.progress.read_errors.fetch_add(n, Ordering::Relaxed);
    }

    /// One block of a healthy stretch, read: into the image, then the map, then the hashes.
    fn take_block(&mut self, block: Block) -> Result<()> {
        self.count_reads(1, block.offset);
        self.image.write_at(block.data(), block.offset)?;
        self.map
            .set(block.offset, block.len() as u64, BlockState::Finished);
        self.changed();
        let block = Arc::new(block);
        if let Some(h) = &mut self.hash {
            h.offer_block(&block)?;
        }
        self.checkpoint(block.end())
    }

    fn trim(&mut self) -> Result<()> {
        self.begin(Phase::Trimming, '*', 1, 0)?;
        while let Some(b) = self.map.next_in(BlockState::NonTrimmed, 0) {
            // Leading edge, forwards.
            let mut p = b.pos;
            while p < b.end() {
                self.checkpoint(p)?;
                let ok = self.read_sector(p)?;
                p += self.ss;
                if !ok {
                    break;
                }
            }
            // Trailing edge, backwards.
            let mut q = b.end();
            while q > p {
                let s = (q - 1) / self.ss * self.ss;
                self.checkpoint(s)?;
                let ok = self.read_sector(s)?;
                q = s;
                if !ok {
                    break;
                }
            }
            if p < q {
                self.map.set(p, q - p, BlockState::NonScraped);
                self.changed();
            }
        }
        Ok(())
    }

    fn scrape(&mut self) -> Result<()> {
        self.begin(Phase::Scraping, '/', 1, 0)?;
        while let Some(b) = self.map.next_in(BlockState::NonScraped, 0) {
            let mut p = b.pos;
            while p < b.end() {
                self.checkpoint(p)?;
                self.read_sector(p)?;
                p += self.ss;
            }
        }
        Ok(())
    }

    fn retry_pass(&mut self, pass: u32, from: u64) -> Result<()> {
        self.begin(Phase::Retrying, '-', pass, from)?;
        let mut pos = from;
        while let Some(b) = self.map.next_in(BlockState::BadSector, pos) {
            let mut p = b.pos;
            while p < b.end() {
                self.checkpoint(p)?;
                self.read_sector(p)?;
                p += self.ss;
            }
            pos = b.end();
        }
        Ok(())
    }

    /// Reads the sector at `p` alone; in the image and map as finished, or as bad (zeros).
    fn read_sector(&mut self, p: u64) -> Result<bool> {
        let len = self.ss.min(self.size - p);
        let ok = match self.read(p, len)? {
            ReadOutcome::Ok => {
                let was_bad = self.map.state_at(p) == Some(BlockState::BadSector);
                self.map.set(p, len, BlockState::Finished);
                if let (true, Some(h)) = (was_bad, &mut self.hash) {
                    // Rescued by a retry: the hashes may have taken it as zeros.
                    h.changed_at(p)?;
                }
                true
            }
            ReadOutcome::Bad { .. } => {
                if self.map.state_at(p) != Some(BlockState::BadSector) {
                    self.image
                        .write_buffered_at(&self.zeros[..len as usize], p)?;
                    self.map.set(p, len, BlockState::BadSector);
                }
                false
            }
        };
        self.changed();
        Ok(ok)
    }

    /// Reads `len` bytes at `pos` (one read in flight) into the image. Media errors are an
    /// outcome; anything else stops the job.
    fn read(&mut self, pos: u64, len: u64) -> Result<ReadOutcome> {
        let want = len as usize;
        // Requests are whole sectors even for a final partial sector.
        let asked = len.div_ceil(self.ss) as usize * self.ss as usize;
        let mut done = 0usize;
        let mut stalls = 0;
        while done < want {
            let off = pos + done as u64;
            self.count_reads(1, off);
            let r = self.reader.read_at(&mut self.buf[done..asked], off);
            match r {
                Ok(0) => {
                    return Err(Error::Read {
                        path: self.source_path.to_path_buf(),
                        offset: off,
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the source ended early; did it shrink or vanish?",
                        ),
                    })
                }
                Ok(n) => {
                    // A short answer (a FUSE-backed file): keep whole sectors, read on.
                    let n = n.min(want - done);
                    let take = if done + n >= want {
                        n
                    } else {
                        n / self.ss as usize * self.ss as usize
                    };
                    if take == 0 {
                        stalls += 1;
                        if stalls > 3 {
                            return Err(Error::Read {
                                path: self.source_path.to_path_buf(),
                                offset: off,
                                source: io::Error::other("the source keeps answering short"),
                            });
                        }
                    }
                    done += take;
                }
                Err(e) if is_media_error(&e) => {
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    self.count_failures(1);
                    // Write what came before the failure (whole sectors, already read).
                    if done > 0 {
                        self.write_image(pos, done)?;
                        self.map.set(pos, done as u64, BlockState::Finished);
                    }
                    if len - done as u64 <= self.ss {
                        let entry = self.failures.entry(off).or_insert((errno, 0));
                        entry.0 = errno;
                        entry.1 += 1;
                    }
                    return Ok(ReadOutcome::Bad { at: off });
                }
                Err(e) => {
                    return Err(Error::Read {
                        path: self.source_path.to_path_buf(),
                        offset: off,
                        source: e,
                    })
                }
            }
        }
        self.write_image(pos, want)?;
        Ok(ReadOutcome::Ok)
    }

    /// Writes the first `len` bytes of the read buffer at `pos`. Small pieces next to the
    /// previous one (trimming and scraping go one sector at a time, forwards or backwards)
    /// are gathered and written together; [`Job::flush_staged`] writes them out before anything
    /// relies on the image (a map save, the hashes).
    fn write_image(&mut self, pos: u64, len: usize) -> Result<()> {
        let st = &mut self.staged;
        let cap = st.buf.len() as u64;
        let end = pos + len as u64;
        let joins = st.hi > st.lo && (pos == st.hi || end == st.lo);
        if !(joins && pos >= st.base && end <= st.base + cap) {
            self.flush_staged()?;
            if len as u64 > cap / 4 {
                return self.image.write_buffered_at(&self.buf[..len], pos);
            }
            let st = &mut self.staged;
            st.base = pos.saturating_sub(cap / 2);
            st.lo = pos;
            st.hi = pos;
        }
        let st = &mut self.staged;
        let at = (pos - st.base) as usize;
        st.buf[at..at + len].copy_from_slice(&self.buf[..len]);
        st.lo = st.lo.min(pos);
        st.hi = st.hi.max(end);
        Ok(())
    }

    /// Writes out what [`Job::write_image`] gathered.
    fn flush_staged(&mut self) -> Result<()> {
        let st = &mut self.staged;
        if st.hi > st.lo {
            let (a, b) = ((st.lo - st.base) as usize, (st.hi - st.base) as usize);
            self.image.write_buffered_at(&st.buf[a..b], st.lo)?;
            st.lo = st.hi;
        }
        Ok(())
    }

    fn changed(&mut self) {
        self.dirty = true;
    }

    /// Between reads: publish progress, save the map when due, stop when interrupted.
    fn checkpoint(&mut self, pos: u64) -> Result<()> {
        // Where a resumed run of the same pass starts: nothing at or after `pos` in this
        // pass has been read yet.
        self.map.current_pos = pos;
        // Totals cost a walk over the map: publish them a few times a second, not per read.
        if self.dirty && self.last_progress.elapsed() >= Duration::from_millis(50) {
            self.progress.update_from(&self.map);
            self.progress.bad_areas.store(
                self.map.blocks_in(BlockState::BadSector).count() as u64,
                Ordering::Relaxed,
            );
            self.last_progress = Instant::now();
        }
        self.advance_hash()?;
        if self.interrupted.load(Ordering::Relaxed) {
            self.save_map()?;
            return Err(Error::Interrupted("a signal (SIGINT or SIGTERM)"));
        }
        if self.dirty && self.last_save.elapsed() >= self.opts.map_interval {
            self.save_map()?;
        }
        Ok(())
    }

    /// Hands the hashes what is settled in front of them: in pieces of at least
    /// [`HASH_BATCH`], or what there is every [`HASH_PAUSE`] (trimming settles a sector at a
    /// time, and waking four threads per sector costs the reads their CPU).
    fn advance_hash(&mut self) -> Result<()> {
        use BlockState::*;
        let Some(from) = self.hash.as_ref().map(RunningHash::position) else {
            return Ok(());
        };
        let end = self.map.run_end(from, &[Finished, BadSector]);
        let due = end - from >= HASH_BATCH
            || (end > from && self.last_hash_advance.elapsed() >= HASH_PAUSE);
        if due {
            // The hashes read the image: what is gathered goes there first.
            self.flush_staged()?;
            let has_bad = self
                .map
                .next_in(BadSector, from)
                .is_some_and(|b| b.pos < end);
            if let Some(h) = &mut self.hash {
                h.advance(end, has_bad)?;
            }
            self.last_hash_advance = Instant::now();
        }
        if let Some(h) = &self.hash {
            self.progress.hashed.store(h.hashed(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Syncs the image, then replaces the map atomically: the map never claims data that is
    /// not on disk.
    fn save_map(&mut self) -> Result<()> {
        self.flush_staged()?;
        self.progress.update_from(&self.map);
        self.image.sync_data()?;
        let mut header = self.opts.map_header.clone();
        header.push(format!("{RETRY_DONE_KEY} {}", self.retry_done));
        write_map(&self.map, &self.map_path, &header)?;
        self.last_save = Instant::now();
        self.dirty = false;
        Ok(())
    }

    fn finish(mut self, started: SystemTime) -> Result<RescueReport> {
        use BlockState::*;
        if self.map.any_in(&[NonTried, NonTrimmed, NonScraped]) {
            return Err(Error::Internal(format!(
                "{} still has unread areas after every phase",
                self.map_path.display()
            )));
        }
        self.progress.update_from(&self.map);
        let bad_runs = self.bad_runs();
        self.progress
            .bad_areas
            .store(bad_runs.len() as u64, Ordering::Relaxed);
        self.progress.set_phase(Phase::Hashing, 1);
        self.flush_staged()?;
        let hashes = match self.hash.take() {
            Some(h) => h.finish(self.size, &self.progress.hashed)?,
            None => MediaHashes::default(),
        };
        let logs = hash_logs::write(
            &self.opts.side_files(),
            &hashes,
            &[self.output_file()],
            self.size,
        )?;
        self.progress.set_phase(Phase::Finished, 1);
        Ok(RescueReport {
            image: self.image_path.clone(),
            map: self.map_path.clone(),
            size: self.size,
            sector_size: self.ss as u32,
            resumed: self.resumed,
            complete: true,
            rescued_bytes: self.map.bytes_in(BlockState::Finished),
            bad_bytes: self.map.bytes_in(BlockState::BadSector),
            bad_runs,
            hashes,
            hash_logs: logs.logs,
            hash_checks: logs.checks,
            reads: self.reads,
            read_errors: self.read_errors,
            retry_passes_done: self.retry_done,
            started,
            finished: SystemTime::now(),
        })
    }

    /// The image, for the record.
    fn output_file(&self) -> OutputFile {
        OutputFile {
            path: self.image_path.clone(),
            size: self.size,
            kind: if self.opts.target.is_some() {
                "device".into()
            } else {
                "raw".into()
            },
        }
    }

    /// The bad sectors as runs, with what this run learned about each.
    fn bad_runs(&self) -> Vec<BadRun> {
        self.map
            .blocks_in(BlockState::BadSector)
            .map(|b| {
                let mut errno = 0;
                let mut attempts = 0;
                for (_, &(e, n)) in self.failures.range(b.pos..b.end()) {
                    errno = e;
                    attempts = attempts.max(n);
                }
                BadRun {
                    offset: b.pos,
                    length: b.size,
                    errno,
                    attempts,
                }
            })
            .collect()
    }
}

/// Rounds the edges of every unfinished block out to whole sectors, so that a map made with
/// another sector size (or by hand) never asks for a misaligned read.
fn align_to_sectors(map: &mut SectorMap, ss: u64) {
    let size = map.size();
    let todo: Vec<_> = map
        .blocks()
        .iter()
        .filter(|b| b.state != BlockState::Finished && (b.pos % ss != 0 || b.end() % ss != 0))
        .copied()
        .collect();
    for b in todo {
        let start = b.pos / ss * ss;
        let end = (b.end().div_ceil(ss) * ss).min(size);
        map.set(start, end - start, b.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// How a fake sector fails.
    #[derive(Clone, Copy)]
    struct Fault {
        /// `None`: always; `Some(n)`: the first n reads that touch it.
        times: Option<u32>,
        errno: i32,
    }

    /// An in-memory disk whose chosen sectors fail; counts reads per sector.
    struct FakeDisk {
        data: Vec<u8>,
        ss: u64,
        faults: Mutex<HashMap<u64, Fault>>,
        reads: Mutex<HashMap<u64, u32>>,
        /// Stops serving (as if killed) after this many reads: the interrupt flag is set.
        interrupt_after: Option<(u64, &'static AtomicBool)>,
        total: AtomicU64,
        /// Answer at most this many bytes per read (a FUSE-backed file does that).
        short: Option<usize>,
    }

    impl FakeDisk {
        fn new(size: usize, ss: u64) -> Self {
            let data = (0..size)
                .map(|i| (i as u64 / ss * 7 + (i as u64 % 251) * 13) as u8 | 1)
                .collect();
            FakeDisk {
                data,
                ss,
                faults: Mutex::new(HashMap::new()),
                reads: Mutex::new(HashMap::new()),
                interrupt_after: None,
                total: AtomicU64::new(0),
                short: None,
            }
        }
        fn bad(self, sector: u64, times: Option<u32>, errno: i32) -> Self {
            self.faults
                .lock()
                .unwrap()
                .insert(sector, Fault { times, errno });
            self
        }
        /// Content made by `byte(offset)`, so that misplaced data shows.
        fn filled(mut self, byte: impl Fn(usize) -> u8) -> Self {
            for (i, b) in self.data.iter_mut().enumerate() {
                *b = byte(i);
            }
            self
        }
        fn reads_of(&self, sector: u64) -> u32 {
            self.reads
                .lock()
                .unwrap()
                .get(&sector)
                .copied()
                .unwrap_or(0)
        }
        /// The image we expect: the data with the given sectors zeroed.
        fn expected(&self, bad: &[u64]) -> Vec<u8> {
            let mut v = self.data.clone();
            for &s in bad {
                let a = (s * self.ss) as usize;
                let b = (a + self.ss as usize).min(v.len());
                v[a..b].fill(0);
            }
            v
        }
    }

    impl ReadAt for FakeDisk {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            assert_eq!(offset % self.ss, 0, "misaligned offset");
            assert_eq!(buf.len() as u64 % self.ss, 0, "misaligned length");
            let n = self.total.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((limit, flag)) = self.interrupt_after {
                if n >= limit {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            let size = self.data.len() as u64;
            if offset >= size {
                return Ok(0);
            }
            let mut end = (offset + buf.len() as u64).min(size);
            if let Some(short) = self.short {
                end = end.min(offset + short as u64);
            }
            let mut failed = None;
            {
                let mut reads = self.reads.lock().unwrap();
                let mut faults = self.faults.lock().unwrap();
                for s in offset / self.ss..end.div_ceil(self.ss) {
                    *reads.entry(s).or_default() += 1;
                    if let Some(f) = faults.get_mut(&s) {
                        match &mut f.times {
                            None => failed = Some(f.errno),
                            Some(0) => {}
                            Some(k) => {
                                *k -= 1;
                                failed = Some(f.errno);
                            }
                        }
                    }
                }
            }
            if let Some(errno) = failed {
                return Err(io::Error::from_raw_os_error(errno));
            }
            let n = (end - offset) as usize;
            buf[..n].copy_from_slice(&self.data[offset as usize..end as usize]);
            Ok(n)
        }
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn describe(&self) -> PathBuf {
            PathBuf::from("fake")
        }
    }

    impl SectorReader for FakeDisk {
        fn sector_size(&self) -> u32 {
            self.ss as u32
        }
    }

    fn opts(dir: &Path) -> RescueOptions {
        let mut o = RescueOptions::new(dir.join("img"));
        o.retry_passes = 0;
        o
    }

    fn run(disk: &FakeDisk, o: &RescueOptions) -> Result<RescueReport> {
        let p = RescueProgress::default();
        let stop = AtomicBool::new(false);
        rescue_from(disk, Path::new("fake"), o, &p, &stop, None)
    }

    /// The fast reader over a fake disk: the same contract as io_uring's, one block at a time.
    struct FakeStream<'d> {
        disk: &'d FakeDisk,
        pool: BufferPool,
        streams: u32,
    }

    impl<'d> FakeStream<'d> {
        fn new(disk: &'d FakeDisk) -> Self {
            FakeStream {
                disk,
                pool: BufferPool::new(4, FAST_BLOCK_SIZE as usize),
                streams: 0,
            }
        }
    }

    impl StretchReader for FakeStream<'_> {
        fn block_size(&self) -> u64 {
            FAST_BLOCK_SIZE
        }
        fn stream(
            &mut self,
            start: u64,
            end: u64,
            emit: &mut dyn FnMut(Block) -> Result<()>,
        ) -> Result<StreamEnd> {
            self.streams += 1;
            let mut pos = start;
            let mut index = 0;
            while pos < end {
                let block_end = ((pos / FAST_BLOCK_SIZE + 1) * FAST_BLOCK_SIZE).min(end);
                let len = (block_end - pos) as usize;
                let mut buf = self.pool.take();
                let asked = len.div_ceil(self.disk.ss as usize) * self.disk.ss as usize;
                match self.disk.read_at(&mut buf[..asked], pos) {
                    Ok(n) => assert!(n >= len, "the fake answers whole"),
                    Err(e) => {
                        return Ok(StreamEnd::Failed {
                            offset: pos,
                            len: len as u64,
                            errno: e.raw_os_error().unwrap_or(libc::EIO),
                            also_failed: Vec::new(),
                        })
                    }
                }
                emit(Block::new(index, pos, buf, len, Vec::new()))?;
                index += 1;
                pos = block_end;
            }
            Ok(StreamEnd::Done)
        }
    }

    fn run_streaming(disk: &FakeDisk, o: &RescueOptions) -> (Result<RescueReport>, u32) {
        let p = RescueProgress::default();
        let stop = AtomicBool::new(false);
        let mut stream = FakeStream::new(disk);
        let r = rescue_from(disk, Path::new("fake"), o, &p, &stop, Some(&mut stream));
        (r, stream.streams)
    }

    /// The report's hashes are those of `image`, as the coreutils would compute them.
    fn assert_hashes_of(r: &RescueReport, image: &[u8]) {
        for alg in HashAlgorithm::ALL {
            let mut h = alg.hasher();
            h.update(image);
            assert_eq!(r.hashes.get(alg).unwrap(), h.finish(), "{alg}");
        }
    }

    #[test]
    fn healthy_media_is_streamed_and_hashed_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(9 * 1024 * 1024 + 3 * 512, 512).filled(|i| (i * 31 % 251) as u8);
        let o = opts(dir.path());
        let (r, streams) = run_streaming(&disk, &o);
        let r = r.unwrap();
        assert_eq!(r.bad_bytes, 0);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
        assert_hashes_of(&r, &disk.data);
        // 8 MiB in 64 KiB reads, then they grow (128K, 128K, 256K to the 1 MiB grid) and the
        // rest is one stream of 1 MiB reads (two: the last is 3 sectors); every sector once.
        assert_eq!(streams, 1);
        assert_eq!(r.reads, 128 + 3 + 2);
        assert!((0..disk.data.len() as u64 / 512).all(|s| disk.reads_of(s) == 1));
    }

    #[test]
    fn a_failed_stream_block_is_trimmed_with_no_more_reads_of_the_bad_sector() {
        // Trouble after 10 MiB of healthy disk, and again 20 MiB later, past a clean streak.
        let bad = [10 * 2048 + 700, 10 * 2048 + 701, 30 * 2048 + 5];
        let make = || {
            let mut d = FakeDisk::new(40 * 1024 * 1024, 512).filled(|i| (i % 249) as u8);
            for s in bad {
                d = d.bad(s, None, libc::ENODATA);
            }
            d
        };
        let (fast, careful) = (make(), make());
        let dir = tempfile::tempdir().unwrap();
        let o = opts(&dir.path().join("fast"));
        std::fs::create_dir(dir.path().join("fast")).unwrap();
        let (r, streams) = run_streaming(&fast, &o);
        let r = r.unwrap();
        assert!(streams >= 2, "{streams} streams");
        let map = load_map(&o);
        assert_eq!(bad_sectors(&map, 512), bad);
        let expected = fast.expected(&bad);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), expected);
        assert_hashes_of(&r, &expected);

        std::fs::create_dir(dir.path().join("careful")).unwrap();
        let mut oc = opts(&dir.path().join("careful"));
        oc.careful = true;
        let rc = run(&careful, &oc).unwrap();
        assert_eq!(rc.hashes, r.hashes);
        for s in bad {
            assert!(
                fast.reads_of(s) <= careful.reads_of(s),
                "sector {s}: {} reads streaming, {} careful",
                fast.reads_of(s),
                careful.reads_of(s)
            );
        }
        // Far from trouble the fast run read every sector once; it failed no more reads.
        // (Its failed 1 MiB block costs more single-sector reads to trim than a 64 KiB one:
        // good sectors, each read once.)
        assert_eq!(fast.reads_of(38 * 2048), 1);
        assert_eq!(fast.reads_of(5 * 2048), 1);
        assert!(
            r.read_errors <= rc.read_errors,
            "{} vs {}",
            r.read_errors,
            rc.read_errors
        );
    }

    #[test]
    fn a_sector_rescued_after_it_was_hashed_as_zeros_is_hashed_as_data() {
        let dir = tempfile::tempdir().unwrap();
        // Fails the copy, trim and first retry reads; the second retry pass reads it, long
        // after the hashes went past it (the image behind it was settled).
        let disk = FakeDisk::new(3 * 1024 * 1024, 512)
            .filled(|i| (i % 241) as u8 | 1)
            .bad(300, Some(3), libc::EIO);
        let mut o = opts(dir.path());
        o.retry_passes = 2;
        o.map_interval = Duration::ZERO;
        let (r, _) = run_streaming(&disk, &o);
        let r = r.unwrap();
        assert_eq!(r.bad_bytes, 0);
        assert_eq!(disk.reads_of(300), 4);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
        assert_hashes_of(&r, &disk.data);
    }

    fn bad_sectors(map: &SectorMap, ss: u64) -> Vec<u64> {
        map.blocks_in(BlockState::BadSector)
            .flat_map(|b| (b.pos / ss..b.end().div_ceil(ss)).collect::<Vec<_>>())
            .collect()
    }

    fn load_map(o: &RescueOptions) -> SectorMap {
        let p = o.map_path();
        SectorMap::parse(&std::fs::read_to_string(&p).unwrap(), &p).unwrap()
    }

    #[test]
    fn finds_exactly_the_bad_sectors() {
        let dir = tempfile::tempdir().unwrap();
        let bad = [0u64, 5, 6, 7, 300, 1001, 2047];
        let mut disk = FakeDisk::new(2048 * 512, 512);
        for &s in &bad {
            disk = disk.bad(s, None, libc::EIO);
        }
        let o = opts(dir.path());
        let r = run(&disk, &o).unwrap();
        assert!(r.complete);
        let map = load_map(&o);
        assert_eq!(bad_sectors(&map, 512), bad);
        assert_eq!(map.bytes_in(BlockState::Finished), (2048 - 7) * 512);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.expected(&bad));
        assert_eq!(r.bad_bytes, 7 * 512);
        assert_eq!(r.bad_runs.len(), 5);
        assert_eq!(r.bad_runs[1].offset, 5 * 512);
        assert_eq!(r.bad_runs[1].length, 3 * 512);
        assert_eq!(r.bad_runs[1].errno, libc::EIO);
        // No sector was read alone more than twice (trim or scrape, then nothing), and no
        // good sector far from trouble was read more than once.
        for &s in &bad {
            assert!(disk.reads_of(s) <= 3, "sector {s}: {}", disk.reads_of(s));
        }
        assert_eq!(disk.reads_of(1500), 1);
        // The hash log names the image and matches it.
        let md5 = std::fs::read_to_string(o.path_with("md5")).unwrap();
        assert!(md5.ends_with("  img.raw\n"), "{md5}");
    }

    #[test]
    fn partial_final_sector_and_final_block() {
        let dir = tempfile::tempdir().unwrap();
        // 1000 sectors + 100 bytes: the last block and the last sector are partial.
        let disk = FakeDisk::new(1000 * 512 + 100, 512)
            .bad(1000, None, libc::EIO)
            .bad(990, None, libc::EIO);
        let o = opts(dir.path());
        run(&disk, &o).unwrap();
        let map = load_map(&o);
        assert_eq!(map.size(), 1000 * 512 + 100);
        assert_eq!(bad_sectors(&map, 512), vec![990, 1000]);
        assert_eq!(map.bytes_in(BlockState::BadSector), 512 + 100);
        assert_eq!(
            std::fs::read(o.image_path()).unwrap(),
            disk.expected(&[990, 1000])
        );
    }

    #[test]
    fn transient_sector_is_recovered_by_retry_passes() {
        let dir = tempfile::tempdir().unwrap();
        // Fails the first 2 reads: the copy read and the trim read fail; retry pass 1 reads it
        // (3 reads in all, like `--retries 3` allows).
        let disk = FakeDisk::new(512 * 512, 512).bad(100, Some(2), libc::EIO);
        let mut o = opts(dir.path());
        o.retry_passes = 3;
        let r = run(&disk, &o).unwrap();
        assert_eq!(r.bad_bytes, 0);
        assert!(r.bad_runs.is_empty());
        assert_eq!(disk.reads_of(100), 3);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
        assert_eq!(r.retry_passes_done, 1);
    }

    #[test]
    fn without_retries_a_transient_sector_stays_bad_until_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(512 * 512, 512).bad(100, Some(3), libc::EIO);
        let mut o = opts(dir.path());
        o.retry_passes = 1;
        let r = run(&disk, &o).unwrap();
        assert_eq!(r.bad_bytes, 512);
        assert_eq!(r.bad_runs[0].attempts, 2);
        assert_eq!(disk.reads_of(100), 3);
        // Running again with the same options reads nothing: the pass is done.
        let r2 = run(&disk, &o).unwrap();
        assert_eq!(r2.reads, 0);
        assert!(r2.resumed);
        // Asking for more passes runs only the extra one; the sector reads now.
        o.retry_passes = 2;
        let r3 = run(&disk, &o).unwrap();
        assert_eq!(r3.reads, 1);
        assert_eq!(r3.bad_bytes, 0);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.data);
    }

    #[test]
    fn enodata_is_a_media_error_and_einval_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(256 * 512, 512).bad(17, None, libc::ENODATA);
        let o = opts(dir.path());
        let r = run(&disk, &o).unwrap();
        assert_eq!(r.bad_runs.len(), 1);
        assert_eq!(r.bad_runs[0].errno, libc::ENODATA);

        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(256 * 512, 512).bad(17, None, libc::EINVAL);
        let o = opts(dir.path());
        match run(&disk, &o) {
            Err(Error::Read { offset, .. }) => assert_eq!(offset, 0),
            other => panic!("expected a read error, got {other:?}"),
        }
        // The map was saved and still says nothing was read there.
        assert_eq!(load_map(&o).bytes_in(BlockState::Finished), 0);

        // A source that vanishes in the middle: what was read before is kept in the map.
        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(1024 * 512, 512).bad(900, None, libc::ENODEV);
        let mut o = opts(dir.path());
        o.map_interval = Duration::from_secs(3600);
        o.careful = true; // 64 KiB reads: the one that fails starts at sector 896
        assert!(matches!(run(&disk, &o), Err(Error::Read { .. })));
        let m = load_map(&o);
        assert_eq!(m.bytes_in(BlockState::Finished), 896 * 512);
        let image = std::fs::read(o.image_path()).unwrap();
        assert_eq!(image[..896 * 512], disk.data[..896 * 512]);
    }

    #[test]
    fn sectors_of_4096() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(300 * 4096, 4096)
            .bad(0, None, libc::EIO)
            .bad(299, None, libc::EIO)
            .bad(150, None, libc::EIO)
            .bad(151, None, libc::EIO);
        let o = opts(dir.path());
        let r = run(&disk, &o).unwrap();
        assert_eq!(r.sector_size, 4096);
        assert_eq!(bad_sectors(&load_map(&o), 4096), vec![0, 150, 151, 299]);
        assert_eq!(
            std::fs::read(o.image_path()).unwrap(),
            disk.expected(&[0, 150, 151, 299])
        );
    }

    #[test]
    fn interrupted_runs_resume_without_rereading() {
        static STOP: AtomicBool = AtomicBool::new(false);
        let bad: Vec<u64> = vec![3, 400, 401, 402, 900, 1500, 4095];
        let make = || {
            let mut d = FakeDisk::new(4096 * 512, 512);
            for &s in &bad {
                d = d.bad(s, None, libc::EIO);
            }
            d
        };
        let reference = make();
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path());
        run(&reference, &o).unwrap();
        let want_image = std::fs::read(o.image_path()).unwrap();
        let want_md5 = std::fs::read_to_string(o.path_with("md5")).unwrap();
        let total_reads = reference.total.load(Ordering::SeqCst);

        // Interrupt after every k reads, resume, until complete.
        for step in [7u64, 40, 150] {
            let dir = tempfile::tempdir().unwrap();
            let mut o = opts(dir.path());
            o.map_interval = Duration::from_secs(3600);
            let mut runs = 0;
            let mut reads = 0;
            loop {
                STOP.store(false, Ordering::SeqCst);
                let mut d = make();
                d.interrupt_after = Some((step, &STOP));
                let before = if o.map_path().exists() {
                    Some(load_map(&o))
                } else {
                    None
                };
                let p = RescueProgress::default();
                let r = rescue_from(&d, Path::new("fake"), &o, &p, &STOP, None);
                reads += d.total.load(Ordering::SeqCst);
                runs += 1;
                // Nothing finished before this run was read again.
                if let Some(m) = before {
                    for b in m.blocks_in(BlockState::Finished) {
                        for s in b.pos / 512..b.end() / 512 {
                            assert_eq!(d.reads_of(s), 0, "finished sector {s} re-read");
                        }
                    }
                }
                match r {
                    Ok(_) => break,
                    Err(Error::Interrupted(_)) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(runs > 2, "step {step}: {runs} runs");
            assert_eq!(std::fs::read(o.image_path()).unwrap(), want_image);
            assert_eq!(
                std::fs::read_to_string(o.path_with("md5")).unwrap(),
                want_md5
            );
            // Resuming costs at most the interrupted read per run.
            assert!(reads <= total_reads + runs, "{reads} vs {total_reads}");
        }
    }

    #[test]
    fn resumes_a_gnu_ddrescue_map_and_refuses_surprises() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(64 * 512, 512).bad(10, None, libc::EIO);
        let o = opts(dir.path());
        // ddrescue got the first 8 sectors, failed a block at 8..16, and stopped.
        let map = "# Mapfile. Created by GNU ddrescue version 1.27\n0x00001000     ?               1\n#      pos        size  status\n0x00000000  0x00001000  +\n0x00001000  0x00001000  *\n0x00002000  0x00006000  ?\n";
        std::fs::write(o.map_path(), map).unwrap();
        // Its image has the data it got.
        let mut img = vec![0u8; 64 * 512];
        img[..4096].copy_from_slice(&disk.data[..4096]);
        std::fs::write(o.image_path(), &img).unwrap();
        let r = run(&disk, &o).unwrap();
        assert!(r.resumed);
        for s in 0..8 {
            assert_eq!(disk.reads_of(s), 0);
        }
        assert_eq!(bad_sectors(&load_map(&o), 512), vec![10]);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.expected(&[10]));

        // An image without a map is refused; a map of another size too.
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path());
        std::fs::write(o.image_path(), b"x").unwrap();
        assert!(matches!(run(&disk, &o), Err(Error::Refused(_))));
        std::fs::write(o.map_path(), "0 ?\n0 0x100 ?\n").unwrap();
        assert!(matches!(run(&disk, &o), Err(Error::Refused(_))));
        let mut o2 = o.clone();
        o2.overwrite = true;
        assert!(run(&disk, &o2).unwrap().complete);
    }

    #[test]
    fn skipping_reads_bad_areas_no_more_than_needed() {
        // A 40-sector bad run: copy fails a block, jumps; trimming reaches each edge once;
        // scraping reads each inner sector once.
        let dir = tempfile::tempdir().unwrap();
        let mut disk = FakeDisk::new(2048 * 512, 512);
        for s in 500..540 {
            disk = disk.bad(s, None, libc::EIO);
        }
        let o = opts(dir.path());
        let r = run(&disk, &o).unwrap();
        assert_eq!(r.bad_bytes, 40 * 512);
        for s in 500..540 {
            assert!(disk.reads_of(s) <= 2, "sector {s}: {}", disk.reads_of(s));
        }
    }

    #[test]
    fn short_reads_are_continued() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = FakeDisk::new(700 * 512 + 300, 512).bad(333, None, libc::EIO);
        disk.short = Some(3 * 512 + 100);
        let o = opts(dir.path());
        let r = run(&disk, &o).unwrap();
        assert_eq!(bad_sectors(&load_map(&o), 512), vec![333]);
        assert_eq!(r.bad_bytes, 512);
        assert_eq!(
            std::fs::read(o.image_path()).unwrap(),
            disk.expected(&[333])
        );
    }

    #[test]
    fn a_map_whose_position_is_past_untried_areas_is_still_completed() {
        // Killed just as copy pass 2 began, with a stale position: areas before it must still
        // be read, not reported complete.
        let dir = tempfile::tempdir().unwrap();
        let disk = FakeDisk::new(512 * 512, 512).bad(7, None, libc::EIO);
        let o = opts(dir.path());
        let map = "0x00030000     ?               2\n0x00000000  0x00010000  ?\n0x00010000  0x00030000  +\n";
        std::fs::write(o.map_path(), map).unwrap();
        let mut img = vec![0u8; 512 * 512];
        img[0x10000..0x40000].copy_from_slice(&disk.data[0x10000..0x40000]);
        std::fs::write(o.image_path(), &img).unwrap();
        let r = run(&disk, &o).unwrap();
        assert!(r.complete);
        assert_eq!(bad_sectors(&load_map(&o), 512), vec![7]);
        assert_eq!(std::fs::read(o.image_path()).unwrap(), disk.expected(&[7]));
        assert_eq!(disk.reads_of(0x10000 / 512), 0);
    }
}
