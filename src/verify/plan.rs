//! What to read and what to compare it with: a [`Plan`] per image, from the image's own
//! name and the side files beside it (record, hash logs, piece list), or from a record and
//! every output it lists.

use std::path::{Path, PathBuf};

use super::{Check, ImageFormat, Topic, Verdict, MAX_LISTED_RANGES};
use crate::audit::AuditRecord;
use crate::error::Result;
use crate::hash::HashAlgorithm;
use crate::image::place::{Kind, Place};
use crate::image::references::{
    self as refs, cannot_read, file_name, from_record as record_refs, raw_output_names, side_file,
    Finding, Reference,
};
use crate::pieces::PieceList;
use crate::small_file::PIECE_LIST_LIMIT;

/// One image to read, and what to compare it with.
#[derive(Debug)]
pub(super) struct Plan {
    /// Where its files are.
    pub(super) place: Place,
    pub(super) format: ImageFormat,
    pub(super) files: Vec<PathBuf>,
    /// Read at most this many bytes (a device is larger than the media on it).
    pub(super) limit: Option<u64>,
    /// Each file's size as recorded: a missing or short file is read as zeros up to it, so
    /// that later offsets stay true and the piece list names exactly what is missing.
    pub(super) recorded_sizes: Option<Vec<u64>>,
    /// Unreadable sector runs (first, count) the record lists, to compare with E01 `error2`.
    pub(super) recorded_unreadable: Option<Vec<(u64, u64)>>,
    /// The media size the record states.
    pub(super) expected_size: Option<u64>,
    pub(super) refs: Vec<Reference>,
    pub(super) pieces: Option<(PathBuf, PieceList)>,
}

pub(super) fn is_record(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("yaml" | "yml")
    )
}

pub(super) fn plan_for_image(
    place: &Place,
    path: &Path,
    side_files: bool,
    checks: &mut Vec<Check>,
) -> Result<Plan> {
    let (format, files) = crate::image::locate_in(place, path)?;
    let mut plan = Plan {
        place: place.clone(),
        format,
        files,
        limit: None,
        recorded_sizes: None,
        recorded_unreadable: None,
        expected_size: None,
        refs: Vec::new(),
        pieces: None,
    };
    if side_files {
        let base = refs::base_of(path);
        let record_path = side_file(&base, "yaml");
        let mut same_media = Vec::new();
        // The piece list the record names, so that the usual name is not tried (and failed)
        // a second time when it is the same file.
        let mut pieces_tried = None;
        if place.exists(&record_path) {
            match place.read_record(&record_path) {
                Ok(record) => {
                    super::segments::recorded_checks(&plan, &record, checks);
                    same_media = raw_output_names(&record);
                    plan.recorded_unreadable = Some(unreadable_runs(&record));
                    record_outcome_check(&record, &record_path, checks);
                    plan.expected_size = Some(record.source.size);
                    if format == ImageFormat::Device {
                        plan.limit = Some(record.source.size);
                    }
                    plan.refs.extend(record_refs(&record, &record_path));
                    if let Some(p) = &record.pieces {
                        if let Some(file) = beside(&record_path, &p.file) {
                            plan.pieces = load_pieces(place, &file, checks);
                            pieces_tried = Some(file);
                        }
                    }
                }
                Err(e) => checks.push(Check::new(
                    Verdict::Fail,
                    Topic::SideFile,
                    format!(
                        "{} is beside the image but cannot be read: {e}",
                        file_name(&record_path)
                    ),
                )),
            }
        }
        let image_names: Vec<String> = plan.files.iter().map(|f| file_name(f)).collect();
        for alg in HashAlgorithm::ALL {
            let log = side_file(&base, alg.name());
            if place.exists(&log) {
                plan.refs.extend(log_refs(
                    place,
                    alg,
                    &log,
                    &image_names,
                    format,
                    &same_media,
                    checks,
                ));
            }
        }
        if plan.pieces.is_none() {
            let p = side_file(&base, "crc64");
            if pieces_tried.as_ref() != Some(&p) && place.symlink_metadata(&p).is_ok() {
                plan.pieces = load_pieces(place, &p, checks);
            }
        }
    }
    super::segments::gap(&plan, checks);
    Ok(plan)
}

