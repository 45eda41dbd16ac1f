//! E01 media, read two ways over one structure ([`E01Image`], the container walk) and one
//! chunk decoder ([`ChunkDecoder`]):
//!
//! - **sequentially**, for a pass over the whole media ([`E01Media::stream`]): chunks decoded
//!   on all cores, handed on in media order;
//! - **at any offset** ([`E01Media::read_at`]), for random access: each chunk decoded once
//!   into a bounded [`ChunkCache`].
//!
//! ```text
//!  reader thread ──▶ batches of contiguous stored chunks (one large pread each)
//!       │               + an output buffer taken from the pool, in media order
//!       ▼
//!  N decode workers (ChunkDecoder: zlib stream + trailer, or raw + Adler-32)
//!       │
//!       ▼
//!  this thread: reorders by batch number ──▶ Feed ──▶ hash threads, piece list, sinks
//! ```
//! A sequential pass hands a damaged chunk on as zeros (offsets stay true) and reports it
//! with its place; `read_at` fails for exactly the damaged chunk's bytes instead, so random
//! access never returns invented data. Output buffers are taken in batch order, so the
//! earliest unfinished batch always holds one: the pass cannot deadlock, and memory is
//! bounded by the pool.
//!
//! When one run of middle segments is missing, its chunks are placed by [`missing_gap`]:
//! both ways of reading agree on where every surviving chunk belongs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use super::cache::{ChunkCache, Claim};
use super::place::{read_upto, Place};
use super::{BLOCK_SIZE, POOL_BLOCKS};
use crate::buffer::PooledBuf;
use crate::error::{Error, Result};
use crate::ewf::compress::ChunkDecoder;
use crate::ewf::{naming, E01Image, Problem};
use crate::pipeline::Feed;

use crate::ewf::reader::MAX_CHUNK;
/// Memory for output buffers when chunks are huge.
const MAX_POOL_BYTES: usize = 256 << 20;

/// (buffer length, buffer count) for chunks of `chunk_size` bytes, `media_size` bytes of
/// media and `workers` decoders: whole chunks per buffer, no larger than the media needs.
fn buffers(chunk_size: u64, media_size: u64, workers: usize) -> (usize, usize) {
    let cs = usize::try_from(chunk_size.clamp(1, MAX_CHUNK)).unwrap_or(BLOCK_SIZE);
    let media_chunks = usize::try_from(media_size.div_ceil(cs as u64)).unwrap_or(usize::MAX);
    let len = if cs >= BLOCK_SIZE {
        cs
    } else {
        (BLOCK_SIZE / cs).min(media_chunks.max(1)) * cs
    };
    let count = (POOL_BLOCKS + 2 * workers).min((MAX_POOL_BYTES / len).max(2));
    (len, count)
}

/// An E01 set opened for reading its media.
pub struct E01Media {
    img: E01Image,
    /// (first table chunk after a missing run of segments, chunks missing, the first missing
    /// segment's path).
    gap: Option<(u64, u64, PathBuf)>,
    cache: ChunkCache,
}

/// The stored size a writer could have given a chunk of `cs` bytes: a zlib stream of an
/// incompressible chunk is a little larger than the chunk; a raw chunk has its Adler-32.
fn implausible(place: &crate::ewf::ChunkPlace, cs: u64) -> Option<String> {
    let limit = if place.compressed {
        cs + cs / 2 + 1024
    } else {
        cs + 4
    };
    (place.stored_size > limit || place.stored_size == 0).then(|| {
        format!(
            "stored size {} implausible for a {cs}-byte chunk",
            place.stored_size
        )
    })
}

fn in_no_chunk(at: u64, media: u64, listed: u64) -> String {
    format!("media bytes {at}..{media} are in no chunk (the tables list {listed} chunks)")
}

impl E01Media {
    /// Opens the set whose first segment is `first`, with a chunk cache of `cache_bytes`
    /// for [`Self::read_at`].
    pub fn open(first: &Path, cache_bytes: usize) -> Result<E01Media> {
        Self::open_in(&Place::Local, first, cache_bytes)
    }

