//! Read media from any image: raw, split raw (`BASE.001`, …), a clone on a device, or an E01
//! set from any writer, opened by any of its file names.
//!
//! Two ways to read, over the same files:
//! - [`Image::stream`]: the whole media in order into a [`crate::pipeline::Feed`] (E01 chunks
//!   decoded on all cores), for passes that hash, check or convert;
//! - [`Image::read_at`]: any bytes at any offset, for random access (E01 chunks through a
//!   bounded [`cache::ChunkCache`]).
//!
//! Damage is never silent: a pass hands a damaged E01 chunk on as zeros and reports it with
//! its place; `read_at` fails with [`crate::Error::Damaged`] for exactly its bytes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ewf::{naming, E01Image, Problem};
use crate::pipeline::{self, Consumers, Failed, Feed, Passed, Tuning};

pub mod ahead;
pub mod bucket;
pub mod cache;
pub mod describe;
mod e01;
pub mod place;
pub mod prefetch;
pub mod provenance;
mod raw;
pub mod references;

pub use e01::E01Media;
pub use place::Place;
pub use raw::RawImage;

/// Bytes per block of a pass over raw media.
pub const BLOCK_SIZE: usize = 4 << 20;
/// Blocks in flight in a pass (the memory bound: 8 × 4 MiB).
pub const POOL_BLOCKS: usize = 8;
/// Decoded E01 chunks kept for random reads, in bytes.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// The kind of image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageFormat {
    /// One raw file.
    Raw,
    /// Split raw segments `BASE.001`, `BASE.002`, ….
    SplitRaw,
    /// A clone on a block device (only the media size is read).
    Device,
    /// An E01 segment set.
    E01,
}

impl ImageFormat {
    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::SplitRaw => "split raw",
            ImageFormat::Device => "device",
            ImageFormat::E01 => "E01",
        }
    }
}

/// Sniffs the first bytes for the EWF signature.
pub fn looks_like_e01(path: &Path) -> bool {
    looks_like_e01_in(&Place::Local, path)
}

/// [`looks_like_e01`] for a file in `place`.
pub fn looks_like_e01_in(place: &Place, path: &Path) -> bool {
    let mut sig = [0u8; 8];
    place
        .open(path, true)
        .is_ok_and(|f| place::read_exact_at(&*f, &mut sig, 0).is_ok())
        && &sig == b"EVF\x09\x0d\x0a\xff\x00"
}

/// `x.E01` for a segment name of its set (`x.E07`, `x.EAB`, `x.e02`).
fn first_e01_segment(path: &Path) -> Option<PathBuf> {
    let s = path.to_str()?;
    let (base, ext) = s.rsplit_once('.')?;
    let u = ext.to_ascii_uppercase().into_bytes();
    let numbered = u.len() == 3 && u[0] == b'E' && u[1..].iter().all(u8::is_ascii_digit);
    let lettered = u.len() == 3 && u[0] >= b'E' && u.iter().all(u8::is_ascii_uppercase);
    let lower = ext.bytes().any(|b| b.is_ascii_lowercase());
    (numbered && &u[1..] != b"00" || lettered)
        .then(|| naming::sibling_path(Path::new(base), lower, 1))?
}

/// `BASE.001` for any segment `BASE.NNN`, when the name ends in three digits.
fn first_split_segment(path: &Path) -> Option<PathBuf> {
    let s = path.to_str()?;
    let (base, ext) = s.rsplit_once('.')?;
    (ext.len() == 3 && ext.bytes().all(|b| b.is_ascii_digit()) && ext != "000")
        .then(|| crate::sink::raw::split_name(Path::new(base), 1))
}

/// The segments `BASE.001`, `BASE.002`, … that exist, in order, starting at `first`.
pub fn split_segments(first: &Path) -> Vec<PathBuf> {
    split_segments_in(&Place::Local, first)
}

/// [`split_segments`] in `place`.
pub fn split_segments_in(place: &Place, first: &Path) -> Vec<PathBuf> {
    let Some(s) = first.to_str() else {
        return vec![first.to_path_buf()];
    };
    let base = Path::new(s.rsplit_once('.').map_or(s, |(b, _)| b));
    let mut v = Vec::new();
    for n in 1u64.. {
        let p = crate::sink::raw::split_name(base, n);
        if !place.exists(&p) {
            break;
        }
        v.push(p);
    }
    v
}

