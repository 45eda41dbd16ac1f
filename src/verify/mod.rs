//! `exhibit verify`: re-reads an image once, recomputes its hashes, compares them with every
//! reference it can find, and (for E01) checks the container, naming every damaged place.
//!
//! What can be verified (`VerifyOptions::path`):
//!
//! | path | image | references |
//! |---|---|---|
//! | `BASE.raw` (any file) | the file | `BASE.yaml`, `BASE.md5/.sha1/.sha256`, `BASE.crc64` |
//! | `BASE.001` | `BASE.001`, `BASE.002`, … concatenated | same |
//! | `BASE.E01` | the segment set, structure and every chunk | its `hash`/`digest`, same side files |
//! | `BASE.yaml` | every output the record lists | the record, its hash logs and piece list |
//!
//! One pass per image: a producer reads (raw) or decodes (E01) the media into pooled buffers,
//! and each buffer is shared by reference with one thread per hash algorithm and the
//! CRC-64 piece-list thread ([`stream`]). Results are data ([`VerifyReport`], a list of
//! [`Check`]s); the library never prints. See docs/verify.md for what each check means.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::hash::{to_hex, HashAlgorithm, MediaHashes};
use crate::image::RawImage;
use crate::pieces::PieceList;
use crate::progress::Progress;

mod e01;
mod plan;
mod segments;
pub mod stream;

use crate::image::references::{file_name, Reference};
use plan::{is_record, plan_for_image, plans_from_record, Plan};

/// Exit code: every check passed.
pub use crate::audit::exit::COMPLETE as EXIT_VERIFIED;
/// Exit code: verification could not run (no such file, not an image, bad option).
pub use crate::audit::exit::FAILED as EXIT_CANNOT_RUN;
/// Exit code: at least one check failed (hash mismatch, damage, missing file).
pub use crate::audit::exit::FINDINGS as EXIT_FAILED_CHECK;

/// Most damaged ranges listed one by one from a piece list; the rest are counted.
const MAX_LISTED_RANGES: usize = 1000;

/// What to verify and how.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// `BASE.E01`, `BASE.raw` (or any raw file), `BASE.001`, or the record `BASE.yaml`.
    pub path: PathBuf,
    /// Hashes to recompute (default: MD5, SHA-1 and SHA-256). A reference for an algorithm
    /// not computed is reported as not checked.
    pub hashes: Vec<HashAlgorithm>,
    /// Look for `BASE.yaml`, hash logs and `BASE.crc64` beside an image (default true).
    pub side_files: bool,
    /// Threads that decode E01 chunks (default 0: one per core).
    pub workers: usize,
    /// The S3 endpoint for a `path` in a bucket (`s3://…`), beating `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
}

impl VerifyOptions {
    /// Defaults for `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        VerifyOptions {
            path: path.into(),
            hashes: HashAlgorithm::ALL.to_vec(),
            side_files: true,
            workers: 0,
            endpoint: None,
        }
    }
}

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check failed: the exit code is 1.
    Fail,
    /// Information that is not a check (what was not checked, and why; acquisition errors).
    Note,
}

/// What a check looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    /// A media hash against a reference.
    Hash,
    /// The media size against the record or piece list.
    Size,
    /// Media bytes whose CRC-64 differs from the piece list.
    Damage,
    /// E01 container structure (sections, tables, segments).
    Container,
    /// One E01 chunk (checksum, zlib stream).
    Chunk,
    /// The audit record itself (its outcome, its outputs).
    Record,
    /// A file the record lists (present, size).
    Output,
    /// A side file (hash log, piece list) that could not be used.
    SideFile,
    /// Unreadable sectors recorded at acquisition.
    AcquisitionErrors,
}

/// A half-open byte range of the media.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// One line of the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Pass, fail or note.
    pub verdict: Verdict,
    /// What was checked.
    pub topic: Topic,
    /// A sentence naming the place and what was found.
    pub message: String,
    /// The media bytes concerned, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_range: Option<ByteRange>,
}

impl Check {
    fn new(verdict: Verdict, topic: Topic, message: impl Into<String>) -> Self {
        Check {
            verdict,
            topic,
            message: message.into(),
            media_range: None,
        }
    }

    fn range(mut self, start: u64, end: u64) -> Self {
        self.media_range = Some(ByteRange { start, end });
        self
    }
}

pub use crate::image::ImageFormat;