/// A file the record names, always taken by its file name in the record's own directory:
/// records name outputs as given on the command line (relative to where acquire ran, or
/// absolute), and everything a job writes lands beside its record. A record is input like any
/// other, so `/etc/passwd` or `../../x` never lead out of that directory: they are looked for
/// as `DIR/passwd` and `DIR/x`. A name with no file name (`..`, `/`) is `None`.
fn beside(record_path: &Path, named: &Path) -> Option<PathBuf> {
    let dir = record_path.parent().unwrap_or(Path::new(""));
    let name = named.file_name()?;
    Some(dir.join(name))
}

/// The file a record names, when it can be read as one: beside the record (see [`beside`])
/// and a regular file (not a FIFO, a device or a symlink that could lead anywhere); otherwise
/// a failed check that says why.
fn recorded_file(
    place: &Place,
    record_path: &Path,
    named: &Path,
    what: &str,
) -> Result<PathBuf, String> {
    let Some(p) = beside(record_path, named) else {
        return Err(format!(
            "{what} '{}' named in {} has no file name; not read",
            named.display(),
            file_name(record_path)
        ));
    };
    match place.symlink_metadata(&p) {
        Ok(m) if m.is_file() => Ok(p),
        Ok(_) => Err(format!(
            "{} ({what}) listed in the record is not a regular file; not read",
            p.display()
        )),
        Err(e) => Err(format!(
            "{} ({what}) listed in the record: {e}",
            p.display()
        )),
    }
}

