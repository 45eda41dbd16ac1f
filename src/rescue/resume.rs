//! The state a rescue resumes from: the sector map on disk (`BASE.map`, ours or GNU
//! ddrescue's), what it says about the pass in progress, and how many retry passes are done.
//! The map is the whole state; it is replaced atomically and only after the image is synced
//! (see [`super::Job`]), so it never claims data the image does not hold.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::options::Geometry;
use super::RescueOptions;
use crate::audit::{write_map, RunInfo};
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::map::{BlockState, SectorMap};

/// Map header line that records how many retry passes are done.
const RETRY_DONE_KEY: &str = "exhibit-retry-passes-done:";
/// Map header line naming the source the map belongs to (a comment: GNU ddrescue ignores it).
const SOURCE_KEY: &str = "exhibit-source:";
/// Map header line per earlier run of the job.
const RUN_KEY: &str = "exhibit-run:";
/// The identity field holding the first finished MiB's offset and SHA-256.
const FIRST_MIB: &str = "first-mib=";
/// 1 MiB.
const MIB: u64 = 1 << 20;

/// An identity without its `first-mib=` field, and that field's (offset, hex).
fn split_first_mib(id: &str) -> (String, Option<(u64, String)>) {
    let mut first = None;
    let rest: Vec<&str> = id
        .split("; ")
        .filter(|p| match p.strip_prefix(FIRST_MIB) {
            Some(v) => {
                first = v
                    .split_once(':')
                    .and_then(|(at, hex)| Some((at.parse().ok()?, hex.to_string())));
                false
            }
            None => true,
        })
        .collect();
    (rest.join("; "), first)
}

/// A run's source when its map did not say.
const UNKNOWN_SOURCE: &str =
    "unknown (the map has no exhibit-source line: written by GNU ddrescue or an older exhibit)";

/// The map and what a resumed run needs to know beside it.
#[derive(Debug)]
pub(super) struct MapState {
    /// The sector map.
    pub map: SectorMap,
    /// `BASE.map`.
    pub path: PathBuf,
    /// True when this run continued an existing map.
    pub resumed: bool,
    /// Retry passes done over all runs on this map.
    pub retry_done: u32,
    /// Extra header lines (the options' `map_header`).
    header: Vec<String>,
    /// The source the map belongs to, as stored in it (or this run's, for a new map).
    source_id: Option<String>,
    /// Earlier runs, from the map; this run is added on every save.
    runs: Vec<RunInfo>,
    /// This run.
    run: RunInfo,
    /// Bytes finished when this run began.
    finished_at_start: u64,
    /// The first whole finished MiB (on the MiB grid) and the SHA-256 of its bytes, part of
    /// the source's identity: a resumed run reads it from its source and compares.
    first_mib: Option<(u64, String)>,
    dirty: bool,
    last_save: Instant,
}

/// The text of an existing map to resume from; none with `--overwrite` or when there is none.
pub(super) fn existing_map(opts: &RescueOptions) -> Result<Option<String>> {
    if opts.overwrite {
        return Ok(None);
    }
    let path = opts.map_path();
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A FIFO, a device or a link there is refused, never read until memory runs out.
        _ => crate::small_file::read_small_text(&path, crate::small_file::MAP_LIMIT).map(Some),
    }
}

