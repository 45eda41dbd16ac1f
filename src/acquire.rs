//! The acquisition job: one read of the source, fanned out to the hashers, the piece list and
//! every output, then the map, the hash logs and the record.
//!
//! ```text
//!  source ─▶ reader ─▶ emit ──┬──▶ MD5 thread ─┐
//!                              ├──▶ SHA-1 thread ├─▶ media hashes ─┐
//!                              ├──▶ SHA-256 thread┘                 ├─▶ sinks finish, map,
//!                              ├──▶ piece-list thread               │   hash logs, record
//!                              └──▶ one thread per sink (raw, …) ───┘
//! ```
//! Each block is an `Arc<Block>`: every consumer reads the same buffer, which returns to the
//! pool when the last one drops it. The pool size is the back-pressure.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::audit::{
    exit, hash_logs, write_atomically, write_map, AuditRecord, HashInfo, JobKind, Outcome,
    PiecesInfo, ReaderInfo, RecordBuilder, SideFiles, Started, Throughput,
};
use crate::block::Block;
use crate::buffer::BufferPool;
use crate::case::CaseMetadata;
use crate::cputime::CpuLedger;
use crate::error::{Error, Result};
use crate::ewf::{naming, E01Sink};
use crate::exclusive::{BaseLock, SIDE_FILE_ROOM};
use crate::hash::{HashAlgorithm, MediaHashes};
use crate::map::{BadRun, BlockState, SectorMap};
use crate::pieces::{PieceHasher, PieceList, DEFAULT_PIECE_SIZE};
use crate::pipeline::{self, Consumers, Tuning};
use crate::progress::Progress;
use crate::reader::{read_source, ReadReport, ReaderOptions};
use crate::sink::raw::{refuse_existing, RawLayout, RawSink};
use crate::sink::{MediaSummary, OutputFile, Sink};
use crate::source::Source;

pub use crate::sink::E01Settings;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Raw image (single, split, or a clone onto a device).
    Raw,
    /// EnCase 6 E01 segments (`BASE.E01`, `BASE.E02`, …).
    E01,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "raw" => Ok(OutputFormat::Raw),
            "e01" | "ewf" => Ok(OutputFormat::E01),
            other => Err(format!("unknown format '{other}' (raw, e01)")),
        }
    }
}

/// Everything an acquisition needs to know. Defaults are documented per field.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AcquireOptions {
    /// The source: block device, partition or image file.
    #[serde(with = "crate::text::path")]
    pub source: PathBuf,
    /// Output base name: `BASE.raw`, `BASE.yaml`, ….
    #[serde(with = "crate::text::path")]
    pub base: PathBuf,
    /// Output formats (default raw).
    pub formats: Vec<OutputFormat>,
    /// Split raw output into segments of this many bytes (default: one file).
    pub split: Option<u64>,
    /// Write the raw output onto this block device instead of a file (a clone).
    #[serde(with = "crate::text::path::option")]
    pub clone_target: Option<PathBuf>,
    /// E01 settings.
    pub e01: E01Settings,
    /// Hashes to compute (default MD5, SHA-1, SHA-256; MD5 and SHA-1 are always added for E01).
    pub hashes: Vec<HashAlgorithm>,
    /// Reader settings.
    pub reader: ReaderOptions,
    /// Piece size of the CRC-64 list (default 1 MiB).
    pub piece_size: u32,
    /// Case metadata.
    pub case: CaseMetadata,
    /// Replace existing outputs instead of refusing.
    pub overwrite: bool,
    /// Set the kernel's read-only flag on the source device before reading (default off).
    pub set_readonly: bool,
    /// Image a live source (mounted read-write, held, swap): refused without it (default
    /// off); with it, recorded in `source.live_use`.
    pub allow_live: bool,
    /// argv, for the record.
    #[serde(skip)]
    pub command_line: Vec<String>,
}

impl AcquireOptions {
    /// Options with the defaults for `source` → `base`.
    pub fn new(source: impl Into<PathBuf>, base: impl Into<PathBuf>) -> Self {
        AcquireOptions {
            source: source.into(),
            base: base.into(),
            formats: vec![OutputFormat::Raw],
            split: None,
            clone_target: None,
            e01: E01Settings::default(),
            hashes: HashAlgorithm::ALL.to_vec(),
            reader: ReaderOptions::default(),
            piece_size: DEFAULT_PIECE_SIZE,
            case: CaseMetadata::default(),
            overwrite: false,
            set_readonly: false,
            allow_live: false,
            command_line: Vec::new(),
        }
    }
}

