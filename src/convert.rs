//! `exhibit convert IMAGE -o BASE --format raw|e01|raw,e01`: what `ewfexport` does, from any
//! image (raw, split raw, an E01 set of any writer, by any of its names) to any output set.
//!
//! ```text
//!  Image::open_in ─▶ references::of_image (what it claims) ─▶ Outputs::plan/claim/create_sinks
//!        ─▶ Image::stream (E01 decoded on all cores) ─▶ pipeline::run (hashes, pieces, sinks)
//!        ─▶ Outputs::finish ─▶ the claims against the hashes read ─▶ record
//! ```
//! The case metadata, the media's identity and the unreadable runs of the source acquisition
//! come over from the source (its E01 headers and `error2`, its record); flags override the
//! case. A source that does not hold its own hashes, or has damaged chunks, is converted as it
//! reads (damaged chunks as zeros, listed as unreadable) and ends with exit 1 and a record
//! that says what differs: never a silent success.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::audit::{
    AuditRecord, ClaimedHash, ConvertedFrom, JobKind, Outcome, RecordBuilder, SourceInfo, Started,
    Throughput,
};
use crate::case::CaseMetadata;
use crate::cputime::CpuLedger;
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::image::{provenance, references, Image};
use crate::map::{BadRun, BlockState, SectorMap};
use crate::outputs::{OutputFormat, OutputRequest, Outputs};
use crate::pieces::{PieceHasher, DEFAULT_PIECE_SIZE};
use crate::pipeline::{Consumers, Tuning};
use crate::progress::Progress;
use crate::sink::{E01Settings, MediaSummary};
use crate::source::SourceKind;

/// errno recorded for media bytes a damaged source chunk stood for (no read failed: the
/// stored data is bad).
const DAMAGED_ERRNO: i32 = libc::EBADMSG;

/// What to convert and how. Defaults are documented per field.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConvertOptions {
    /// Any file of the image (`disk.E01`, `disk.E03`, `disk.raw`, `disk.002`).
    #[serde(with = "crate::text::path")]
    pub image: PathBuf,
    /// Output base name: `BASE.raw`, `BASE.E01`, `BASE.yaml`, ….
    #[serde(with = "crate::text::path")]
    pub base: PathBuf,
    /// Output formats (default raw).
    pub formats: Vec<OutputFormat>,
    /// Split raw output into segments of this many bytes (default: one file).
    pub split: Option<u64>,
    /// E01 settings.
    pub e01: E01Settings,
    /// Hashes to compute (default MD5, SHA-1, SHA-256; MD5 and SHA-1 are always added for E01).
    pub hashes: Vec<HashAlgorithm>,
    /// Piece size of the CRC-64 list (default 1 MiB).
    pub piece_size: u32,
    /// Case metadata given on the command line: each field given replaces the source's.
    pub case: CaseMetadata,
    /// Replace existing outputs instead of refusing.
    pub overwrite: bool,
    /// For an `s3://` BASE: endpoint, object-lock retention, parts in flight (docs/s3.md).
    #[serde(skip_serializing_if = "crate::s3::StoreOptions::is_default")]
    pub store: crate::s3::StoreOptions,
    /// E01 decoder threads (default 0: one per core).
    pub workers: usize,
    /// argv, for the record.
    #[serde(skip)]
    pub command_line: Vec<String>,
}

impl ConvertOptions {
    /// Options with the defaults for `image` → `base`.
    pub fn new(image: impl Into<PathBuf>, base: impl Into<PathBuf>) -> Self {
        ConvertOptions {
            image: image.into(),
            base: base.into(),
            formats: vec![OutputFormat::Raw],
            split: None,
            e01: E01Settings::default(),
            hashes: HashAlgorithm::ALL.to_vec(),
            piece_size: DEFAULT_PIECE_SIZE,
            case: CaseMetadata::default(),
            overwrite: false,
            store: crate::s3::StoreOptions::default(),
            workers: 0,
            command_line: Vec::new(),
        }
    }
}

/// What a finished conversion produced.
#[derive(Debug)]
pub struct ConvertReport {
    /// The record as written to `BASE.yaml`.
    pub record: AuditRecord,
    /// Where the record is.
    pub record_path: PathBuf,
    /// 0: the source holds every hash it claims and nothing is damaged; 1 otherwise (or with
    /// unreadable sectors carried over from its acquisition).
    pub exit_code: i32,
}

