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

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::audit::{AuditRecord, JobKind, Outcome, ReaderInfo, RecordBuilder, Started, Throughput};
use crate::block::Block;
use crate::buffer::BufferPool;
use crate::case::CaseMetadata;
use crate::cputime::CpuLedger;
use crate::error::{Error, Result};
use crate::exclusive::SIDE_FILE_ROOM;
use crate::hash::{HashAlgorithm, MediaHashes};
use crate::map::{BadRun, BlockState, SectorMap};
use crate::outputs::{OutputRequest, Outputs};
use crate::pieces::{PieceHasher, PieceList, DEFAULT_PIECE_SIZE};
use crate::pipeline::{self, Consumers, Tuning};
use crate::progress::Progress;
use crate::reader::{read_source, ReadReport, ReaderOptions};
use crate::sink::{MediaSummary, OutputFile, Sink};
use crate::source::Source;

pub use crate::outputs::OutputFormat;
pub use crate::sink::E01Settings;

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
    /// For an `s3://` BASE: endpoint, object-lock retention, parts in flight (docs/s3.md).
    #[serde(skip_serializing_if = "crate::s3::StoreOptions::is_default")]
    pub store: crate::s3::StoreOptions,
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
            store: crate::s3::StoreOptions::default(),
            set_readonly: false,
            allow_live: false,
            command_line: Vec::new(),
        }
    }
}

impl AcquireOptions {
    /// What these options refuse before anything is touched, for `source` (opened with them):
    /// reader settings that do not fit its sector size, a piece size of 0, an output set that
    /// cannot be (a missing directory, `--clone` with `--split`, a bad split size); and the
    /// output set, planned for its size. `exhibit batch` asks it of every job before any starts.
    pub fn plan(&self, source: &Source) -> Result<Outputs> {
        self.reader.validate(source.logical_sector_size())?;
        if self.piece_size == 0 {
            return Err(Error::InvalidOption("the piece size must not be 0".into()));
        }
        Outputs::plan(&OutputRequest {
            base: &self.base,
            formats: &self.formats,
            split: self.split,
            clone_target: self.clone_target.as_deref(),
            hashes: &self.hashes,
            overwrite: self.overwrite,
            media_size: source.size(),
            store: &self.store,
        })
    }
}

/// What a finished acquisition produced.
#[derive(Debug)]
pub struct AcquireReport {
    /// The record as written to `BASE.yaml`.
    pub record: AuditRecord,
    /// Where the record is.
    pub record_path: PathBuf,
    /// [`crate::audit::exit::COMPLETE`] or [`crate::audit::exit::FINDINGS`] (unreadable sectors).
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
    let source = Source::open(&opts.source, opts.reader.direct)?;
    let set = opts.plan(&source)?;
    let hashes = set.hashes().to_vec();
    let side = set.side().clone();

    // Refuse before anything is written: outputs that are the source or live on it (also a
    // segment an --overwrite may replace or remove, and the lock), another run on BASE,
    // existing outputs.
    let mut live = None;
    let lock = set.claim(
        |guarded| {
            source.refuse_outputs(guarded)?;
            live = crate::device::live::guard_source(&source, opts.allow_live)?;
            Ok(())
        },
        "acquisition",
        SIDE_FILE_ROOM + 8 * source.size().div_ceil(u64::from(opts.piece_size)),
    )?;
    if opts.set_readonly {
        source.set_kernel_read_only()?;
    }
    let sinks = set.create_sinks(source.logical_sector_size(), || {
        let mut e = opts.e01.options_for(&source, &opts.case);
        e.acquired_at = started.utc;
        e
    })?;

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
    record.record_mut().source.drive = source.drive();
    record.note_partitions(crate::partition::of_source(&source));
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

    let (report, sinks, pieces, digests) = match pass {
        Ok(p) => p,
        Err((error, outputs)) => {
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
            let error = set.pass_failed(
                &mut record,
                &lock,
                error,
                outputs,
                &mut map,
                &unreadable,
                sector,
            );
            return Err(error);
        }
    };

    // The data is complete: close every output with what the whole pass knows.
    progress.set_phase("finishing");
    let summary = MediaSummary {
        media_size: source.size(),
        sector_size: source.logical_sector_size(),
        hashes: digests,
        unreadable,
    };
    record.record_mut().reader = Some(ReaderInfo {
        engine: report.engine,
        engine_reason: report.engine_reason.clone(),
        direct_io: report.direct_io,
        block_size: opts.reader.block_size,
        queue_depth: opts.reader.queue_depth,
        retries: opts.reader.retries,
    });
    let protect = source.file().metadata().ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    });
    set.finish(
        &mut record,
        &lock,
        sinks,
        &summary,
        &mut map,
        &pieces,
        "read",
        protect,
    )?;
    let elapsed = record.elapsed();
    record.record_mut().throughput = Some(Throughput::new(
        source.size(),
        elapsed,
        cpu.report(crate::cputime::process_seconds() - job_cpu_start),
    ));
    let outcome = Outcome::complete(!summary.unreadable.is_empty());
    let (record, record_path, exit_code) =
        set.complete(record, lock, &outcome, &summary.unreadable, sector)?;
    Ok(AcquireReport {
        record,
        record_path,
        exit_code,
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
