//! One rescue run: the parts wired together (reader, map state, image, hashes, progress) and
//! what happens between two reads (progress, hashing what settled, saving the map, stopping
//! when interrupted). The phases themselves are in `passes.rs`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::hashing::RunningHash;
use super::image::Image;
use super::medium::ReadLog;
use super::options::Geometry;
use super::resume::{existing_map, MapState};
use super::{
    Phase, RescueOptions, RescueProgress, RescueReport, SectorReader, StretchReader,
    FAST_BLOCK_SIZE,
};
use crate::audit::hash_logs;
use crate::buffer::AlignedBuf;
use crate::error::{Error, Result};
use crate::exclusive::BaseLock;
use crate::hash::{HashAlgorithm, MediaHashes};
use crate::map::{BadRun, BlockState};
use crate::reader::liveness::Liveness;
use crate::sink::{open_target, OutputFile};

/// Settled bytes worth waking the hash threads for at once.
const HASH_BATCH: u64 = 4 << 20;
/// Longest wait before a smaller settled piece is hashed anyway.
const HASH_PAUSE: Duration = Duration::from_millis(250);

pub(super) struct Job<'a, R: SectorReader + ?Sized> {
    pub(super) reader: &'a R,
    pub(super) opts: &'a RescueOptions,
    pub(super) progress: &'a RescueProgress,
    interrupted: &'a AtomicBool,
    pub(super) geo: Geometry,
    /// The map, and what resuming needs beside it.
    pub(super) state: MapState,
    /// The image, with an O_DIRECT descriptor for the large aligned writes of healthy
    /// stretches (page-cache writes cost the CPU the hashers need) where there are any.
    pub(super) image: Image,
    /// Large reads for healthy stretches, if available and allowed.
    pub(super) stretch: Option<&'a mut dyn StretchReader>,
    /// The hashes, computed as the image settles.
    pub(super) hash: Option<RunningHash>,
    last_hash_advance: Instant,
    last_progress: Instant,
    /// The buffer of single reads.
    pub(super) buf: AlignedBuf,
    /// What this run read and what failed.
    pub(super) log: ReadLog,
    /// Whether the source still answers.
    pub(super) alive: Liveness,
}

impl<'a, R: SectorReader + ?Sized> Job<'a, R> {
    pub(super) fn open(
        reader: &'a R,
        source_path: &'a Path,
        opts: &'a RescueOptions,
        progress: &'a RescueProgress,
        interrupted: &'a AtomicBool,
        stretch: Option<&'a mut dyn StretchReader>,
        source_id: Option<String>,
    ) -> Result<Self> {
        let geo = Geometry::new(opts, reader.size(), reader.sector_size())?;
        let existing = existing_map(opts)?;
        // A target device is claimed first, exactly as `acquire --clone` claims its own: not
        // a device, in use or too small is refused before anything is read or written.
        let target = match &opts.target {
            Some(dev) => Some(open_target(dev, geo.size, true, "--target")?),
            None => None,
        };
        let state = MapState::load(
            existing,
            opts,
            &geo,
            source_path,
            target.is_some(),
            source_id,
        )?;
        // Only streamed blocks are written through O_DIRECT.
        let image = Image::open(
            opts,
            target,
            geo.size,
            geo.ss,
            state.resumed,
            stretch.is_some(),
        )?;
        if opts.overwrite {
            let side = opts.side_files();
            for p in HashAlgorithm::ALL
                .iter()
                .map(|&a| side.hash_log(a))
                .chain([side.record()])
            {
                let _ = std::fs::remove_file(p);
            }
        }
        let mut hash = RunningHash::start(&opts.hashes, image.file(), image.path())?;
        hash.confine(true);
        progress.size.store(geo.size, Ordering::Relaxed);
        progress.update_from(&state.map);
        progress.bad_areas.store(
            state.map.blocks_in(BlockState::BadSector).count() as u64,
            Ordering::Relaxed,
        );
        if state.resumed {
            state.check_first_mib(reader, source_path, geo.ss as usize, opts.force_source)?;
        }
        let resumed = state.resumed;
        let mut job = Job {
            reader,
            opts,
            progress,
            interrupted,
            geo,
            state,
            image,
            stretch,
            hash: Some(hash),
            last_hash_advance: Instant::now(),
            last_progress: Instant::now(),
            // Room for the largest read: copy reads grow up to FAST_BLOCK_SIZE.
            buf: AlignedBuf::new(geo.block_size.max(FAST_BLOCK_SIZE) as usize),
            log: ReadLog::default(),
            alive: Liveness::new(opts.give_up),
        };
        if !resumed {
            job.save_map()?;
        }
        Ok(job)
    }

