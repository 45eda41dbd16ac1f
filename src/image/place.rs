//! Where an image's files are, and how its reader reads them: the one way `image`, the E01
//! container reader, `references`, `describe` and `verify` touch the files of an image.
//!
//! - [`ByteSource`]: one file opened for reading at any offset (`read_at`), its size when
//!   opened, and its identity ([`FileId`]: device and inode, or an object's ETag), so that a
//!   file reopened later is known to be the one the container walk saw. `read_ahead` is
//!   `read_at` for a sequential pass whose offsets only increase: a local file leaves the
//!   reading ahead to the kernel; an object in a bucket keeps several ranged GETs in flight.
//! - [`Place`]: names what is at a path (`metadata`, `symlink_metadata`, `exists`, as
//!   `std::fs` says them), opens a file as a [`ByteSource`], and reads a small side file
//!   (record, hash log, piece list) to a bound. Names stay paths: a sibling (`BASE.E02`,
//!   `BASE.002`, `BASE.yaml`, `BASE.md5`, `BASE.crc64`) is named as for any local file, and
//!   an object's path is its URL (`s3://BUCKET/PREFIX/BASE.E02`), which is also what every
//!   message prints.
//!
//! A local file is read exactly as before: opened through [`crate::small_file`] (no FIFO,
//! no character device; side files not through a final symlink), `pread` on the descriptor.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bucket::BucketPlace;
use crate::audit::AuditRecord;
use crate::error::{Error, Result};

/// The identity of an opened file: reopened, it must be the same one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FileId {
    /// Not known (the file could not be inspected).
    #[default]
    Unknown,
    /// A local file: (device, inode).
    Inode(u64, u64),
    /// An object: its ETag as the listing gave it.
    Object(String),
}

/// One file opened for reading at any offset.
pub trait ByteSource: Send + Sync {
    /// Its size when it was opened (a block device's size, not its metadata's 0).
    fn len(&self) -> u64;

    /// Whether it held no byte when opened.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.len()` bytes at `offset` (short or 0 at the end, as `pread`).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;

    /// [`Self::read_at`] for a sequential pass: each call's offset is at or past the last
    /// call's, so the bytes after it may be fetched before they are asked for.
    fn read_ahead(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.read_at(buf, offset)
    }

    /// Who it is, to recognise it when it is opened again.
    fn identity(&self) -> FileId;
}

/// Reads as much of `buf` as `src` holds from `offset` (retrying interrupted reads); returns
/// the bytes read. `ahead`: the read is part of a sequential pass ([`ByteSource::read_ahead`]).
pub fn read_upto(
    src: &dyn ByteSource,
    buf: &mut [u8],
    offset: u64,
    ahead: bool,
) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let at = offset + n as u64;
        let r = if ahead {
            src.read_ahead(&mut buf[n..], at)
        } else {
            src.read_at(&mut buf[n..], at)
        };
        match r {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads exactly `buf.len()` bytes at `offset` (an end of file first is `UnexpectedEof`).
pub fn read_exact_at(src: &dyn ByteSource, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    if read_upto(src, buf, offset, false)? == buf.len() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "failed to fill whole buffer",
        ))
    }
}

/// A local file or block device, opened through [`crate::small_file::open_media`].
struct LocalFile {
    file: File,
    len: u64,
    id: FileId,
}

impl ByteSource for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn identity(&self) -> FileId {
        self.id.clone()
    }
}

/// What is at a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file or an object.
    File,
    /// A directory.
    Dir,
    /// A block device.
    BlockDevice,
    /// A symbolic link (only from [`Place::symlink_metadata`]).
    Symlink,
    /// Anything else (a FIFO, a socket, a character device).
    Other,
}

/// What [`Place::metadata`] says about a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: Kind,
    /// Its size in bytes (a block device's metadata says 0).
    pub len: u64,
}

impl Entry {
    fn of(m: &std::fs::Metadata) -> Entry {
        let ft = m.file_type();
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_block_device() {
            Kind::BlockDevice
        } else if ft.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        Entry { kind, len: m.len() }
    }

