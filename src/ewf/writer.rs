//! The E01 sink: chunks out to a compression pool, stored chunks back in order, segment
//! files written section by section.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::compress::{compressed_zero_chunk, ChunkEncoder};
use super::format::{self, SectionType, DESCRIPTOR_SIZE, MAX_RELATIVE_OFFSET, MAX_TABLE_ENTRIES};
use super::{naming, Compression, E01Options};
use crate::block::Block;
use crate::error::{Error, Result};
use crate::sink::{MediaSummary, OutputFile, Sink};

/// Bytes per compression job (whole chunks, at least one): large enough that channel traffic
/// is noise, small enough that every core gets work from one 1 MiB block. With 32 KiB chunks
/// that is 16 chunks; with huge chunks one chunk per job keeps memory bounded.
const JOB_BYTES: usize = 512 * 1024;

/// Size of `next` / `done` as counted for room (descriptor only).
const END_SECTION: u64 = DESCRIPTOR_SIZE;
/// `data` section (descriptor + volume body).
const DATA_SECTION: u64 = DESCRIPTOR_SIZE + format::VOLUME_BODY_SIZE as u64;
/// `digest` and `hash` sections.
const HASH_SECTIONS: u64 =
    2 * DESCRIPTOR_SIZE + (format::DIGEST_BODY_SIZE + format::HASH_BODY_SIZE) as u64;

fn error2_section_size(entries: usize) -> u64 {
    DESCRIPTOR_SIZE + format::ERROR2_HEADER_SIZE as u64 + 8 * entries as u64 + 4
}

/// Room the last segment needs after its last table2 (data, error2, digest, hash, done).
fn tail_room(error2_entries: usize) -> u64 {
    DATA_SECTION + error2_section_size(error2_entries) + HASH_SECTIONS + END_SECTION
}

struct Job {
    seq: u64,
    data: JobData,
}

/// The media bytes of one compression job. Whole chunks are compressed straight from the
/// reader's shared block (no copy per consumer); only a chunk that straddles two blocks (a
/// block size that is not a multiple of the chunk size) is assembled in an owned buffer.
enum JobData {
    Owned(Vec<u8>),
    Shared(Arc<Block>, std::ops::Range<usize>),
}

impl JobData {
    fn bytes(&self) -> &[u8] {
        match self {
            JobData::Owned(v) => v,
            JobData::Shared(block, range) => &block.data()[range.clone()],
        }
    }
}

struct Encoded {
    seq: u64,
    stored: Vec<u8>,
    /// (stored length, compressed) per chunk.
    chunks: Vec<(usize, bool)>,
    /// The compressor panicked on this job.
    failed: bool,
}

/// The compression threads and their channels.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Encoded>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(workers: usize, compression: Compression, chunk_size: usize) -> Pool {
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers * 2);
        let (res_tx, res_rx) = mpsc::channel::<Encoded>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let zero = Arc::new(compressed_zero_chunk(chunk_size));
        let handles = (0..workers)
            .map(|i| {
                let rx = Arc::clone(&job_rx);
                let tx: Sender<Encoded> = res_tx.clone();
                let zero = Arc::clone(&zero);
                std::thread::Builder::new()
                    .name(format!("e01-deflate-{i}"))
                    .spawn(move || {
                        let mut enc = ChunkEncoder::new(compression, chunk_size, zero);
                        loop {
                            let job = match rx.lock() {
                                Ok(guard) => guard.recv(),
                                Err(_) => return,
                            };
                            let Ok(job) = job else { return };
                            // A panic in a compressor must become an error, not a result
                            // the writer waits for forever.
                            let encoded =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    let bytes = job.data.bytes();
                                    let mut stored = Vec::with_capacity(bytes.len() + 64);
                                    let chunks = bytes
                                        .chunks(chunk_size)
                                        .map(|c| {
                                            let before = stored.len();
                                            let compressed = enc.encode(c, &mut stored);
                                            (stored.len() - before, compressed)
                                        })
                                        .collect();
                                    (stored, chunks)
                                }));
                            let (stored, chunks, failed) = match encoded {
                                Ok((s, c)) => (s, c, false),
                                Err(_) => (Vec::new(), Vec::new(), true),
                            };
                            if tx
                                .send(Encoded {
                                    seq: job.seq,
                                    stored,
                                    chunks,
                                    failed,
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                    })
                    .expect("spawning a compression thread")
            })
            .collect();
        Pool {
            jobs: Some(job_tx),
            results: res_rx,
            handles,
        }
    }

    fn stop(&mut self) {
        self.jobs = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An open `sectors` run: where its descriptor is and the table entries so far.
struct Run {
    descriptor_offset: u64,
    entries: Vec<u32>,
}

/// Where a segment goes: a file (through a buffer; the `sectors` descriptor patched in place)
/// or an object of an `s3://` set (streamed; patched while still held back).
enum SegmentOut {
    File(BufWriter<File>),
    Object(crate::sink::object::ObjectWriter),
}

impl SegmentOut {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            SegmentOut::File(f) => f.write_all(bytes),
            SegmentOut::Object(o) => o.write(bytes).map_err(std::io::Error::other),
        }
    }

    /// How far back from the end a patch may reach: unbounded for a file.
    fn patch_window(&self) -> u64 {
        match self {
            SegmentOut::File(_) => u64::MAX,
            SegmentOut::Object(o) => o.patch_window(),
        }
    }
}

