//! `exhibit convert IMAGE -o BASE --format raw|e01|raw,e01`: what `ewfexport` does, from any
//! image (raw, split raw, an E01 set of any writer, by any of its names) to any output set.
//!
//! ```text
//!  Image::open ─▶ references::of_image (what it claims) ─▶ Outputs::plan/claim/create_sinks
//!        ─▶ Image::stream (E01 decoded on all cores) ─▶ pipeline::run (hashes, pieces, sinks)
//!        ─▶ Outputs::finish ─▶ the claims against the hashes read ─▶ record
//! ```
//! The case metadata, the media's identity and the unreadable runs of the source acquisition
//! come over from the source (its E01 headers and `error2`, its record); flags override the
//! case. A source that does not hold its own hashes, or has damaged chunks, is converted as it
//! reads (damaged chunks as zeros, listed as unreadable) and ends with exit 1 and a record
//! that says what differs: never a silent success.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::audit::{
    AuditRecord, ClaimedHash, ConvertedFrom, JobKind, Outcome, RecordBuilder, SourceInfo, Started,
    Throughput,
};
use crate::case::CaseMetadata;
use crate::cputime::CpuLedger;
use crate::error::{Error, Result};
use crate::hash::{to_hex, HashAlgorithm};
use crate::image::references::{self, file_name, Claims};
use crate::image::{Image, ImageFormat};
use crate::map::{BadRun, BlockState, SectorMap};
use crate::outputs::{OutputFormat, OutputRequest, Outputs};
use crate::pieces::{PieceHasher, DEFAULT_PIECE_SIZE};
use crate::pipeline::{Consumers, Tuning};
use crate::progress::Progress;
use crate::sink::{E01Settings, MediaSummary};
use crate::source::{Identity, SourceKind};

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

/// What the source image brings besides its media.
struct Carried {
    case: CaseMetadata,
    identity: Identity,
    kind: SourceKind,
    unreadable: Vec<BadRun>,
    unreadable_from: Option<String>,
    acquired_at: Option<chrono::DateTime<chrono::Utc>>,
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
    let image = Image::open(&opts.image)?;
    refuse_unusable(&image, &opts.image)?;
    if opts.piece_size == 0 {
        return Err(Error::InvalidOption("the piece size must not be 0".into()));
    }
    let media_size = image.media_size();
    let sector = image.sector_size();
    let claims = references::of_image(&opts.image, &image);
    let carried = carried(&image, &claims);
    let case = carried.case.clone().overlay(opts.case.clone());

