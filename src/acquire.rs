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
use std::time::Instant;

use chrono::{Local, SecondsFormat, Utc};

use crate::audit::{
    errno_name, write_atomically, AuditRecord, HashInfo, HostInfo, Outcome, PiecesInfo, ReaderInfo,
    SourceInfo, Throughput, Times, ToolInfo, UnreadableInfo, UnreadableRun,
};
use crate::block::Block;
use crate::buffer::BufferPool;
use crate::case::CaseMetadata;
use crate::cputime::CpuLedger;
use crate::error::{Error, Result};
use crate::ewf::{naming, Compression, E01Options, E01Sink};
use crate::hash::{log_line, HashAlgorithm, MediaHashes};
use crate::map::{BadRun, BlockState, SectorMap};
use crate::pieces::{PieceHasher, PieceList, DEFAULT_PIECE_SIZE};
use crate::pipeline::{self, Consumers, Tuning};
use crate::progress::Progress;
use crate::reader::{read_source, ReadReport, ReaderOptions};
use crate::sink::raw::{refuse_existing, RawLayout, RawSink};
use crate::sink::{MediaSummary, OutputFile, Sink};
use crate::source::{Source, SourceKind};

/// Exit code: everything read.
pub const EXIT_COMPLETE: i32 = 0;
/// Exit code: complete, but some sectors were unreadable and filled with zeros.
pub const EXIT_UNREADABLE: i32 = 1;
/// Exit code: failed or refused.
pub const EXIT_FAILED: i32 = 2;

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

/// E01 settings (used when the formats include E01).
#[derive(Clone, Debug, serde::Serialize)]
pub struct E01Settings {
    /// Chunk compression (default fast).
    #[serde(serialize_with = "serialize_compression")]
    pub compression: Compression,
    /// Largest segment file (default [`crate::ewf::DEFAULT_SEGMENT_SIZE`]).
    pub segment_size: u64,
}

impl Default for E01Settings {
    fn default() -> Self {
        E01Settings {
            compression: Compression::Fast,
            segment_size: crate::ewf::DEFAULT_SEGMENT_SIZE,
        }
    }
}

impl E01Settings {
    /// The E01 writer's options for `source`: its size, sector size, model and serial, the
    /// case metadata, and 32 KiB chunks (also on 4Kn media).
    pub fn options_for(&self, source: &Source, case: &CaseMetadata) -> E01Options {
        let identity = source.identity();
        let mut e = E01Options::new(source.size(), source.logical_sector_size());
        e.compression = self.compression;
        e.segment_size = self.segment_size;
        e.sectors_per_chunk = (32768 / source.logical_sector_size()).max(1);
        e.case = case.clone();
        e.model = identity.model.clone();
        e.serial = identity.serial.clone();
        e.physical_device = source.kind() == SourceKind::Disk;
        e.removable = identity.removable.unwrap_or(false);
        e
    }
}

fn serialize_compression<S: serde::Serializer>(
    c: &Compression,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(match c {
        Compression::None => "none",
        Compression::Fast => "fast",
        Compression::Best => "best",
    })
}

/// Everything an acquisition needs to know. Defaults are documented per field.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AcquireOptions {
    /// The source: block device, partition or image file.
    pub source: PathBuf,
    /// Output base name: `BASE.raw`, `BASE.yaml`, ….
    pub base: PathBuf,
    /// Output formats (default raw).
    pub formats: Vec<OutputFormat>,
    /// Split raw output into segments of this many bytes (default: one file).
    pub split: Option<u64>,
    /// Write the raw output onto this block device instead of a file (a clone).
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
    /// [`EXIT_COMPLETE`] or [`EXIT_UNREADABLE`].
    pub exit_code: i32,
}