/// The format of the image that `path` belongs to and its files in order (the first E01
/// segment for E01: the set is found from it). Any member's name will do.
pub fn locate(path: &Path) -> Result<(ImageFormat, Vec<PathBuf>)> {
    locate_in(&Place::Local, path)
}

/// [`locate`] in `place`.
pub fn locate_in(place: &Place, path: &Path) -> Result<(ImageFormat, Vec<PathBuf>)> {
    let meta = place.metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::InvalidOption(format!(
            "{} is a directory, not an image",
            path.display()
        )));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("e01") {
        return Ok((ImageFormat::E01, vec![path.to_path_buf()]));
    }
    if looks_like_e01_in(place, path) {
        // A later segment: its set starts at the .E01 beside it.
        return match first_e01_segment(path) {
            Some(first) if place.exists(&first) => Ok((ImageFormat::E01, vec![first])),
            Some(first) => Err(Error::InvalidOption(format!(
                "{} is an EWF segment, but the first segment of its set ({}) is not there",
                path.display(),
                first.display()
            ))),
            None => Err(Error::InvalidOption(format!(
                "{} is an EWF segment, but its name does not say which (expected BASE.E01, BASE.E02, …)",
                path.display()
            ))),
        };
    }
    if let Some(first) = first_split_segment(path) {
        if place.exists(&first) {
            return Ok((ImageFormat::SplitRaw, split_segments_in(place, &first)));
        }
    }
    if meta.kind == place::Kind::BlockDevice {
        return Ok((ImageFormat::Device, vec![path.to_path_buf()]));
    }
    Ok((ImageFormat::Raw, vec![path.to_path_buf()]))
}

/// An opened image.
pub enum Image {
    /// Raw, split raw or device.
    Raw(ImageFormat, RawImage),
    /// An E01 set (boxed: its structure is large beside a raw image's).
    E01(Box<E01Media>),
}

impl Image {
    /// Opens the image `path` belongs to (any of its file names), on the local file system.
    pub fn open(path: &Path) -> Result<Image> {
        refuse_bucket(path)?;
        Self::open_in(&Place::Local, path)
    }

    /// [`Self::open`] for an image in `place`.
    pub fn open_in(place: &Place, path: &Path) -> Result<Image> {
        let (format, files) = locate_in(place, path)?;
        Self::open_files_cached(place, format, &files, DEFAULT_CACHE_BYTES)
    }

    /// [`Self::open`] with `cache_bytes` of decoded E01 chunks for random reads.
    pub fn open_cached(path: &Path, cache_bytes: usize) -> Result<Image> {
        refuse_bucket(path)?;
        let (format, files) = locate(path)?;
        Self::open_files_cached(&Place::Local, format, &files, cache_bytes)
    }

    /// Opens `files` as an image of `format` (for E01, `files[0]` is the first segment).
    pub fn open_files(format: ImageFormat, files: &[PathBuf]) -> Result<Image> {
        Self::open_files_cached(&Place::Local, format, files, DEFAULT_CACHE_BYTES)
    }

    fn open_files_cached(
        place: &Place,
        format: ImageFormat,
        files: &[PathBuf],
        cache: usize,
    ) -> Result<Image> {
        Ok(match format {
            ImageFormat::E01 => {
                let first = files.first().ok_or_else(|| {
                    Error::InvalidOption("an E01 image needs its first segment".into())
                })?;
                Image::E01(Box::new(E01Media::open_in(place, first, cache)?))
            }
            _ => Image::Raw(format, RawImage::open_in(place, files, None, None)?),
        })
    }

    /// Where its files are.
    pub fn place(&self) -> &Place {
        match self {
            Image::Raw(_, r) => r.place(),
            Image::E01(e) => e.structure().place(),
        }
    }

    /// The format.
    pub fn format(&self) -> ImageFormat {
        match self {
            Image::Raw(f, _) => *f,
            Image::E01(_) => ImageFormat::E01,
        }
    }

