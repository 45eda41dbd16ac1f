//! The outputs of a BASE, for every job that writes an image set from one pass (acquire,
//! convert): what the set will be, the refusals before anything is written, the sinks, and
//! the finish once the pass has delivered every byte.
//!
//! ```text
//!  Outputs::plan ─▶ claim (not the source, BASE.lock, no existing output) ─▶ create_sinks
//!        ─▶ (the job's pass) ─▶ finish: sinks ─▶ map ─▶ pieces ─▶ stale files ─▶ hash logs
//!                                        ─▶ record (hashes, pieces, outputs) ─▶ complete
//! ```
//! A job owns its source, its pass and what only it knows (the reader in the record, how a
//! stopped source is mapped); everything about the files of BASE lives here, once.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::Digest as _;

use crate::audit::{
    hash_logs, write_atomically, write_map, AuditRecord, HashInfo, Outcome, PiecesInfo,
    RecordBuilder, SideFiles,
};
use crate::error::{Error, Result};
use crate::ewf::{naming, E01Options, E01Sink};
use crate::exclusive::BaseLock;
use crate::hash::HashAlgorithm;
use crate::map::{BadRun, SectorMap};
use crate::pieces::PieceList;
use crate::s3::client::PutOptions;
use crate::s3::store::{register, Registration, Store, StoreOptions};
use crate::s3::S3Url;
use crate::sink::raw::{refuse_existing, RawLayout, RawSink};
use crate::sink::{MediaSummary, OutputFile, Sink};

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

/// What a job asks of its outputs.
#[derive(Clone, Debug)]
pub struct OutputRequest<'a> {
    /// BASE: `BASE.raw`, `BASE.E01`, `BASE.yaml`, ….
    pub base: &'a Path,
    /// The formats (at least one).
    pub formats: &'a [OutputFormat],
    /// Split raw output into segments of this many bytes.
    pub split: Option<u64>,
    /// Raw output onto this block device instead of a file.
    pub clone_target: Option<&'a Path>,
    /// The hashes asked for (MD5 and SHA-1 are added for E01).
    pub hashes: &'a [HashAlgorithm],
    /// Replace existing outputs instead of refusing.
    pub overwrite: bool,
    /// Media bytes the pass will deliver.
    pub media_size: u64,
    /// For an `s3://` BASE: endpoint, retention, parts in flight.
    pub store: &'a StoreOptions,
}

/// The planned outputs of one BASE.
#[derive(Debug)]
pub struct Outputs {
    base: PathBuf,
    side: SideFiles,
    hashes: Vec<HashAlgorithm>,
    raw_layout: Option<RawLayout>,
    e01: bool,
    overwrite: bool,
    clone_target: Option<PathBuf>,
    media_size: u64,
    /// Every file the run will create or replace (the side files and the raw layout's).
    planned: Vec<PathBuf>,
    /// For an `s3://` BASE: its name and options; the store registered by `claim`.
    bucket: Option<(S3Url, StoreOptions)>,
    store: Mutex<Option<Registration>>,
    client: Mutex<Option<Arc<crate::s3::Client>>>,
    /// The largest object the set writes (for the part size).
    largest: u64,
}