    /// [`Job::run`], saving the map also when a real failure (not a bad sector) stops the
    /// job, so that a resumed run keeps everything read since the last save.
    /// The room `lock` reserved is given back first: a full filesystem may be why it failed.
    pub(super) fn run_saving(&mut self, lock: &BaseLock) -> Result<()> {
        let result = self.run();
        if let (Err(Error::SourceStopped { .. }), Some(span)) = (&result, self.alive.failing_span())
        {
            // Nothing has read since the failing stretch began: what it marked (non-trimmed,
            // non-scraped, bad) may be the dead source, not the disk. Left untried, a rescue
            // of the source, once it is back, reads it all again.
            self.state.map.reset_unfinished(span.start, span.end);
            self.state.changed();
        }
        if let Err(e) = &result {
            lock.release_room();
            if !matches!(e, Error::Interrupted(_)) {
                // Best effort: the map never claims more than the image holds, even if this
                // fails too (a full target fails the sync, and the old map stays).
                let _ = self.save_map();
            }
        }
        result
    }

    /// Between reads: publish progress, save the map when due, stop when interrupted.
    pub(super) fn checkpoint(&mut self, pos: u64) -> Result<()> {
        // Where a resumed run of the same pass starts: nothing at or after `pos` in this
        // pass has been read yet.
        self.state.map.current_pos = pos;
        // Totals cost a walk over the map: publish them a few times a second, not per read.
        if self.state.is_dirty() && self.last_progress.elapsed() >= Duration::from_millis(50) {
            self.progress.update_from(&self.state.map);
            self.progress.bad_areas.store(
                self.state.map.blocks_in(BlockState::BadSector).count() as u64,
                Ordering::Relaxed,
            );
            self.last_progress = Instant::now();
        }
        self.advance_hash()?;
        if self.interrupted.load(Ordering::Relaxed) {
            self.save_map()?;
            return Err(Error::Interrupted("a signal (SIGINT or SIGTERM)"));
        }
        if self.state.save_due(self.opts.map_interval) {
            self.save_map()?;
        }
        Ok(())
    }

    /// Hands the hashes what is settled in front of them: in pieces of at least
    /// [`HASH_BATCH`], or what there is every [`HASH_PAUSE`] (trimming settles a sector at a
    /// time, and waking four threads per sector costs the reads their CPU).
    fn advance_hash(&mut self) -> Result<()> {
        use BlockState::*;
        let Some(from) = self.hash.as_ref().map(RunningHash::position) else {
            return Ok(());
        };
        let map = &self.state.map;
        let end = map.run_end(from, &[Finished, BadSector]);
        let due = end - from >= HASH_BATCH
            || (end > from && self.last_hash_advance.elapsed() >= HASH_PAUSE);
        if due {
            let has_bad = map.next_in(BadSector, from).is_some_and(|b| b.pos < end);
            // The hashes read the image: what is gathered goes there first.
            self.image.flush()?;
            if let Some(h) = &mut self.hash {
                h.advance(end, has_bad)?;
            }
            self.last_hash_advance = Instant::now();
        }
        if let Some(h) = &self.hash {
            self.progress.hashed.store(h.hashed(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Syncs the image, then replaces the map atomically: the map never claims data that is
    /// not on disk.
    pub(super) fn save_map(&mut self) -> Result<()> {
        self.image.flush()?;
        self.progress.update_from(&self.state.map);
        self.image.sync()?;
        self.state.note_first_mib(self.image.file())?;
        self.state.save()
    }

    pub(super) fn finish(mut self, started: SystemTime) -> Result<RescueReport> {
        use BlockState::*;
        let map = &self.state.map;
        if map.any_in(&[NonTried, NonTrimmed, NonScraped]) {
            return Err(Error::Internal(format!(
                "{} still has unread areas after every phase",
                self.state.path.display()
            )));
        }
        self.progress.update_from(map);
        let bad_runs = self.bad_runs();
        self.progress
            .bad_areas
            .store(bad_runs.len() as u64, Ordering::Relaxed);
        self.progress.set_phase(Phase::Hashing, 1);
        self.image.flush()?;
        let size = self.geo.size;
        let hashes = match self.hash.take() {
            Some(h) => h.finish(size, &self.progress.hashed, self.interrupted)?,
            None => MediaHashes::default(),
        };
        let logs = hash_logs::write(
            &self.opts.side_files(),
            &hashes,
            &[self.output_file()],
            size,
        )?;
        self.progress.set_phase(Phase::Finished, 1);
        let map = &self.state.map;
        Ok(RescueReport {
            image: self.image.path().to_path_buf(),
            map: self.state.path.clone(),
            size,
            sector_size: self.geo.ss as u32,
            resumed: self.state.resumed,
            complete: true,
            rescued_bytes: map.bytes_in(Finished),
            bad_bytes: map.bytes_in(BadSector),
            bad_runs,
            hashes,
            hash_logs: logs.logs,
            hash_checks: logs.checks,
            reads: self.log.reads,
            read_errors: self.log.read_errors,
            retry_passes_done: self.state.retry_done,
            started,
            finished: SystemTime::now(),
        })
    }

    /// The image, for the record.
    pub(super) fn output_file(&self) -> OutputFile {
        OutputFile {
            path: self.image.path().to_path_buf(),
            size: self.geo.size,
            kind: if self.opts.target.is_some() {
                "device".into()
            } else {
                "raw".into()
            },
        }
    }

    /// The bad sectors as runs, with what this run learned about each.
    pub(super) fn bad_runs(&self) -> Vec<BadRun> {
        self.log.bad_runs(&self.state.map)
    }
}