    /// The files, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            Image::Raw(_, r) => r.files(),
            Image::E01(e) => e.structure().segment_paths(),
        }
    }

    /// Media bytes.
    pub fn media_size(&self) -> u64 {
        match self {
            Image::Raw(_, r) => r.media_size(),
            Image::E01(e) => e.media_size(),
        }
    }

    /// Bytes per sector: the E01's own; 512 for raw media, which does not say.
    pub fn sector_size(&self) -> u32 {
        match self {
            Image::Raw(..) => 512,
            Image::E01(e) => e.structure().bytes_per_sector().unwrap_or(512),
        }
    }

    /// The E01 container, for its metadata and stored hashes.
    pub fn e01(&self) -> Option<&E01Image> {
        match self {
            Image::Raw(..) => None,
            Image::E01(e) => Some(e.structure()),
        }
    }

    /// Reads media bytes at `offset` (see [`E01Media::read_at`], [`RawImage::read_at`]).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        match self {
            Image::Raw(_, r) => r.read_at(buf, offset),
            Image::E01(e) => e.read_at(buf, offset),
        }
    }

    /// Bytes per decoded chunk that [`Self::read_at`] caches (E01), or 0 when reads are
    /// plain file reads (raw: the kernel reads ahead in the image's files by itself).
    pub fn cached_chunk_size(&self) -> u64 {
        match self {
            Image::Raw(..) => 0,
            Image::E01(e) => e.chunk_size(),
        }
    }

    /// Decodes chunk `index` into the cache ahead of a reader (see
    /// [`E01Media::decode_ahead`]); nothing for raw images.
    pub fn decode_ahead(&self, index: u64) {
        if let Image::E01(e) = self {
            e.decode_ahead(index);
        }
    }

    /// (buffer length, buffer count) a pass over this image wants, with `workers` decoders.
    pub fn pass_buffers(&self, workers: usize) -> (usize, usize) {
        match self {
            Image::Raw(..) => (BLOCK_SIZE, POOL_BLOCKS),
            Image::E01(e) => e.pass_buffers(workers),
        }
    }

    /// The whole media in order into `feed`; returns the damaged chunks (handed on as zeros).
    pub fn stream(&self, feed: &mut Feed<'_>, workers: usize) -> Result<Vec<Problem>> {
        match self {
            Image::Raw(_, r) => r.stream(feed).map(|()| Vec::new()),
            Image::E01(e) => e.stream(feed, workers),
        }
    }

    /// Refuses, for a job that must read all of it, a set that is not all there or whose size
    /// is not known: an E01 with a missing segment, without a volume, or whose sector count
    /// does not fit its chunks; a split raw image with a gap in its numbers. `path` is the name
    /// given, for the message.
    pub fn refuse_incomplete(&self, path: &Path) -> Result<()> {
        if let Some(e) = self.e01() {
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
            // The sector count is the media size for every reader; chunks it does not match
            // would be invented zeros (a forged count) or media left out.
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
        if self.format() == ImageFormat::SplitRaw {
            let files = self.files();
            let base = references::base_of(&files[0]);
            let named = self.place().split_segment_names(&base)?;
            if let Some(extra) = named.iter().find(|n| !files.contains(n)) {
                return Err(Error::Refused(format!(
                    "{}: a segment is missing: {} is there but {} is not",
                    path.display(),
                    references::file_name(extra),
                    references::file_name(&crate::sink::raw::split_name(
                        &base,
                        files.len() as u64 + 1
                    ))
                )));
            }
        }
        Ok(())
    }

    /// One pass over the whole media into `consumers` (the one fan-out), with `workers` E01
    /// decoders (0: one per core) and a buffer pool sized for this image: what every job that
    /// reads a whole image into hashes and sinks runs (cat, convert, rescue's sealing).
    /// `value` is the damaged chunks, handed on as zeros.
    pub fn pass(
        &self,
        consumers: Consumers,
        workers: usize,
        tuning: Tuning<'_>,
        progress: &crate::progress::Progress,
        stop: &std::sync::atomic::AtomicBool,
    ) -> std::result::Result<Passed<Vec<Problem>>, Failed> {
        let workers = self::workers(workers);
        let (len, count) = self.pass_buffers(workers);
        let pool = crate::buffer::BufferPool::new(count, len);
        pipeline::run(consumers, &pool, tuning, progress, stop, |feed| {
            self.stream(feed, workers)
        })
    }
}

/// A job that reads images from local files only, given an image in a bucket: one clear
/// line instead of "no such file".
fn refuse_bucket(path: &Path) -> Result<()> {
    if crate::s3::url::is_s3_os(path.as_os_str()) {
        return Err(Error::InvalidOption(format!(
            "{}: an image in a bucket is read by verify, info, cat and convert; copy it to a local \
             directory for this command",
            crate::text::printable(&path.to_string_lossy())
        )));
    }
    Ok(())
}

/// Decoder threads for a pass: `requested`, or one per core.
pub fn workers(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

#[cfg(test)]
mod tests;
