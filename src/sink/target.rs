//! The one target-device opener, for every job that writes an image onto a block device
//! (`acquire --clone`, `rescue --target`). It refuses what would destroy data or not fit: a
//! path that is not a block device, a device in use (mounted, or held by device-mapper, md,
//! another exclusive opener), and a device smaller than the media. A target that overlaps the
//! source is refused before, by [`crate::source::Source::refuse_output_on_source`].

use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::image_file::ImageFile;
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
        return Err(Error::Refused(format!(
            "{} holds {size} bytes, the source {media_size}: the clone would not fit",
            path.display()
        )));
    }
    // The exclusive claim is the first descriptor's; a second O_EXCL open of the same device
    // would fail with EBUSY (the claim belongs to an open file), so this one is plain.
    Ok(ImageFile::new(path, buffered, ImageFile::open_direct(path)))
}