/// Writes segment files, section by section, in order.
struct SegmentWriter {
    base: PathBuf,
    overwrite: bool,
    segment_size: u64,
    first_sections: Vec<u8>,
    volume_body: Vec<u8>,
    written: Vec<OutputFile>,
    file: Option<SegmentOut>,
    path: PathBuf,
    number: u32,
    pos: u64,
    run: Option<Run>,
    chunks_in_segment: u64,
    /// error2 entries known so far (from blocks), for the last segment's room.
    expected_error2: usize,
}

fn write_err(path: &Path, offset: u64, e: std::io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        offset,
        source: e,
    }
}

impl SegmentWriter {
    fn open_segment(&mut self) -> Result<()> {
        let number = self.number + 1;
        let path = naming::segment_path(&self.base, number).ok_or_else(|| {
            Error::InvalidOption(format!(
                "more than {} segments needed; use a larger segment size",
                naming::MAX_SEGMENTS
            ))
        })?;
        let seg_no = u16::try_from(number)
            .map_err(|_| Error::InvalidOption("more than 65535 segments".into()))?;
        self.file = Some(match crate::s3::store::route(&path) {
            Some((store, key)) => {
                SegmentOut::Object(crate::sink::object::ObjectWriter::new(store, key))
            }
            None => {
                let file =
                    crate::exclusive::open_output(&path, self.overwrite, self.overwrite, false)?;
                SegmentOut::File(BufWriter::with_capacity(1 << 20, file))
            }
        });
        self.path = path;
        self.number = number;
        self.pos = 0;
        self.chunks_in_segment = 0;
        self.put(&format::encode_file_header(seg_no))?;
        if number == 1 {
            let first = std::mem::take(&mut self.first_sections);
            let r = self.put(&first);
            self.first_sections = first;
            r?;
        } else {
            self.section(SectionType::Data, &self.volume_body.clone())?;
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let pos = self.pos;
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Internal("E01 segment not open".into()))?;
        f.write_all(bytes)
            .map_err(|e| write_err(&self.path, pos, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes a whole section: descriptor (next = end of section) and body.
    fn section(&mut self, kind: SectionType, body: &[u8]) -> Result<()> {
        let size = DESCRIPTOR_SIZE + body.len() as u64;
        let d = format::encode_descriptor(kind, self.pos + size, size);
        self.put(&d)?;
        self.put(body)
    }

    /// `next` or `done`: points to itself, size 0 (EnCase/libewf style).
    fn end_section(&mut self, kind: SectionType) -> Result<()> {
        let d = format::encode_descriptor(kind, self.pos, 0);
        self.put(&d)
    }

    fn table_room(entries: usize) -> u64 {
        2 * format::table_section_size(entries as u64)
    }

    /// Appends one stored chunk, opening a new run or segment first when needed.
    fn add_chunk(&mut self, stored: &[u8], compressed: bool) -> Result<()> {
        let len = stored.len() as u64;
        if let Some(run) = &self.run {
            let rel = self.pos - run.descriptor_offset;
            // An object can patch the run's descriptor only while it is held back: a run
            // ends before it would reach further back than that (a file has no such limit).
            let window = self
                .file
                .as_ref()
                .map_or(u64::MAX, SegmentOut::patch_window);
            if run.entries.len() as u32 >= MAX_TABLE_ENTRIES
                || rel + len > MAX_RELATIVE_OFFSET
                || rel + len > window
            {
                self.close_run()?;
            }
        }
        let entries_after = self.run.as_ref().map_or(0, |r| r.entries.len()) + 1;
        let run_start = if self.run.is_some() {
            0
        } else {
            DESCRIPTOR_SIZE
        };
        let need = self.pos
            + run_start
            + len
            + Self::table_room(entries_after)
            + tail_room(self.expected_error2).max(END_SECTION);
        if need > self.segment_size && self.chunks_in_segment > 0 {
            self.close_run()?;
            self.end_section(SectionType::Next)?;
            self.close_file()?;
            self.open_segment()?;
        }
        if self.run.is_none() {
            self.run = Some(Run {
                descriptor_offset: self.pos,
                entries: Vec::new(),
            });
            // Placeholder; rewritten with the real size when the run closes.
            self.put(&[0u8; DESCRIPTOR_SIZE as usize])?;
        }
        let pos = self.pos;
        let run = self.run.as_mut().expect("run just opened");
        let rel = (pos - run.descriptor_offset) as u32;
        run.entries.push(if compressed {
            rel | format::COMPRESSED_FLAG
        } else {
            rel
        });
        self.chunks_in_segment += 1;
        self.put(stored)
    }

    /// Ends the open run: the `sectors` descriptor gets its size, then `table` and `table2`
    /// follow the last chunk directly (readers size the last chunk by the table's offset).
    fn close_run(&mut self) -> Result<()> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        let table_offset = self.pos;
        let size = table_offset - run.descriptor_offset;
        let d = format::encode_descriptor(SectionType::Sectors, table_offset, size);
        match self.file.as_mut() {
            Some(SegmentOut::File(f)) => {
                f.flush()
                    .map_err(|e| write_err(&self.path, table_offset, e))?;
                f.get_ref()
                    .write_all_at(&d, run.descriptor_offset)
                    .map_err(|e| write_err(&self.path, run.descriptor_offset, e))?;
            }
            Some(SegmentOut::Object(o)) => o.patch(run.descriptor_offset, &d)?,
            None => return Err(Error::Internal("E01 segment not open".into())),
        }
        let body = format::encode_table(run.descriptor_offset, &run.entries);
        self.section(SectionType::Table, &body)?;
        self.section(SectionType::Table2, &body)
    }

    /// Flushes, fsyncs and records the current segment.
    fn close_file(&mut self) -> Result<()> {
        if let Some(out) = self.file.take() {
            match out {
                SegmentOut::File(mut f) => {
                    f.flush().map_err(|e| write_err(&self.path, self.pos, e))?;
                    let file = f.get_ref();
                    file.sync_all().map_err(|e| Error::io(&self.path, e))?;
                }
                SegmentOut::Object(o) => {
                    o.finish()?;
                }
            }
            self.written.push(OutputFile {
                path: self.path.clone(),
                size: self.pos,
                kind: "e01-segment".into(),
            });
        }
        Ok(())
    }

    /// Best-effort flush of what is there, for an abandoned set (no `done`).
    fn abandon(&mut self) {
        match self.file.take() {
            Some(SegmentOut::File(mut f)) => {
                let _ = f.flush();
                let _ = f.get_ref().sync_all();
                self.written.push(OutputFile {
                    path: self.path.clone(),
                    size: self.pos,
                    kind: "e01-segment-incomplete".into(),
                });
            }
            Some(SegmentOut::Object(mut o)) => {
                // Aborted: no object for it exists, so none is listed as written.
                o.abort();
                self.written.push(OutputFile {
                    path: self.path.clone(),
                    size: 0,
                    kind: "e01-segment-aborted".into(),
                });
            }
            None => {}
        }
    }
}

/// Writes an E01 segment set from the blocks of one pass. See the module docs of
/// [`crate::ewf`] for the layout and docs/e01.md for the choices.
pub struct E01Sink {
    opts: E01Options,
    chunk_size: usize,
    pool: Pool,
    /// Bytes per job: whole chunks.
    job_bytes: usize,
    job_buf: Vec<u8>,
    next_seq: u64,
    next_to_write: u64,
    reorder: BTreeMap<u64, Encoded>,
    in_flight: usize,
    max_in_flight: usize,
    media_received: u64,
    out: SegmentWriter,
}

impl E01Sink {
    /// Prepares the set `BASE.E01`, … and writes the first segment's headers. Refuses when
    /// any segment the set could need exists and `overwrite` is false (nothing is written),
    /// and rejects options that cannot work.
    pub fn create(base: &Path, opts: E01Options, overwrite: bool) -> Result<E01Sink> {
        let bps = opts.bytes_per_sector;
        if bps != 512 && bps != 4096 {
            return Err(Error::InvalidOption(format!(
                "E01 bytes per sector must be 512 or 4096, not {bps}"
            )));
        }
        let spc = opts.sectors_per_chunk;
        if !(1..=32768).contains(&spc) || !spc.is_power_of_two() {
            return Err(Error::InvalidOption(format!(
                "E01 sectors per chunk must be a power of two up to 32768, not {spc}"
            )));
        }
        // 8 KiB (16 × 512, libewf's smallest) to 64 MiB; 4Kn media use 8 × 4096 = 32 KiB.
        let chunk_size = u64::from(spc) * u64::from(bps);
        if !(8192..=64 << 20).contains(&chunk_size) {
            return Err(Error::InvalidOption(format!(
                "E01 chunk of {chunk_size} bytes ({spc} × {bps}) must be from 8 KiB to 64 MiB"
            )));
        }
        if !opts.media_size.is_multiple_of(u64::from(bps)) {
            return Err(Error::InvalidOption(format!(
                "media size {} is not a multiple of the {bps}-byte sector",
                opts.media_size
            )));
        }
        let chunk_count = opts.media_size.div_ceil(chunk_size);
        let chunk_count = u32::try_from(chunk_count).map_err(|_| {
            Error::InvalidOption(format!(
                "{chunk_count} chunks do not fit E01's 32-bit chunk count; use larger chunks"
            ))
        })?;

        // One encoding of the volume (one GUID) for `volume` and every `data` copy.
        let volume_body = volume(&opts, chunk_count).encode();
        let first_sections = first_segment_sections(&opts, &volume_body)?;
        let min = format::FILE_HEADER_SIZE
            + first_sections.len() as u64
            + DESCRIPTOR_SIZE
            + chunk_size
            + 4
            + SegmentWriter::table_room(1)
            + tail_room(0);
        if opts.segment_size < min {
            return Err(Error::InvalidOption(format!(
                "E01 segment size {} is too small: the first segment needs at least {min} bytes \
                 (headers, one raw chunk, tables and closing sections)",
                opts.segment_size
            )));
        }

        // Every name the set could need, at worst every chunk stored raw.
        let per_segment = opts.segment_size
            - (format::FILE_HEADER_SIZE
                + DATA_SECTION
                + DESCRIPTOR_SIZE
                + SegmentWriter::table_room(1)
                + tail_room(0));
        let worst = u64::from(chunk_count) * (chunk_size + 4 + 8);
        let max_segments = worst.div_ceil(per_segment.max(1)).max(1) + 1;
        if !overwrite {
            for n in 1..=max_segments.min(u64::from(naming::MAX_SEGMENTS)) as u32 {
                if let Some(p) = naming::segment_path(base, n) {
                    if p.symlink_metadata().is_ok() {
                        return Err(Error::Refused(format!(
                            "{} exists (overwrite not allowed)",
                            p.display()
                        )));
                    }
                }
            }
        }

        let workers = if opts.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.workers
        };
        let mut out = SegmentWriter {
            base: base.to_path_buf(),
            overwrite,
            segment_size: opts.segment_size,
            first_sections,
            volume_body,
            written: Vec::new(),
            file: None,
            path: PathBuf::new(),
            number: 0,
            pos: 0,
            run: None,
            chunks_in_segment: 0,
            expected_error2: 0,
        };
        out.open_segment()?;
        Ok(E01Sink {
            pool: Pool::start(workers, opts.compression, chunk_size as usize),
            chunk_size: chunk_size as usize,
            job_bytes: (JOB_BYTES / chunk_size as usize).max(1) * chunk_size as usize,
            job_buf: Vec::new(),
            next_seq: 0,
            next_to_write: 0,
            reorder: BTreeMap::new(),
            in_flight: 0,
            max_in_flight: workers * 3,
            media_received: 0,
            out,
            opts,
        })
    }

    /// Sends the job buffer's first `len` bytes to the pool, writing finished chunks while
    /// too many jobs are out (that wait is the back-pressure on the reader).
    fn submit(&mut self, len: usize) -> Result<()> {
        let rest = self.job_buf.split_off(len);
        let data = std::mem::replace(&mut self.job_buf, rest);
        self.submit_job(JobData::Owned(data))
    }

    fn submit_job(&mut self, data: JobData) -> Result<()> {
        while self.in_flight >= self.max_in_flight {
            self.collect_one()?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let tx = self
            .pool
            .jobs
            .as_ref()
            .ok_or_else(|| Error::Internal("E01 compression pool stopped".into()))?;
        tx.send(Job { seq, data })
            .map_err(|_| Error::Internal("E01 compression thread died".into()))?;
        self.in_flight += 1;
        self.write_ready()
    }

    /// Waits for one result and writes whatever is now in order.
    fn collect_one(&mut self) -> Result<()> {
        let r = self
            .pool
            .results
            .recv()
            .map_err(|_| Error::Internal("E01 compression thread died".into()))?;
        self.reorder.insert(r.seq, r);
        self.write_ready()
    }

    fn write_ready(&mut self) -> Result<()> {
        while let Ok(r) = self.pool.results.try_recv() {
            self.reorder.insert(r.seq, r);
        }
        while let Some(r) = self.reorder.remove(&self.next_to_write) {
            if r.failed {
                return Err(Error::Internal(format!(
                    "E01 compression failed on job {} (a compressor panicked)",
                    r.seq
                )));
            }
            let mut at = 0;
            for &(len, compressed) in &r.chunks {
                self.out.add_chunk(&r.stored[at..at + len], compressed)?;
                at += len;
            }
            self.next_to_write += 1;
            self.in_flight -= 1;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        if !self.job_buf.is_empty() {
            let len = self.job_buf.len();
            self.submit(len)?;
        }
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        Ok(())
    }

    fn close(&mut self, summary: &MediaSummary) -> Result<()> {
        self.drain()?;
        if self.media_received != self.opts.media_size || summary.media_size != self.opts.media_size
        {
            return Err(Error::Internal(format!(
                "E01 set sized for {} bytes received {} (summary says {}); left without `done`",
                self.opts.media_size, self.media_received, summary.media_size
            )));
        }
        let out = &mut self.out;
        out.close_run()?;
        // libewf: in a single segment, `data` follows the last table2; in a set, `data` opens
        // every segment but the first and the last segment has no trailing one.
        if out.number == 1 {
            let body = out.volume_body.clone();
            out.section(SectionType::Data, &body)?;
        }
        let (entries, _unaddressable) =
            format::error2_entries(&summary.unreadable, self.opts.bytes_per_sector);
        if !entries.is_empty() {
            out.section(SectionType::Error2, &format::encode_error2(&entries))?;
        }
        // SHA-1 goes only with MD5: a zero MD5 in `digest` would read as a stored hash.
        if let (Some(md5), Some(sha1)) = (&summary.hashes.md5, &summary.hashes.sha1) {
            out.section(SectionType::Digest, &format::encode_digest(md5, sha1))?;
        }
        if let Some(md5) = &summary.hashes.md5 {
            out.section(SectionType::Hash, &format::encode_hash(md5))?;
        }
        out.end_section(SectionType::Done)?;
        out.close_file()?;
        if out.overwrite {
            // Later segments of an older set under this base would be read as ours.
            let mut n = out.number + 1;
            while let Some(p) = naming::segment_path(&out.base, n) {
                if std::fs::remove_file(&p).is_err() {
                    break;
                }
                n += 1;
            }
        }
        Ok(())
    }
}

impl Sink for E01Sink {
    fn name(&self) -> &'static str {
        "e01"
    }

    fn write_block(&mut self, block: &Arc<Block>) -> Result<()> {
        if block.offset != self.media_received {
            return Err(Error::Internal(format!(
                "E01 sink expected the block at byte {}, got {}",
                self.media_received, block.offset
            )));
        }
        if block.end() > self.opts.media_size {
            return Err(Error::Internal(format!(
                "block ends at byte {} past the media size {}",
                block.end(),
                self.opts.media_size
            )));
        }
        // Room for one error2 entry per announced run (merging only makes fewer), so the
        // last segment's closing sections fit within the segment size.
        self.out.expected_error2 += block.unreadable.len();
        let job_bytes = self.job_bytes;
        let chunk = self.chunk_size;
        let data = block.data();
        let mut pos = 0;
        // Complete a chunk left over from the previous block by copying.
        if !self.job_buf.is_empty() {
            let take = (chunk - self.job_buf.len() % chunk).min(data.len());
            self.job_buf.extend_from_slice(&data[..take]);
            pos = take;
            if self.job_buf.len().is_multiple_of(chunk) {
                let len = self.job_buf.len();
                self.submit(len)?;
            }
        }
        // Whole chunks go to the compressors by reference to the shared block.
        if self.job_buf.is_empty() {
            while data.len() - pos >= chunk {
                let len = ((data.len() - pos) / chunk * chunk).min(job_bytes);
                self.submit_job(JobData::Shared(Arc::clone(block), pos..pos + len))?;
                pos += len;
            }
        }
        // A partial chunk waits for the next block (or finish).
        self.job_buf.extend_from_slice(&data[pos..]);
        self.media_received = block.end();
        Ok(())
    }

    fn finish(mut self: Box<Self>, summary: &MediaSummary) -> Result<Vec<OutputFile>> {
        self.close(summary)?;
        self.pool.stop();
        Ok(std::mem::take(&mut self.out.written))
    }

    fn abandon(mut self: Box<Self>) -> Vec<OutputFile> {
        self.pool.stop();
        self.out.abandon();
        std::mem::take(&mut self.out.written)
    }
}

fn volume(opts: &E01Options, chunk_count: u32) -> format::Volume {
    format::Volume {
        media_type: if opts.removable { 0 } else { 1 },
        chunk_count,
        sectors_per_chunk: opts.sectors_per_chunk,
        bytes_per_sector: opts.bytes_per_sector,
        sector_count: opts.media_size / u64::from(opts.bytes_per_sector),
        media_flags: 0x01 | if opts.physical_device { 0x02 } else { 0 },
        compression_level: opts.compression.level_byte(),
        error_granularity: opts.sectors_per_chunk,
        guid: uuid::Uuid::new_v4().to_bytes_le(),
    }
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// header2 ×2, header, volume: the fixed opening of segment 1, as bytes (offsets from 13).
fn first_segment_sections(opts: &E01Options, vol: &[u8]) -> Result<Vec<u8>> {
    let c = &opts.case;
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    // EnCase keeps av ≤ 11 and ov ≤ 23 characters and chokes on longer ones (Guymager).
    let av = truncate_chars(crate::VERSION, 11);
    let ov = truncate_chars(&os_name(), 23);
    let secs = opts.acquired_at.timestamp().to_string();
    let local = opts.acquired_at.with_timezone(&chrono::Local);
    use chrono::{Datelike, Timelike};
    let local_text = format!(
        "{} {} {} {} {} {}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    );
    let main2: Vec<(&str, String)> = vec![
        ("a", text(&c.description)),
        ("c", text(&c.case_number)),
        ("n", text(&c.evidence_number)),
        ("e", text(&c.examiner)),
        ("t", text(&c.notes)),
        ("md", text(&opts.model)),
        ("sn", text(&opts.serial)),
        ("av", av.clone()),
        ("ov", ov.clone()),
        ("m", secs.clone()),
        ("u", secs),
        ("p", "0".into()),
        ("dc", String::new()),
    ];
    let main1: Vec<(&str, String)> = vec![
        ("c", text(&c.case_number)),
        ("n", text(&c.evidence_number)),
        ("a", text(&c.description)),
        ("e", text(&c.examiner)),
        ("t", text(&c.notes)),
        ("av", av),
        ("ov", ov),
        ("m", local_text.clone()),
        ("u", local_text),
        ("p", "0".into()),
    ];
    let h2 = zlib_default(&format::utf16le_with_bom(&format::header2_text(&main2)))?;
    let h1 = zlib_default(format::header_text(&main1).as_bytes())?;

    let mut b = Vec::new();
    let mut pos = format::FILE_HEADER_SIZE;
    for (kind, body) in [
        (SectionType::Header2, &h2),
        (SectionType::Header2, &h2),
        (SectionType::Header, &h1),
        (SectionType::Volume, &vol.to_vec()),
    ] {
        let size = DESCRIPTOR_SIZE + body.len() as u64;
        b.extend_from_slice(&format::encode_descriptor(kind, pos + size, size));
        b.extend_from_slice(body);
        pos += size;
    }
    Ok(b)
}

/// "Linux" (what libewf writes: the kernel's name).
fn os_name() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".into(),
        other => other.into(),
    }
}

/// zlib at the default level, as libewf compresses header sections regardless of the chunk
/// setting.
fn zlib_default(data: &[u8]) -> Result<Vec<u8>> {
    let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
    let mut out = vec![0u8; c.zlib_compress_bound(data.len())];
    let n = c
        .zlib_compress(data, &mut out)
        .map_err(|e| Error::Internal(format!("compressing an E01 header: {e:?}")))?;
    out.truncate(n);
    Ok(out)
}
