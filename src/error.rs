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

    /// An object store (`s3://`) refused or failed a request, after the retries that could
    /// help: what was asked of which object, and what the server or the network said (never
    /// a secret).
    #[error("{url}: {message}")]
    Storage {
        /// The object or bucket concerned (`s3://BUCKET/KEY`).
        url: String,
        /// What failed.
        message: String,
    },

    /// SIGINT or SIGTERM arrived; the job stopped early and says so.
    #[error("interrupted by {0}")]
    Interrupted(&'static str),

    /// The job ended (with `error`, or completed when there is none) but its record could
    /// not be updated to say so: the record on disk still says `running`.
    #[error("{}", record_not_updated(error.as_deref(), record, why))]
    RecordNotUpdated {
        /// Why the job failed, if it did.
        error: Option<Box<Error>>,
        /// The record (`BASE.yaml`).
        record: PathBuf,
        /// Why it could not be written.
        why: String,
    },

    /// A worker thread died; a bug, reported instead of hidden.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The error a failed job ends with: `self` when its record was `written`, else
    /// [`Error::RecordNotUpdated`] around it, so that the examiner hears that the record on
    /// disk is stale.
    pub fn or_unrecorded(self, record: &std::path::Path, written: Result<()>) -> Error {
        match written {
            Ok(()) => self,
            Err(why) => Error::not_recorded(Some(self), record, why),
        }
    }

    /// For a job that completed: `written`, or [`Error::RecordNotUpdated`] when it failed.
    pub fn recorded(record: &std::path::Path, written: Result<()>) -> Result<()> {
        written.map_err(|why| Error::not_recorded(None, record, why))
    }

    fn not_recorded(error: Option<Error>, record: &std::path::Path, why: Error) -> Error {
        Error::RecordNotUpdated {
            error: error.map(Box::new),
            record: record.to_path_buf(),
            why: match &why {
                Error::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

fn record_not_updated(error: Option<&Error>, record: &std::path::Path, why: &str) -> String {
    let record = record.display();
    match error {
        Some(e) => format!(
            "{e}; and the record {record} could not be updated ({why}): it still says running"
        ),
        None => format!(
            "the run completed, but the record {record} could not be updated ({why}): it still \
             says running"
        ),
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