    /// [`Self::open`] for a set in `place`.
    pub fn open_in(place: &Place, first: &Path, cache_bytes: usize) -> Result<E01Media> {
        let img = E01Image::open_in(place, first)?;
        let (chunk, media) = img
            .volume()
            .map_or((0, 0), |v| (v.chunk_size(), v.media_size()));
        let gap = if (1..=MAX_CHUNK).contains(&chunk) {
            missing_gap(&img, first, media.div_ceil(chunk), chunk)
        } else {
            None
        };
        let cache = ChunkCache::new(cache_bytes, chunk.clamp(1, MAX_CHUNK) as usize);
        Ok(E01Media { img, gap, cache })
    }

    /// The container: structure, metadata, stored hashes, problems found while opening.
    pub fn structure(&self) -> &E01Image {
        &self.img
    }

    #[cfg(test)]
    pub(crate) fn structure_mut(&mut self) -> &mut E01Image {
        &mut self.img
    }

    /// Media size in bytes (0 without a volume section).
    pub fn media_size(&self) -> u64 {
        self.img.media_size().unwrap_or(0)
    }

    /// Bytes per chunk (0 without a usable volume section).
    pub fn chunk_size(&self) -> u64 {
        self.img
            .volume()
            .map(|v| v.chunk_size())
            .filter(|c| (1..=MAX_CHUNK).contains(c))
            .unwrap_or(0)
    }

    /// Media chunk → chunk of the tables, or `None` inside a missing run of segments.
    fn table_index(&self, m: u64) -> Option<u64> {
        match &self.gap {
            Some((at, n, _)) if m >= *at => (m >= at + n).then(|| m - n),
            _ => Some(m),
        }
    }

    /// (buffer length, buffer count) for a sequential pass with `workers` decoders.
    pub fn pass_buffers(&self, workers: usize) -> (usize, usize) {
        buffers(self.chunk_size(), self.media_size(), workers)
    }

    /// Decodes the whole media in order into `feed` on `workers` threads; damaged chunks go
    /// on as zeros and come back as problems.
    pub fn stream(&self, feed: &mut Feed<'_>, workers: usize) -> Result<Vec<Problem>> {
        decode_parallel(self, feed, workers)
    }