impl Outputs {
    /// The set `req` describes; refuses a missing output directory, a BASE that is a
    /// directory, `--clone` with `--split`, and a bad split size. Nothing is touched.
    pub fn plan(req: &OutputRequest<'_>) -> Result<Outputs> {
        if req.formats.is_empty() {
            return Err(Error::InvalidOption("no output format given".into()));
        }
        let e01 = req.formats.contains(&OutputFormat::E01);
        let mut hashes = req.hashes.to_vec();
        if e01 {
            // An E01 carries MD5 (`hash`) and MD5 + SHA-1 (`digest`); an E01 without them is
            // one no reader can check, so they are always computed for it.
            hashes.extend([HashAlgorithm::Md5, HashAlgorithm::Sha1]);
        }
        hashes.sort();
        hashes.dedup();
        let bucket = if crate::s3::url::is_s3_os(req.base.as_os_str()) {
            let text = req.base.to_str().unwrap_or_default();
            Some((S3Url::parse(text)?, req.store.clone()))
        } else {
            None
        };
        let base_dir = req
            .base
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if bucket.is_none() && !base_dir.is_dir() {
            return Err(Error::Refused(format!(
                "the output directory {} does not exist",
                base_dir.display()
            )));
        }
        if req.base.file_name().is_none() {
            return Err(Error::InvalidOption(format!(
                "-o {}: give a base name such as case42/disk, not a directory",
                req.base.display()
            )));
        }
        let side = SideFiles::new(req.base);
        let raw_layout = if req.formats.contains(&OutputFormat::Raw) {
            Some(match (req.clone_target, req.split) {
                (Some(_), Some(_)) => {
                    return Err(Error::InvalidOption(
                        "--clone and --split cannot be combined".into(),
                    ))
                }
                (Some(dev), None) => RawLayout::Device(dev.to_path_buf()),
                (None, Some(size)) => {
                    crate::sink::raw::check_split(size)?;
                    RawLayout::Split {
                        base: req.base.to_path_buf(),
                        segment_size: size,
                    }
                }
                (None, None) => RawLayout::Single(side.raw()),
            })
        } else {
            None
        };
        let mut planned: Vec<PathBuf> = side.all(&hashes);
        if let Some(layout) = &raw_layout {
            planned.extend(layout.paths(req.media_size));
        }
        if bucket.is_some() && req.clone_target.is_some() {
            return Err(Error::InvalidOption(
                "--clone writes a device, not objects: give a local -o with --clone".into(),
            ));
        }
        // The largest raw object: the image or a split segment (E01 segments: create_sinks).
        let largest = if raw_layout.is_some() {
            req.split.unwrap_or(req.media_size)
        } else {
            0
        };
        Ok(Outputs {
            base: req.base.to_path_buf(),
            side,
            hashes,
            raw_layout,
            e01,
            overwrite: req.overwrite,
            clone_target: req.clone_target.map(Path::to_path_buf),
            media_size: req.media_size,
            planned,
            bucket,
            store: Mutex::new(None),
            client: Mutex::new(None),
            largest,
        })
    }

    /// The BASE's object name when the set goes into a bucket.
    pub fn bucket(&self) -> Option<&S3Url> {
        self.bucket.as_ref().map(|(u, _)| u)
    }

    /// The hashes to compute: those asked for, with MD5 and SHA-1 for E01, sorted.
    pub fn hashes(&self) -> &[HashAlgorithm] {
        &self.hashes
    }

    /// The side files of BASE.
    pub fn side(&self) -> &SideFiles {
        &self.side
    }

    /// True when the set includes E01.
    pub fn wants_e01(&self) -> bool {
        self.e01
    }

    /// Everything the run may create, replace, write or remove, and the lock: the planned
    /// files, `BASE.lock`, `BASE.E01`, and the segment names of BASE that exist (a run that
    /// writes segments may replace or remove any of them).
    pub fn guarded(&self) -> Result<Vec<PathBuf>> {
        let mut guarded = self.planned.clone();
        if self.bucket.is_some() {
            // Objects live on no local file system, so none can be a local source or on it;
            // but an image being converted may be in the same bucket, under the same names.
            if self.e01 {
                guarded.extend(naming::segment_path(&self.base, 1));
            }
            return Ok(guarded);
        }
        guarded.push(self.side.lock());
        if self.e01 {
            guarded.extend(naming::segment_path(&self.base, 1));
        }
        let raw_files = matches!(
            self.raw_layout,
            Some(RawLayout::Single(_) | RawLayout::Split { .. })
        );
        guarded.extend(self.side.segment_names(raw_files, self.e01)?);
        Ok(guarded)
    }

    /// The refusals before anything is written, in this order: `refuse_source` on every
    /// [`Self::guarded`] path (outputs that are the source or live on it), another run on
    /// BASE (the lock, taken for `job` with `room` bytes reserved for the last side files),
    /// and, unless `--overwrite`, existing outputs (a clone target exists by definition).
    pub fn claim(
        &self,
        refuse_source: impl FnOnce(&[PathBuf]) -> Result<()>,
        job: &str,
        room: u64,
    ) -> Result<BaseLock> {
        refuse_source(&self.guarded()?)?;
        if let Some((url, options)) = &self.bucket {
            return self.claim_objects(url, options, job);
        }
        let lock = BaseLock::acquire(&self.side.lock(), job, room)?;
        for path in &self.planned {
            let is_clone_target = self.clone_target.as_deref() == Some(path.as_path());
            if !self.overwrite && !is_clone_target {
                refuse_existing(path)?;
            }
        }
        Ok(lock)
    }

