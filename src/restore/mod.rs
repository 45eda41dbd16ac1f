//! `exhibit restore IMAGE --to TARGET [--to TARGET…]`: an image (raw, split raw, an E01 set
//! of any writer) written back onto disks or files, several at once, and proven by reading
//! every target back.
//!
//! ```text
//!  Image::open ─▶ references::of_image (the hashes it claims), provenance (the acquired
//!        device, the unreadable runs) ─▶ refusals (refuse.rs) ─▶ open_restore_target each
//!        ─▶ Image::pass (decoded on all cores) ─▶ pipeline::run: hashes, pieces, one
//!           TargetSink per target ─▶ sync ─▶ read every target back (readback.rs)
//!        ─▶ each target's hashes against the claims, its pieces against the image's ─▶ record
//! ```
//! [`prepare`] makes every refusal and opens the targets; the caller asks for confirmation
//! (a device is overwritten) and then calls [`Prepared::run`]. Nothing is written before.

mod readback;
mod refuse;
mod stream;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::audit::{
    AuditRecord, HashInfo, Outcome, RecordBuilder, RestoreInfo, RestoreTarget, SourceInfo, Started,
    Tail, Throughput, UnreadableInfo,
};
use crate::cputime::CpuLedger;
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::image::provenance::{self, Provenance};
use crate::image::references::{self, Claims, Reference};
use crate::image::Image;
use crate::pieces::{PieceList, DEFAULT_PIECE_SIZE};
use crate::pipeline::{Consumers, Tuning};
use crate::progress::Progress;
use crate::sink::target::{open_restore_target, Target, TargetKind, TargetSink};
use crate::sink::{MediaSummary, OutputFile, Sink};
use crate::source::Identity;

/// What to restore where. Defaults are documented per field.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreOptions {
    /// Any file of the image (`disk.E01`, `disk.E03`, `disk.raw`, `disk.002`).
    #[serde(with = "crate::text::path")]
    pub image: PathBuf,
    /// The targets: block devices or files, each written with the whole media.
    #[serde(with = "crate::text::path::vec")]
    pub targets: Vec<PathBuf>,
    /// The record (default `BASE.restore-YYYYMMDDTHHMMSSZ.yaml` beside the image); never
    /// replaced.
    #[serde(with = "crate::text::path::option")]
    pub record: Option<PathBuf>,
    /// Read every target back and compare (default true; `--no-verify` skips it).
    pub verify: bool,
    /// Zero the rest of a target larger than the media (default: left as it was).
    pub wipe_tail: bool,
    /// Leave zero pieces of a new file target as holes.
    pub sparse: bool,
    /// Write the device the image was acquired from.
    pub force: bool,
    /// Write over an existing file target (a device is always written over).
    pub overwrite: bool,
    /// E01 decoder threads (default 0: one per core).
    pub workers: usize,
    /// Media bytes on standard input (`image` is `-`), which does not say.
    pub size: Option<u64>,
    /// MD5 the media must have (added to what the image claims; for standard input, what
    /// the targets are proven against).
    pub expect_md5: Option<String>,
    /// SHA-1 the media must have.
    pub expect_sha1: Option<String>,
    /// SHA-256 the media must have.
    pub expect_sha256: Option<String>,
    /// argv, for the record.
    #[serde(skip)]
    pub command_line: Vec<String>,
}

impl RestoreOptions {
    /// Options with the defaults for `image` onto `targets`.
    pub fn new(image: impl Into<PathBuf>, targets: Vec<PathBuf>) -> Self {
        RestoreOptions {
            image: image.into(),
            targets,
            record: None,
            verify: true,
            wipe_tail: false,
            sparse: false,
            force: false,
            overwrite: false,
            workers: 0,
            size: None,
            expect_md5: None,
            expect_sha1: None,
            expect_sha256: None,
            command_line: Vec::new(),
        }
    }

    /// True when the media comes on standard input (`-`).
    pub fn from_stdin(&self) -> bool {
        self.image.as_os_str() == "-"
    }

    /// The `--expect-…` hashes, checked.
    fn expected(&self) -> Result<Vec<Reference>> {
        let mut v = Vec::new();
        for (algorithm, hex) in [
            (HashAlgorithm::Md5, &self.expect_md5),
            (HashAlgorithm::Sha1, &self.expect_sha1),
            (HashAlgorithm::Sha256, &self.expect_sha256),
        ] {
            let Some(hex) = hex else { continue };
            let hex = references::normal_hex(algorithm, hex).ok_or_else(|| {
                Error::InvalidOption(format!(
                    "--expect-{algorithm} {}: not a {algorithm} in hex",
                    crate::text::printable(hex)
                ))
            })?;
            v.push(Reference {
                algorithm,
                hex,
                source: format!("--expect-{algorithm}"),
            });
        }
        Ok(v)
    }
}