/// What was found for one image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageResult {
    /// The format.
    pub format: ImageFormat,
    /// Its files (segments in order).
    #[serde(serialize_with = "crate::text::path::vec::serialize")]
    pub files: Vec<PathBuf>,
    /// Media bytes read.
    pub media_bytes: u64,
    /// The hashes as recomputed, hex.
    pub computed: Vec<(HashAlgorithm, String)>,
    /// Wall time of the pass.
    pub seconds: f64,
}

/// The whole verdict: images read and every check, in order.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The path given.
    #[serde(serialize_with = "crate::text::path::serialize")]
    pub path: PathBuf,
    /// Each image read.
    pub images: Vec<ImageResult>,
    /// Every check and note.
    pub checks: Vec<Check>,
}

impl VerifyReport {
    /// Checks that passed.
    pub fn passed(&self) -> usize {
        self.count(Verdict::Pass)
    }

    /// Checks that failed.
    pub fn failed(&self) -> usize {
        self.count(Verdict::Fail)
    }

    fn count(&self, v: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == v).count()
    }

    /// [`EXIT_VERIFIED`] when at least one check ran and none failed, else
    /// [`EXIT_FAILED_CHECK`].
    pub fn exit_code(&self) -> i32 {
        if self.failed() == 0 && self.passed() > 0 {
            EXIT_VERIFIED
        } else {
            EXIT_FAILED_CHECK
        }
    }
}

/// Verifies `opts.path`. Errors mean "could not run" (exit 2); everything found in the image
/// is a [`Check`].
pub fn verify(
    opts: &VerifyOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<VerifyReport> {
    let path = &opts.path;
    let place = crate::image::Place::of(path, opts.endpoint.as_deref())?;
    let meta = place.metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::InvalidOption(format!(
            "{} is a directory; give BASE.E01, BASE.raw, BASE.001 or BASE.yaml",
            path.display()
        )));
    }
    let mut checks = Vec::new();
    let mut algorithms = opts.hashes.clone();
    algorithms.sort();
    algorithms.dedup();

    let plans = if is_record(path) {
        plans_from_record(&place, path, &mut checks)?
    } else {
        vec![plan_for_image(&place, path, opts.side_files, &mut checks)?]
    };
    progress.set_total(
        plans
            .iter()
            .map(|p| p.expected_size.or(p.limit).unwrap_or(0))
            .sum(),
    );
    progress.set_phase("verifying");

    let mut images = Vec::new();
    for plan in plans {
        images.push(run_plan(
            plan,
            &algorithms,
            opts,
            progress,
            stop,
            &mut checks,
        )?);
    }
    for changed in place.changed_since_opened()? {
        checks.push(Check::new(Verdict::Fail, Topic::Output, changed));
    }
    Ok(VerifyReport {
        path: path.clone(),
        images,
        checks,
    })
}

fn run_plan(
    plan: Plan,
    algorithms: &[HashAlgorithm],
    opts: &VerifyOptions,
    progress: &Progress,
    stop: &AtomicBool,
    checks: &mut Vec<Check>,
) -> Result<ImageResult> {
    let clock = Instant::now();
    let first_check = checks.len();
    let piece_size = plan.pieces.as_ref().map(|(_, p)| p.piece_size);
    let mut refs = plan.refs.clone();
    let (files, hashes, pieces, bytes) = match plan.format {
        ImageFormat::E01 => {
            let unsized_total = plan.expected_size.is_none();
            let r = e01::verify_e01(
                &plan.place,
                &plan.files[0],
                algorithms,
                piece_size,
                opts,
                unsized_total,
                plan.recorded_unreadable.as_deref(),
                progress,
                stop,
            )?;
            checks.extend(r.checks);
            refs.extend(r.refs);
            (r.segments, r.pass.hashes, r.pass.pieces, r.pass.bytes)
        }
        _ => {
            let raw = RawImage::open_in(
                &plan.place,
                &plan.files,
                plan.recorded_sizes.as_deref(),
                plan.limit,
            )?;
            let (len, count) = (crate::image::BLOCK_SIZE, crate::image::POOL_BLOCKS);
            let pass =
                stream::run_sized(algorithms, piece_size, len, count, progress, stop, |feed| {
                    raw.stream(feed)
                })?;
            (plan.files.clone(), pass.hashes, pass.pieces, pass.bytes)
        }
    };
    let what = match plan.format {
        ImageFormat::E01 | ImageFormat::SplitRaw => format!(
            "{} ({} {} segments)",
            file_name(&files[0]),
            files.len(),
            plan.format.name()
        ),
        _ => file_name(&files[0]),
    };

    if let Some(expected) = plan.expected_size {
        checks.push(if expected == bytes {
            Check::new(
                Verdict::Pass,
                Topic::Size,
                format!("{what} holds {bytes} bytes of media, as recorded"),
            )
        } else {
            Check::new(
                Verdict::Fail,
                Topic::Size,
                format!("{what} holds {bytes} bytes of media, the record says {expected}"),
            )
            .range(bytes.min(expected), bytes.max(expected))
        });
    }
    compare_hashes(&what, &refs, &hashes, checks);
    if let (Some((list_path, stored)), Some(computed)) = (&plan.pieces, &pieces) {
        compare_pieces(&what, list_path, stored, computed, &plan, &files, checks);
    }
    if bytes == 0 && plan.expected_size != Some(0) {
        nothing_decoded(&what, &mut checks[first_check..]);
    }
    Ok(ImageResult {
        format: plan.format,
        files,
        media_bytes: bytes,
        computed: hashes.hex(),
        seconds: clock.elapsed().as_secs_f64(),
    })
}