    /// `claim` for an `s3://` BASE: the client from the AWS-style configuration, the lock
    /// (a local file named after the BASE: one run per BASE on this machine), the refusal of
    /// any existing object of BASE (`BASE.` anything, by listing) unless `--overwrite`, and
    /// the store registered, so the writers of the set write objects from here on.
    fn claim_objects(&self, url: &S3Url, options: &StoreOptions, job: &str) -> Result<BaseLock> {
        let config = crate::s3::S3Config::from_env(options.endpoint.as_deref())?;
        let client = Arc::new(crate::s3::Client::new(&config, url.bucket())?);
        let lock_name = format!(
            "exhibit-s3-{}.lock",
            &crate::hash::to_hex(&sha2::Sha256::digest(url.to_string().as_bytes()))[..32]
        );
        let lock = BaseLock::acquire(&std::env::temp_dir().join(lock_name), job, 0)?;
        let prefix = format!("{}.", url.key());
        let existing = client.list_objects(&prefix, 100_000)?;
        if let (false, Some(first)) = (self.overwrite, existing.first()) {
            return Err(Error::Refused(format!(
                "{} already exists{} (use --overwrite to replace it)",
                client.url_of(&first.key),
                match existing.len() {
                    1 => String::new(),
                    n => format!(", with {} more objects of this BASE", n - 1),
                }
            )));
        }
        // Uploads of BASE's objects left by an earlier run that could not abort them (its
        // server lost quorum, the machine went down): this run replaces that run's set, so
        // they are aborted now instead of keeping their parts forever.
        for pending in client.list_multipart_uploads(&prefix)? {
            client.abort_multipart(&pending.key, &pending.upload_id)?;
        }
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
        Ok(lock)
    }

