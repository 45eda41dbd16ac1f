//! Raw media in one or more files (a raw image, split segments `BASE.001`, …, or a clone on a
//! block device), read sequentially for a pass or at any offset.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::place::{ByteSource, Place};
use crate::error::{Error, Result};
use crate::pipeline::Feed;

struct Part {
    path: PathBuf,
    /// False for a file that is missing (only with recorded sizes).
    present: bool,
    /// Its size (as recorded, when sizes were recorded).
    len: u64,
    /// Bytes the file really holds.
    actual: u64,
}

/// Parts held open at once for reads at an offset.
const OPEN_PARTS: usize = 16;

/// Raw files read as one media, in order.
pub struct RawImage {
    place: Place,
    parts: Vec<Part>,
    /// Media offset of each part.
    starts: Vec<u64>,
    media_size: u64,
    recorded: bool,
    limit: Option<u64>,
    /// The parts kept open for reads at an offset, most recent last: a few, for readers on
    /// several threads, but not one per segment (a split set of thousands of segments would
    /// pass the common limit of 1024 descriptors).
    open: Mutex<Vec<(usize, Arc<dyn ByteSource>)>>,
}

impl RawImage {
    /// The files in order, each as large as it is.
    pub fn open(files: &[PathBuf]) -> Result<RawImage> {
        Self::open_recorded(files, None, None)
    }

    /// [`Self::open_recorded`] for local files.
    pub fn open_recorded(
        files: &[PathBuf],
        recorded: Option<&[u64]>,
        limit: Option<u64>,
    ) -> Result<RawImage> {
        Self::open_in(&Place::Local, files, recorded, limit)
    }

    /// The files in order. With `recorded` sizes (from an acquisition record), each file is
    /// taken to be that large: a missing or short file reads as zeros up to its recorded size
    /// in a pass (the output checks fail it) and as [`Error::Damaged`] at an offset. `limit`
    /// caps the media (a clone device is larger than the media it holds). The files are in
    /// `place`.
    pub fn open_in(
        place: &Place,
        files: &[PathBuf],
        recorded: Option<&[u64]>,
        limit: Option<u64>,
    ) -> Result<RawImage> {
        let mut parts = Vec::with_capacity(files.len());
        for (i, path) in files.iter().enumerate() {
            let size = recorded.and_then(|r| r.get(i).copied());
            // Opened to check it and learn its size, then closed until it is read.
            let (present, actual) = match (place.open(path, true), size) {
                (Ok(f), _) => (true, f.len()),
                (Err(_), Some(_)) => (false, 0),
                (Err(e), None) => return Err(e),
            };
            parts.push(Part {
                path: path.clone(),
                present,
                len: size.unwrap_or(actual),
                actual,
            });
        }
        let mut starts = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        for p in &parts {
            starts.push(total);
            total = total.saturating_add(p.len);
        }
        Ok(RawImage {
            place: place.clone(),
            parts,
            starts,
            media_size: limit.map_or(total, |l| l.min(total)),
            recorded: recorded.is_some(),
            limit,
            open: Mutex::new(Vec::new()),
        })
    }

    /// Part `i`'s file, open (`None` when it is missing).
    fn file(&self, i: usize) -> Result<Option<Arc<dyn ByteSource>>> {
        let part = &self.parts[i];
        if !part.present {
            return Ok(None);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = open.iter().position(|(j, _)| *j == i) {
            let entry = open.remove(k);
            let f = Arc::clone(&entry.1);
            open.push(entry);
            return Ok(Some(f));
        }
        let f = self.place.open(&part.path, true)?;
        if open.len() >= OPEN_PARTS {
            open.remove(0);
        }
        open.push((i, Arc::clone(&f)));
        Ok(Some(f))
    }

    /// Where its files are.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The files, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.parts.iter().map(|p| p.path.clone()).collect()
    }

    /// Media bytes (the sum of the files' sizes, or of the recorded sizes, up to the limit).
    pub fn media_size(&self) -> u64 {
        self.media_size
    }

    /// Reads media bytes at `offset`; short only at the end of the media. Bytes a missing or
    /// short file should hold are [`Error::Damaged`].
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if offset >= self.media_size || buf.is_empty() {
            return Ok(0);
        }
        let end = self.media_size.min(offset.saturating_add(buf.len() as u64));
        let mut at = offset;
        while at < end {
            let i = self.starts.partition_point(|&s| s <= at) - 1;
            let part = &self.parts[i];
            let within = at - self.starts[i];
            let n = (part.len - within).min(end - at) as usize;
            let dst = &mut buf[(at - offset) as usize..][..n];
            let missing = |from: u64| Error::Damaged {
                range: at + (from - within)..at + n as u64,
                detail: format!(
                    "{} holds {} of its {} bytes",
                    part.path.display(),
                    part.actual,
                    part.len
                ),
            };
            let Some(file) = self.file(i)? else {
                return Err(missing(within));
            };
            let mut got = 0;
            while got < n {
                match file.read_at(&mut dst[got..], within + got as u64) {
                    Ok(0) => return Err(missing(within + got as u64)),
                    Ok(k) => got += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(Error::Read {
                            path: part.path.clone(),
                            offset: within + got as u64,
                            source: e,
                        })
                    }
                }
            }
            at += n as u64;
        }
        Ok((end - offset) as usize)
    }

    /// Reads the files in order into `feed`, up to the limit. With recorded sizes, a missing
    /// or short file is read as zeros up to its recorded size.
    pub fn stream(&self, feed: &mut Feed<'_>) -> Result<()> {
        let mut total_left = self.limit.unwrap_or(u64::MAX);
        for (i, part) in self.parts.iter().enumerate() {
            if total_left == 0 {
                break;
            }
            let size = self.recorded.then_some(part.len);
            // Never past the size the file had when opened (or was recorded with): a file
            // that grows while read does not make the pass longer than the media.
            let mut left = part.len.min(total_left);
            let mut offset = 0u64;
            let file = self.file(i)?;
            let mut f = file.as_deref();
            while left > 0 {
                let mut buf = feed.take();
                let want = (buf.len() as u64).min(left) as usize;
                let mut len = 0;
                while len < want {
                    let Some(file) = f else { break };
                    match file.read_ahead(&mut buf[len..want], offset + len as u64) {
                        Ok(0) => break,
                        Ok(n) => len += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            return Err(Error::Read {
                                path: part.path.clone(),
                                offset: offset + len as u64,
                                source: e,
                            })
                        }
                    }
                }
                if len < want && size.is_some() {
                    // Missing or short: zeros up to the recorded size.
                    buf[len..want].fill(0);
                    f = None;
                    len = want;
                }
                offset += len as u64;
                left -= len as u64;
                total_left -= len as u64;
                let end = len < want;
                feed.send(buf, len)?;
                if end {
                    break;
                }
            }
        }
        Ok(())
    }
}