/// What a finished restore did.
#[derive(Debug)]
pub struct RestoreReport {
    /// The record as written.
    pub record: AuditRecord,
    /// Where it is.
    pub record_path: PathBuf,
    /// 0: every target read back as the image claims (or, with `--no-verify`, was written);
    /// 1: a target differs, or the image does not hold what it claims.
    pub exit_code: i32,
}

/// A target that is ready: its writer, and what the record says about it.
pub struct PreparedTarget {
    /// The path given.
    pub path: PathBuf,
    target: Target,
}

impl PreparedTarget {
    /// Device or file.
    pub fn kind(&self) -> TargetKind {
        self.target.kind
    }
    /// sysfs identity (empty for a file).
    pub fn identity(&self) -> &Identity {
        &self.target.identity
    }
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.target.size
    }
}

/// Files this run created; removed again unless the run went on to write them.
struct Created(Vec<PathBuf>);

impl Drop for Created {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A restore that passed every refusal, its targets open (devices exclusively).
pub struct Prepared<'o> {
    opts: &'o RestoreOptions,
    /// The image; none for standard input.
    image: Option<Image>,
    media: u64,
    claims: Claims,
    carried: Provenance,
    /// The piece list beside the image, when it is one for this media.
    pieces: Option<(PathBuf, PieceList)>,
    targets: Vec<PreparedTarget>,
    record_path: PathBuf,
    created: Created,
}

/// Opens the image and every target, making every refusal (exit 2) before anything is
/// written: an incomplete image; a target named twice; a target that holds the image, the
/// running system's root, or (unless `force`) is the device the image was acquired from; a
/// target mounted, held, or smaller than the media; an existing file without `overwrite`.
pub fn prepare(opts: &RestoreOptions) -> Result<Prepared<'_>> {
    let started = Started::now();
    if opts.targets.is_empty() {
        return Err(Error::InvalidOption(
            "no target: give one or more --to DEVICE|FILE".into(),
        ));
    }
    let expected = opts.expected()?;
    let (image, media, mut claims, carried) = if opts.from_stdin() {
        let media = opts.size.ok_or_else(|| {
            Error::InvalidOption(
                "restore -: give --size BYTES (a stream does not say how long it is)".into(),
            )
        })?;
        if expected.is_empty() {
            return Err(Error::InvalidOption(
                "restore -: give --expect-sha256 HEX (or --expect-md5, --expect-sha1): a stream \
                 holds no hash to prove the targets against"
                    .into(),
            ));
        }
        (None, media, Claims::default(), stream::provenance())
    } else {
        if opts.size.is_some() {
            return Err(Error::InvalidOption(
                "--size is for a stream on standard input (restore -); an image knows its size"
                    .into(),
            ));
        }
        let image = Image::open(&opts.image)?;
        image.refuse_incomplete(&opts.image)?;
        let claims = references::of_image(&opts.image, &image);
        let carried = provenance::of_image(&image, &claims);
        let media = image.media_size();
        (Some(image), media, claims, carried)
    };
    claims.refs.extend(expected);
    let record_path = match &opts.record {
        Some(p) => p.clone(),
        None => {
            let stamp = started.utc.format("%Y%m%dT%H%M%SZ");
            match opts.from_stdin() {
                true => PathBuf::from(format!("restore-{stamp}.yaml")),
                false => crate::audit::with_extension(
                    &references::base_of(&opts.image),
                    &format!("restore-{stamp}.yaml"),
                ),
            }
        }
    };
    if std::fs::symlink_metadata(&record_path).is_ok() {
        return Err(Error::Refused(format!(
            "{} already exists: a restore record is never replaced (choose another --record)",
            record_path.display()
        )));
    }
    let keys = refuse::refuse_twice(&opts.targets, &record_path)?;
    let mut inputs = match &image {
        Some(image) => references::input_files(&opts.image, image, &claims),
        None => Vec::new(),
    };
    inputs.sort();
    inputs.dedup();
    for (path, key) in opts.targets.iter().zip(&keys) {
        refuse::refuse_on_image(path, key, &inputs)?;
        refuse::refuse_root(path, key)?;
        refuse::refuse_acquired_from(path, key, &carried.identity, opts.force)?;
    }
    let mut created = Created(Vec::new());
    let mut targets = Vec::new();
    for path in &opts.targets {
        let target = open_restore_target(path, media, opts.overwrite)?;
        if target.created {
            created.0.push(path.clone());
        }
        if opts.sparse && target.kind == TargetKind::File && !target.created {
            return Err(Error::InvalidOption(format!(
                "--sparse: {} exists; holes are left only in a new file (its old bytes would \
                 show through them)",
                path.display()
            )));
        }
        targets.push(PreparedTarget {
            path: path.clone(),
            target,
        });
    }
    let pieces = match image {
        Some(_) => beside_pieces(&opts.image, media),
        None => None,
    };
    Ok(Prepared {
        opts,
        image,
        media,
        claims,
        carried,
        pieces,
        targets,
        record_path,
        created,
    })
}