/// `BASE` + `.ext`.
pub fn with_extension(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The side files every acquisition writes.
struct SidePaths {
    record: PathBuf,
    map: PathBuf,
    pieces: PathBuf,
    logs: Vec<(HashAlgorithm, PathBuf)>,
}

impl SidePaths {
    fn new(base: &Path, hashes: &[HashAlgorithm]) -> Self {
        SidePaths {
            record: with_extension(base, "yaml"),
            map: with_extension(base, "map"),
            pieces: with_extension(base, "crc64"),
            logs: hashes
                .iter()
                .map(|&a| (a, with_extension(base, a.name())))
                .collect(),
        }
    }

    fn all(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![&self.record, &self.map, &self.pieces];
        v.extend(self.logs.iter().map(|(_, p)| p.as_path()));
        v
    }
}

/// Runs an acquisition. Refusals and failures are errors; an acquisition with unreadable
/// sectors is a success with exit code 1. Whenever outputs were started, the record says how
/// the run ended, also when it failed.
pub fn acquire(
    opts: &AcquireOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<AcquireReport> {
    let started = Utc::now();
    let clock = Instant::now();
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

    let side = SidePaths::new(&opts.base, &hashes);
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
            (None, None) => RawLayout::Single(with_extension(&opts.base, "raw")),
        })
    } else {
        None
    };

    // Refuse before anything is written: existing outputs, outputs on the source.
    let mut planned: Vec<PathBuf> = side.all().into_iter().map(Path::to_path_buf).collect();
    if let Some(layout) = &raw_layout {
        planned.extend(layout.paths(source.size()));
    }
    for path in &planned {
        source.refuse_output_on_source(path)?;
        let is_clone_target = opts.clone_target.as_deref() == Some(path.as_path());
        if !opts.overwrite && !is_clone_target {
            refuse_existing(path)?;
        }
    }

    if opts.set_readonly {
        source.set_kernel_read_only()?;
    }
    let want_e01 = opts.formats.contains(&OutputFormat::E01);
    if want_e01 {
        let sector = source.logical_sector_size() as u64;
        if source.size() % sector != 0 {
            return Err(Error::InvalidOption(format!(
                "E01 stores whole {sector}-byte sectors and the source is {} bytes; use --format raw",
                source.size()
            )));
        }
        if let Some(first) = naming::segment_path(&opts.base, 1) {
            source.refuse_output_on_source(&first)?;
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
            e.acquired_at = started;
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

    let mut record = AuditRecord {
        schema: crate::audit::SCHEMA.into(),
        tool: ToolInfo::current(),
        command_line: opts.command_line.clone(),
        options: serde_yaml::to_value(opts).unwrap_or(serde_yaml::Value::Null),
        host: HostInfo::current(),
        case: opts.case.clone(),
        times: Times {
            started_utc: started.to_rfc3339_opts(SecondsFormat::Millis, true),
            finished_utc: None,
            host_utc_offset: Local::now().format("%:z").to_string(),
            duration_seconds: None,
        },
        source: SourceInfo {
            path: opts.source.clone(),
            kind: source.kind(),
            size: source.size(),
            logical_sector_size: source.logical_sector_size(),
            physical_sector_size: source.physical_sector_size(),
            identity: source.identity().clone(),
            kernel_read_only: source.kernel_read_only(),
        },
        reader: None,
        outputs: Vec::new(),
        hashes: None,
        unreadable: UnreadableInfo::default(),
        unreadable_not_in_e01: None,
        pieces: None,
        throughput: None,
        outcome: Outcome {
            status: "running".into(),
            exit_code: None,
            reason: Some(
                "the acquisition has not finished; if this persists, it was killed".into(),
            ),
        },
    };
    record.write(&side.record)?;

    progress.set_total(source.size());
    progress.set_phase("reading");
    let pool = BufferPool::new(opts.reader.pool_buffers(), opts.reader.block_size);
    let mut map = SectorMap::new(source.size(), BlockState::NonTried);
    let mut unreadable: Vec<BadRun> = Vec::new();

    let cpu = CpuLedger::default();
    let job_cpu_start = crate::cputime::process_seconds();
    let pass = run_pass(
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
    );
    let sector = source.logical_sector_size() as u64;
    let finish = |record: &mut AuditRecord, status: &str, exit: i32, reason: Option<String>| {
        let ended = Utc::now();
        record.times.finished_utc = Some(ended.to_rfc3339_opts(SecondsFormat::Millis, true));
        record.times.duration_seconds = Some(clock.elapsed().as_secs_f64());
        record.outcome = Outcome {
            status: status.into(),
            exit_code: Some(exit),
            reason,
        };
        record.unreadable = unreadable_info(&unreadable, sector, Some(side.map.clone()));
    };

    let (report, sinks, pieces, digests) = match pass {
        Ok(p) => p,
        Err((error, outputs)) => {
            map.current_status = '?';
            let _ = write_map(&map, &side.map, record.times.started_utc.as_str());
            record.outputs = outputs;
            let status = if matches!(error, Error::Interrupted(_)) {
                "interrupted"
            } else {
                "failed"
            };
            finish(&mut record, status, EXIT_FAILED, Some(error.to_string()));
            let _ = record.write(&side.record);
            return Err(error);
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
    record.reader = Some(ReaderInfo {
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
    let side_result = (|| -> Result<()> {
        write_map(&map, &side.map, &record.times.started_utc)?;
        write_atomically(&side.pieces, &pieces.to_bytes())?;
        Ok(())
    })();
    if let (None, Err(e)) = (&failure, side_result) {
        failure = Some(e);
    }
    if let Some(error) = failure {
        record.outputs = outputs;
        finish(&mut record, "failed", EXIT_FAILED, Some(error.to_string()));
        let _ = record.write(&side.record);
        return Err(error);
    }

    // Hash logs name the single raw file; otherwise they read the media from stdin ("-").
    let single_raw = outputs
        .iter()
        .filter(|o| o.kind == "raw")
        .map(|o| o.path.clone())
        .next();
    let log_name = single_raw
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "-".into());
    let mut logs = Vec::new();
    let mut checks = Vec::new();
    let feed = media_feed_command(&outputs, source.size());
    for (alg, path) in &side.logs {
        if let Some(d) = digests.get(*alg) {
            write_atomically(path, log_line(d, &log_name).as_bytes())?;
            logs.push(path.clone());
            let log_file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            checks.push(match &feed {
                None => format!("{} -c {log_file}", alg.checker()),
                Some(feed) => format!("{feed} | {} -c {log_file}", alg.checker()),
            });
        }
    }

    if opts.formats.contains(&OutputFormat::E01) {
        let lost = crate::ewf::unaddressable_runs(&unreadable, source.logical_sector_size());
        if !lost.is_empty() {
            record.unreadable_not_in_e01 = Some(format!(
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
    let elapsed = clock.elapsed().as_secs_f64();
    let zero_filled_sectors: u64 = unreadable.iter().map(|r| r.length.div_ceil(sector)).sum();
    record.hashes = Some(HashInfo::new(
        &digests,
        source.size(),
        bad_bytes,
        zero_filled_sectors,
        "read",
        logs,
        checks,
    ));
    record.pieces = Some(PiecesInfo {
        file: side.pieces.clone(),
        piece_size: opts.piece_size,
        algorithm: "crc-64/xz".into(),
    });
    record.throughput = Some(Throughput::new(
        source.size(),
        elapsed,
        cpu.report(crate::cputime::process_seconds() - job_cpu_start),
    ));
    record.outputs = outputs;
    let (status, exit) = if unreadable.is_empty() {
        ("complete", EXIT_COMPLETE)
    } else {
        ("complete-with-unreadable-sectors", EXIT_UNREADABLE)
    };
    finish(&mut record, status, exit, None);
    record.write(&side.record)?;
    Ok(AcquireReport {
        record,
        record_path: side.record,
        exit_code: exit,
    })
}

/// A shell pipeline that writes the media to stdout, when the hash log cannot name one file.
fn media_feed_command(outputs: &[OutputFile], size: u64) -> Option<String> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if outputs.iter().any(|o| o.kind == "raw") {
        return None;
    }
    let segments: Vec<&OutputFile> = outputs.iter().filter(|o| o.kind == "raw-segment").collect();
    if !segments.is_empty() {
        let names: Vec<String> = segments.iter().map(|o| name(&o.path)).collect();
        return Some(if names.len() <= 8 {
            format!("cat {}", names.join(" "))
        } else {
            let first = &names[0];
            let stem = first.strip_suffix(".001").unwrap_or(first);
            format!("cat {stem}.[0-9][0-9][0-9]")
        });
    }
    if let Some(dev) = outputs.iter().find(|o| o.kind == "device") {
        return Some(format!("head -c {size} {}", dev.path.display()));
    }
    if let Some(e01) = outputs.iter().find(|o| o.kind == "e01-segment") {
        // ewfexport prints its verdict to stdout after the data, hence the head.
        return Some(format!(
            "ewfexport -q -u -f raw -t - {} | head -c {size}",
            name(&e01.path)
        ));
    }
    None
}

pub(crate) fn unreadable_info(
    runs: &[BadRun],
    sector: u64,
    map: Option<PathBuf>,
) -> UnreadableInfo {
    UnreadableInfo {
        sectors: runs.iter().map(|r| r.length.div_ceil(sector)).sum(),
        bytes: runs.iter().map(|r| r.length).sum(),
        map,
        runs: runs
            .iter()
            .map(|r| UnreadableRun {
                first_sector: r.offset / sector,
                sector_count: r.length.div_ceil(sector),
                offset: r.offset,
                length: r.length,
                errno: r.errno,
                error: errno_name(r.errno),
                attempts: r.attempts,
            })
            .collect(),
    }
}

fn write_map(map: &SectorMap, path: &Path, started: &str) -> Result<()> {
    let header = vec![
        format!(
            "Mapfile. Created by {} {} ({})",
            crate::TOOL_NAME,
            crate::VERSION,
            crate::GIT_REVISION
        ),
        format!("Start time: {started}"),
        format!(
            "Current time: {}",
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    ];
    write_atomically(path, map.to_mapfile(&header).as_bytes())
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