    /// Reads media bytes at `offset` into `buf`; returns the bytes read (short only at the
    /// end of the media). A range that touches a damaged or missing chunk is
    /// [`Error::Damaged`] for exactly that chunk's bytes.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let media = self.media_size();
        let cs = self.chunk_size();
        if offset >= media || buf.is_empty() {
            return Ok(0);
        }
        if cs == 0 {
            return Err(self.damaged(0..media, "the volume section gives no usable chunk size"));
        }
        let end = media.min(offset.saturating_add(buf.len() as u64));
        let mut at = offset;
        while at < end {
            let index = at / cs;
            let chunk = self.chunk(index)?;
            let within = (at - index * cs) as usize;
            let n = (chunk.len() - within).min((end - at) as usize);
            let dst = (at - offset) as usize;
            buf[dst..dst + n].copy_from_slice(&chunk[within..within + n]);
            at += n as u64;
        }
        Ok((end - offset) as usize)
    }

    fn damaged(&self, range: std::ops::Range<u64>, message: impl Into<String>) -> Error {
        Error::Damaged {
            range,
            detail: message.into(),
        }
    }

    /// Media chunk `index`, decoded (from the cache when it was decoded before, or once
    /// another thread that decodes it now has finished).
    fn chunk(&self, index: u64) -> Result<Arc<[u8]>> {
        match self.cache.claim(index) {
            Claim::Cached(c) => Ok(c),
            Claim::Decode(_decoding) => self.decode(index),
        }
    }

    /// Decodes media chunk `index` into the cache ahead of a reader, unless it is there or
    /// being decoded. A damaged chunk is left out: its reader decodes it and gets the error
    /// (so EIO comes exactly when, and only if, it is read).
    pub fn decode_ahead(&self, index: u64) {
        let media_chunks = self.media_size().div_ceil(self.chunk_size().max(1));
        if index < media_chunks {
            if let Some(_decoding) = self.cache.claim_idle(index) {
                let _ = self.decode(index);
            }
        }
    }

    /// Whether media chunk `index` is decoded in the cache now.
    pub fn is_cached(&self, index: u64) -> bool {
        self.cache.get(index).is_some()
    }

    /// Decodes media chunk `index` and caches it (the caller holds its claim).
    fn decode(&self, index: u64) -> Result<Arc<[u8]>> {
        let media = self.media_size();
        let cs = self.chunk_size();
        let start = index * cs;
        let expected = (media - start).min(cs) as usize;
        let range = start..start + expected as u64;
        let fail = |place: Option<&crate::ewf::ChunkPlace>, message: String| {
            let segment = place.map_or_else(
                || self.img.segment_paths().last().cloned().unwrap_or_default(),
                |p| p.segment.clone(),
            );
            let p = Problem {
                segment,
                section: Some("sectors".into()),
                offset: place.map(|p| p.offset),
                chunk: Some(index),
                media_range: Some(range.clone()),
                message,
            };
            self.damaged(range.clone(), p.to_string())
        };
        let Some(t) = self.table_index(index) else {
            let (_, n, path) = self.gap.as_ref().expect("inside the gap");
            let p = Problem {
                segment: path.clone(),
                section: Some("sectors".into()),
                offset: None,
                chunk: Some(index),
                media_range: Some(range.clone()),
                message: format!("in the missing segment file ({n} chunks of the media are in it)"),
            };
            return Err(self.damaged(range.clone(), p.to_string()));
        };
        let place = match self.img.locate(t) {
            Ok(Some(place)) => place,
            Ok(None) => {
                return Err(fail(
                    None,
                    in_no_chunk(start, media, self.img.chunk_count()),
                ))
            }
            Err(p) => {
                let p = Problem {
                    chunk: Some(index),
                    media_range: Some(range.clone()),
                    ..*p
                };
                return Err(self.damaged(range.clone(), p.to_string()));
            }
        };
        if let Some(f) = implausible(&place, cs) {
            return Err(fail(Some(&place), f));
        }
        let file = match self.img.segment_file(place.segment_index) {
            Ok(f) => f,
            Err(e) => return Err(fail(Some(&place), format!("unreadable: {e}"))),
        };
        let mut stored = vec![0u8; place.stored_size as usize];
        match read_upto(&*file, &mut stored, place.offset, false) {
            Ok(n) if n == stored.len() => {}
            Ok(_) => {
                return Err(fail(
                    Some(&place),
                    "stored chunk runs past the end of the segment file (truncated?)".into(),
                ))
            }
            Err(e) => return Err(fail(Some(&place), format!("unreadable: {e}"))),
        }
        let mut out = Vec::with_capacity(cs as usize);
        ChunkDecoder::default()
            .decode(&stored, place.compressed, expected, cs as usize, &mut out)
            .map_err(|f| fail(Some(&place), f.to_string()))?;
        out.truncate(expected);
        let chunk: Arc<[u8]> = Arc::from(out);
        self.cache.put(index, Arc::clone(&chunk));
        Ok(chunk)
    }
}

struct Item {
    /// Chunk number in media order.
    index: u64,
    segment: PathBuf,
    /// Where it is stored (none for a chunk of a missing segment).
    offset: Option<u64>,
    /// Offset in the batch's stored bytes.
    at: usize,
    stored: usize,
    compressed: bool,
    /// Media bytes of this chunk.
    expected: usize,
    /// Known bad before decoding (implausible size, unreadable).
    fault: Option<String>,
}

struct Batch {
    seq: u64,
    items: Vec<Item>,
    data: Vec<u8>,
    out: PooledBuf,
}