    let set = Outputs::plan(&OutputRequest {
        base: &opts.base,
        formats: &opts.formats,
        split: opts.split,
        clone_target: None,
        hashes: &opts.hashes,
        overwrite: opts.overwrite,
        media_size,
    })?;
    if set.wants_e01() && !matches!(sector, 512 | 4096) {
        return Err(Error::InvalidOption(format!(
            "{}: {sector}-byte sectors; the E01 writer takes 512 or 4096 (use --format raw)",
            opts.image.display()
        )));
    }
    let inputs = inputs_of(&image, &claims, &opts.image);
    let lock = set.claim(
        |guarded| {
            // Every file of BASE's set, also those only an --overwrite would remove.
            let mut all = guarded.to_vec();
            all.extend(crate::sink::stale::stale_files(&opts.base, &[], None)?);
            refuse_inputs(&inputs, &all)
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
    let unreadable = normalised(unreadable, media_size);
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

    let claimed: Vec<ClaimedHash> = claims
        .refs
        .iter()
        .filter_map(|r| {
            let computed = to_hex(summary.hashes.get(r.algorithm)?);
            Some(ClaimedHash {
                algorithm: r.algorithm,
                source: r.source.clone(),
                matches: computed == r.hex,
                claimed: r.hex.clone(),
                computed,
            })
        })
        .collect();
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

/// Refuses a set that is not all there or whose size is not known: an E01 with a missing
/// segment, without a volume, or whose sector count does not fit its chunks; a split raw image
/// with a gap in its numbers.
fn refuse_unusable(image: &Image, path: &Path) -> Result<()> {
    if let Some(e) = image.e01() {
        if let Some(p) = e.missing_segments().first() {
            return Err(Error::Refused(format!(
                "{}: the E01 set is incomplete: {p}",
                path.display()
            )));
        }
        let Some(v) = e.volume() else {
            return Err(Error::Refused(format!(
                "{}: no volume section: the media size is unknown",
                path.display()
            )));
        };
        // The sector count is the media size for every reader; chunks it does not match would
        // be invented zeros (a forged count) or media left out.
        let chunk = v.chunk_size();
        let needed = v
            .media_size()
            .checked_div(chunk)
            .map(|n| n + u64::from(v.media_size() % chunk != 0));
        if needed != Some(e.chunk_count()) || u64::from(v.chunk_count) != e.chunk_count() {
            return Err(Error::Refused(format!(
                "{}: the volume's {} sectors of {} bytes need {} chunks of {} sectors, its \
                 volume says {} and its tables hold {}: the sector count does not fit the image",
                path.display(),
                v.sector_count,
                v.bytes_per_sector,
                needed.map_or_else(|| "?".to_string(), |n| n.to_string()),
                v.sectors_per_chunk,
                v.chunk_count,
                e.chunk_count()
            )));
        }
    }
    if image.format() == ImageFormat::SplitRaw {
        let files = image.files();
        let base = references::base_of(&files[0]);
        let named = crate::audit::SideFiles::new(&base).segment_names(true, false)?;
        if let Some(extra) = named.iter().find(|n| !files.contains(n)) {
            return Err(Error::Refused(format!(
                "{}: a segment is missing: {} is there but {} is not",
                path.display(),
                file_name(extra),
                file_name(&crate::sink::raw::split_name(&base, files.len() as u64 + 1))
            )));
        }
    }
    Ok(())
}

/// The image's own files and the side files its claims come from: no output may be one of
/// them.
fn inputs_of(image: &Image, claims: &Claims, path: &Path) -> Vec<PathBuf> {
    let mut v = image.files();
    v.push(path.to_path_buf());
    let base = references::base_of(path);
    v.push(references::side_file(&base, "yaml"));
    v.push(references::side_file(&base, "crc64"));
    v.extend(
        HashAlgorithm::ALL
            .iter()
            .map(|a| references::side_file(&base, a.name())),
    );
    if let Some((p, _)) = &claims.record {
        v.push(p.clone());
    }
    v
}

/// Refuses an output that is one of `inputs` (by device and inode: also through another
/// name, a hard link or a symbolic link).
fn refuse_inputs(inputs: &[PathBuf], outputs: &[PathBuf]) -> Result<()> {
    let ids: Vec<((u64, u64), &PathBuf)> = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| ((m.dev(), m.ino()), p)))
        .collect();
    for out in outputs {
        let Ok(m) = std::fs::metadata(out) else {
            continue;
        };
        if let Some((_, input)) = ids.iter().find(|(id, _)| *id == (m.dev(), m.ino())) {
            return Err(Error::Refused(format!(
                "{}: is {}, a file of the image being converted (or its record or hash log); \
                 choose another -o",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// What the source brings: its case metadata (E01 headers, else its record), the media's
/// identity, the unreadable runs of its acquisition (its record's, which say why, else the E01
/// `error2` section) and when it was acquired.
fn carried(image: &Image, claims: &Claims) -> Carried {
    let record = claims.record.as_ref().map(|(_, r)| r);
    let mut c = Carried {
        case: CaseMetadata::default(),
        identity: Identity::default(),
        kind: SourceKind::File,
        unreadable: Vec::new(),
        unreadable_from: None,
        acquired_at: None,
    };
    if let Some(r) = record {
        c.case = r.case.clone();
        c.identity = r.source.identity.clone();
        c.kind = r.source.kind;
        c.acquired_at = chrono::DateTime::parse_from_rfc3339(&r.times.started_utc)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc));
        if !r.unreadable.runs.is_empty() {
            c.unreadable = r
                .unreadable
                .runs
                .iter()
                .map(|u| BadRun {
                    offset: u.offset,
                    length: u.length,
                    errno: u.errno,
                    attempts: u.attempts,
                })
                .collect();
            c.unreadable_from = claims.record.as_ref().map(|(p, _)| file_name(p));
        }
    }
    if let Some(e) = image.e01() {
        let from_e01 = e.case_metadata();
        if from_e01 != CaseMetadata::default() {
            c.case = from_e01;
        }
        let header = |id: &str| {
            e.header_fields()
                .and_then(|h| h.get(id))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        c.identity.model = c.identity.model.take().or_else(|| header("md"));
        c.identity.serial = c.identity.serial.take().or_else(|| header("sn"));
        if c.acquired_at.is_none() {
            c.acquired_at = header("m")
                .and_then(|m| m.trim().parse::<i64>().ok())
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
        }
        if let Some(v) = e.volume() {
            if record.is_none() {
                // Media flags bit 1: a physical device; media type 0: removable.
                c.kind = if v.media_flags & 2 != 0 {
                    SourceKind::Disk
                } else {
                    SourceKind::File
                };
                c.identity.removable = Some(v.media_type == 0);
            }
            if c.unreadable.is_empty() && !e.error2().is_empty() {
                let bps = u64::from(v.bytes_per_sector);
                c.unreadable = e
                    .error2()
                    .iter()
                    .map(|x| BadRun {
                        offset: u64::from(x.first_sector) * bps,
                        length: u64::from(x.sector_count) * bps,
                        errno: libc::EIO,
                        attempts: 0,
                    })
                    .collect();
                c.unreadable_from = e
                    .segment_paths()
                    .first()
                    .map(|p| format!("{} error2", file_name(p)));
            }
        }
    }
    c
}

/// Runs in order, inside the media, overlaps merged (a damaged chunk may hold sectors the
/// acquisition could not read).
fn normalised(mut runs: Vec<BadRun>, media_size: u64) -> Vec<BadRun> {
    runs.retain(|r| r.offset < media_size && r.length > 0);
    for r in &mut runs {
        r.length = r.length.min(media_size - r.offset);
    }
    runs.sort_by_key(|r| r.offset);
    let mut out: Vec<BadRun> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(last) if r.offset <= last.offset + last.length => {
                let end = (r.offset + r.length).max(last.offset + last.length);
                last.length = end - last.offset;
            }
            _ => out.push(r),
        }
    }
    out
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
    fn runs_are_sorted_merged_and_cut_at_the_media_end() {
        let got = normalised(
            vec![
                run(4096, 512),
                run(0, 1024),
                run(512, 1024),
                run(9000, 5000),
            ],
            10_000,
        );
        assert_eq!(
            got.iter().map(|r| (r.offset, r.length)).collect::<Vec<_>>(),
            vec![(0, 1536), (4096, 512), (9000, 1000)]
        );
        assert!(normalised(vec![run(10_000, 512)], 10_000).is_empty());
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
