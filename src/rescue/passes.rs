//! The ddrescue phases over the sector map: copy (jumping past trouble, then reading what was
//! jumped over), trim, scrape and retry (see the module docs of `rescue`). They decide what
//! to read next and what the map says afterwards; the image, the map file and the hashes are
//! the job's parts ([`Job`]), and every read goes through the reader's one exact-read loop
//! ([`read_counted`]).

use std::sync::Arc;

use super::job::Job;
use super::{Phase, SectorReader, CLEAN_STREAK, FAST_BLOCK_SIZE};
use crate::block::Block;
use crate::error::Result;
use crate::map::BlockState;
use crate::reader::recover::{read_counted, ReadOutcome};
use crate::reader::StreamEnd;

/// What a step of the copy pass did.
enum Copied {
    /// Everything up to `end` read.
    Clean { end: u64 },
    /// A read failed: `at..end` was not read alone and goes to trimming.
    Failed { at: u64, end: u64 },
}

/// What a single read did.
enum Read {
    /// Everything read and written to the image.
    Ok,
    /// A media error in the read that started at `at` (what came before is in the image
    /// and the map as finished).
    Bad { at: u64 },
}

impl<R: SectorReader + ?Sized> Job<'_, R> {
    pub(super) fn run(&mut self) -> Result<()> {
        use BlockState::*;
        // Copy: pass 1 jumps past trouble, pass 2 reads what was jumped over.
        if self.state.map.any_in(&[NonTried]) {
            let (status, pass, pos) = self.state.status();
            let resume_pass = if status == '?' && pass == 2 { 2 } else { 1 };
            for pass in resume_pass..=2 {
                let from = if status == '?' && pass == resume_pass {
                    pos
                } else {
                    0
                };
                self.copy_pass(pass, from)?;
            }
            // A pass resumed in the middle (or a foreign map's notion of a position) may
            // leave untried areas before it: read them too.
            while self.state.map.any_in(&[NonTried]) {
                self.copy_pass(2, 0)?;
            }
        }
        if self.state.map.any_in(&[NonTrimmed]) {
            self.trim()?;
        }
        if self.state.map.any_in(&[NonScraped]) {
            self.scrape()?;
        }
        // Retry passes, continuing one that was cut short.
        let (status, pass, pos) = self.state.status();
        let mut first = self.state.retry_done + 1;
        let mut from = 0;
        if status == '-' && pass >= first {
            first = pass;
            from = pos;
        }
        for pass in first..=self.opts.retry_passes {
            if !self.state.map.any_in(&[BadSector]) {
                break;
            }
            self.retry_pass(pass, from)?;
            from = 0;
            self.state.retry_done = pass;
        }
        self.state.map.current_status = '+';
        self.state.map.current_pos = self.geo.size;
        self.state.map.current_pass = 1;
        self.save_map()
    }

    /// Starts a pass at `from`: saved at once, so a resumed run knows where this pass is.
    fn begin(&mut self, phase: Phase, status: char, pass: u32, from: u64) -> Result<()> {
        self.progress.set_phase(phase, pass);
        self.state.map.current_status = status;
        self.state.map.current_pass = pass;
        self.state.map.current_pos = from;
        self.save_map()
    }

    fn copy_pass(&mut self, pass: u32, from: u64) -> Result<()> {
        self.begin(Phase::Copying, '?', pass, from)?;
        let skipping = pass == 1;
        let min_skip = self.geo.min_skip;
        let mut skip = min_skip;
        let mut pos = from;
        // Reads grow while they succeed (see FAST_BLOCK_SIZE) and fall back to block_size
        // at the first failure.
        let mut span = self.geo.block_size;
        let mut clean = 0u64;
        while let Some(b) = self.state.map.next_in(BlockState::NonTried, pos) {
            self.checkpoint(b.pos)?;
            // Several reads in flight only well clear of trouble: a failure there leaves up to
            // FAST_QUEUE_DEPTH blocks to trim sector by sector.
            let stream = span >= FAST_BLOCK_SIZE && clean >= CLEAN_STREAK;
            let copied = if stream && self.stretch.is_some() {
                match self.stream_stretch(b.pos, b.end())? {
                    StreamEnd::Done => Copied::Clean { end: b.end() },
                    StreamEnd::Failed {
                        offset,
                        len,
                        also_failed,
                        ..
                    } => {
                        // Reads that were in flight with it and failed too go to trimming as
                        // well: read again as copy blocks, their bad sectors would be read
                        // once more than ddrescue reads them. (One that only failed for
                        // sharing a merged request costs single reads of good sectors.)
                        for (at, n) in also_failed {
                            self.state.map.set(at, n, BlockState::NonTrimmed);
                        }
                        Copied::Failed {
                            at: offset,
                            end: offset + len,
                        }
                    }
                }
            } else {
                // Reads stay on the grid of their size, so one bad sector costs one failed
                // read.
                let grid_end = (b.pos / span + 1) * span;
                let end = b.end().min(grid_end);
                match self.read(b.pos, end - b.pos)? {
                    Read::Ok => {
                        self.state.map.set(b.pos, end - b.pos, BlockState::Finished);
                        self.state.changed();
                        Copied::Clean { end }
                    }
                    Read::Bad { at } => {
                        self.alive.found_unreadable(self.reader, at, end - at)?;
                        Copied::Failed { at, end }
                    }
                }
            };
            match copied {
                Copied::Clean { end } => {
                    clean += end - b.pos;
                    skip = min_skip;
                    pos = end;
                    if !self.opts.careful && clean >= CLEAN_STREAK {
                        span = (span * 2).min(FAST_BLOCK_SIZE.max(self.geo.block_size));
                    }
                }
                Copied::Failed { at, end } => {
                    // Never read alone: trimming finds the bad sectors in it.
                    self.state.map.set(at, end - at, BlockState::NonTrimmed);
                    self.state.changed();
                    clean = 0;
                    span = self.geo.block_size;
                    pos = end;
                    if skipping {
                        pos = (end + skip).div_ceil(self.geo.ss) * self.geo.ss;
                        skip = (skip * 2).min(self.geo.max_skip);
                    }
                }
            }
        }
        Ok(())
    }

    /// Streams the untried stretch `start..end` through the fast reader: every block that
    /// reads goes to the image, the map and the hashes as it arrives.
    fn stream_stretch(&mut self, start: u64, end: u64) -> Result<StreamEnd> {
        let Some(stretch) = self.stretch.take() else {
            return Ok(StreamEnd::Done);
        };
        if let Some(h) = &mut self.hash {
            h.confine(false);
        }
        let result = stretch.stream(start, end, &mut |block| self.take_block(block));
        self.stretch = Some(stretch);
        if let Some(h) = &mut self.hash {
            h.confine(true);
        }
        let outcome = result?;
        if let StreamEnd::Failed {
            offset,
            len,
            also_failed,
            ..
        } = &outcome
        {
            let failed = 1 + also_failed.len() as u64;
            self.log.count_reads(self.progress, failed, *offset);
            self.log.count_failures(self.progress, failed);
            self.alive.read_failed(self.reader, *offset, *len)?;
            for &(at, n) in std::iter::once(&(*offset, *len)).chain(also_failed) {
                self.alive.found_unreadable(self.reader, at, n)?;
            }
        }
        Ok(outcome)
    }

    /// One block of a healthy stretch, read: into the image, then the map, then the hashes.
    fn take_block(&mut self, block: Block) -> Result<()> {
        self.log.count_reads(self.progress, 1, block.offset);
        self.alive.read_ok();
        self.image.write_block(block.data(), block.offset)?;
        self.state
            .map
            .set(block.offset, block.len() as u64, BlockState::Finished);
        self.state.changed();
        let block = Arc::new(block);
        if let Some(h) = &mut self.hash {
            h.offer_block(&block)?;
        }
        self.checkpoint(block.end())
    }

    fn trim(&mut self) -> Result<()> {
        self.begin(Phase::Trimming, '*', 1, 0)?;
        while let Some(b) = self.state.map.next_in(BlockState::NonTrimmed, 0) {
            // Leading edge, forwards.
            let mut p = b.pos;
            while p < b.end() {
                self.checkpoint(p)?;
                let ok = self.read_sector(p)?;
                p += self.geo.ss;
                if !ok {
                    break;
                }
            }
            // Trailing edge, backwards.
            let mut q = b.end();
            while q > p {
                let s = (q - 1) / self.geo.ss * self.geo.ss;
                self.checkpoint(s)?;
                let ok = self.read_sector(s)?;
                q = s;
                if !ok {
                    break;
                }
            }
            if p < q {
                self.state.map.set(p, q - p, BlockState::NonScraped);
                self.state.changed();
            }
        }
        Ok(())
    }

    fn scrape(&mut self) -> Result<()> {
        self.begin(Phase::Scraping, '/', 1, 0)?;
        while let Some(b) = self.state.map.next_in(BlockState::NonScraped, 0) {
            let mut p = b.pos;
            while p < b.end() {
                self.checkpoint(p)?;
                self.read_sector(p)?;
                p += self.geo.ss;
            }
        }
        Ok(())
    }

    fn retry_pass(&mut self, pass: u32, from: u64) -> Result<()> {
        self.begin(Phase::Retrying, '-', pass, from)?;
        let mut pos = from;
        while let Some(b) = self.state.map.next_in(BlockState::BadSector, pos) {
            let mut p = b.pos;
            while p < b.end() {
                self.checkpoint(p)?;
                self.read_sector(p)?;
                p += self.geo.ss;
            }
            pos = b.end();
        }
        Ok(())
    }

    /// Reads the sector at `p` alone; in the image and map as finished, or as bad (zeros).
    fn read_sector(&mut self, p: u64) -> Result<bool> {
        let len = self.geo.ss.min(self.geo.size - p);
        let ok = match self.read(p, len)? {
            Read::Ok => {
                let was_bad = self.state.map.state_at(p) == Some(BlockState::BadSector);
                self.state.map.set(p, len, BlockState::Finished);
                if let (true, Some(h)) = (was_bad, &mut self.hash) {
                    // Rescued by a retry: the hashes may have taken it as zeros.
                    h.changed_at(p)?;
                }
                true
            }
            Read::Bad { .. } => {
                if self.state.map.state_at(p) != Some(BlockState::BadSector) {
                    // Sectors already bad failing again say nothing about the source (a retry
                    // pass reads only those); new ones count towards giving up.
                    self.alive.found_unreadable(self.reader, p, len)?;
                    self.image.write_zeros(p, len as usize)?;
                    self.state.map.set(p, len, BlockState::BadSector);
                }
                false
            }
        };
        self.state.changed();
        Ok(ok)
    }

    /// Reads `len` bytes at `pos` (one read in flight) into the image. Media errors are an
    /// outcome; anything else stops the job.
    fn read(&mut self, pos: u64, len: u64) -> Result<Read> {
        let ss = self.geo.ss;
        let want = len as usize;
        // Requests are whole sectors even for a final partial sector.
        let asked = len.div_ceil(ss) as usize * ss as usize;
        let (log, progress) = (&mut self.log, self.progress);
        let read = read_counted(
            self.reader,
            &mut self.buf[..asked],
            pos,
            want,
            ss as usize,
            &mut |at| log.count_reads(progress, 1, at),
        )?;
        match read.outcome {
            ReadOutcome::Read => {
                self.alive.read_ok();
                self.image.write(&self.buf[..want], pos)?;
                Ok(Read::Ok)
            }
            ReadOutcome::Unreadable(errno) => {
                let done = read.got;
                let at = pos + done as u64;
                if done > 0 {
                    self.alive.read_ok();
                }
                self.alive.read_failed(self.reader, at, len - done as u64)?;
                self.log.count_failures(self.progress, 1);
                // Write what came before the failure (whole sectors, already read).
                if done > 0 {
                    self.image.write(&self.buf[..done], pos)?;
                    self.state.map.set(pos, done as u64, BlockState::Finished);
                }
                if len - done as u64 <= ss {
                    self.log.sector_failed(at, errno);
                }
                Ok(Read::Bad { at })
            }
        }
    }
}
