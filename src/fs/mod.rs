//! File systems inside an image, read without mounting: ext2/3/4 (`ext4-view`), FAT12/16/32
//! (`fatfs`) and NTFS (`ntfs`), each behind [`FileSystem`] (list a directory, stat, read a
//! file, read a link), all reading through one [`Volume`]: a partition's bytes of the shared
//! image reader ([`crate::image::Image::read_at`]). Nothing is ever written: the FAT reader's
//! writes fail.
//!
//! Every file system here is hostile. A damaged E01 chunk under a file is
//! [`Error::Damaged`] naming the file, never garbage; each operation has a read budget
//! ([`OP_BUDGET`]) so a loop in a cluster chain or an index ends as an error, not a hang;
//! a directory lists at most [`MAX_ENTRIES`] entries.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::Image;

mod detect;
mod ext4;
mod ext4_inodes;
mod fat;
mod ntfs;

pub use detect::{identify, identify_strict, Found, HEAD_BYTES};

/// Bytes one operation (open, list, stat, a file's metadata) may read from the volume before
/// the file system is taken as damaged (a cyclic cluster chain, an index that points back).
pub const OP_BUDGET: u64 = 1 << 30;
/// Entries one directory may list.
pub const MAX_ENTRIES: usize = 1 << 20;

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, FIFO, socket or an NTFS reparse point: listed, never extracted as data.
    Special,
}

impl Kind {
    /// One letter as `ls -l` shows it.
    pub fn letter(self) -> char {
        match self {
            Kind::File => '-',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Special => '?',
        }
    }
}

/// A time stored in the file system: seconds and nanoseconds since 1970 (FAT's local times
/// are taken as they are written, without a zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    /// Seconds since 1970-01-01 00:00:00.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Time {
    /// RFC 3339 in UTC (`2026-12-01T21:26:03Z`, with fractions when there are any).
    pub fn rfc3339(self) -> String {
        chrono::DateTime::from_timestamp(self.secs, self.nanos.min(999_999_999))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_else(|| format!("@{}", self.secs))
    }

    /// As a `SystemTime`, for the extracted copy.
    pub fn system_time(self) -> Option<std::time::SystemTime> {
        let d = std::time::Duration::new(self.secs.unsigned_abs(), self.nanos.min(999_999_999));
        if self.secs >= 0 {
            std::time::UNIX_EPOCH.checked_add(d)
        } else {
            std::time::UNIX_EPOCH.checked_sub(d)
        }
    }
}

/// One directory entry (or the thing a path names).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name as stored (bytes for ext4, UTF-8 for FAT and NTFS).
    pub name: Vec<u8>,
    /// File, directory, link, other.
    pub kind: Kind,
    /// Bytes of data (a link: its target's length).
    pub size: u64,
    /// Last modification.
    pub modified: Option<Time>,
    /// Inode (ext4) or MFT record number (NTFS); FAT has none.
    pub id: Option<u64>,
}

/// A path inside a file system: its components, root = none.
pub type FsPath = [Vec<u8>];

/// `/a/b` for people: non-UTF-8 bytes as `\xNN` (like [`crate::text::path_text`]).
pub fn path_text(path: &FsPath) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.iter().fold(String::new(), |mut s, c| {
        s.push('/');
        s.push_str(&name_text(c));
        s
    })
}

/// A name as text, non-UTF-8 bytes as `\xNN`.
pub fn name_text(name: &[u8]) -> String {
    use std::os::unix::ffi::OsStrExt;
    crate::text::path_text(std::path::Path::new(std::ffi::OsStr::from_bytes(name))).into_owned()
}