/// A pass that decoded no media byte (an E01 without its volume or tables, an empty file
/// where media was expected) proves nothing about the media: what would have passed on the
/// way (the same empty `error2` as the record, the hashes of zero bytes) becomes a note.
fn nothing_decoded(what: &str, checks: &mut [Check]) {
    for c in checks {
        if c.verdict == Verdict::Pass && !matches!(c.topic, Topic::Record | Topic::Output) {
            c.verdict = Verdict::Note;
            c.message = format!(
                "{}; not a pass: no media byte of {what} was decoded",
                c.message
            );
        }
    }
}

fn compare_hashes(what: &str, refs: &[Reference], hashes: &MediaHashes, checks: &mut Vec<Check>) {
    if refs.is_empty() {
        checks.push(Check::new(
            Verdict::Fail,
            Topic::Hash,
            format!(
                "{what}: no stored hash, record or hash log found to compare with; the hashes printed are not verified"
            ),
        ));
        return;
    }
    for r in refs {
        match hashes.get(r.algorithm) {
            None => checks.push(Check::new(
                Verdict::Note,
                Topic::Hash,
                format!(
                    "{} {} from {}: not computed (--hash), not checked",
                    r.algorithm, r.hex, r.source
                ),
            )),
            Some(d) => {
                let got = to_hex(d);
                checks.push(if got == r.hex {
                    Check::new(
                        Verdict::Pass,
                        Topic::Hash,
                        format!("{} matches {} ({got})", r.algorithm, r.source),
                    )
                } else {
                    Check::new(
                        Verdict::Fail,
                        Topic::Hash,
                        format!(
                            "{} mismatch: {} says {}, {what} reads as {got}",
                            r.algorithm, r.source, r.hex
                        ),
                    )
                });
            }
        }
    }
}

/// Names the media ranges whose CRC-64 differs from the stored piece list, and where they are
/// in the image's files (for raw images).
fn compare_pieces(
    what: &str,
    list_path: &Path,
    stored: &PieceList,
    computed: &PieceList,
    plan: &Plan,
    files: &[PathBuf],
    checks: &mut Vec<Check>,
) {
    let lname = file_name(list_path);
    if stored.piece_size != computed.piece_size {
        return;
    }
    let n = stored.crcs.len().max(computed.crcs.len());
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in 0..n {
        if stored.crcs.get(i) != computed.crcs.get(i) {
            match runs.last_mut() {
                Some(r) if r.1 == i => r.1 = i + 1,
                _ => runs.push((i, i + 1)),
            }
        }
    }
    if runs.is_empty() {
        checks.push(Check::new(
            Verdict::Pass,
            Topic::Damage,
            format!(
                "all {} pieces of {what} match {lname} (CRC-64 per {} bytes)",
                n, stored.piece_size
            ),
        ));
        return;
    }
    let media_end = stored.media_size.max(computed.media_size);
    // The layout the pass read: recorded sizes when known (a missing or short segment was
    // read as zeros up to its size), else the files as they are.
    let sizes: Vec<u64> = if !matches!(plan.format, ImageFormat::Raw | ImageFormat::SplitRaw) {
        Vec::new()
    } else if let Some(recorded) = &plan.recorded_sizes {
        recorded.clone()
    } else {
        files
            .iter()
            .map(|f| plan.place.metadata(f).map(|m| m.len).unwrap_or(0))
            .collect()
    };
    let total: usize = runs.iter().map(|r| r.1 - r.0).sum();
    for (k, &(a, b)) in runs.iter().enumerate() {
        if k == MAX_LISTED_RANGES {
            checks.push(Check::new(
                Verdict::Fail,
                Topic::Damage,
                format!("… and {} more damaged ranges", runs.len() - k),
            ));
            break;
        }
        let ps = u64::from(stored.piece_size);
        let start = a as u64 * ps;
        let end = (b as u64 * ps).min(media_end);
        let place = match segments::first_short(&sizes) {
            Some(k) if plan.recorded_sizes.is_none() && plan.format == ImageFormat::SplitRaw => {
                let cut = sizes[..=k].iter().sum::<u64>();
                let mut place = file_places(&files[..=k], &sizes[..=k], start, end.min(cut));
                if end > cut {
                    place.push_str(&format!(
                        "{}media after {} is out of place: it is shorter than {}",
                        if place.is_empty() { ": " } else { "; " },
                        file_name(&files[k]),
                        file_name(&files[0])
                    ));
                }
                place
            }
            _ => file_places(files, &sizes, start, end),
        };
        checks.push(
            Check::new(
                Verdict::Fail,
                Topic::Damage,
                format!(
                    "media bytes {start}..{end} differ from {lname} (piece{} {}{}){place}",
                    if b - a > 1 { "s" } else { "" },
                    a,
                    if b - a > 1 {
                        format!("..{}", b - 1)
                    } else {
                        String::new()
                    },
                ),
            )
            .range(start, end),
        );
    }
    checks.push(Check::new(
        Verdict::Note,
        Topic::Damage,
        format!("{total} of {n} pieces of {what} differ from {lname}"),
    ));
}