/// What a finished acquisition produced.
#[derive(Debug)]
pub struct AcquireReport {
    /// The record as written to `BASE.yaml`.
    pub record: AuditRecord,
    /// Where the record is.
    pub record_path: PathBuf,
    /// [`exit::COMPLETE`] or [`exit::FINDINGS`] (unreadable sectors).
    pub exit_code: i32,
}

/// Runs an acquisition. Refusals and failures are errors; an acquisition with unreadable
/// sectors is a success with exit code 1. Whenever outputs were started, the record says how
/// the run ended, also when it failed.
pub fn acquire(
    opts: &AcquireOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<AcquireReport> {
    let started = Started::now();
    let mut hashes = opts.hashes.clone();
    if opts.formats.contains(&OutputFormat::E01) {
        // An E01 carries MD5 (`hash`) and MD5 + SHA-1 (`digest`); an E01 without them is one
        // no reader can check, so they are always computed for it.
        hashes.extend([HashAlgorithm::Md5, HashAlgorithm::Sha1]);
    }
    hashes.sort();
    hashes.dedup();

    let source = Source::open(&opts.source, opts.reader.direct)?;
    opts.reader.validate(source.logical_sector_size())?;
    if opts.piece_size == 0 {
        return Err(Error::InvalidOption("the piece size must not be 0".into()));
    }
    if opts.formats.is_empty() {
        return Err(Error::InvalidOption("no output format given".into()));
    }
    let base_dir = opts
        .base
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !base_dir.is_dir() {
        return Err(Error::Refused(format!(
            "the output directory {} does not exist",
            base_dir.display()
        )));
    }
    if opts.base.file_name().is_none() {
        return Err(Error::InvalidOption(format!(
            "-o {}: give a base name such as case42/disk, not a directory",
            opts.base.display()
        )));
    }

    let side = SideFiles::new(&opts.base);
    let raw_layout = if opts.formats.contains(&OutputFormat::Raw) {
        Some(match (&opts.clone_target, opts.split) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidOption(
                    "--clone and --split cannot be combined".into(),
                ))
            }
            (Some(dev), None) => RawLayout::Device(dev.clone()),
            (None, Some(size)) => {
                crate::sink::raw::check_split(size)?;
                RawLayout::Split {
                    base: opts.base.clone(),
                    segment_size: size,
                }
            }
            (None, None) => RawLayout::Single(side.raw()),
        })
    } else {
        None
    };

    // Refuse before anything is written: outputs that are the source or live on it (also a
    // segment an --overwrite may replace or remove, and the lock), another run on BASE,
    // existing outputs.
    let want_e01 = opts.formats.contains(&OutputFormat::E01);
    let mut planned: Vec<PathBuf> = side.all(&hashes);
    if let Some(layout) = &raw_layout {
        planned.extend(layout.paths(source.size()));
    }
    let mut guarded = planned.clone();
    guarded.push(side.lock());
    if want_e01 {
        guarded.extend(naming::segment_path(&opts.base, 1));
    }
    let raw_files = matches!(
        raw_layout,
        Some(RawLayout::Single(_) | RawLayout::Split { .. })
    );
    guarded.extend(side.segment_names(raw_files, want_e01)?);
    source.refuse_outputs(&guarded)?;
    let live = crate::device::live::guard_source(&source, opts.allow_live)?;
    let lock = BaseLock::acquire(
        &side.lock(),
        "acquisition",
        SIDE_FILE_ROOM + 8 * source.size().div_ceil(u64::from(opts.piece_size)),
    )?;
    for path in &planned {
        let is_clone_target = opts.clone_target.as_deref() == Some(path.as_path());
        if !opts.overwrite && !is_clone_target {
            refuse_existing(path)?;
        }
    }

    if opts.set_readonly {
        source.set_kernel_read_only()?;
    }
    if want_e01 {
        let sector = source.logical_sector_size() as u64;
        if source.size() % sector != 0 {
            return Err(Error::InvalidOption(format!(
                "E01 stores whole {sector}-byte sectors and the source is {} bytes; use --format raw",
                source.size()
            )));
        }
    }

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let created = || -> Result<()> {
        if let Some(layout) = raw_layout {
            let raw = RawSink::create(layout, source.size(), opts.overwrite)?;
            sinks.push(Box::new(raw));
        }
        if want_e01 {
            let mut e = opts.e01.options_for(&source, &opts.case);
            e.acquired_at = started.utc;
            sinks.push(Box::new(E01Sink::create(&opts.base, e, opts.overwrite)?));
        }
        Ok(())
    };
    if let Err(e) = created() {
        // A refusal writes nothing: remove what the outputs set up before the one that
        // refused (new, empty files: existing names were refused above unless --overwrite).
        for sink in sinks {
            for file in sink.abandon() {
                if std::fs::metadata(&file.path).is_ok_and(|m| m.is_file()) {
                    let _ = std::fs::remove_file(&file.path);
                }
            }
        }
        return Err(e);
    }

    let mut record = RecordBuilder::start(
        JobKind::Acquisition,
        &source,
        opts,
        &opts.case,
        &opts.command_line,
        started,
        side.record(),
    );
    record.record_mut().source.live_use = live;
    record.write()?;

    progress.set_total(source.size());
    progress.set_phase("reading");
    let mut map = SectorMap::new(source.size(), BlockState::NonTried);
    let mut unreadable: Vec<BadRun> = Vec::new();

    let cpu = CpuLedger::default();
    let job_cpu_start = crate::cputime::process_seconds();
    // Sized by the source and the memory there is: options alone (256 reads of 64 MiB) must
    // not ask for more memory than the machine has; a failure is recorded like any other.
    let pass = match opts.reader.pool_for(source.size()) {
        Ok(pool) => run_pass(
            &source,
            opts,
            &hashes,
            &pool,
            sinks,
            progress,
            stop,
            &mut map,
            &mut unreadable,
            &cpu,
        ),
        Err(e) => Err((e, sinks.into_iter().flat_map(|s| s.abandon()).collect())),
    };
    let sector = source.logical_sector_size() as u64;
    // The record's end: the outcome, and the unreadable runs found so far whatever the end.
    let finish = |record: &mut RecordBuilder, outcome: &Outcome, unreadable: &[BadRun]| {
        record.set_unreadable(unreadable, sector, side.map());
        record.finish(outcome)
    };
    let map_header = |started_utc: &str| {
        vec![
            format!("Start time: {started_utc}"),
            format!(
                "Current time: {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ]
    };

    let (report, sinks, pieces, digests) = match pass {
        Ok(p) => p,
        Err((error, outputs)) => {
            // The image may have filled the filesystem: the reserved room is for what follows.
            lock.release_room();
            if let Error::SourceStopped { offset, .. } = &error {
                // Nothing read from `offset` on: what the dead stretch called bad is left
                // untried, so a rescue or a re-run reads it again.
                map.set(*offset, source.size(), BlockState::NonTried);
                map.current_pos = *offset;
                unreadable.retain_mut(|r| {
                    r.length = r.length.min(offset.saturating_sub(r.offset));
                    r.length > 0
                });
            }
            map.current_status = '?';
            let header = map_header(&record.record().times.started_utc);
            let _ = write_map(&map, &side.map(), &header);
            record.record_mut().outputs = outputs;
            let written = finish(&mut record, &Outcome::from_error(&error), &unreadable);
            return Err(error.or_unrecorded(record.path(), written));
        }
    };

    // The data is complete: close every output with what the whole pass knows.
    progress.set_phase("finishing");
    let summary = MediaSummary {
        media_size: source.size(),
        sector_size: source.logical_sector_size(),
        hashes: digests.clone(),
        unreadable: unreadable.clone(),
    };
    record.record_mut().reader = Some(ReaderInfo {
        engine: report.engine,
        engine_reason: report.engine_reason.clone(),
        direct_io: report.direct_io,
        block_size: opts.reader.block_size,
        queue_depth: opts.reader.queue_depth,
        retries: opts.reader.retries,
    });
    let mut outputs = Vec::new();
    let mut failure = None;
    for sink in sinks {
        if failure.is_some() {
            outputs.extend(sink.abandon());
            continue;
        }
        match sink.finish(&summary) {
            Ok(files) => outputs.extend(files),
            Err(e) => failure = Some(e),
        }
    }
    map.current_pos = source.size();
    map.current_status = '+';
    lock.release_room();
    let side_result = (|| -> Result<()> {
        let header = map_header(&record.record().times.started_utc);
        write_map(&map, &side.map(), &header)?;
        write_atomically(&side.pieces(), &pieces.to_bytes())?;
        Ok(())
    })();
    if let (None, Err(e)) = (&failure, side_result) {
        failure = Some(e);
    }
    if failure.is_none() && opts.overwrite {
        // What an earlier run on this BASE wrote and this one did not (more segments, another
        // layout) would make the new set fail verify: see sink::stale.
        let mut keep: Vec<PathBuf> = outputs.iter().map(|o| o.path.clone()).collect();
        keep.extend(side.all(&hashes));
        let protect = source.file().metadata().ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        if let Err(e) = crate::sink::stale::remove_stale(&opts.base, &keep, protect) {
            failure = Some(e);
        }
    }
    if let Some(error) = failure {
        record.record_mut().outputs = outputs;
        let written = finish(
            &mut record,
            &Outcome::Failed(error.to_string()),
            &unreadable,
        );
        return Err(error.or_unrecorded(record.path(), written));
    }

    let logs = match hash_logs::write(&side, &digests, &outputs, source.size()) {
        Ok(logs) => logs,
        Err(error) => {
            record.record_mut().outputs = outputs;
            let outcome = Outcome::Failed(error.to_string());
            let written = finish(&mut record, &outcome, &unreadable);
            return Err(error.or_unrecorded(record.path(), written));
        }
    };

    let rec = record.record_mut();
    if opts.formats.contains(&OutputFormat::E01) {
        let lost = crate::ewf::unaddressable_runs(&unreadable, source.logical_sector_size());
        if !lost.is_empty() {
            rec.unreadable_not_in_e01 = Some(format!(
                "{} unreadable runs lie beyond sector 2^32-1, which the E01 error2 section cannot \
                 address; they are zeros in the E01 and listed only here and in the map: {}",
                lost.len(),
                lost.iter()
                    .map(|r| format!("bytes {}..{}", r.offset, r.offset + r.length))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let bad_bytes: u64 = unreadable.iter().map(|r| r.length).sum();
    let zero_filled_sectors: u64 = unreadable.iter().map(|r| r.length.div_ceil(sector)).sum();
    rec.hashes = Some(HashInfo::new(
        &digests,
        source.size(),
        bad_bytes,
        zero_filled_sectors,
        "read",
        logs.logs,
        logs.checks,
    ));
    rec.pieces = Some(PiecesInfo {
        file: side.pieces(),
        piece_size: opts.piece_size,
        algorithm: "crc-64/xz".into(),
    });
    rec.outputs = outputs;
    let elapsed = record.elapsed();
    record.record_mut().throughput = Some(Throughput::new(
        source.size(),
        elapsed,
        cpu.report(crate::cputime::process_seconds() - job_cpu_start),
    ));
    let outcome = Outcome::complete(!unreadable.is_empty());
    let written = finish(&mut record, &outcome, &unreadable);
    Error::recorded(record.path(), written)?;
    drop(lock);
    let (record, record_path) = record.into_parts();
    Ok(AcquireReport {
        record,
        record_path,
        exit_code: outcome.exit_code().unwrap_or(exit::FAILED),
    })
}

type PassOutput = (ReadReport, Vec<Box<dyn Sink>>, PieceList, MediaHashes);
type PassError = (Error, Vec<OutputFile>);

/// The one read and its consumers. On failure, every sink is abandoned and its files listed.
#[allow(clippy::too_many_arguments)]
fn run_pass(
    source: &Source,
    opts: &AcquireOptions,
    hashes: &[HashAlgorithm],
    pool: &BufferPool,
    sinks: Vec<Box<dyn Sink>>,
    progress: &Progress,
    stop: &AtomicBool,
    map: &mut SectorMap,
    unreadable: &mut Vec<BadRun>,
    cpu: &CpuLedger,
) -> std::result::Result<PassOutput, PassError> {
    let consumers = Consumers {
        hashes: hashes.to_vec(),
        piece_size: Some(opts.piece_size),
        sinks,
    };
    let tuning = Tuning { cpu: Some(cpu) };
    let passed = pipeline::run(consumers, pool, tuning, progress, stop, |feed| {
        let mut emit = |block: Block| -> Result<()> {
            map.set(block.offset, block.len() as u64, BlockState::Finished);
            for run in &block.unreadable {
                map.set(run.offset, run.length, BlockState::BadSector);
                progress.add_unreadable(run.length);
                unreadable.push(run.clone());
            }
            map.current_pos = block.end();
            feed.send_block(block)
        };
        let reader_cpu = crate::cputime::thread_seconds();
        let read = read_source(source, &opts.reader, pool, stop, &mut emit);
        cpu.add("reader", crate::cputime::thread_seconds() - reader_cpu);
        read
    });
    match passed {
        Ok(p) => {
            let pieces = p
                .pieces
                .unwrap_or_else(|| PieceHasher::new(opts.piece_size).finish());
            Ok((p.value, p.sinks, pieces, p.hashes))
        }
        Err(failed) => Err(failed.abandon()),
    }
}
