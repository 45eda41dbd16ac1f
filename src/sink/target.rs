//! The one target-device opener, for every job that writes an image onto a block device
//! (`acquire --clone`, `rescue --target`). It refuses what would destroy data or not fit: a
//! path that is not a block device, a device in use (mounted, or held by device-mapper, md,
//! another exclusive opener), and a device smaller than the media. A target that overlaps the
//! source is refused before, by [`crate::source::Source::refuse_output_on_source`].
//!
//! A restore's targets ([`open_restore_target`]) are devices opened the same way, or files;
//! each is written by its own [`TargetSink`] on its own thread of the fan-out.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use std::sync::Arc;

use super::image_file::ImageFile;
use super::{MediaSummary, OutputFile, Sink};
use crate::block::Block;
use crate::device::{Identity, Sysfs};
use crate::error::{Error, Result};

/// Opens the block device `path` to receive `media_size` bytes, exclusively: `O_EXCL` on a
/// block device fails with EBUSY while it is mounted or held, and keeps others from mounting
/// or claiming it while the job writes. `readable` also opens it for reading (a rescue hashes
/// its image back from the target). `flag` names the option in messages (`--clone`).
pub fn open_target(path: &Path, media_size: u64, readable: bool, flag: &str) -> Result<ImageFile> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.file_type().is_block_device() {
        return Err(Error::Refused(format!(
            "{} is not a block device; {flag} takes a device",
            path.display()
        )));
    }
    let buffered = OpenOptions::new()
        .read(readable)
        .write(true)
        .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                // The shared device part names what holds it, when it is a mount or a holder
                // (another exclusive opener is not visible there).
                let what = crate::device::live::in_use(meta.rdev())
                    .map(|u| format!(": {}", u.describe()))
                    .unwrap_or_default();
                Error::Refused(format!(
                    "{} is in use (mounted or held){what}; unmount it first",
                    path.display()
                ))
            } else {
                Error::io(path, e)
            }
        })?;
    let size = crate::source::block_device_size(&buffered).map_err(|e| Error::io(path, e))?;
    if size < media_size {
        let (what, job) = match flag {
            "--to" => ("the image's media", "the restore"),
            _ => ("the source", "the clone"),
        };
        return Err(Error::Refused(format!(
            "{} holds {size} bytes, {what} {media_size}: {job} would not fit",
            path.display()
        )));
    }
    // The exclusive claim is the first descriptor's; a second O_EXCL open of the same device
    // would fail with EBUSY (the claim belongs to an open file), so this one is plain.
    Ok(ImageFile::new(path, buffered, ImageFile::open_direct(path)))
}

/// What a restore target is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A block device (opened `O_EXCL`).
    Device,
    /// A regular file.
    File,
}

/// A restore target, open for writing, with what the record says about it.
#[derive(Debug)]
pub struct Target {
    /// Device or file.
    pub kind: TargetKind,
    /// The writer.
    pub image: ImageFile,
    /// Its size when opened (a new file: 0).
    pub size: u64,
    /// Logical and physical sector sizes (512 for a file).
    pub sector_sizes: (u32, u32),
    /// sysfs identity (default for a file).
    pub identity: Identity,
    /// True when this run created the file (removed again if the run is refused before
    /// writing).
    pub created: bool,
}