    /// A regular file (or an object).
    pub fn is_file(&self) -> bool {
        self.kind == Kind::File
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// Where the files of an image are.
#[derive(Clone, Debug, Default)]
pub enum Place {
    /// The local file system.
    #[default]
    Local,
    /// Objects in a bucket, named `s3://BUCKET/KEY` ([`super::bucket`]).
    Bucket(Arc<BucketPlace>),
}

impl Place {
    /// The place a path names: `s3://BUCKET/…` is that bucket, reached through the AWS
    /// configuration of the environment (`endpoint`: `--endpoint`, which beats it); any other
    /// path is local.
    pub fn of(path: &Path, endpoint: Option<&str>) -> Result<Place> {
        let Some(name) = path.to_str().filter(|s| crate::s3::is_s3(s)) else {
            return Ok(Place::Local);
        };
        let url = crate::s3::S3Url::parse(name)?;
        let config = crate::s3::S3Config::from_env(endpoint)?;
        Ok(Place::Bucket(Arc::new(BucketPlace::open(&url, &config)?)))
    }

    /// What is at `path`, following symbolic links (`std::fs::metadata`).
    pub fn metadata(&self, path: &Path) -> std::io::Result<Entry> {
        match self {
            Place::Local => std::fs::metadata(path).map(|m| Entry::of(&m)),
            Place::Bucket(b) => b.metadata(path),
        }
    }

    /// What is at `path` itself, a symbolic link not followed (`std::fs::symlink_metadata`):
    /// a dangling link is something there.
    pub fn symlink_metadata(&self, path: &Path) -> std::io::Result<Entry> {
        match self {
            Place::Local => std::fs::symlink_metadata(path).map(|m| Entry::of(&m)),
            Place::Bucket(b) => b.metadata(path),
        }
    }

    /// Whether `path` names something, links followed (`Path::exists`).
    pub fn exists(&self, path: &Path) -> bool {
        self.metadata(path).is_ok()
    }

    /// Opens an image file for reading: a regular file, or a block device where `device`
    /// (see [`crate::small_file::open_media`]).
    pub fn open(&self, path: &Path, device: bool) -> Result<Arc<dyn ByteSource>> {
        match self {
            Place::Local => {
                let mut file = crate::small_file::open_media(path, device)?;
                let meta = file.metadata().map_err(|e| Error::io(path, e))?;
                let len = if meta.is_file() {
                    meta.len()
                } else {
                    // A block device: its metadata says 0.
                    let end = file
                        .seek(SeekFrom::End(0))
                        .map_err(|e| Error::io(path, e))?;
                    file.seek(SeekFrom::Start(0))
                        .map_err(|e| Error::io(path, e))?;
                    end
                };
                let id = FileId::Inode(meta.dev(), meta.ino());
                Ok(Arc::new(LocalFile { file, len, id }))
            }
            Place::Bucket(b) => b.open_object(path),
        }
    }

    /// The whole of the side file `path`, refused when it holds more than `limit` bytes or is
    /// not a regular file (see [`crate::small_file::read_small`]).
    pub fn read_small(&self, path: &Path, limit: u64) -> Result<Vec<u8>> {
        match self {
            Place::Local => crate::small_file::read_small(path, limit),
            Place::Bucket(b) => b.read_small(path, limit),
        }
    }

    /// [`Self::read_small`] as UTF-8 text.
    pub fn read_small_text(&self, path: &Path, limit: u64) -> Result<String> {
        crate::small_file::utf8(path, self.read_small(path, limit)?)
    }

    /// The acquisition record at `path` (see [`AuditRecord::read`]).
    pub fn read_record(&self, path: &Path) -> Result<AuditRecord> {
        match self {
            Place::Local => AuditRecord::read(path),
            Place::Bucket(_) => AuditRecord::from_text(
                &self.read_small_text(path, crate::small_file::RECORD_LIMIT)?,
                path,
            ),
        }
    }

    /// Files read from this place that changed since they were first opened, each as a
    /// sentence naming it. Local files are never in it: a descriptor keeps reading the
    /// file it opened, and a file reopened must be the same one (device and inode); an
    /// object is read anew by every GET, so it is asked for again.
    pub fn changed_since_opened(&self) -> Result<Vec<String>> {
        match self {
            Place::Local => Ok(Vec::new()),
            Place::Bucket(b) => b.changed(),
        }
    }

    /// The split raw segments `BASE.NNN` (three digits or more) present, sorted: what a gap
    /// in a set's numbering is found by (see [`crate::audit::SideFiles::segment_names`]).
    pub fn split_segment_names(&self, base: &Path) -> Result<Vec<PathBuf>> {
        match self {
            Place::Local => crate::audit::SideFiles::new(base).segment_names(true, false),
            Place::Bucket(b) => b.split_segment_names(base),
        }
    }
}
