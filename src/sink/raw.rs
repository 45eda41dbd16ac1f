//! Raw output: one file (`BASE.raw`), split segments (`BASE.001`, `BASE.002`, …), or a
//! clone straight onto a target block device.
//!
//! Writes go through the one image writer, [`ImageFile`] (O_DIRECT where the target allows
//! it); a device is opened by the one target opener, [`open_target`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::block::Block;
use crate::error::{Error, Result};
use crate::sink::image_file::ImageFile;
use crate::sink::object::ObjectWriter;
use crate::sink::target::open_target;
use crate::sink::{MediaSummary, OutputFile, Sink};

/// Where raw output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawLayout {
    /// One image file.
    Single(PathBuf),
    /// Segments of `segment_size` bytes named `BASE.001`, `BASE.002`, ….
    Split {
        /// BASE, to which `.001` etc. are appended.
        base: PathBuf,
        /// Bytes per segment (a multiple of 512).
        segment_size: u64,
    },
    /// An existing block device that becomes a clone of the source.
    Device(PathBuf),
}

impl RawLayout {
    /// Every path this layout will write for `media_size` bytes, in order.
    pub fn paths(&self, media_size: u64) -> Vec<PathBuf> {
        match self {
            RawLayout::Single(p) | RawLayout::Device(p) => vec![p.clone()],
            RawLayout::Split { base, segment_size } => {
                let n = media_size.div_ceil(*segment_size).max(1);
                (1..=n).map(|i| split_name(base, i)).collect()
            }
        }
    }

    fn segment_size(&self) -> u64 {
        match self {
            RawLayout::Split { segment_size, .. } => *segment_size,
            _ => u64::MAX,
        }
    }
}

/// `BASE.001` … `BASE.999`, then `BASE.1000` …: the names `cat BASE.*` and other tools sort
/// right up to 999 segments.
pub fn split_name(base: &Path, number: u64) -> PathBuf {
    crate::audit::with_extension(base, &format!("{number:03}"))
}

struct Segment {
    image: SegmentTarget,
    written: u64,
}

/// A segment is a file (or device), or an object of an `s3://` set.
enum SegmentTarget {
    File(ImageFile),
    Object {
        path: PathBuf,
        // Boxed: a writer holds its parts' bookkeeping, far more than a file's handle.
        writer: Option<Box<ObjectWriter>>,
        aborted: bool,
    },
}

impl SegmentTarget {
    fn path(&self) -> &Path {
        match self {
            SegmentTarget::File(f) => f.path(),
            SegmentTarget::Object { path, .. } => path,
        }
    }
}

/// The raw writer. Only the segment being written is open: a finished segment is synced and
/// closed before the next one is created, so a split into thousands of segments needs two
/// descriptors, not two per segment (the common limit of 1024 would stop it at ~510).
pub struct RawSink {
    layout: RawLayout,
    /// The open segment and its number (0-based).
    current: Option<(u64, Segment)>,
    /// Segments already closed, for the listing.
    closed: Vec<OutputFile>,
    overwrite: bool,
    media_size: u64,
}

/// Refuses a split segment size that is not a positive multiple of 512 bytes (before
/// [`RawLayout::paths`] divides by it).
pub fn check_split(segment_size: u64) -> Result<()> {
    if segment_size < 512 || !segment_size.is_multiple_of(512) {
        return Err(Error::InvalidOption(format!(
            "--split {segment_size}: a segment must be a positive multiple of 512 bytes"
        )));
    }
    Ok(())
}

impl RawSink {
    /// Prepares the output. For files nothing is created yet, but every name is checked:
    /// an existing one is refused unless `overwrite`. A device must be at least `media_size`
    /// bytes and not in use (mounted or held).
    pub fn create(layout: RawLayout, media_size: u64, overwrite: bool) -> Result<RawSink> {
        if let RawLayout::Split { segment_size, .. } = &layout {
            check_split(*segment_size)?;
        }
        let mut sink = RawSink {
            layout,
            current: None,
            closed: Vec::new(),
            overwrite,
            media_size,
        };
        match &sink.layout {
            RawLayout::Device(path) => {
                let image = SegmentTarget::File(open_target(path, media_size, false, "--clone")?);
                sink.current = Some((0, Segment { image, written: 0 }));
            }
            _ => {
                if !overwrite {
                    for p in sink.layout.paths(media_size) {
                        refuse_existing(&p)?;
                    }
                }
                // The first segment exists even for an empty source.
                let first = sink.path_of(0);
                sink.current = Some((0, open_file(&first, overwrite)?));
            }
        }
        Ok(sink)
    }

    /// The file of segment `number` (0-based), named directly.
    fn path_of(&self, number: u64) -> PathBuf {
        match &self.layout {
            RawLayout::Single(p) | RawLayout::Device(p) => p.clone(),
            RawLayout::Split { base, .. } => split_name(base, number + 1),
        }
    }

    fn segment_count(&self) -> u64 {
        match &self.layout {
            RawLayout::Split { segment_size, .. } => self.media_size.div_ceil(*segment_size).max(1),
            _ => 1,
        }
    }

