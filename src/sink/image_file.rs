//! The one image writer: positioned writes through O_DIRECT where the file system (or device)
//! takes them, through the page cache otherwise.
//!
//! Measured on this machine, page-cache writes cost 0.5–8 s of system CPU per 2 GiB: CPU the
//! hashers need. Pool buffers are 4096-aligned, so the bulk of every block goes through the
//! O_DIRECT descriptor; a piece that is not aligned (the tail of the source, a split boundary
//! that is not a multiple of 4096) goes through the second, buffered descriptor, which is also
//! the one that reads, syncs and takes small writes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::buffer::ALIGN;
use crate::error::{Error, Result};

/// An image file or target device open for writing.
#[derive(Debug)]
pub struct ImageFile {
    path: PathBuf,
    buffered: File,
    direct: Option<File>,
}

impl ImageFile {
    /// The image at `path`, written through `buffered` and, for aligned pieces, `direct` (an
    /// O_DIRECT descriptor of the same file; `None` where refused or not wanted).
    pub fn new(path: &Path, buffered: File, direct: Option<File>) -> Self {
        ImageFile {
            path: path.to_path_buf(),
            buffered,
            direct,
        }
    }

    /// A second descriptor of `path` with O_DIRECT, for [`ImageFile::new`]; `None` where the
    /// file system refuses it.
    pub fn open_direct(path: &Path) -> Option<File> {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
            .open(path)
            .ok()
    }

    /// The same image without the O_DIRECT descriptor, for a job with no aligned bulk writes.
    pub fn buffered_only(mut self) -> Self {
        self.direct = None;
        self
    }

    /// A second handle on the same image (duplicated descriptors, its own O_DIRECT fallback),
    /// for a writer on another thread writing other ranges.
    pub fn try_clone(&self) -> Result<ImageFile> {
        let dup = |f: &File| f.try_clone().map_err(|e| Error::io(&self.path, e));
        Ok(ImageFile {
            path: self.path.clone(),
            buffered: dup(&self.buffered)?,
            direct: self.direct.as_ref().map(dup).transpose()?,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The buffered descriptor (reads, metadata).
    pub fn file(&self) -> &File {
        &self.buffered
    }

    /// Writes `data` at `offset`: the aligned bulk through O_DIRECT, the rest buffered. A file
    /// system may accept O_DIRECT at open and refuse it at write time (EINVAL); then this and
    /// every later write go through the page cache.
    pub fn write_at(&mut self, data: &[u8], offset: u64) -> Result<()> {
        let aligned = |n: u64| n.is_multiple_of(ALIGN as u64);
        let direct_len = match &self.direct {
            Some(_) if aligned(offset) && (data.as_ptr() as usize).is_multiple_of(ALIGN) => {
                data.len() / ALIGN * ALIGN
            }
            _ => 0,
        };
        let (head, tail) = data.split_at(direct_len);
        if let (false, Some(f)) = (head.is_empty(), &self.direct) {
            match f.write_all_at(head, offset) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct = None;
                    self.write_buffered_at(head, offset)?;
                }
                Err(e) => return Err(self.write_error(e, offset)),
            }
        }
        if !tail.is_empty() {
            self.write_buffered_at(tail, offset + head.len() as u64)?;
        }
        Ok(())
    }

    /// Writes `data` at `offset` through the page cache (small pieces, zeros for bad sectors).
    pub fn write_buffered_at(&self, data: &[u8], offset: u64) -> Result<()> {
        self.buffered
            .write_all_at(data, offset)
            .map_err(|e| self.write_error(e, offset))
    }

    fn write_error(&self, source: std::io::Error, offset: u64) -> Error {
        Error::Write {
            path: self.path.clone(),
            offset,
            source,
        }
    }

    /// Data and metadata to stable storage.
    pub fn sync_all(&self) -> Result<()> {
        self.buffered
            .sync_all()
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Data to stable storage (what a map save relies on).
    pub fn sync_data(&self) -> Result<()> {
        self.buffered
            .sync_data()
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// A new, empty image file `img` in `dir`, opened as outputs are (for tests here and of the
/// writers built on it).
#[cfg(test)]
pub(crate) fn scratch(dir: &std::path::Path) -> (PathBuf, ImageFile) {
    let path = dir.join("img");
    let buffered = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let image = ImageFile::new(&path, buffered, ImageFile::open_direct(&path));
    (path, image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::AlignedBuf;

    #[test]
    fn aligned_bulk_and_unaligned_tail_land_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut img) = scratch(dir.path());
        let mut buf = AlignedBuf::new(3 * ALIGN);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i % 253) as u8;
        }
        // Aligned start and buffer, unaligned length: bulk direct (where allowed), tail buffered.
        img.write_at(&buf[..2 * ALIGN + 100], ALIGN as u64).unwrap();
        // Unaligned offset: all buffered.
        img.write_at(&buf[..10], 7).unwrap();
        img.sync_all().unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), 3 * ALIGN + 100);
        assert_eq!(&got[7..17], &buf[..10]);
        assert_eq!(&got[ALIGN..], &buf[..2 * ALIGN + 100]);
    }
}