fn record_outcome_check(record: &AuditRecord, path: &Path, checks: &mut Vec<Check>) {
    let name = file_name(path);
    match record.outcome.status.as_str() {
        "complete" => checks.push(Check::new(
            Verdict::Pass,
            Topic::Record,
            format!("{name} says the acquisition completed"),
        )),
        "complete-with-unreadable-sectors" => {
            checks.push(Check::new(
                Verdict::Pass,
                Topic::Record,
                format!("{name} says the acquisition completed"),
            ));
            let u = &record.unreadable;
            checks.push(Check::new(
                Verdict::Note,
                Topic::AcquisitionErrors,
                format!(
                    "{} unreadable sectors ({} bytes in {} runs) were filled with zeros at acquisition; the hashes cover those zeros",
                    u.sectors,
                    u.bytes,
                    u.runs.len()
                ),
            ));
            for r in u.runs.iter().take(MAX_LISTED_RANGES) {
                checks.push(
                    Check::new(
                        Verdict::Note,
                        Topic::AcquisitionErrors,
                        format!(
                            "unreadable at acquisition: sectors {}..{} ({})",
                            r.first_sector,
                            r.first_sector + r.sector_count,
                            r.error
                        ),
                    )
                    .range(r.offset, r.offset + r.length),
                );
            }
        }
        // A conversion's set is whole, but its source did not hold what it claimed.
        "complete-with-findings" => checks.push(Check::new(
            Verdict::Fail,
            Topic::Record,
            format!(
                "{name} says the image was converted from a source that did not hold its own \
                 hashes or was damaged ({}): it holds the bytes as read",
                record
                    .outcome
                    .reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ),
        )),
        other => checks.push(Check::new(
            Verdict::Fail,
            Topic::Record,
            format!(
                "{name} says the acquisition ended as '{other}'{}: the image is incomplete",
                record
                    .outcome
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// References from one hash log (see [`refs::from_log`]), with what was not used as checks
/// of the side files.
fn log_refs(
    place: &Place,
    alg: HashAlgorithm,
    log: &Path,
    image_names: &[String],
    format: ImageFormat,
    same_media: &[String],
    checks: &mut Vec<Check>,
) -> Vec<Reference> {
    let mut findings = Vec::new();
    let out = refs::from_log(
        place,
        alg,
        log,
        image_names,
        format,
        same_media,
        &mut findings,
    );
    checks.extend(findings.into_iter().map(side_file_check));
    out
}

fn side_file_check(f: Finding) -> Check {
    let verdict = if f.failed {
        Verdict::Fail
    } else {
        Verdict::Note
    };
    Check::new(verdict, Topic::SideFile, f.message)
}

/// The record's unreadable runs as (first sector, sector count).
fn unreadable_runs(record: &AuditRecord) -> Vec<(u64, u64)> {
    record
        .unreadable
        .runs
        .iter()
        .map(|r| (r.first_sector, r.sector_count))
        .collect()
}

fn load_pieces(
    place: &Place,
    path: &Path,
    checks: &mut Vec<Check>,
) -> Option<(PathBuf, PieceList)> {
    let bytes = match place.read_small(path, PIECE_LIST_LIMIT) {
        Ok(b) => b,
        Err(e) => {
            checks.push(Check::new(
                Verdict::Fail,
                Topic::SideFile,
                format!("piece list {}", cannot_read(path, &e)),
            ));
            return None;
        }
    };
    match PieceList::from_bytes(&bytes, path) {
        Ok(p) => Some((path.to_path_buf(), p)),
        Err(e) => {
            checks.push(Check::new(
                Verdict::Fail,
                Topic::SideFile,
                format!("{e}; damaged ranges cannot be named"),
            ));
            None
        }
    }
}

pub(super) fn plans_from_record(
    place: &Place,
    path: &Path,
    checks: &mut Vec<Check>,
) -> Result<Vec<Plan>> {
    let record = place.read_record(path)?;
    record_outcome_check(&record, path, checks);
    let refs = record_refs(&record, path);
    let pieces = record
        .pieces
        .as_ref()
        .and_then(|p| beside(path, &p.file))
        .and_then(|p| load_pieces(place, &p, checks));
    // Hash logs the record lists (or, failing that, the usual names beside it).
    let mut logs: Vec<(HashAlgorithm, PathBuf)> = Vec::new();
    if let Some(h) = &record.hashes {
        for l in &h.logs {
            let alg = l
                .extension()
                .and_then(|e| e.to_str())
                .and_then(|e| e.parse::<HashAlgorithm>().ok());
            if let (Some(alg), Some(log)) = (alg, beside(path, l)) {
                logs.push((alg, log));
            }
        }
    }

    // Every output: present, and its size as recorded. Each file goes with its recorded size
    // (one pass: a record may list thousands of outputs).
    let mut raw_single = Vec::new();
    let mut raw_segments = Vec::new();
    let mut devices = Vec::new();
    let mut e01_segments = Vec::new();
    let mut output_checks = OutputChecks::default();
    for o in &record.outputs {
        let p = if o.kind == "device" {
            // A clone target is a block device wherever it is; nothing else is read as one.
            match place.metadata(&o.path) {
                Ok(m) if m.kind == Kind::BlockDevice => o.path.clone(),
                Ok(_) => {
                    output_checks.fail(format!(
                        "{} (device) listed in the record is not a block device; not read",
                        o.path.display()
                    ));
                    continue;
                }
                Err(e) => {
                    output_checks.fail(format!(
                        "{} (device) listed in the record: {e}",
                        o.path.display()
                    ));
                    continue;
                }
            }
        } else {
            match recorded_file(place, path, &o.path, &o.kind) {
                Ok(p) => {
                    match place.metadata(&p) {
                        Ok(m) if m.len == o.size => output_checks.pass(format!(
                            "{} is present with its recorded size ({} bytes)",
                            file_name(&p),
                            o.size
                        )),
                        Ok(m) => output_checks.fail(format!(
                            "{} is {} bytes, the record says {}",
                            file_name(&p),
                            m.len,
                            o.size
                        )),
                        Err(e) => output_checks.fail(format!(
                            "{} ({}) listed in the record: {e}",
                            p.display(),
                            o.kind
                        )),
                    }
                    p
                }
                Err(message) => {
                    output_checks.fail(message);
                    // A missing file is read as zeros up to its recorded size, so that the
                    // piece list names exactly what is missing; anything else is not read.
                    match beside(path, &o.path) {
                        Some(p) if !place.exists(&p) && place.symlink_metadata(&p).is_err() => p,
                        _ => continue,
                    }
                }
            }
        };
        let p = (p, o.size);
        match o.kind.as_str() {
            "raw" => raw_single.push(p),
            "raw-segment" => raw_segments.push(p),
            "device" => devices.push(p),
            k if k.starts_with("e01-segment") => e01_segments.push(p),
            other => output_checks.note(format!(
                "{}: output kind '{other}' is not verified",
                p.0.display()
            )),
        }
    }
    output_checks.into_checks(checks);

    let mut plans = Vec::new();
    let mk = |format, files: Vec<(PathBuf, u64)>, limit| Plan {
        place: place.clone(),
        format,
        recorded_sizes: (format != ImageFormat::Device)
            .then(|| files.iter().map(|f| f.1).collect()),
        recorded_unreadable: Some(unreadable_runs(&record)),
        files: files.into_iter().map(|f| f.0).collect(),
        limit,
        expected_size: Some(record.source.size),
        refs: refs.clone(),
        pieces: pieces.clone(),
    };
    for p in raw_single {
        plans.push(mk(ImageFormat::Raw, vec![p], None));
    }
    if !raw_segments.is_empty() {
        plans.push(mk(ImageFormat::SplitRaw, raw_segments, None));
    }
    for d in devices {
        plans.push(mk(ImageFormat::Device, vec![d], Some(record.source.size)));
    }
    if let Some(first) = e01_segments.into_iter().next() {
        plans.push(mk(ImageFormat::E01, vec![first], None));
    }
    if plans.is_empty() {
        checks.push(Check::new(
            Verdict::Fail,
            Topic::Record,
            format!("{} lists no image to verify", file_name(path)),
        ));
    }
    let same_media = raw_output_names(&record);
    for plan in &mut plans {
        let names: Vec<String> = plan.files.iter().map(|f| file_name(f)).collect();
        for (alg, log) in &logs {
            plan.refs.extend(log_refs(
                place,
                *alg,
                log,
                &names,
                plan.format,
                &same_media,
                checks,
            ));
        }
    }
    Ok(plans)
}

/// The per-output lines of a record's check, each kind listed up to [`MAX_LISTED_OUTPUTS`]
/// and the rest merged into one line with a count: a record may list thousands of outputs
/// (split segments), and a hostile one millions.
#[derive(Default)]
struct OutputChecks {
    lines: Vec<(Verdict, String)>,
    more: [usize; 3],
}

/// Lines of each verdict listed one by one before the rest are counted.
const MAX_LISTED_OUTPUTS: usize = 64;

impl OutputChecks {
    fn add(&mut self, v: Verdict, slot: usize, message: String) {
        let listed = self.lines.iter().filter(|l| l.0 == v).count();
        if listed < MAX_LISTED_OUTPUTS {
            self.lines.push((v, message));
        } else {
            self.more[slot] += 1;
        }
    }
    fn pass(&mut self, message: String) {
        self.add(Verdict::Pass, 0, message);
    }
    fn fail(&mut self, message: String) {
        self.add(Verdict::Fail, 1, message);
    }
    fn note(&mut self, message: String) {
        self.add(Verdict::Note, 2, message);
    }
    fn into_checks(self, checks: &mut Vec<Check>) {
        for (v, m) in self.lines {
            checks.push(Check::new(v, Topic::Output, m));
        }
        let [pass, fail, note] = self.more;
        if pass > 0 {
            checks.push(Check::new(
                Verdict::Pass,
                Topic::Output,
                format!("and {pass} more outputs are present with their recorded sizes"),
            ));
        }
        if fail > 0 {
            checks.push(Check::new(
                Verdict::Fail,
                Topic::Output,
                format!("and {fail} more outputs listed in the record are missing, of another size or not read"),
            ));
        }
        if note > 0 {
            checks.push(Check::new(
                Verdict::Note,
                Topic::Output,
                format!("and {note} more outputs of kinds that are not verified"),
            ));
        }
    }
}