impl MapState {
    /// The state from `existing` (a map's text), or a fresh one. Refuses a map of another
    /// size, a map whose image is missing, and (without `--overwrite`) an image, hash log or
    /// record with no map to resume from. `on_device`: the image is a target device (which
    /// always exists and is never truncated).
    /// `source_id`: this run's source (see `rescue::source_identity`); a map that names
    /// another is refused unless `opts.force_source`.
    pub fn load(
        existing: Option<String>,
        opts: &RescueOptions,
        geo: &Geometry,
        source_path: &Path,
        on_device: bool,
        source_id: Option<String>,
    ) -> Result<Self> {
        let size = geo.size;
        let map_path = opts.map_path();
        let image_path = opts.image_path();
        let (map, resumed, retry_done) = match &existing {
            Some(text) => {
                let mut map = SectorMap::parse(text, &map_path)?;
                if map.size() != size {
                    return Err(Error::Refused(format!(
                        "{} maps {} bytes but {} has {size}; is it the map of another source?",
                        map_path.display(),
                        map.size(),
                        source_path.display()
                    )));
                }
                if !on_device && !image_path.exists() && map.bytes_in(BlockState::NonTried) != size
                {
                    return Err(Error::Refused(format!(
                        "{} says {} bytes were rescued, but the image {} is missing",
                        map_path.display(),
                        map.bytes_in(BlockState::Finished),
                        image_path.display()
                    )));
                }
                refuse_short_image(&map, &map_path, &image_path, on_device)?;
                if let (Some(stored), Some(now)) = (header_value(text, SOURCE_KEY), &source_id) {
                    let (stored, _) = split_first_mib(&stored);
                    if !same_source(&stored, now) && !opts.force_source {
                        return Err(Error::Refused(format!(
                            "{} belongs to another source ({stored}), not {} ({now}); resuming \
                             would mix two disks in one image (--force-source to resume anyway)",
                            map_path.display(),
                            source_path.display()
                        )));
                    }
                }
                align_to_sectors(&mut map, geo.ss);
                (map, true, retry_done_in(text))
            }
            None => {
                if !opts.overwrite {
                    refuse_unmapped_outputs(opts, on_device)?;
                }
                (SectorMap::new(size, BlockState::NonTried), false, 0)
            }
        };
        let (stored, mut runs) = match &existing {
            Some(text) => (header_value(text, SOURCE_KEY), runs_in(text)),
            None => (None, Vec::new()),
        };
        let (stored, first_mib) = match stored {
            Some(id) => {
                let (id, first) = split_first_mib(&id);
                (Some(id), first)
            }
            None => (None, None),
        };
        if resumed && runs.is_empty() {
            // A map from GNU ddrescue or an older exhibit: its runs are one unknown one.
            runs.push(RunInfo {
                started: String::new(),
                ended: String::new(),
                source: UNKNOWN_SOURCE.into(),
                rescued_bytes: map.bytes_in(BlockState::Finished),
            });
        }
        let now = utc_now();
        let finished_at_start = map.bytes_in(BlockState::Finished);
        Ok(MapState {
            map,
            path: map_path,
            resumed,
            retry_done,
            header: opts.map_header.clone(),
            source_id: stored.or(source_id.clone()),
            runs,
            run: RunInfo {
                started: now.clone(),
                ended: now,
                source: source_id.unwrap_or_else(|| source_path.display().to_string()),
                rescued_bytes: 0,
            },
            finished_at_start,
            first_mib,
            dirty: false,
            last_save: Instant::now(),
        })
    }

    /// Where a pass stands: (status character, pass number, position).
    pub fn status(&self) -> (char, u32, u64) {
        (
            self.map.current_status,
            self.map.current_pass,
            self.map.current_pos,
        )
    }

    /// The map changed since the last save.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// True when the map changed since the last save.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// True when a change waits longer than `interval` to be saved.
    pub fn save_due(&self, interval: Duration) -> bool {
        self.dirty && self.last_save.elapsed() >= interval
    }

    /// Replaces `BASE.map` atomically. The caller syncs the image first.
    pub fn save(&mut self) -> Result<()> {
        let mut header = self.header.clone();
        header.push(format!("{RETRY_DONE_KEY} {}", self.retry_done));
        if let Some(id) = &self.source_id {
            match &self.first_mib {
                Some((at, hex)) => header.push(format!("{SOURCE_KEY} {id}; {FIRST_MIB}{at}:{hex}")),
                None => header.push(format!("{SOURCE_KEY} {id}")),
            }
        }
        self.run.ended = utc_now();
        self.run.rescued_bytes = self
            .map
            .bytes_in(BlockState::Finished)
            .saturating_sub(self.finished_at_start);
        for r in self.runs.iter().chain(std::iter::once(&self.run)) {
            header.push(format!(
                "{RUN_KEY} started={}; ended={}; rescued={}; source={}",
                r.started, r.ended, r.rescued_bytes, r.source
            ));
        }
        write_map(&self.map, &self.path, &header)?;
        self.last_save = Instant::now();
        self.dirty = false;
        Ok(())
    }

    /// Once a whole MiB (on the MiB grid) is finished, hashes it from the image (synced by
    /// the caller), for the source's identity. Only with an identity to add it to.
    pub fn note_first_mib(&mut self, image: &std::fs::File) -> Result<()> {
        use std::os::unix::fs::FileExt;
        if self.first_mib.is_some() || self.source_id.is_none() {
            return Ok(());
        }
        let Some(at) = self
            .map
            .blocks_in(BlockState::Finished)
            .map(|b| (b.pos.div_ceil(MIB) * MIB, b.end()))
            .find(|&(start, end)| start + MIB <= end)
            .map(|(start, _)| start)
        else {
            return Ok(());
        };
        let mut buf = vec![0u8; MIB as usize];
        image
            .read_exact_at(&mut buf, at)
            .map_err(|e| Error::io(&self.path, e))?;
        self.first_mib = Some((at, sha256_hex(&buf)));
        Ok(())
    }