/// A file system read through a [`Volume`].
pub trait FileSystem {
    /// `ext4`, `FAT16`, `NTFS`.
    fn name(&self) -> &'static str;
    /// What [`Entry::id`] is: `inode`, `MFT`, or `""` when there is none.
    fn id_label(&self) -> &'static str;
    /// What `path` names (a link itself, not what it points to).
    fn stat(&mut self, path: &FsPath) -> Result<Entry>;
    /// The entries of directory `path` (not `.` and `..`).
    fn list(&mut self, path: &FsPath) -> Result<Vec<Entry>>;
    /// The data of file `path`, in order, into `out`; returns the bytes read.
    fn read(&mut self, path: &FsPath, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64>;
    /// The target of link `path`.
    fn read_link(&mut self, path: &FsPath) -> Result<Vec<u8>>;
}

/// What all readers of one volume share: the budget and the last damage seen.
struct Shared {
    spent: Cell<u64>,
    budget: Cell<u64>,
    over: Cell<bool>,
    damage: RefCell<Option<Error>>,
    /// The last block read (file system readers read a few bytes at a time).
    cache: RefCell<(u64, Vec<u8>)>,
}

/// Bytes of a block of the volume's small read cache.
const CACHE_BLOCK: u64 = 64 << 10;

/// A partition's bytes (or the whole media's) read through the image reader, as
/// `Read + Seek` (fatfs, ntfs) or at offsets (ext4-view). Clones share their budget and
/// damage record.
#[derive(Clone)]
pub struct Volume {
    image: Arc<Image>,
    start: u64,
    len: u64,
    pos: u64,
    label: String,
    shared: Rc<Shared>,
}

impl Volume {
    /// Bytes `start..start + len` of `image`, called `label` (`p1`, `disk`) in messages.
    pub fn new(image: Arc<Image>, start: u64, len: u64, label: &str) -> Volume {
        let len = len.min(image.media_size().saturating_sub(start));
        Volume {
            image,
            start,
            len,
            pos: 0,
            label: label.to_string(),
            shared: Rc::new(Shared {
                spent: Cell::new(0),
                budget: Cell::new(OP_BUDGET),
                over: Cell::new(false),
                damage: RefCell::new(None),
                cache: RefCell::new((u64::MAX, Vec::new())),
            }),
        }
    }

    /// Bytes in the volume.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the volume has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `p1`, `disk`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The image's first file, for messages.
    pub fn image_path(&self) -> PathBuf {
        self.image.files().into_iter().next().unwrap_or_default()
    }

    /// Starts an operation that may read `extra` bytes beyond [`OP_BUDGET`].
    pub fn begin(&self, extra: u64) {
        self.shared.spent.set(0);
        self.shared.over.set(false);
        self.shared.budget.set(OP_BUDGET.saturating_add(extra));
        self.shared.damage.replace(None);
    }

    /// Reads exactly `buf.len()` bytes at `offset` of the volume.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "bytes {offset}+{} are past the end of {} ({} bytes)",
                    buf.len(),
                    self.label,
                    self.len
                ),
            ));
        }
        let spent = self.shared.spent.get().saturating_add(buf.len() as u64);
        self.shared.spent.set(spent);
        if spent > self.shared.budget.get() {
            self.shared.over.set(true);
            return Err(io::Error::other("read budget exceeded"));
        }
        if buf.len() as u64 <= CACHE_BLOCK / 2 {
            let block = offset / CACHE_BLOCK;
            let within = (offset % CACHE_BLOCK) as usize;
            if within + buf.len() <= CACHE_BLOCK as usize {
                let mut cache = self.shared.cache.borrow_mut();
                if cache.0 != block {
                    let at = block * CACHE_BLOCK;
                    let n = CACHE_BLOCK.min(self.len - at) as usize;
                    cache.1.resize(n, 0);
                    cache.0 = u64::MAX;
                    if self.fill(at, &mut cache.1).is_ok() {
                        cache.0 = block;
                    } else {
                        // Damage elsewhere in the block is not these bytes' damage.
                        self.shared.damage.replace(None);
                        drop(cache);
                        return self.fill(offset, buf);
                    }
                }
                buf.copy_from_slice(&cache.1[within..within + buf.len()]);
                return Ok(());
            }
        }
        self.fill(offset, buf)
    }

    fn fill(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            let at = self.start + offset + got as u64;
            match self.image.read_at(&mut buf[got..], at) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the media ends at byte {at}"),
                    ))
                }
                Ok(n) => got += n,
                Err(e) => {
                    let text = e.to_string();
                    self.shared.damage.replace(Some(e));
                    return Err(io::Error::other(text));
                }
            }
        }
        Ok(())
    }

    /// The error for a failed operation on `what` (`/etc/passwd`): the image's damage if a
    /// read hit some, the budget if it ran out, else `message` from the file system reader.
    pub fn error(&self, fs: &str, what: &FsPath, message: impl std::fmt::Display) -> Error {
        let what = crate::text::printable(&path_text(what)).into_owned();
        if let Some(e) = self.shared.damage.take() {
            return match e {
                Error::Damaged { range, detail } => Error::Damaged {
                    range,
                    detail: format!("{detail} (reading {what} in {} {fs})", self.label),
                },
                other => other,
            };
        }
        let message = if self.shared.over.get() {
            format!(
                "reading it took more than {} bytes: the file system is damaged (a loop in its \
                 structures?)",
                self.shared.budget.get()
            )
        } else {
            crate::text::printable(&message.to_string()).into_owned()
        };
        Error::Format {
            path: self.image_path(),
            message: format!("{} ({fs}): {what}: {message}", self.label),
        }
    }

    /// The error for a path that is not there.
    pub fn not_found(&self, what: &FsPath) -> Error {
        Error::Io {
            path: PathBuf::from(format!(
                "{}:{}",
                self.label,
                crate::text::printable(&path_text(what))
            )),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        }
    }
}