    /// The open segment `number`; blocks arrive in order, so moving on to a later segment
    /// closes the open one (synced first: its data is final) and opens every one up to it.
    fn segment(&mut self, number: u64) -> Result<&mut Segment> {
        loop {
            match &self.current {
                Some((n, _)) if *n == number => break,
                Some((n, _)) if *n > number => {
                    return Err(Error::Internal(format!(
                        "raw output got segment {} after segment {}",
                        number + 1,
                        n + 1
                    )))
                }
                _ => {}
            }
            let next = match self.current.take() {
                Some((n, mut seg)) => {
                    seg.close()?;
                    self.closed.push(self.describe(&seg));
                    n + 1
                }
                None => 0,
            };
            let path = self.path_of(next);
            self.current = Some((next, open_file(&path, self.overwrite)?));
        }
        Ok(&mut self.current.as_mut().expect("segment just opened").1)
    }

    fn describe(&self, s: &Segment) -> OutputFile {
        let kind = match self.layout {
            RawLayout::Single(_) => "raw",
            RawLayout::Split { .. } => "raw-segment",
            RawLayout::Device(_) => "device",
        };
        match &s.image {
            // An object whose upload was aborted does not exist: the record says so.
            SegmentTarget::Object { aborted: true, .. } => OutputFile {
                path: s.image.path().to_path_buf(),
                size: 0,
                kind: format!("{kind}-aborted"),
            },
            _ => OutputFile {
                path: s.image.path().to_path_buf(),
                size: s.written,
                kind: kind.to_string(),
            },
        }
    }

    fn listing(mut self) -> Vec<OutputFile> {
        if let Some((_, seg)) = self.current.take() {
            let last = self.describe(&seg);
            self.closed.push(last);
        }
        self.closed
    }
}

/// Refuses a path that exists (nothing is ever silently overwritten).
pub fn refuse_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(Error::Refused(format!(
            "{} already exists (use --overwrite to replace it)",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn open_file(path: &Path, overwrite: bool) -> Result<Segment> {
    if let Some((store, key)) = crate::s3::store::route(path) {
        return Ok(Segment {
            image: SegmentTarget::Object {
                path: path.to_path_buf(),
                writer: Some(Box::new(ObjectWriter::new(store, key))),
                aborted: false,
            },
            written: 0,
        });
    }
    let buffered = crate::exclusive::open_output(path, overwrite, overwrite, false)?;
    if let Ok(meta) = buffered.metadata() {
        if !meta.file_type().is_file() {
            return Err(Error::Refused(format!(
                "{} is not a regular file (use --clone for a device)",
                path.display()
            )));
        }
    }
    Ok(Segment {
        image: SegmentTarget::File(ImageFile::new(path, buffered, ImageFile::open_direct(path))),
        written: 0,
    })
}

impl Segment {
    fn write_at(&mut self, data: &[u8], offset: u64) -> Result<()> {
        match &mut self.image {
            SegmentTarget::File(f) => f.write_at(data, offset)?,
            SegmentTarget::Object { path, writer, .. } => {
                let w = writer.as_mut().ok_or_else(|| closed(path))?;
                // Blocks arrive in order without gaps, so an object is only ever appended to.
                if offset != w.len() {
                    return Err(Error::Internal(format!(
                        "{}: raw write at {offset}, not at its end {}",
                        path.display(),
                        w.len()
                    )));
                }
                w.write(data)?;
            }
        }
        self.written = self.written.max(offset + data.len() as u64);
        Ok(())
    }

    /// Synced (a file) or completed and checked (an object): its data is final.
    fn close(&mut self) -> Result<()> {
        match &mut self.image {
            SegmentTarget::File(f) => f.sync_all(),
            SegmentTarget::Object { writer, .. } => match writer.take() {
                Some(w) => w.finish().map(|_| ()),
                None => Ok(()),
            },
        }
    }

    /// What an abandoned run leaves: a file synced as far as it got; an object's upload
    /// aborted, so nothing incomplete is presented as an object.
    fn abandon(&mut self) {
        match &mut self.image {
            SegmentTarget::File(f) => {
                let _ = f.sync_all();
            }
            SegmentTarget::Object {
                writer, aborted, ..
            } => {
                if let Some(mut w) = writer.take() {
                    w.abort();
                    *aborted = true;
                }
            }
        }
    }
}

fn closed(path: &Path) -> Error {
    Error::Internal(format!("{}: written after it was closed", path.display()))
}

impl Sink for RawSink {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn write_block(&mut self, block: &Arc<Block>) -> Result<()> {
        let seg_size = self.layout.segment_size();
        let mut data = block.data();
        let mut pos = block.offset;
        while !data.is_empty() {
            let number = pos / seg_size;
            let within = pos % seg_size;
            let take = ((seg_size - within) as usize).min(data.len());
            self.segment(number)?.write_at(&data[..take], within)?;
            data = &data[take..];
            pos += take as u64;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, _summary: &MediaSummary) -> Result<Vec<OutputFile>> {
        // Segments that received no data (an empty source) still exist, so open them all.
        let n = self.segment_count();
        if !matches!(self.layout, RawLayout::Device(_)) {
            self.segment(n - 1)?;
        }
        if let Some((_, s)) = &mut self.current {
            s.close()?;
        }
        Ok(self.listing())
    }

    fn abandon(mut self: Box<Self>) -> Vec<OutputFile> {
        if let Some((_, s)) = &mut self.current {
            s.abandon();
        }
        self.listing()
    }
}