    /// Reads the map's first finished MiB from `source` and refuses (unless `force`) when its
    /// bytes are not what the image holds there: another source, or one that changed. A MiB
    /// that cannot be read now proves nothing either way and is let pass.
    pub fn check_first_mib<R: crate::reader::recover::ReadAt + ?Sized>(
        &self,
        source: &R,
        source_path: &Path,
        sector: usize,
        force: bool,
    ) -> Result<()> {
        let Some((at, want)) = &self.first_mib else {
            return Ok(());
        };
        if force || at + MIB > source.size() {
            return Ok(());
        }
        let mut buf = crate::buffer::AlignedBuf::new(MIB as usize);
        let read = crate::reader::recover::read_counted(
            source,
            &mut buf,
            *at,
            MIB as usize,
            sector,
            &mut |_| {},
        )?;
        if let crate::reader::recover::ReadOutcome::Read = read.outcome {
            let got = sha256_hex(&buf[..MIB as usize]);
            if &got != want {
                return Err(Error::Refused(format!(
                    "{} holds other bytes at {at}..{} than {} says were rescued there (SHA-256 \
                     {got}, not {want}): another source, or it changed; resuming would mix \
                     two disks in one image (--force-source to resume anyway)",
                    source_path.display(),
                    at + MIB,
                    self.path.display()
                )));
            }
        }
        Ok(())
    }

    /// Every run of the job, this one last, for the record.
    pub fn runs(&self) -> Vec<RunInfo> {
        let mut runs = self.runs.clone();
        runs.push(self.run.clone());
        runs
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    crate::hash::to_hex(&sha2::Sha256::digest(data))
}

fn utc_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The value of the last header line `key` (a comment), if any.
fn header_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix(key))
        .map(|v| v.trim().to_string())
        .last()
}

/// The earlier runs, from their header lines.
fn runs_in(text: &str) -> Vec<RunInfo> {
    text.lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix(RUN_KEY))
        .filter_map(|v| {
            let (head, source) = v.split_once("; source=")?;
            let mut r = RunInfo {
                started: String::new(),
                ended: String::new(),
                source: source.trim().to_string(),
                rescued_bytes: 0,
            };
            for part in head.split("; ") {
                match part.trim().split_once('=') {
                    Some(("started", x)) => r.started = x.into(),
                    Some(("ended", x)) => r.ended = x.into(),
                    Some(("rescued", x)) => r.rescued_bytes = x.parse().unwrap_or(0),
                    _ => {}
                }
            }
            Some(r)
        })
        .collect()
}

/// Two source identities name the same source when everything but the path (device names
/// change between boots and attachments) is equal.
fn same_source(a: &str, b: &str) -> bool {
    let key = |s: &str| -> Vec<String> {
        s.split("; ")
            .filter(|p| !p.starts_with("path="))
            .map(str::to_string)
            .collect()
    };
    key(a) == key(b)
}

/// The retry passes done, from our header line (absent in GNU ddrescue's maps: none).
fn retry_done_in(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix(RETRY_DONE_KEY)
        })
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

/// An image shorter than the map's finished area would be extended with zeros where the map
/// says data was rescued, and the rescue would end "complete" over them: refused.
fn refuse_short_image(
    map: &SectorMap,
    map_path: &Path,
    image_path: &Path,
    on_device: bool,
) -> Result<()> {
    let Some(finished_end) = map.blocks_in(BlockState::Finished).last().map(|b| b.end()) else {
        return Ok(());
    };
    if on_device {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(image_path) else {
        return Ok(());
    };
    if meta.is_file() && meta.len() < finished_end {
        return Err(Error::Refused(format!(
            "the image {} is {} bytes, but {} says data was rescued up to byte {finished_end}:              it is not this map's image, or it was cut short",
            image_path.display(),
            meta.len(),
            map_path.display()
        )));
    }
    Ok(())
}

/// Without a map, an existing image, hash log or record belongs to some other run: refused.
fn refuse_unmapped_outputs(opts: &RescueOptions, on_device: bool) -> Result<()> {
    let side = opts.side_files();
    let image = opts.image_path();
    let mut clash: Vec<PathBuf> = HashAlgorithm::ALL
        .iter()
        .map(|&a| side.hash_log(a))
        .chain(std::iter::once(side.record()))
        .filter(|p| p.exists())
        .collect();
    if !on_device && image.exists() {
        clash.insert(0, image);
    }
    match clash.first() {
        Some(p) => Err(Error::Refused(format!(
            "{} exists and there is no map {} to resume from; use --overwrite to start afresh",
            p.display(),
            opts.map_path().display()
        ))),
        None => Ok(()),
    }
}

/// Rounds the edges of every unfinished block out to whole sectors, so that a map made with
/// another sector size (or by hand) never asks for a misaligned read.
fn align_to_sectors(map: &mut SectorMap, ss: u64) {
    let size = map.size();
    let todo: Vec<_> = map
        .blocks()
        .iter()
        .filter(|b| b.state != BlockState::Finished && (b.pos % ss != 0 || b.end() % ss != 0))
        .copied()
        .collect();
    for b in todo {
        let start = b.pos / ss * ss;
        let end = (b.end().div_ceil(ss) * ss).min(size);
        map.set(start, end - start, b.state);
    }
}