/// `BASE.crc64` beside the image, when it lists this media (else the image's own pieces, as
/// read while writing, name the differing ranges).
fn beside_pieces(image: &Path, media: u64) -> Option<(PathBuf, PieceList)> {
    let path = references::side_file(&references::base_of(image), "crc64");
    let bytes = crate::small_file::read_small(&path, crate::small_file::PIECE_LIST_LIMIT).ok()?;
    let list = PieceList::from_bytes(&bytes, &path).ok()?;
    (list.media_size == media).then_some((path, list))
}

/// The algorithms the read-back computes: those the image claims, or SHA-256 when it claims
/// none (compared with the image as read while writing).
fn algorithms(refs: &[Reference]) -> Vec<HashAlgorithm> {
    let v: Vec<HashAlgorithm> = HashAlgorithm::ALL
        .into_iter()
        .filter(|a| refs.iter().any(|r| r.algorithm == *a))
        .collect();
    if v.is_empty() {
        vec![HashAlgorithm::Sha256]
    } else {
        v
    }
}

/// The one hash each target is read back with: the strongest the write pass computed
/// (SHA-256, else SHA-1, else MD5; also the fastest but for SHA-1 on most machines).
fn readback_algorithm(computed: &[HashAlgorithm]) -> HashAlgorithm {
    [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha1,
        HashAlgorithm::Md5,
    ]
    .into_iter()
    .find(|a| computed.contains(a))
    .unwrap_or(HashAlgorithm::Sha256)
}

