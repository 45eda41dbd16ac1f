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
//! Where things are: `passes.rs` the phases over the map (no file of their own), `resume.rs`
//! the map on disk and what resuming needs, `image.rs` the image being filled, `job.rs` the
//! run that wires them (checkpoints between reads), `medium.rs` what is read through,
//! `options.rs` and `progress.rs` the caller's side, `hashing.rs` the hashes; this file the
//! entry points and the record.
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

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use crate::audit::{HashInfo, JobKind, Outcome, ReaderInfo, RecordBuilder, Started, Throughput};
use crate::buffer::BufferPool;
use crate::error::{Error, Result};
use crate::exclusive::{BaseLock, SIDE_FILE_ROOM};
use crate::hash::MediaHashes;
use crate::map::BadRun;
use crate::reader::{EngineChoice, EngineKind, RangeStreamer, ReaderOptions};
use crate::sink::OutputFile;
use crate::source::Source;

mod hashing;
mod image;
mod job;
mod medium;
mod options;
mod passes;
mod progress;
mod resume;
mod seal;
#[cfg(test)]
mod tests;

use job::Job;
pub use medium::{SectorReader, StretchReader};
pub use options::{RescueOptions, CLEAN_STREAK, FAST_BLOCK_SIZE, FAST_QUEUE_DEPTH};
pub use progress::{Phase, RescueProgress};

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
    if !source.size().is_multiple_of(sector) {
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

/// Who the source is, for the map's `exhibit-source:` line: what a resumed run compares
/// (everything but the path, which changes between boots) before it reads into the image.
fn source_identity(source: &Source) -> String {
    let id = source.identity();
    // One line of `key=value; ` pairs: values lose what would break it.
    let clean = |v: &str| v.replace(['\n', '\r', ';', '#'], "_");
    let mut parts = vec![format!("size={}", source.size())];
    for (key, value) in [
        ("model", &id.model),
        ("serial", &id.serial),
        ("wwid", &id.wwid),
        ("loop-backing-file", &id.loop_backing_file),
    ] {
        if let Some(v) = value {
            parts.push(format!("{key}={}", clean(v)));
        }
    }
    if let Some(start) = id.partition_start_sector {
        parts.push(format!("partition-start={start}"));
    }
    if source.kind() == crate::source::SourceKind::File {
        let (dev, ino) = source.file_id();
        parts.push(format!("file={dev}:{ino}"));
    }
    parts.push(format!(
        "path={}",
        clean(&source.path().display().to_string())
    ));
    parts.join("; ")
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
    seal::seal(
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
    // Everything this run may create, replace or remove (with --overwrite: the record and
    // every hash log), and the lock: none may be the source or live on it.
    let side = opts.side_files();
    let mut guarded = vec![opts.image_path(), opts.map_path(), opts.record_path()];
    guarded.extend(crate::hash::HashAlgorithm::ALL.map(|a| side.hash_log(a)));
    guarded.push(side.lock());
    guarded.extend(side.segment_names(false, opts.e01.is_some())?);
    source.refuse_outputs(&guarded)?;
    let live = crate::device::live::guard_source(source, opts.allow_live)?;
    let lock = BaseLock::acquire(&side.lock(), "rescue", SIDE_FILE_ROOM)?;
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
        give_up: opts.give_up,
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
        Some(source_identity(source)),
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
    record.record_mut().source.live_use = live;
    record.record_mut().source.drive = source.drive();
    record.record_mut().reader = Some(reader_info(source, opts, job.geo.block_size, &engine_note));
    record.write()?;
    let result = job.run_saving(&lock);
    let sector = job.geo.ss;
    // A failure from here on: the room reserved at the start is for the record that says so.
    let failed = |record: &mut RecordBuilder, e: Error| {
        lock.release_room();
        let written = record.finish(&Outcome::from_error(&e));
        e.or_unrecorded(record.path(), written)
    };
    record.record_mut().runs = job.state.runs();
    if let Err(e) = result {
        record.record_mut().outputs = vec![job.output_file()];
        record.set_unreadable(&job.bad_runs(), sector, job.state.path.clone());
        record.note_partitions(partitions_so_far(&mut job));
        return Err(failed(&mut record, e));
    }
    let output = job.output_file();
    record.record_mut().outputs = vec![output];
    // Every sector is read now; what is left is hashing the image, which takes minutes on a
    // large disk and a signal may end. The table is read before it, so such a stop records it
    // too (a finished run reads it again from the finished image, below).
    let table_if_stopped = partitions_so_far(&mut job);
    let report = match job.finish(started.utc.into()) {
        Ok(report) => report,
        Err(e) => {
            record.note_partitions(table_if_stopped);
            return Err(failed(&mut record, e));
        }
    };
    if let (Some(settings), true) = (&opts.e01, report.complete) {
        match seal_into_e01(source, opts, settings, &report, interrupted) {
            Ok(files) => record.record_mut().outputs.extend(files),
            // Sealing starts again from the finished image: not a resume of the map.
            Err(e) => return Err(failed(&mut record, e)),
        }
    }
    record.set_unreadable(&report.bad_runs, sector, report.map.clone());
    if report.complete {
        record.note_partitions(partitions_of_image(&report));
    }
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
    lock.release_room();
    let written = record.finish(&Outcome::complete(report.bad_bytes != 0));
    Error::recorded(record.path(), written)?;
    drop(lock);
    Ok(report)
}

/// The source's partition table, read from the finished image rather than the source: a
/// rescue reads no sector of a failing disk twice. Sectors that stayed unreadable are zeros
/// in the image, not a table: a table that needs one is the error.
fn partitions_of_image(report: &RescueReport) -> Result<Option<crate::partition::PartitionTable>> {
    let raw = crate::image::RawImage::open_recorded(
        std::slice::from_ref(&report.image),
        None,
        Some(report.size),
    )?;
    let image = crate::image::Image::Raw(crate::image::ImageFormat::Raw, raw);
    let bad: Vec<_> = report
        .bad_runs
        .iter()
        .map(|r| r.offset..r.offset + r.length)
        .collect();
    crate::partition::of_image_as(&image, report.size, report.sector_size, &bad)
}

/// Why a table read of a stopped rescue's image fails where the map is not finished.
const NOT_READ_YET: &str = "not read yet: the rescue stopped before it read these sectors \
                            (resume it to read them)";

/// The partition table of a rescue that stopped before finishing, from its image as it
/// stands: only when the table's own areas (LBA 0–33, and the GPT backup in the last 33
/// sectors) are rescued, and with every byte the map does not call finished refused rather
/// than its zeros taken for a table (an extended partition's chain beyond them, say).
fn partitions_so_far<R: SectorReader + ?Sized>(
    job: &mut job::Job<'_, R>,
) -> Result<Option<crate::partition::PartitionTable>> {
    use crate::map::BlockState;
    job.image.flush()?;
    let (size, ss) = (job.geo.size, job.geo.ss);
    let gaps: Vec<(std::ops::Range<u64>, &str)> = job
        .state
        .map
        .blocks()
        .iter()
        .filter(|b| b.state != BlockState::Finished)
        .map(|b| {
            let why = if b.state == BlockState::BadSector {
                "unreadable on the source (zeros in the image)"
            } else {
                NOT_READ_YET
            };
            (b.pos..b.end(), why)
        })
        .collect();
    let areas = [0..(34 * ss).min(size), size.saturating_sub(33 * ss)..size];
    for area in &areas {
        if let Some((r, why)) = gaps
            .iter()
            .find(|(r, _)| r.start < area.end && area.start < r.end)
        {
            return Err(Error::Damaged {
                range: r.start.max(area.start)..r.end.min(area.end),
                detail: format!("a partition table sector is {why}"),
            });
        }
    }
    let raw = crate::image::RawImage::open_recorded(
        std::slice::from_ref(&job.image.path().to_path_buf()),
        None,
        Some(size),
    )?;
    let image = crate::image::Image::Raw(crate::image::ImageFormat::Raw, raw);
    crate::partition::of_image_with_gaps(&image, size, ss as u32, &gaps)
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
    let lock = BaseLock::acquire(&opts.side_files().lock(), "rescue", SIDE_FILE_ROOM)?;
    let mut job = Job::open(
        reader,
        source_path,
        opts,
        progress,
        interrupted,
        stretch,
        None,
    )?;
    job.run_saving(&lock)?;
    job.finish(started)
}
