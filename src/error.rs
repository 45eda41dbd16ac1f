//! Errors that stop a job. An unreadable sector is *not* one of them: it is data, kept in the
//! sector map and the record (see [`crate::map`]). What lands here is a real failure: a refused
//! request, an option that makes no sense, an output that cannot be written, a source that
//! vanished, or an interruption.

use std::io;
use std::path::PathBuf;

/// Everything that can make a job fail, with the context an examiner needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request would harm evidence or overwrite something; nothing was written.
    #[error("refused: {0}")]
    Refused(String),

    /// An option or argument that cannot work.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// Opening, inspecting or creating a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or device concerned.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },

    /// Reading the source failed in a way that is not an unreadable sector (the device went
    /// away, the kernel refused the request).
    #[error("reading {} at byte {offset}: {source}", path.display())]
    Read {
        /// The source.
        path: PathBuf,
        /// Byte offset of the failed request.
        offset: u64,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },

    /// The source stopped answering: it vanished (unplugged, its loop device's backing file
    /// unreachable), or nothing read within the bound set by `--give-up-after` /
    /// `--give-up-time`. Everything from `offset` on is left unread (`?` in the map).
    #[error("source stopped responding at byte {offset}: {}: {why}", path.display())]
    SourceStopped {
        /// The source.
        path: PathBuf,
        /// Where the failing stretch began.
        offset: u64,
        /// Why it is taken as gone.
        why: String,
    },

    /// Writing an output failed (target full, target vanished).
    #[error("writing {} at byte {offset}: {source}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// Byte offset within that file.
        offset: u64,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },

    /// A stored file (map, record, image) is not what it claims to be.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// Media bytes of an image that cannot be decoded (bad checksum, bad zlib stream, missing
    /// segment): an error for exactly that range, never zeros or garbage passed off as data.
    #[error("media bytes {}..{} cannot be read from the image: {detail}", range.start, range.end)]
    Damaged {
        /// The media bytes concerned.
        range: std::ops::Range<u64>,
        /// Where and what (segment, section, offset, chunk, fault).
        detail: String,
    },

    /// SIGINT or SIGTERM arrived; the job stopped early and says so.
    #[error("interrupted by {0}")]
    Interrupted(&'static str),

    /// A worker thread died; a bug, reported instead of hidden.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