/// Opens `path` to receive `media_size` bytes of a restore: a block device through
/// [`open_target`] (exclusive, not in use, large enough), or a file: a new one, or with
/// `overwrite` an existing regular file (never through a link, see
/// [`crate::exclusive::open_output`]).
pub fn open_restore_target(path: &Path, media_size: u64, overwrite: bool) -> Result<Target> {
    let is_device = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
    if is_device {
        let image = open_target(path, media_size, false, "--to")?;
        let f = image.file();
        let size = crate::source::block_device_size(f).map_err(|e| Error::io(path, e))?;
        let logical = crate::sys::logical_sector_size(f).map_err(|e| Error::io(path, e))?;
        let physical = crate::sys::physical_sector_size(f).unwrap_or(logical);
        let rdev = f.metadata().map_err(|e| Error::io(path, e))?.rdev();
        return Ok(Target {
            kind: TargetKind::Device,
            image,
            size,
            sector_sizes: (logical.max(512), physical.max(logical)),
            identity: Sysfs::system().identity(rdev),
            created: false,
        });
    }
    let existed = std::fs::symlink_metadata(path).is_ok();
    let file = crate::exclusive::open_output(path, overwrite, false, false).map_err(|e| {
        if existed && matches!(&e, Error::Refused(m) if m.contains("already exists")) {
            Error::Refused(format!(
                "{} already exists and is not a block device (use --overwrite to write over \
                 the file)",
                path.display()
            ))
        } else {
            e
        }
    })?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    Ok(Target {
        kind: TargetKind::File,
        image: ImageFile::new(path, file, ImageFile::open_direct(path)),
        size,
        sector_sizes: (512, 512),
        identity: Identity::default(),
        created: !existed,
    })
}

/// Zeros written per write when wiping a tail (a pool-sized block).
const ZERO_BLOCK: usize = 4 << 20;

/// One restore target's writer in the fan-out: every block at its offset (O_DIRECT for the
/// aligned bulk); with `sparse` (a new file), all-zero pieces are left as holes; with
/// `wipe_tail`, the bytes after the media are zeroed once the media is written. Finishing
/// syncs it, so that the read-back reads what the device holds.
pub struct TargetSink {
    image: ImageFile,
    kind: TargetKind,
    media_size: u64,
    /// The target's size: the end of the tail.
    size: u64,
    sparse: bool,
    wipe_tail: bool,
    written: u64,
    tail_wiped: bool,
}

impl TargetSink {
    /// A writer for `target`; see the type's doc for `sparse` and `wipe_tail`.
    pub fn new(target: Target, media_size: u64, sparse: bool, wipe_tail: bool) -> TargetSink {
        TargetSink {
            kind: target.kind,
            size: target.size.max(media_size),
            image: target.image,
            media_size,
            sparse,
            wipe_tail,
            written: 0,
            tail_wiped: false,
        }
    }

    fn wipe(&mut self) -> Result<()> {
        if !self.wipe_tail || self.tail_wiped {
            return Ok(());
        }
        self.tail_wiped = true;
        let zeros = crate::buffer::AlignedBuf::new(ZERO_BLOCK);
        let mut at = self.media_size;
        while at < self.size {
            let n = (self.size - at).min(ZERO_BLOCK as u64) as usize;
            self.image.write_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    fn listing(&self) -> Vec<OutputFile> {
        vec![OutputFile {
            path: self.image.path().to_path_buf(),
            size: self.written,
            kind: match self.kind {
                TargetKind::Device => "device",
                TargetKind::File => "file",
            }
            .into(),
        }]
    }
}

/// Pieces of this size that are all zeros are skipped by a sparse writer.
const HOLE: usize = 64 << 10;

impl Sink for TargetSink {
    fn name(&self) -> &'static str {
        "target"
    }

    fn write_block(&mut self, block: &Arc<Block>) -> Result<()> {
        let data = block.data();
        if self.sparse {
            let mut at = 0usize;
            while at < data.len() {
                let piece = &data[at..(at + HOLE).min(data.len())];
                if piece.iter().any(|&b| b != 0) {
                    self.image.write_at(piece, block.offset + at as u64)?;
                }
                at += piece.len();
            }
        } else {
            self.image.write_at(data, block.offset)?;
        }
        self.written = block.end();
        if self.written >= self.media_size {
            self.wipe()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, _summary: &MediaSummary) -> Result<Vec<OutputFile>> {
        if self.sparse && self.kind == TargetKind::File {
            // Trailing holes: the file still ends where the media does.
            self.image
                .file()
                .set_len(self.media_size)
                .map_err(|e| Error::io(self.image.path(), e))?;
        }
        self.wipe()?;
        self.image.sync_all()?;
        Ok(self.listing())
    }

    fn abandon(self: Box<Self>) -> Vec<OutputFile> {
        let _ = self.image.sync_all();
        self.listing()
    }
}