/// Converts `opts.image` into the set at `opts.base`. Refusals and failures are errors (exit
/// 2); a source that does not hold its hashes or has damage is a finished conversion with exit
/// code 1, and its record says what differs.
pub fn convert(
    opts: &ConvertOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<ConvertReport> {
    let started = Started::now();
    // Local files, or objects of a bucket (`s3://…`, the same endpoint as an s3 output).
    let place = crate::image::Place::of(&opts.image, opts.store.endpoint.as_deref())?;
    let image = Image::open_in(&place, &opts.image)?;
    image.refuse_incomplete(&opts.image)?;
    if opts.piece_size == 0 {
        return Err(Error::InvalidOption("the piece size must not be 0".into()));
    }
    let media_size = image.media_size();
    let sector = image.sector_size();
    let claims = references::of_image(&opts.image, &image);
    let carried = provenance::of_image(&image, &claims);
    let case = carried.case.clone().overlay(opts.case.clone());

    let set = Outputs::plan(&OutputRequest {
        base: &opts.base,
        formats: &opts.formats,
        split: opts.split,
        clone_target: None,
        hashes: &opts.hashes,
        overwrite: opts.overwrite,
        media_size,
        store: &opts.store,
    })?;
    if set.wants_e01() && !matches!(sector, 512 | 4096) {
        return Err(Error::InvalidOption(format!(
            "{}: {sector}-byte sectors; the E01 writer takes 512 or 4096 (use --format raw)",
            opts.image.display()
        )));
    }
    let inputs = references::input_files(&opts.image, &image, &claims);
    let lock = set.claim(
        |guarded| {
            // Every file of BASE's set, also those only an --overwrite would remove.
            let mut all = guarded.to_vec();
            all.extend(crate::sink::stale::stale_files(&opts.base, &[], None)?);
            crate::outputs::refuse_inputs(&inputs, &all)
        },
        "conversion",
        crate::exclusive::SIDE_FILE_ROOM + 8 * media_size.div_ceil(u64::from(opts.piece_size)),
    )?;
    let sinks = set.create_sinks(sector, || {
        let mut e = opts.e01.options(media_size, sector, &case);
        e.model = carried.identity.model.clone();
        e.serial = carried.identity.serial.clone();
        e.physical_device = carried.kind == SourceKind::Disk;
        e.removable = carried.identity.removable.unwrap_or(false);
        e.acquired_at = carried.acquired_at.unwrap_or(started.utc);
        e
    })?;

    let source_info = SourceInfo {
        path: opts.image.clone(),
        kind: carried.kind,
        size: media_size,
        logical_sector_size: sector,
        physical_sector_size: sector,
        identity: carried.identity.clone(),
        kernel_read_only: None,
        live_use: None,
        drive: None,
    };
    let mut record = RecordBuilder::start_from(
        JobKind::Conversion,
        source_info,
        opts,
        &case,
        &opts.command_line,
        started,
        set.side().record(),
    );
    record.write()?;

    progress.set_total(media_size);
    progress.set_phase("converting");
    let cpu = CpuLedger::default();
    let job_cpu_start = crate::cputime::process_seconds();
    let consumers = Consumers {
        hashes: set.hashes().to_vec(),
        piece_size: Some(opts.piece_size),
        sinks,
    };
    let tuning = Tuning { cpu: Some(&cpu) };
    let passed = image.pass(consumers, opts.workers, tuning, progress, stop);
    let mut unreadable = carried.unreadable.clone();
    let mut map = SectorMap::new(media_size, BlockState::NonTried);
    let passed = match passed {
        Ok(p) => p,
        Err(failed) => {
            let (error, outputs) = failed.abandon();
            let s = u64::from(sector);
            return Err(set.pass_failed(
                &mut record,
                &lock,
                error,
                outputs,
                &mut map,
                &unreadable,
                s,
            ));
        }
    };

    // Damaged chunks went on as zeros: in the new set they are unreadable bytes like those of
    // the acquisition, so that its error section, map and verify say so.
    let mut problems: Vec<String> = Vec::new();
    if let Some(e) = image.e01() {
        problems.extend(e.problems().iter().map(|p| p.to_string()));
    }
    for p in &passed.value {
        problems.push(p.to_string());
        if let Some(r) = &p.media_range {
            unreadable.push(BadRun {
                offset: r.start,
                length: r.end.saturating_sub(r.start),
                errno: DAMAGED_ERRNO,
                attempts: 0,
            });
        }
    }
    // An object replaced while it was read: the new set may hold no one object's bytes.
    problems.extend(place.changed_since_opened()?);
    let unreadable = crate::map::merge_runs(unreadable, media_size);
    map.set(0, media_size, BlockState::Finished);
    for r in &unreadable {
        map.set(r.offset, r.length, BlockState::BadSector);
    }
    problems.extend(
        claims
            .findings
            .iter()
            .filter(|f| f.failed)
            .map(|f| f.message.clone()),
    );

    progress.set_phase("finishing");
    let pieces = passed
        .pieces
        .unwrap_or_else(|| PieceHasher::new(opts.piece_size).finish());
    let summary = MediaSummary {
        media_size,
        sector_size: sector,
        hashes: passed.hashes,
        unreadable,
    };
    set.finish(
        &mut record,
        &lock,
        passed.sinks,
        &summary,
        &mut map,
        &pieces,
        "read from the source image",
        None,
    )?;

    let claimed = crate::image::references::against(&claims.refs, &summary.hashes);
    let hashes_match = (!claimed.is_empty()).then(|| claimed.iter().all(|c| c.matches));
    let outcome = outcome_of(&claimed, &problems, &summary.unreadable);
    let elapsed = record.elapsed();
    let rec = record.record_mut();
    rec.converted_from = Some(ConvertedFrom {
        image: opts.image.clone(),
        format: image.format(),
        files: image.files(),
        claimed_hashes: claimed,
        hashes_match,
        problems,
        unreadable_from: carried.unreadable_from.clone(),
    });
    rec.throughput = Some(Throughput::new(
        media_size,
        elapsed,
        cpu.report(crate::cputime::process_seconds() - job_cpu_start),
    ));
    let (record, record_path, exit_code) = set.complete(
        record,
        lock,
        &outcome,
        &summary.unreadable,
        u64::from(sector),
    )?;
    Ok(ConvertReport {
        record,
        record_path,
        exit_code,
    })
}

/// A mismatch or damage is a finding (exit 1) that says what; unreadable sectors carried over
/// from the acquisition end it as the acquisition ended (exit 1).
fn outcome_of(claimed: &[ClaimedHash], problems: &[String], unreadable: &[BadRun]) -> Outcome {
    let mut why: Vec<String> = claimed
        .iter()
        .filter(|c| !c.matches)
        .map(|c| {
            format!(
                "{} mismatch: {} says {}, the source image reads as {}",
                c.algorithm, c.source, c.claimed, c.computed
            )
        })
        .collect();
    if !problems.is_empty() {
        why.push(format!(
            "{} problem{} in the source image: {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.first().map(String::as_str).unwrap_or_default()
        ));
    }
    if why.is_empty() {
        Outcome::complete(!unreadable.is_empty())
    } else {
        Outcome::CompleteWithFindings(why.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(offset: u64, length: u64) -> BadRun {
        BadRun {
            offset,
            length,
            errno: libc::EIO,
            attempts: 1,
        }
    }

    #[test]
    fn a_mismatch_or_a_problem_is_a_finding_and_says_what() {
        let c = |m| ClaimedHash {
            algorithm: HashAlgorithm::Md5,
            source: "d.E01 (stored MD5)".into(),
            claimed: "aa".into(),
            computed: if m { "aa" } else { "bb" }.into(),
            matches: m,
        };
        assert_eq!(outcome_of(&[c(true)], &[], &[]), Outcome::Complete);
        assert_eq!(
            outcome_of(&[c(true)], &[], &[run(0, 512)]),
            Outcome::CompleteWithUnreadable
        );
        let Outcome::CompleteWithFindings(why) = outcome_of(&[c(false)], &[], &[]) else {
            panic!("a mismatch must be a finding");
        };
        assert!(
            why.contains("md5 mismatch: d.E01 (stored MD5) says aa"),
            "{why}"
        );
        let o = outcome_of(&[], &["chunk 3 damaged".into()], &[]);
        assert_eq!(o.exit_code(), Some(crate::audit::exit::FINDINGS));
    }
}
