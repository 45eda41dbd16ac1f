//! The one reader of side files (records, hash logs, piece lists, case files): a file named by
//! a user or by a record may be a FIFO (a read blocks forever), `/dev/zero` (a read never
//! ends and memory runs out) or a symbolic link planted beside the evidence. Every such file
//! is opened without following a final symlink and without blocking, checked to be a regular
//! file, and read up to a limit that fits what it can legitimately hold.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// A record holds the job's options, outputs and unreadable runs (runs past a few thousand go
/// to the map): 64 MiB is far above any real one.
pub const RECORD_LIMIT: u64 = 64 << 20;
/// A hash log holds one line per image file.
pub const HASH_LOG_LIMIT: u64 = 1 << 20;
/// A `--case` file holds five short fields.
pub const CASE_LIMIT: u64 = 1 << 20;
/// A piece list is 8 bytes per MiB of media: 1 GiB covers 128 TiB.
pub const PIECE_LIST_LIMIT: u64 = 1 << 30;
/// A rescue's map: a line per area, so millions of lines on a disk with scattered damage.
pub const MAP_LIMIT: u64 = 1 << 30;

/// Opens `path` for reading as a regular file: no final symlink followed, no blocking open of
/// a FIFO, and anything but a regular file refused (a device, a FIFO, a socket, a directory).
pub fn open_regular(path: &Path) -> Result<File> {
    open_checked(path, libc::O_NOFOLLOW, false)
}

/// Opens an image file for reading: a regular file, or a block device where `device` (a clone
/// device is a raw image). Symlinks are followed (evidence is often linked in from a share),
/// but a FIFO or a character device such as `/dev/zero` is refused without blocking.
pub fn open_media(path: &Path, device: bool) -> Result<File> {
    open_checked(path, 0, device)
}

fn open_checked(path: &Path, flags: i32, device: bool) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if flags & libc::O_NOFOLLOW != 0 => {
                not_regular(path, "a symbolic link")
            }
            _ => Error::io(path, e),
        })?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let ft = meta.file_type();
    use std::os::unix::fs::FileTypeExt;
    if !(ft.is_file() || device && ft.is_block_device()) {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(not_regular(path, what));
    }
    Ok(file)
}

/// The whole of the regular file `path`, refused when it holds more than `limit` bytes (it
/// is read to at most `limit + 1` bytes, so a file that grows while read is caught too).
pub fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let declared = file.metadata().map(|m| m.len()).unwrap_or(0);
    if declared > limit {
        return Err(too_large(path, limit));
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(bytes)
}

/// [`read_small`] as UTF-8 text.
pub fn read_small_text(path: &Path, limit: u64) -> Result<String> {
    utf8(path, read_small(path, limit)?)
}

/// The bytes of the side file `path` as UTF-8 text.
pub fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::Format {
        path: path.to_path_buf(),
        message: "is not UTF-8 text".into(),
    })
}

fn not_regular(path: &Path, what: &str) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: format!("is {what}, not a regular file; not read"),
    }
}

/// The refusal of a side file larger than `limit` (also for one in a bucket).
pub(crate) fn too_large(path: &Path, limit: u64) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: format!("is larger than {limit} bytes, more than such a file can hold; not read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_file_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        assert_eq!(read_small(&f, 5).unwrap(), b"hello");
        let e = read_small(&f, 4).unwrap_err().to_string();
        assert!(e.contains("larger than 4 bytes"), "{e}");
        let e = read_small(Path::new("/dev/zero"), 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a character device"), "{e}");
        let e = read_small(dir.path(), 10).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_small(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let e = read_small(&link, 10).unwrap_err().to_string();
        assert!(e.contains("a symbolic link"), "{e}");
    }
}