/// `: in FILE bytes A..B[, FILE2 bytes …]` for a media range of a raw image.
fn file_places(files: &[PathBuf], sizes: &[u64], start: u64, end: u64) -> String {
    if sizes.is_empty() {
        return String::new();
    }
    let mut parts = Vec::new();
    let mut at = 0u64;
    for (f, &len) in files.iter().zip(sizes) {
        let (fs, fe) = (at, at + len);
        let (s, e) = (start.max(fs), end.min(fe));
        if s < e {
            parts.push(format!("{} bytes {}..{}", file_name(f), s - fs, e - fs));
        }
        at = fe;
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": in {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pieces::PieceHasher;

    fn list(data: &[u8]) -> PieceList {
        let mut h = PieceHasher::new(1000);
        h.update(data);
        h.finish()
    }

    #[test]
    fn damaged_pieces_are_merged_and_placed_in_their_files() {
        let good = vec![7u8; 5500];
        let mut bad = good.clone();
        bad[1500] ^= 1;
        bad[2500] ^= 1;
        bad[5400] ^= 1;
        let plan = Plan {
            place: crate::image::Place::Local,
            format: ImageFormat::SplitRaw,
            files: vec![],
            limit: None,
            recorded_sizes: None,
            recorded_unreadable: None,
            expected_size: None,
            refs: vec![],
            pieces: None,
        };
        let files = vec![PathBuf::from("d/x.001"), PathBuf::from("d/x.002")];
        let mut checks = Vec::new();
        compare_pieces(
            "x",
            Path::new("x.crc64"),
            &list(&good),
            &list(&bad),
            &plan,
            &files,
            &mut checks,
        );
        let fails: Vec<&Check> = checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .collect();
        assert_eq!(fails.len(), 2);
        assert_eq!(
            fails[0].media_range,
            Some(ByteRange {
                start: 1000,
                end: 3000
            })
        );
        assert_eq!(
            fails[1].media_range,
            Some(ByteRange {
                start: 5000,
                end: 5500
            })
        );
        // No files to stat here: the raw placement is tested through file_places.
        assert_eq!(
            file_places(&files, &[2000, 3500], 1000, 3000),
            ": in x.001 bytes 1000..2000, x.002 bytes 0..1000"
        );
        assert_eq!(file_places(&files, &[], 0, 10), "");
    }

    #[test]
    fn exit_code_needs_a_pass_and_no_fail() {
        let mut r = VerifyReport {
            path: PathBuf::new(),
            images: vec![],
            checks: vec![Check::new(Verdict::Note, Topic::Hash, "n")],
        };
        assert_eq!(r.exit_code(), EXIT_FAILED_CHECK);
        r.checks.push(Check::new(Verdict::Pass, Topic::Hash, "p"));
        assert_eq!(r.exit_code(), EXIT_VERIFIED);
        r.checks.push(Check::new(Verdict::Fail, Topic::Chunk, "f"));
        assert_eq!(r.exit_code(), EXIT_FAILED_CHECK);
        assert_eq!((r.passed(), r.failed()), (1, 1));
    }
}