impl io::Read for Volume {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        self.read_exact_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for Volume {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let new = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the volume",
            )),
        }
    }
}

/// Writes fail: the FAT reader is given this so that nothing it might want to update (a
/// dirty flag, an access date) reaches the image.
impl io::Write for Volume {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the image is read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens the file system on `volume`, of the type its first bytes show; an unknown type is
/// an error that names what was found.
pub fn open(volume: Volume) -> Result<Box<dyn FileSystem>> {
    let mut head = vec![0u8; HEAD_BYTES.min(volume.len()) as usize];
    volume.begin(0);
    volume
        .read_exact_at(0, &mut head)
        .map_err(|e| volume.error("file system", &[], e))?;
    volume.begin(0);
    let label = volume.label().to_string();
    let image = volume.image_path();
    let fs: Box<dyn FileSystem> = match identify(&head) {
        Found::Ext4 => guard(&label, "ext4", &image, || {
            Ok(Box::new(ext4::Ext4Fs::open(volume)?))
        })?,
        Found::Fat => guard(&label, "FAT", &image, || {
            Ok(Box::new(fat::FatFs::open(volume)?))
        })?,
        Found::Ntfs => guard(&label, "NTFS", &image, || {
            Ok(Box::new(ntfs::NtfsFs::open(volume)?))
        })?,
        Found::Other(what) => {
            return Err(Error::Format {
                path: volume.image_path(),
                message: format!(
                    "{}: {what}; exhibit reads ext2/3/4, FAT12/16/32 and NTFS",
                    volume.label()
                ),
            })
        }
    };
    Ok(Box::new(Guarded {
        inner: fs,
        label,
        image,
    }))
}

/// Runs `f`, turning a panic inside a file system reader (a check it lacks) into an error:
/// the readers are other people's code fed hostile bytes.
fn guard<T>(
    label: &str,
    fs: &str,
    image: &std::path::Path,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Format {
            path: image.to_path_buf(),
            message: format!("{label} ({fs}): the reader gave up on damaged structures ({why})"),
        })
    })
}

/// A file system whose every call goes through [`guard`].
struct Guarded {
    inner: Box<dyn FileSystem>,
    label: String,
    image: PathBuf,
}

impl FileSystem for Guarded {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn id_label(&self) -> &'static str {
        self.inner.id_label()
    }
    fn stat(&mut self, path: &FsPath) -> Result<Entry> {
        let name = self.inner.name();
        guard(&self.label, name, &self.image, || self.inner.stat(path))
    }
    fn list(&mut self, path: &FsPath) -> Result<Vec<Entry>> {
        let name = self.inner.name();
        guard(&self.label, name, &self.image, || self.inner.list(path))
    }
    fn read(&mut self, path: &FsPath, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        let name = self.inner.name();
        guard(&self.label, name, &self.image, || {
            self.inner.read(path, out)
        })
    }
    fn read_link(&mut self, path: &FsPath) -> Result<Vec<u8>> {
        let name = self.inner.name();
        guard(&self.label, name, &self.image, || {
            self.inner.read_link(path)
        })
    }
}

/// Checks a listing's length as it grows.
fn check_count(volume: &Volume, fs: &str, path: &FsPath, n: usize) -> Result<()> {
    if n > MAX_ENTRIES {
        return Err(volume.error(
            fs,
            path,
            format!("more than {MAX_ENTRIES} entries: the directory is damaged or too large"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