impl Prepared<'_> {
    /// The targets, in the order given.
    pub fn targets(&self) -> &[PreparedTarget] {
        &self.targets
    }

    /// Media bytes each target receives.
    pub fn media_size(&self) -> u64 {
        self.media
    }

    /// True when the media comes on standard input.
    pub fn from_stdin(&self) -> bool {
        self.opts.from_stdin()
    }

    /// The image, as given.
    pub fn image_path(&self) -> &Path {
        &self.opts.image
    }

    /// Where the record will be.
    pub fn record_path(&self) -> &Path {
        &self.record_path
    }

    /// Writes the image onto every target, syncs them, reads each back (unless
    /// `--no-verify`) and writes the record. A failure or an interruption is an error (exit
    /// 2) after the record says which targets were not finished.
    pub fn run(self, progress: &Progress, stop: &AtomicBool) -> Result<RestoreReport> {
        let Prepared {
            opts,
            image,
            media,
            claims,
            carried,
            pieces,
            targets,
            record_path,
            mut created,
        } = self;
        // The record's times are the run's, not those of the wait for a confirmation.
        let started = Started::now();
        let sector = image.as_ref().map_or(512, Image::sector_size);
        let algorithms = algorithms(&claims.refs);
        let piece_size = pieces
            .as_ref()
            .map_or(DEFAULT_PIECE_SIZE, |p| p.1.piece_size);

        let source = SourceInfo {
            path: opts.image.clone(),
            kind: carried.kind,
            size: media,
            logical_sector_size: sector,
            physical_sector_size: sector,
            identity: carried.identity.clone(),
            kernel_read_only: None,
            live_use: None,
            drive: None,
        };
        let mut record = RecordBuilder::start_from(
            crate::audit::JobKind::Restore,
            source,
            opts,
            &carried.case,
            &opts.command_line,
            started,
            record_path,
        );
        let mut info = RestoreInfo {
            image: opts.image.clone(),
            format: image.as_ref().map(Image::format),
            files: image.as_ref().map(Image::files).unwrap_or_default(),
            media_size: media,
            claimed_hashes: Vec::new(),
            compared_with: compared_with(&claims.refs),
            pieces_from: pieces.as_ref().map_or_else(
                || "the image as read while writing".to_string(),
                |(p, _)| references::file_name(p),
            ),
            verified: false,
            unreadable_from: carried.unreadable_from.clone(),
            targets: targets.iter().map(|t| describe(t, media, opts)).collect(),
        };
        record.record_mut().unreadable =
            UnreadableInfo::from_runs(&carried.unreadable, u64::from(sector), None);
        record.record_mut().restore = Some(info.clone());
        record.write()?;
        // From here the targets are this run's outputs, listed in its record.
        created.0.clear();

        let paths: Vec<PathBuf> = targets.iter().map(|t| t.path.clone()).collect();
        // The exclusive claim on each device stays with these descriptors until the
        // read-back is done: nothing mounts or claims a target in between.
        let _claims_held: Vec<std::fs::File> = targets
            .iter()
            .filter_map(|t| t.target.image.file().try_clone().ok())
            .collect();
        let sinks: Vec<Box<dyn Sink>> = targets
            .into_iter()
            .map(|t| {
                let sparse = opts.sparse && t.target.kind == TargetKind::File;
                Box::new(TargetSink::new(t.target, media, sparse, opts.wipe_tail)) as Box<dyn Sink>
            })
            .collect();

        progress.set_total(media);
        progress.set_phase("writing");
        let cpu = CpuLedger::default();
        let cpu_start = crate::cputime::process_seconds();
        let consumers = Consumers {
            hashes: algorithms.clone(),
            piece_size: Some(piece_size),
            sinks,
        };
        let tuning = Tuning { cpu: Some(&cpu) };
        let passed = match &image {
            Some(image) => image.pass(consumers, opts.workers, tuning, progress, stop),
            None => stream::pass(media, consumers, tuning, progress, stop),
        };
        let passed = match passed {
            Ok(p) => p,
            Err(failed) => {
                let (error, files) = failed.abandon();
                note_written(&mut info, &files, "not-finished");
                return Err(fail(record, info, files, error));
            }
        };
        let summary = MediaSummary {
            media_size: media,
            sector_size: sector,
            hashes: passed.hashes.clone(),
            unreadable: carried.unreadable.clone(),
        };
        let mut outputs: Vec<OutputFile> = Vec::new();
        let mut finish_error = None;
        progress.set_phase("syncing");
        for sink in passed.sinks {
            match sink.finish(&summary) {
                Ok(files) => {
                    note_written(&mut info, &files, "written");
                    outputs.extend(files);
                }
                Err(e) => {
                    finish_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = finish_error {
            return Err(fail(record, info, outputs, e));
        }

        let mut findings: Vec<String> = passed
            .value
            .iter()
            .map(|p| format!("the image is damaged: {p}"))
            .collect();
        info.claimed_hashes = references::against(&claims.refs, &passed.hashes);
        for c in info.claimed_hashes.iter().filter(|c| !c.matches) {
            findings.push(format!(
                "the image does not hold its {}: {} says {}, the image reads as {}",
                c.algorithm, c.source, c.claimed, c.computed
            ));
        }
        // Without claims, the targets are compared with the image as it read.
        let expected: Vec<Reference> = if claims.refs.is_empty() {
            passed
                .hashes
                .hex()
                .into_iter()
                .map(|(algorithm, hex)| Reference {
                    algorithm,
                    hex,
                    source: "the image as read".into(),
                })
                .collect()
        } else {
            claims.refs.clone()
        };

        if opts.verify {
            let own = passed.pieces.clone();
            let reference = pieces.as_ref().map(|(_, p)| p).or(own.as_ref());
            // The pass above checked the image's stream against every claimed hash; a target
            // equal to that stream under one of them is proven against them all. One hash a
            // target, not all of them, keeps three targets' read-back off the CPU floor.
            let proof = readback_algorithm(&algorithms);
            let expected: Vec<Reference> = expected
                .into_iter()
                .filter(|r| r.algorithm == proof)
                .collect();
            let reads = readback::read_all(&paths, media, &[proof], piece_size, progress, stop);
            info.verified = true;
            let mut error = None;
            for (t, read) in info.targets.iter_mut().zip(reads) {
                match read {
                    Ok(read) => {
                        let empty = crate::pieces::PieceHasher::new(piece_size).finish();
                        let rb = readback::verdict(&read, &expected, reference.unwrap_or(&empty));
                        if rb.verdict != "matches" {
                            findings.push(differs(&t.path, &rb));
                        }
                        t.read_back = Some(rb);
                    }
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = error {
                info.verified = false;
                return Err(fail(record, info, outputs, e));
            }
        }

        let elapsed = record.elapsed();
        let rec = record.record_mut();
        rec.outputs = outputs;
        rec.hashes = Some(HashInfo::new(
            &passed.hashes,
            media,
            carried.unreadable.iter().map(|r| r.length).sum(),
            rec.unreadable.sectors,
            "read from the image",
            Vec::new(),
            Vec::new(),
        ));
        rec.restore = Some(info);
        let cpu_seconds = cpu.report(crate::cputime::process_seconds() - cpu_start);
        rec.throughput = Some(Throughput::new(media, elapsed, cpu_seconds));
        let outcome = if findings.is_empty() {
            Outcome::Complete
        } else {
            Outcome::CompleteWithFindings(findings.join("; "))
        };
        let written = record.finish(&outcome);
        Error::recorded(record.path(), written)?;
        let exit_code = outcome.exit_code().unwrap_or(crate::audit::exit::FAILED);
        let (record, record_path) = record.into_parts();
        Ok(RestoreReport {
            record,
            record_path,
            exit_code,
        })
    }
}

/// What the read-back is compared with, in words.
fn compared_with(refs: &[Reference]) -> String {
    if refs.is_empty() {
        return "the image claims no hash: the hashes of the image as read while writing".into();
    }
    let mut sources: Vec<&str> = refs.iter().map(|r| r.source.as_str()).collect();
    sources.dedup();
    format!("the hashes the image claims ({})", sources.join(", "))
}

/// A target as the record first describes it.
fn describe(t: &PreparedTarget, media: u64, opts: &RestoreOptions) -> RestoreTarget {
    let tg = &t.target;
    RestoreTarget {
        path: t.path.clone(),
        kind: tg.kind,
        identity: tg.identity.clone(),
        size: tg.size,
        logical_sector_size: tg.sector_sizes.0,
        physical_sector_size: tg.sector_sizes.1,
        status: "not-started".into(),
        bytes_written: 0,
        sparse: opts.sparse && tg.kind == TargetKind::File,
        tail: (tg.size > media).then(|| Tail {
            offset: media,
            length: tg.size - media,
            action: if opts.wipe_tail {
                "zeroed"
            } else {
                "left-as-it-was"
            }
            .into(),
        }),
        read_back: None,
    }
}

/// Each target's bytes written and status from its sink's listing.
fn note_written(info: &mut RestoreInfo, files: &[OutputFile], status: &str) {
    for f in files {
        if let Some(t) = info.targets.iter_mut().find(|t| t.path == f.path) {
            t.bytes_written = f.size;
            t.status = status.into();
        }
    }
}

/// "TARGET differs from the image: N bytes in K ranges, the first at OFFSET".
fn differs(path: &Path, rb: &crate::audit::ReadBack) -> String {
    let mut s = format!("{} differs from the image", path.display());
    if let Some(first) = rb.differing_ranges.first() {
        let bytes: u64 = rb.differing_ranges.iter().map(|r| r.length).sum();
        s.push_str(&format!(
            ": {bytes} bytes in {} range{}, the first at byte {} ({} bytes)",
            rb.differing_ranges.len(),
            if rb.differing_ranges.len() == 1 {
                ""
            } else {
                "s"
            },
            first.offset,
            first.length
        ));
    }
    if let Some(first) = rb.unreadable_ranges.first() {
        s.push_str(&format!(
            "; unreadable when read back from byte {}",
            first.offset
        ));
    }
    s
}

/// Ends the record of a run that stopped (what each target got, why) and returns the error.
fn fail(
    mut record: RecordBuilder,
    mut info: RestoreInfo,
    outputs: Vec<OutputFile>,
    error: Error,
) -> Error {
    for t in &mut info.targets {
        if t.status == "not-started" && t.bytes_written > 0 {
            t.status = "not-finished".into();
        }
    }
    let rec = record.record_mut();
    rec.outputs = outputs;
    rec.restore = Some(info);
    let outcome = Outcome::from_error(&error);
    let written = record.finish(&outcome);
    error.or_unrecorded(record.path(), written)
}