struct Done {
    seq: u64,
    out: PooledBuf,
    len: usize,
    problems: Vec<Problem>,
}

fn chunk_problem(item: &Item, chunk_size: u64, message: String) -> Problem {
    let start = item.index * chunk_size;
    Problem {
        segment: item.segment.clone(),
        section: Some("sectors".into()),
        offset: item.offset,
        chunk: Some(item.index),
        media_range: Some(start..start + item.expected as u64),
        message,
    }
}

/// Where the chunks of a missing middle segment belong. The tables of the segments present
/// list fewer chunks than the media needs; when exactly one run of segments is missing, the
/// shortfall is exactly that run's chunks, and they sit before the first chunk of the next
/// segment present. Returns (first table chunk after the gap, chunks missing, first missing
/// segment's path). With two separate gaps the split between them is unknown: `None`, and
/// the shortfall is reported at the end as before.
fn missing_gap(
    img: &E01Image,
    first: &Path,
    needed: u64,
    chunk: u64,
) -> Option<(u64, u64, PathBuf)> {
    let (base, lower) = naming::base_of_first_segment(first)?;
    let mut numbers: HashMap<PathBuf, u32> = HashMap::new();
    let mut missing: Vec<u32> = Vec::new();
    let mut n = 1u32;
    for p in img.segment_paths() {
        loop {
            let name = naming::sibling_path(&base, lower, n)?;
            if name == p {
                break;
            }
            missing.push(n);
            n += 1;
        }
        numbers.insert(p, n);
        n += 1;
    }
    let (&a, &b) = (missing.first()?, missing.last()?);
    if u64::from(b - a) + 1 != missing.len() as u64 {
        return None;
    }
    let listed = img.chunk_count();
    if needed <= listed {
        return None;
    }
    // The shortfall comes from the volume's sector count, which may be forged: a missing
    // segment holds no more than the largest one present, and each chunk in it at least its
    // table entry and a deflate stream (deflate stores at most ~1032 media bytes per byte).
    // A shortfall beyond that is no gap but a count the files cannot hold; reading then
    // stops where the tables end, with one problem, instead of feeding zeros for days.
    let largest = img
        .segment_paths()
        .iter()
        .filter_map(|p| img.place().metadata(p).ok())
        .map(|m| m.len)
        .max()
        .unwrap_or(0);
    let per_chunk = 4 + (chunk / 1032).max(1);
    let room = (missing.len() as u64).saturating_mul(largest) / per_chunk;
    if needed - listed > room {
        return None;
    }
    // First table chunk stored in a segment after the gap (chunks are in segment order).
    let after = |t: u64| {
        img.chunk_place(t)
            .and_then(|c| numbers.get(&c.segment).copied())
            .is_some_and(|num| num > b)
    };
    let (mut lo, mut hi) = (0u64, listed);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if after(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some((lo, needed - listed, naming::sibling_path(&base, lower, a)?))
}

/// Decodes every chunk of `media` on `workers` threads into `feed`, in media order. Returns
/// the chunk problems (damaged, unreadable, missing). Errors only for an interruption or a
/// thread that could not start.
fn decode_parallel(this: &E01Media, feed: &mut Feed<'_>, workers: usize) -> Result<Vec<Problem>> {
    let img = &this.img;
    let mut problems = Vec::new();
    let Some(v) = img.volume() else {
        return Ok(problems);
    };
    let cs = v.chunk_size();
    if cs == 0 || cs > MAX_CHUNK {
        return Ok(problems);
    }
    let pool = feed.pool();
    let per_batch = (pool.buffer_len() as u64 / cs).max(1) as usize;
    let workers = workers.max(1);
    let halt = AtomicBool::new(false);
    let last_segment = img.segment_paths().last().cloned().unwrap_or_default();
    let gap = &this.gap;
    let table_index = |m: u64| this.table_index(m);
    let media = v.media_size();
    // Filled by the reader when the tables run out before the media does.
    let tail: Mutex<Option<Problem>> = Mutex::new(None);

    std::thread::scope(|scope| -> Result<Vec<Problem>> {
        let (work_tx, work_rx) = sync_channel::<Batch>(workers * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = channel::<Done>();

        // Reader: groups contiguous chunks, one pread per batch.
        let halt_r = &halt;
        let gap_r = gap;
        let tail_r = &tail;
        let pool_r = pool.clone();
        let stopping = || halt_r.load(Ordering::Relaxed);
        std::thread::Builder::new()
            .name("verify-e01-read".into())
            .spawn_scoped(scope, move || {
                let mut index = 0u64;
                let mut seq = 0u64;
                let mut at = 0u64;
                while at < media && !stopping() {
                    let mut items: Vec<Item> = Vec::new();
                    // segment, its number, start, end
                    let mut span: Option<(PathBuf, usize, u64, u64)> = None;
                    while items.len() < per_batch && at < media {
                        let expected = (media - at).min(cs) as usize;
                        let Some(t) = table_index(index) else {
                            // A chunk of the missing segment: no read, zeros, one problem.
                            if span.is_some() {
                                break;
                            }
                            let Some((_, n, path)) = gap_r.as_ref() else {
                                break;
                            };
                            items.push(Item {
                                index,
                                segment: path.clone(),
                                offset: None,
                                at: 0,
                                stored: 0,
                                compressed: false,
                                expected,
                                fault: Some(format!(
                                    "in the missing segment file ({n} chunks of the media are in it)"
                                )),
                            });
                            index += 1;
                            at += expected as u64;
                            continue;
                        };
                        if span.is_none() && !items.is_empty() {
                            // The batch so far is gap chunks: keep reads apart from them.
                            break;
                        }
                        let place = match img.locate(t) {
                            Ok(p) => p,
                            Err(p) => {
                                // Its table cannot be read again: damage for this chunk,
                                // and the pass goes on.
                                if !items.is_empty() {
                                    break;
                                }
                                items.push(Item {
                                    index,
                                    segment: p.segment.clone(),
                                    offset: None,
                                    at: 0,
                                    stored: 0,
                                    compressed: false,
                                    expected,
                                    fault: Some(p.message.clone()),
                                });
                                index += 1;
                                at += expected as u64;
                                break;
                            }
                        };
                        let Some(place) = place else {
                            let mut t = tail_r.lock().unwrap_or_else(|e| e.into_inner());
                            *t = Some(Problem {
                                segment: last_segment.clone(),
                                section: Some("sectors".into()),
                                offset: None,
                                chunk: Some(index),
                                media_range: Some(at..media),
                                message: format!(
                                    "{}; reading stops here",
                                    in_no_chunk(at, media, img.chunk_count())
                                ),
                            });
                            at = media;
                            break;
                        };
                        let fault = implausible(&place, cs);
                        let contiguous = match &span {
                            None => true,
                            Some((_, seg, _, end)) => *seg == place.segment_index && *end == place.offset,
                        };
                        if !contiguous && !items.is_empty() {
                            break;
                        }
                        let stored = if fault.is_some() { 0 } else { place.stored_size };
                        let rel = span.as_ref().map_or(0, |s| s.3 - s.2) as usize;
                        match &mut span {
                            None => {
                                span = Some((
                                    place.segment.clone(),
                                    place.segment_index,
                                    place.offset,
                                    place.offset + stored,
                                ))
                            }
                            Some(s) => s.3 += stored,
                        }
                        items.push(Item {
                            index,
                            segment: place.segment,
                            offset: Some(place.offset),
                            at: rel,
                            stored: stored as usize,
                            compressed: place.compressed,
                            expected,
                            fault,
                        });
                        index += 1;
                        at += expected as u64;
                    }
                    if items.is_empty() {
                        break;
                    }
                    let (_, seg, start, end) = span.unwrap_or_default();
                    let mut data = vec![0u8; (end - start) as usize];
                    let got = if data.is_empty() {
                        Ok(0)
                    } else {
                        img.segment_file(seg)
                            .and_then(|f| read_upto(&*f, &mut data, start, true))
                    };
                    match got {
                        Ok(n) => {
                            for it in &mut items {
                                if it.fault.is_none() && it.at + it.stored > n {
                                    it.fault = Some(
                                        "stored chunk runs past the end of the segment file (truncated?)"
                                            .into(),
                                    );
                                }
                            }
                        }
                        Err(e) => {
                            for it in &mut items {
                                it.fault.get_or_insert_with(|| format!("unreadable: {e}"));
                            }
                        }
                    }
                    let out = pool_r.take();
                    let batch = Batch {
                        seq,
                        items,
                        data,
                        out,
                    };
                    seq += 1;
                    if work_tx.send(batch).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the E01 reader: {e}")))?;

        for w in 0..workers {
            let rx = Arc::clone(&work_rx);
            let tx = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("verify-e01-decode-{w}"))
                .spawn_scoped(scope, move || {
                    let mut dec = ChunkDecoder::default();
                    let mut tmp = Vec::with_capacity(cs as usize);
                    // The stored stream of a full all-zero chunk, once one has decoded: writers
                    // reuse one constant stream for every zero chunk, and inflating the same
                    // bytes again would give the same zeros, so a byte-equal stream is a memset.
                    let mut zero_stream: Option<Vec<u8>> = None;
                    loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(mut b) = next else { break };
                        let mut problems = Vec::new();
                        let mut len = 0usize;
                        for it in &b.items {
                            let dst = len..len + it.expected;
                            let stored = &b.data[it.at..it.at + it.stored];
                            let full = it.expected as u64 == cs;
                            if it.fault.is_none()
                                && it.compressed
                                && full
                                && zero_stream.as_deref() == Some(stored)
                            {
                                b.out[dst].fill(0);
                                len += it.expected;
                                continue;
                            }
                            let result = match &it.fault {
                                Some(f) => Err(f.clone()),
                                None => dec
                                    .decode(
                                        stored,
                                        it.compressed,
                                        it.expected,
                                        cs as usize,
                                        &mut tmp,
                                    )
                                    .map_err(|f| f.to_string()),
                            };
                            match result {
                                Ok(()) => {
                                    let out = &tmp[..it.expected];
                                    if it.compressed
                                        && full
                                        && zero_stream.is_none()
                                        && crate::ewf::compress::is_all_zero(out)
                                    {
                                        zero_stream = Some(stored.to_vec());
                                    }
                                    b.out[dst].copy_from_slice(out);
                                }
                                Err(m) => {
                                    b.out[dst].fill(0);
                                    problems.push(chunk_problem(it, cs, m));
                                }
                            }
                            len += it.expected;
                        }
                        let done = Done {
                            seq: b.seq,
                            out: b.out,
                            len,
                            problems,
                        };
                        if tx.send(done).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start an E01 decoder: {e}")))?;
        }
        drop(done_tx);

        let result = deliver(done_rx, feed, &mut problems);
        if result.is_err() {
            halt.store(true, Ordering::Relaxed);
        }
        result?;
        if let Some(t) = tail.lock().unwrap_or_else(|e| e.into_inner()).take() {
            problems.push(t);
        }
        problems.sort_by_key(|p| p.chunk);
        Ok(problems)
    })
}

/// Hands finished batches to the feed in order. On an error the receiver and every held
/// buffer are dropped, which lets the workers and the reader run out.
fn deliver(
    done_rx: Receiver<Done>,
    feed: &mut Feed<'_>,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    for d in done_rx {
        waiting.insert(d.seq, d);
        while let Some(d) = waiting.remove(&next) {
            problems.extend(d.problems);
            if feed.stopping() {
                return Err(Error::Interrupted("a signal"));
            }
            feed.send(d.out, d.len)?;
            next += 1;
        }
    }
    if !waiting.is_empty() {
        return Err(Error::Internal("an E01 decoder stopped early".into()));
    }
    Ok(())
}