    /// Registers the store of an `s3://` BASE (after `claim`), its part size fitting the
    /// largest object of the set (`e01_segment`: the E01 segment size, if any) in 10,000
    /// parts.
    fn register_store(&self, e01_segment: Option<u64>) -> Result<()> {
        let Some((url, options)) = &self.bucket else {
            return Ok(());
        };
        let client = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::Internal("the sinks of an s3:// set before its claim".into()))?;
        let largest = self
            .largest
            .max(e01_segment.map_or(0, |s| s.min(self.media_size.saturating_mul(2) + (1 << 20))));
        let metadata = vec![("exhibit-version".to_string(), crate::VERSION.to_string())];
        let store = Store {
            client,
            base: url.clone(),
            put: PutOptions {
                metadata,
                lock: options.lock.clone(),
            },
            part_size: crate::s3::store::part_size_for(largest)?,
            parts_in_flight: match options.parts_in_flight {
                0 => crate::s3::store::DEFAULT_PARTS_IN_FLIGHT,
                n => n,
            },
            media: Default::default(),
        };
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(register(store));
        Ok(())
    }

    /// The sinks (raw, then E01), created empty. E01 needs media of whole `sector_size`-byte
    /// sectors (refused otherwise); `e01` gives the writer's options. A refusal writes
    /// nothing: what the sinks before the refusing one set up is removed.
    pub fn create_sinks(
        &self,
        sector_size: u32,
        e01: impl FnOnce() -> E01Options,
    ) -> Result<Vec<Box<dyn Sink>>> {
        if self.e01 {
            let sector = u64::from(sector_size);
            if !self.media_size.is_multiple_of(sector) {
                return Err(Error::InvalidOption(format!(
                    "E01 stores whole {sector}-byte sectors and the source is {} bytes; use --format raw",
                    self.media_size
                )));
            }
        }
        let e01_options = self.e01.then(e01);
        self.register_store(e01_options.as_ref().map(|o| o.segment_size))?;
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        let created = (|| -> Result<()> {
            if let Some(layout) = self.raw_layout.clone() {
                let raw = RawSink::create(layout, self.media_size, self.overwrite)?;
                sinks.push(Box::new(raw));
            }
            if let Some(options) = e01_options {
                sinks.push(Box::new(E01Sink::create(
                    &self.base,
                    options,
                    self.overwrite,
                )?));
            }
            Ok(())
        })();
        if let Err(e) = created {
            // New, empty files: existing names were refused by `claim` unless --overwrite.
            for sink in sinks {
                for file in sink.abandon() {
                    if std::fs::metadata(&file.path).is_ok_and(|m| m.is_file()) {
                        let _ = std::fs::remove_file(&file.path);
                    }
                }
            }
            return Err(e);
        }
        Ok(sinks)
    }

    /// The map's header lines for a run that started at `started_utc`.
    fn map_header(started_utc: &str) -> Vec<String> {
        vec![
            format!("Start time: {started_utc}"),
            format!(
                "Current time: {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ]
    }

    /// Ends the record with `outcome` and the unreadable runs (in `sector`-byte sectors).
    pub fn end_record(
        &self,
        record: &mut RecordBuilder,
        outcome: &Outcome,
        unreadable: &[BadRun],
        sector: u64,
    ) -> Result<()> {
        record.set_unreadable(unreadable, sector, self.side.map());
        let written = record.finish(outcome);
        match written {
            Err(why) if crate::s3::url::is_s3_os(record.path().as_os_str()) => {
                Err(keep_unsent_record(record, why))
            }
            written => written,
        }
    }

    /// After a pass that failed: the map as far as it got (status `?`), the record with the
    /// abandoned `outputs` and the error's outcome. Returns the error to report.
    #[allow(clippy::too_many_arguments)]
    pub fn pass_failed(
        &self,
        record: &mut RecordBuilder,
        lock: &BaseLock,
        error: Error,
        outputs: Vec<OutputFile>,
        map: &mut SectorMap,
        unreadable: &[BadRun],
        sector: u64,
    ) -> Error {
        // The image may have filled the filesystem: the reserved room is for what follows.
        lock.release_room();
        map.current_status = '?';
        let header = Self::map_header(&record.record().times.started_utc);
        let _ = write_map(map, &self.side.map(), &header);
        record.record_mut().outputs = outputs;
        let written = self.end_record(record, &Outcome::from_error(&error), unreadable, sector);
        error.or_unrecorded(record.path(), written)
    }

    /// After a pass that delivered every byte: closes every sink with `summary`, writes the
    /// map (status `+`) and the piece list, removes with `--overwrite` what an earlier run on
    /// BASE wrote and this one did not (never `protect`, the source's device and inode),
    /// writes the hash logs, and fills the record's hashes (`how` the bytes got there: `read`),
    /// piece list and outputs. A failure is recorded and returned.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &self,
        record: &mut RecordBuilder,
        lock: &BaseLock,
        sinks: Vec<Box<dyn Sink>>,
        summary: &MediaSummary,
        map: &mut SectorMap,
        pieces: &PieceList,
        how: &str,
        protect: Option<(u64, u64)>,
    ) -> Result<()> {
        let sector = u64::from(summary.sector_size);
        let unreadable = &summary.unreadable;
        let mut outputs = Vec::new();
        let mut failure = None;
        for sink in sinks {
            if failure.is_some() {
                outputs.extend(sink.abandon());
                continue;
            }
            match sink.finish(summary) {
                Ok(files) => outputs.extend(files),
                Err(e) => failure = Some(e),
            }
        }
        map.current_pos = summary.media_size;
        map.current_status = '+';
        lock.release_room();
        let side_result = (|| -> Result<()> {
            let header = Self::map_header(&record.record().times.started_utc);
            write_map(map, &self.side.map(), &header)?;
            write_atomically(&self.side.pieces(), &pieces.to_bytes())?;
            Ok(())
        })();
        if let (None, Err(e)) = (&failure, side_result) {
            failure = Some(e);
        }
        if failure.is_none() && self.overwrite {
            // What an earlier run on this BASE wrote and this one did not (more segments,
            // another layout) would make the new set fail verify: see sink::stale.
            let mut keep: Vec<PathBuf> = outputs.iter().map(|o| o.path.clone()).collect();
            keep.extend(self.side.all(&self.hashes));
            if let Err(e) = crate::sink::stale::remove_stale(&self.base, &keep, protect) {
                failure = Some(e);
            }
        }
        if let Some(error) = failure {
            record.record_mut().outputs = outputs;
            let outcome = Outcome::Failed(error.to_string());
            let written = self.end_record(record, &outcome, unreadable, sector);
            return Err(error.or_unrecorded(record.path(), written));
        }

        if let Some(reg) = self
            .store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            reg.store().set_media_hashes(&summary.hashes);
        }
        let logs = match hash_logs::write(&self.side, &summary.hashes, &outputs, summary.media_size)
        {
            Ok(logs) => logs,
            Err(error) => {
                record.record_mut().outputs = outputs;
                let outcome = Outcome::Failed(error.to_string());
                let written = self.end_record(record, &outcome, unreadable, sector);
                return Err(error.or_unrecorded(record.path(), written));
            }
        };

        let rec = record.record_mut();
        if self.e01 {
            let lost = crate::ewf::unaddressable_runs(unreadable, summary.sector_size);
            if !lost.is_empty() {
                rec.unreadable_not_in_e01 = Some(format!(
                    "{} unreadable runs lie beyond sector 2^32-1, which the E01 error2 section \
                     cannot address; they are zeros in the E01 and listed only here and in the \
                     map: {}",
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
            &summary.hashes,
            summary.media_size,
            bad_bytes,
            zero_filled_sectors,
            how,
            logs.logs,
            logs.checks,
        ));
        rec.pieces = Some(PiecesInfo {
            file: self.side.pieces(),
            piece_size: pieces.piece_size,
            algorithm: "crc-64/xz".into(),
        });
        rec.outputs = outputs;
        Ok(())
    }

    /// The last write of a finished run's record: `outcome`, then the lock goes. Returns the
    /// record, where it is, and the exit code.
    pub fn complete(
        &self,
        mut record: RecordBuilder,
        lock: BaseLock,
        outcome: &Outcome,
        unreadable: &[BadRun],
        sector: u64,
    ) -> Result<(AuditRecord, PathBuf, i32)> {
        let written = self.end_record(&mut record, outcome, unreadable, sector);
        Error::recorded(record.path(), written)?;
        drop(lock);
        let (record, path) = record.into_parts();
        Ok((
            record,
            path,
            outcome.exit_code().unwrap_or(crate::audit::exit::FAILED),
        ))
    }
}

/// Refuses an output that is one of `inputs` (by device and inode: also through another
/// name, a hard link or a symbolic link).
pub fn refuse_inputs(inputs: &[PathBuf], outputs: &[PathBuf]) -> Result<()> {
    // Objects have no device and inode: an object is the same as another by bucket and key.
    let object = |p: &Path| {
        p.to_str()
            .filter(|s| crate::s3::is_s3(s))
            .and_then(|s| crate::s3::S3Url::parse(s).ok())
            .map(|u| (u.bucket().to_string(), u.key().to_string()))
    };
    for out in outputs {
        let Some(o) = object(out) else { continue };
        if let Some(input) = inputs.iter().find(|i| object(i).as_ref() == Some(&o)) {
            return Err(Error::Refused(format!(
                "{}: is {}, an object of the image being converted (or its record or hash \
                 log); choose another -o",
                crate::text::printable_path(out),
                crate::text::printable_path(input)
            )));
        }
    }
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

/// A record that could not reach its bucket (the server gone, a cluster without a quorum) is
/// what the examiner most needs from the run: it is kept as a local file in the temporary
/// directory, and the error says where, instead of the run's only account being the bucket's
/// stale `running` record.
fn keep_unsent_record(record: &RecordBuilder, why: Error) -> Error {
    let url = record.path().to_string_lossy().into_owned();
    let flat: String = url
        .trim_start_matches("s3://")
        .trim_end_matches(".yaml")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let local = std::env::temp_dir().join(format!(
        "exhibit-unsent-record-{flat}-{}.yaml",
        std::process::id()
    ));
    let kept = match record.record().write(&local) {
        Ok(()) => format!("the finished record is kept at {}", local.display()),
        Err(e) => format!("nor could it be kept locally ({e})"),
    };
    Error::Storage {
        url,
        message: format!("{why}; {kept}"),
    }
}
