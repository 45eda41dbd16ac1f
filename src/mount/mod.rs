//! `exhibit mount IMAGE MOUNTPOINT`: an image (raw, split raw or an E01 set from any writer,
//! named by any of its files) as a read-only FUSE file system:
//!
//! - `disk.raw`: the whole media, byte for byte;
//! - `p1.raw`, `p2.raw`, …: one file per partition, from exhibit's own table reader
//!   ([`crate::partition`]; numbered as Linux numbers them, the MBR extended container left
//!   out), so nobody computes an `offset=` by hand;
//! - `info.yaml`: what `exhibit info` says of the image, with its partition table.
//!
//! Every read goes through the one image reader ([`crate::image::Image::read_at`]): E01 chunks
//! through its bounded cache (memory does not grow with the image), any number of readers in
//! parallel on the session's threads. Files are opened with FUSE direct I/O, so a read that
//! reaches a damaged chunk returns the good bytes before it and the next read fails with EIO
//! for exactly that chunk; nothing is ever filled in (through the page cache a short read
//! would become zeros).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::partition::Role;

mod fs;

/// What to mount and how.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Any file of the image.
    pub image: PathBuf,
    /// An existing, empty directory.
    pub mountpoint: PathBuf,
    /// Bytes of decoded E01 chunks kept for reads (default 64 MiB).
    pub cache_bytes: usize,
    /// Threads that answer reads (default: one per core).
    pub threads: usize,
    /// Let other users and tools read the files (FUSE `allow_other`; default on, as the
    /// files are read-only; off: only the user who mounted).
    pub allow_other: bool,
}

impl MountOptions {
    /// Defaults for `image` on `mountpoint`.
    pub fn new(image: impl Into<PathBuf>, mountpoint: impl Into<PathBuf>) -> Self {
        MountOptions {
            image: image.into(),
            mountpoint: mountpoint.into(),
            cache_bytes: crate::image::DEFAULT_CACHE_BYTES,
            threads: 0,
            allow_other: true,
        }
    }
}

/// One file of the mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MountedFile {
    /// Its name in the mount point.
    pub name: String,
    /// Where its bytes start in the media.
    pub media_offset: u64,
    /// Its size.
    pub size: u64,
}

/// What a mount serves.
#[derive(Clone, Debug)]
pub struct Mounted {
    /// The mount point.
    pub mountpoint: PathBuf,
    /// The image's files, in order.
    pub image_files: Vec<PathBuf>,
    /// The files served, in order (`disk.raw`, `p1.raw`, …, `info.yaml`).
    pub files: Vec<MountedFile>,
}

/// The contents of `info.yaml`.
#[derive(Serialize)]
struct InfoDoc<'a> {
    /// What `exhibit info` says, its partition table included.
    image: &'a crate::image::describe::ImageInfo,
    files: &'a [MountedFile],
}

/// Something the mount wants the examiner to know while it serves (a read that failed, and
/// where): the binary prints these on stderr.
pub type Notice<'a> = dyn Fn(&str) + Send + Sync + 'a;

/// Mounts, calls `ready` once the files are visible, serves reads until `stop` is set or the
/// file system is unmounted from outside (`umount MOUNTPOINT`), then unmounts.
pub fn mount(
    opts: &MountOptions,
    stop: &AtomicBool,
    notice: Box<Notice<'static>>,
    ready: &mut dyn FnMut(&Mounted),
) -> Result<()> {
    let image = Image::open_cached(&opts.image, opts.cache_bytes)?;
    if let Some(missing) = image
        .e01()
        .and_then(|e| e.missing_segments().first().copied())
    {
        return Err(Error::Refused(format!(
            "{missing}; a mount would fail every read of its chunks (`exhibit verify` lists what the set lacks)"
        )));
    }
    if let Some(e) = image.e01() {
        let usable = e
            .volume()
            .is_some_and(|v| (1..=crate::ewf::reader::MAX_CHUNK).contains(&v.chunk_size()));
        if !usable {
            // Every read would fail: no geometry to place a chunk by.
            let why = e
                .problems()
                .first()
                .map_or_else(|| "no usable volume section".into(), ToString::to_string);
            return Err(Error::Refused(format!(
                "{} cannot be read as an E01: {why}",
                opts.image.display()
            )));
        }
    }
    check_mountpoint(&opts.mountpoint)?;
    let media = image.media_size();
    let info = crate::image::describe::describe(&opts.image)?;
    let table = info.partitions.as_ref();
    let mut files = vec![MountedFile {
        name: "disk.raw".into(),
        media_offset: 0,
        size: media,
    }];
    if let Some(t) = table {
        for p in t.partitions.iter().filter(|p| p.role != Role::Extended) {
            let range = p.byte_range(media);
            files.push(MountedFile {
                name: format!("p{}.raw", p.number),
                media_offset: range.start,
                size: range.end - range.start,
            });
        }
    }
    let doc = InfoDoc {
        image: &info,
        files: &files,
    };
    let info_yaml = serde_yaml::to_string(&doc)
        .map_err(|e| Error::Internal(format!("info.yaml: {e}")))?
        .into_bytes();
    let mounted = Mounted {
        mountpoint: opts.mountpoint.clone(),
        image_files: image.files(),
        files: files.clone(),
    };
    let mtime = std::fs::metadata(&mounted.image_files[0])
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH);
    let filesystem = fs::ImageFs::new(image, files, info_yaml, mtime, notice, opts)?;
    let session = fs::spawn(filesystem, opts)?;
    ready(&mounted);
    while !stop.load(Ordering::Relaxed) && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if session.guard.is_finished() {
        // Unmounted from outside: the session has ended by itself.
        return session.join().map_err(|e| Error::io(&opts.mountpoint, e));
    }
    session
        .umount_and_join()
        .map_err(|e| Error::io(&opts.mountpoint, e))
}

/// The mount point must be an existing empty directory: mounting over files would hide them,
/// and an examiner reading the mount point must see the image and nothing else.
fn check_mountpoint(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !meta.is_dir() {
        return Err(Error::InvalidOption(format!(
            "the mount point {} is not a directory",
            dir.display()
        )));
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if entries.next().is_some() {
        return Err(Error::Refused(format!(
            "the mount point {} is not empty; mounting over it would hide what is there",
            dir.display()
        )));
    }
    Ok(())
}
