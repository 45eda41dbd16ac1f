//! The one target-device opener, for every job that writes an image onto a block device
//! (`acquire --clone`, `rescue --target`). It refuses what would destroy data or not fit: a
//! path that is not a block device, a device in use (mounted, or held by device-mapper, md,
//! another exclusive opener), and a device smaller than the media. A target that overlaps the
//! source is refused before, by [`crate::source::Source::refuse_output_on_source`].
//!
//! A restore's targets ([`open_restore_target`]) are devices opened the same way, or files;
//! each is written by its own [`TargetSink`] on its own thread of the fan-out, with several writes
//! in flight ([`super::writer_pool`]).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use std::sync::Arc;

use super::image_file::ImageFile;
use super::writer_pool::{Held, WriterPool};
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

/// Writes in flight per target. One 4 MiB O_DIRECT write at a time left a device idle
/// between two; with four the next is always queued, and a target holds at most four of
/// the pool's blocks (each a reference, not a copy).
pub const WRITES_IN_FLIGHT: usize = 4;

/// One restore target's writer in the fan-out: every block at its offset, through a
/// [`WriterPool`] of [`WRITES_IN_FLIGHT`] writers (O_DIRECT for the aligned bulk, the
/// unaligned tail and a file system that refuses O_DIRECT through the page cache); with
/// `sparse` (a new file), all-zero pieces are left as holes; with `wipe_tail`, the bytes after
/// the media are zeroed once the media is handed out. The last block waits for every write,
/// so a failure anywhere is that block's error, reported at the lowest offset that failed,
/// and bytes written never counts past it. Finishing syncs the target, so that the read-back
/// reads what the device holds.
pub struct TargetSink {
    writers: WriterPool,
    kind: TargetKind,
    media_size: u64,
    /// The target's size: the end of the tail.
    size: u64,
    sparse: bool,
    wipe_tail: bool,
    /// Media bytes handed to the writers (every byte before this one).
    accepted: u64,
    tail_wiped: bool,
}

impl TargetSink {
    /// A writer for `target`; see the type's doc for `sparse` and `wipe_tail`.
    pub fn new(target: Target, media_size: u64, sparse: bool, wipe_tail: bool) -> TargetSink {
        TargetSink {
            kind: target.kind,
            size: target.size.max(media_size),
            writers: WriterPool::new(target.image, WRITES_IN_FLIGHT),
            media_size,
            sparse,
            wipe_tail,
            accepted: 0,
            tail_wiped: false,
        }
    }

    fn wipe(&mut self) -> Result<()> {
        if !self.wipe_tail || self.tail_wiped {
            return Ok(());
        }
        self.tail_wiped = true;
        let zeros = Arc::new(crate::buffer::AlignedBuf::new(ZERO_BLOCK));
        let mut at = self.media_size;
        while at < self.size {
            let n = (self.size - at).min(ZERO_BLOCK as u64) as usize;
            self.writers
                .write(Held::Zeros(Arc::clone(&zeros)), 0, n, at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Media bytes known to be on the target: none after a write that failed or is still in
    /// flight.
    fn written(&self) -> u64 {
        self.writers
            .landed_before(self.accepted)
            .min(self.media_size)
    }

    fn listing(&self) -> Vec<OutputFile> {
        vec![OutputFile {
            path: self.writers.image().path().to_path_buf(),
            size: self.written(),
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

/// The runs of `data` that hold a byte other than zero, in whole [`HOLE`] pieces (the last
/// piece may be shorter): (start, length), adjacent pieces merged into one write.
fn data_runs(data: &[u8]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, piece) in data.chunks(HOLE).enumerate() {
        if piece.iter().all(|&b| b == 0) {
            continue;
        }
        let at = i * HOLE;
        match runs.last_mut() {
            Some((start, len)) if *start + *len == at => *len += piece.len(),
            _ => runs.push((at, piece.len())),
        }
    }
    runs
}

impl Sink for TargetSink {
    fn name(&self) -> &'static str {
        "target"
    }

    fn write_block(&mut self, block: &Arc<Block>) -> Result<()> {
        let held = Held::Block(Arc::clone(block));
        if self.sparse {
            for (start, len) in data_runs(block.data()) {
                self.writers
                    .write(held.clone(), start, len, block.offset + start as u64)?;
            }
        } else {
            self.writers.write(held, 0, block.len(), block.offset)?;
        }
        self.accepted = block.end();
        if self.accepted >= self.media_size {
            self.wipe()?;
            self.writers.wait_all()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, _summary: &MediaSummary) -> Result<Vec<OutputFile>> {
        self.wipe()?;
        self.writers.close()?;
        let image = self.writers.image();
        if self.sparse && self.kind == TargetKind::File {
            // Trailing holes: the file still ends where the media does.
            image
                .file()
                .set_len(self.media_size)
                .map_err(|e| Error::io(image.path(), e))?;
        }
        image.sync_all()?;
        Ok(self.listing())
    }

    fn abandon(mut self: Box<Self>) -> Vec<OutputFile> {
        let _ = self.writers.close();
        let _ = self.writers.image().sync_all();
        self.listing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_pieces_are_skipped_and_data_pieces_merged() {
        let mut data = vec![0u8; 5 * HOLE + 100];
        data[HOLE + 7] = 1;
        data[2 * HOLE] = 2;
        data[4 * HOLE + 3] = 3;
        data[5 * HOLE + 99] = 4;
        assert_eq!(
            data_runs(&data),
            vec![(HOLE, 2 * HOLE), (4 * HOLE, HOLE + 100)]
        );
        assert!(data_runs(&[0u8; 3 * HOLE]).is_empty());
    }
}
