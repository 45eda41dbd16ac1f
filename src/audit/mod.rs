//! The audit record (`BASE.yaml`): what a court or a colleague reads about an acquisition.
//! Schema `exhibit-audit/1.1`, documented field by field in docs/audit-record.md. It is written
//! atomically (temporary file, fsync, rename), first when the job starts (status `running`, so
//! that a run killed outright never leaves a record that looks finished) and again at the end.
//!
//! Every job builds its record the same way: [`RecordBuilder::start`] from the source, the
//! options, the case and the command line; the job adds what it learned; [`RecordBuilder::finish`]
//! ends it with an [`Outcome`], which also gives the exit code ([`exit`]) and what to do next.
//! The files beside the image are named by [`SideFiles`]; hash logs are written by
//! [`hash_logs::write`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::case::CaseMetadata;
use crate::error::{Error, Result};
use crate::sink::OutputFile;
use crate::source::{Identity, SourceKind};

pub mod hash_logs;
mod host;
mod outcome;
mod record;
pub mod restore;
pub mod side_files;
pub mod yaml;

pub use crate::exclusive::write_atomically;
pub use outcome::{exit, Outcome, RESUME_GUIDANCE};
pub use record::{JobKind, RecordBuilder, Started};
pub use restore::{ByteRange, ReadBack, RestoreInfo, RestoreTarget, Tail};
pub use side_files::{with_extension, write_map, SideFiles};

/// The schema name and version written in every record. 1.1 added `source.live_use`,
/// `source.identity.transport`, `source.drive`, `partitions`, conversions (`converted_from`,
/// `complete-with-findings`) and restores (`restore`).
pub const SCHEMA: &str = "exhibit-audit/1.1";
/// The schema's name and major version: records of every `exhibit-audit/1.x` are read.
pub const SCHEMA_MAJOR: &str = "exhibit-audit/1";

/// The whole record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The program that made the record.
    pub tool: ToolInfo,
    /// argv exactly as given.
    pub command_line: Vec<String>,
    /// The options in effect, defaults included.
    pub options: serde_yaml::Value,
    /// The machine it ran on.
    pub host: HostInfo,
    /// Case metadata.
    pub case: CaseMetadata,
    /// When.
    pub times: Times,
    /// What was read.
    pub source: SourceInfo,
    /// The source's partition table as exhibit's own parser reads it (the shape `info` shows).
    /// Absent: not read (a conversion, an older record); `Some(None)`, written `null`: the
    /// source has none, or it could not be read ([`AuditRecord::partitions_error`] says why).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "read_or_not")]
    pub partitions: Option<Option<crate::partition::PartitionTable>>,
    /// Why the partition table could not be read (never fatal: the pass reads every sector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_error: Option<String>,
    /// How it was read.
    pub reader: Option<ReaderInfo>,
    /// Every file written, with its size.
    pub outputs: Vec<OutputFile>,
    /// Media hashes (hex) and what they cover.
    pub hashes: Option<HashInfo>,
    /// Unreadable sectors.
    pub unreadable: UnreadableInfo,
    /// A loud note when unreadable runs could not be written to the E01 `error2` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_not_in_e01: Option<String>,
    /// The CRC-64 piece list beside the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pieces: Option<PiecesInfo>,
    /// Speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// Every run of a resumed rescue, oldest first (kept in its map), this one last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunInfo>,
    /// For a conversion: the image read, what it claims and whether the bytes read hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<ConvertedFrom>,
    /// For a restore: the image written, the hashes it was proven against, every target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreInfo>,
    /// How it ended.
    pub outcome: OutcomeInfo,
}

/// `partitions`: absent when not read, `null` when read and there is none.
mod read_or_not {
    use crate::partition::PartitionTable;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        v: &Option<Option<PartitionTable>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(found) => found.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<PartitionTable>>, D::Error> {
        Option::<PartitionTable>::deserialize(d).map(Some)
    }
}

/// One run of a rescue job, as its map remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// When it started (UTC).
    pub started: String,
    /// When it last saved the map (UTC).
    pub ended: String,
    /// The source it read, as `exhibit-source:` in the map says (size, path, model, serial,
    /// WWID, a loop device's backing file, a file's device and inode); "unknown" for a run
    /// of GNU ddrescue or an older exhibit.
    pub source: String,
    /// Bytes it rescued (finished in the map by this run).
    pub rescued_bytes: u64,
}

/// The image a conversion read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertedFrom {
    /// The path given.
    #[serde(with = "crate::text::path")]
    pub image: PathBuf,
    /// `raw`, `split-raw`, `device`, `e01`.
    pub format: crate::image::ImageFormat,
    /// Its files, segments in order.
    #[serde(with = "crate::text::path::vec")]
    pub files: Vec<PathBuf>,
    /// Every hash the image claims (stored in the E01, its record, its hash logs), with the
    /// value of the bytes read.
    pub claimed_hashes: Vec<ClaimedHash>,
    /// True when every claimed hash matches, false when one differs, absent when the image
    /// claims none.
    pub hashes_match: Option<bool>,
    /// Damage found while reading (chunks that failed their checksum or did not decode,
    /// written as zeros and listed as unreadable), a broken structure, side files that could
    /// not be used.
    pub problems: Vec<String>,
    /// Where the unreadable runs of the source acquisition came from (its record, or the E01
    /// `error2` section); absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_from: Option<String>,
}

/// One hash an image claims, against the bytes read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedHash {
    /// `md5`, `sha1`, `sha256`.
    pub algorithm: crate::hash::HashAlgorithm,
    /// Where the claim is (`disk.E01 (stored MD5)`, `disk.yaml`, `disk.md5`).
    pub source: String,
    /// The claimed value, hex.
    pub claimed: String,
    /// The value of the bytes read, hex.
    pub computed: String,
    /// The two are equal.
    pub matches: bool,
}

/// Tool identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// `exhibit`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// `git describe` of the build.
    pub git_revision: String,
}

impl ToolInfo {
    /// This build.
    pub fn current() -> Self {
        ToolInfo {
            name: crate::TOOL_NAME.into(),
            version: crate::VERSION.into(),
            git_revision: crate::GIT_REVISION.into(),
        }
    }
}

/// Host identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub name: String,
    /// Kernel (`uname -srm`).
    pub kernel: String,
    /// OS (`PRETTY_NAME` of /etc/os-release).
    pub os: String,
}

/// Start and end, UTC, with the host's offset from UTC at the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Times {
    /// RFC 3339, UTC.
    pub started_utc: String,
    /// RFC 3339, UTC; absent while running.
    pub finished_utc: Option<String>,
    /// Host's UTC offset, `+HH:MM`.
    pub host_utc_offset: String,
    /// Wall time in seconds.
    pub duration_seconds: Option<f64>,
}

/// The source as opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Path as given.
    #[serde(with = "crate::text::path")]
    pub path: PathBuf,
    /// Disk, partition or file.
    pub kind: SourceKind,
    /// Bytes acquired.
    pub size: u64,
    /// Logical sector size.
    pub logical_sector_size: u32,
    /// Physical sector size.
    pub physical_sector_size: u32,
    /// sysfs identity.
    pub identity: Identity,
    /// The kernel's read-only flag on the device when the read started (after
    /// `--set-readonly`, if given); absent for files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_read_only: Option<bool>,
    /// How the device was in use when the job started (mounted, held, swap) and why the job
    /// went on anyway; absent when it was not in use (and for files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_use: Option<crate::device::LiveUse>,
    /// What the drive itself says (IDENTIFY through read-only ATA or NVMe commands): its
    /// identity, the current, native and DCO maximum sectors, the HPA/DCO verdict and the raw
    /// identify data as hex; absent for files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive: Option<crate::device::DriveReport>,
}

/// The read engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderInfo {
    /// `uring` or `sync`.
    pub engine: crate::reader::EngineKind,
    /// Why that engine.
    pub engine_reason: String,
    /// O_DIRECT on the source.
    pub direct_io: bool,
    /// Bytes per read.
    pub block_size: usize,
    /// Reads in flight.
    pub queue_depth: usize,
    /// Retries of a failing sector.
    pub retries: u32,
}

/// Media hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashInfo {
    /// MD5, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// SHA-1, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// SHA-256, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What the hashes cover, in words.
    pub covers: String,
    /// Bytes hashed.
    pub bytes: u64,
    /// Sectors filled with zeros inside the hashed bytes.
    pub zero_filled_sectors: u64,
    /// Hash log files written.
    #[serde(with = "crate::text::path::vec")]
    pub logs: Vec<PathBuf>,
    /// Shell commands that check the logs.
    pub check: Vec<String>,
}

impl HashInfo {
    /// The record's hash block for an image of `bytes` bytes that holds `bad_bytes` bytes of
    /// zero-filled unreadable sectors; `how` says how the rest got there (`read`, `rescued`).
    pub fn new(
        hashes: &crate::hash::MediaHashes,
        bytes: u64,
        bad_bytes: u64,
        zero_filled_sectors: u64,
        how: &str,
        logs: Vec<PathBuf>,
        check: Vec<String>,
    ) -> Self {
        use crate::hash::HashAlgorithm;
        let hex = |a| hashes.get(a).map(crate::hash::to_hex);
        HashInfo {
            md5: hex(HashAlgorithm::Md5),
            sha1: hex(HashAlgorithm::Sha1),
            sha256: hex(HashAlgorithm::Sha256),
            covers: if bad_bytes == 0 {
                format!("all {bytes} bytes of the source, as {how}")
            } else {
                format!(
                    "the image as written: {bytes} bytes, of which {zero_filled_sectors} unreadable sectors ({bad_bytes} bytes) are filled with zeros"
                )
            },
            bytes,
            zero_filled_sectors,
            logs,
            check,
        }
    }
}

/// Unreadable sectors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableInfo {
    /// Number of sectors filled with zeros.
    pub sectors: u64,
    /// Bytes filled with zeros.
    pub bytes: u64,
    /// The sector map file (GNU ddrescue format).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::text::path::option"
    )]
    pub map: Option<PathBuf>,
    /// Each unreadable run.
    pub runs: Vec<UnreadableRun>,
}

/// One unreadable run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableRun {
    /// First sector (logical sector size).
    pub first_sector: u64,
    /// Sectors in the run.
    pub sector_count: u64,
    /// Byte offset.
    pub offset: u64,
    /// Bytes.
    pub length: u64,
    /// errno of the last failed read.
    pub errno: i32,
    /// Its symbolic name (`EIO`, `ENODATA`).
    pub error: String,
    /// Failed reads of each sector alone.
    pub attempts: u32,
}

/// The piece list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiecesInfo {
    /// File name.
    #[serde(with = "crate::text::path")]
    pub file: PathBuf,
    /// Bytes per piece.
    pub piece_size: u32,
    /// `crc-64/xz`.
    pub algorithm: String,
}

/// Speed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Bytes read.
    pub bytes: u64,
    /// Seconds from the first read to the last output synced.
    pub seconds: f64,
    /// MB/s (10^6 bytes per second).
    pub megabytes_per_second: f64,
    /// CPU seconds by stage: `reader`, `hash-md5`, `hash-sha1`, `hash-sha256`, `pieces`,
    /// `sink-raw`, `sink-e01` (the E01 writer thread), `other` (E01 compression workers,
    /// progress, set-up and closing) and `total`.
    #[serde(default)]
    pub cpu_seconds: std::collections::BTreeMap<String, f64>,
}

impl Throughput {
    /// `bytes` in `seconds`, with the CPU seconds by stage.
    pub fn new(
        bytes: u64,
        seconds: f64,
        cpu_seconds: std::collections::BTreeMap<String, f64>,
    ) -> Self {
        Throughput {
            bytes,
            seconds,
            megabytes_per_second: if seconds > 0.0 {
                bytes as f64 / seconds / 1e6
            } else {
                0.0
            },
            cpu_seconds,
        }
    }
}

/// How the job ended, as the record says it (built from an [`Outcome`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeInfo {
    /// `running`, `complete`, `complete-with-unreadable-sectors`, `complete-with-findings`,
    /// `failed`, `interrupted`.
    pub status: String,
    /// The process exit code that goes with it.
    pub exit_code: Option<i32>,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditRecord {
    /// YAML text.
    pub fn to_yaml(&self) -> String {
        let body = yaml::to_string(self).unwrap_or_else(|e| format!("error: {e}\n"));
        format!("# exhibit acquisition record ({SCHEMA}); see docs/audit-record.md\n{body}")
    }

    /// Reads a record.
    pub fn read(path: &Path) -> Result<Self> {
        let text = crate::small_file::read_small_text(path, crate::small_file::RECORD_LIMIT)?;
        Self::from_text(&text, path)
    }

    /// A record from its text, read from `path` (a local file or an object).
    pub fn from_text(text: &str, path: &Path) -> Result<Self> {
        let record: AuditRecord = serde_yaml::from_str(text).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("not an exhibit record: {e}"),
        })?;
        record.check_schema(path)?;
        Ok(record)
    }

    /// Refuses a record of another schema major version: its fields may mean something else,
    /// and a check against them could pass or fail for the wrong reason. Minor versions
    /// (`exhibit-audit/1.x`) only add fields, which serde ignores.
    fn check_schema(&self, path: &Path) -> Result<()> {
        let (name, major) = SCHEMA_MAJOR.split_once('/').unwrap_or((SCHEMA_MAJOR, ""));
        let ours = self
            .schema
            .strip_prefix(name)
            .and_then(|v| v.strip_prefix('/'))
            .map(|v| v.split('.').next() == Some(major))
            .unwrap_or(false);
        if ours {
            return Ok(());
        }
        Err(Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "record schema '{}' is not {SCHEMA_MAJOR}: written by another version of exhibit or \
                 another tool; read it with that version",
                crate::text::printable(&self.schema)
            ),
        })
    }

    /// Writes the record atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomically(path, self.to_yaml().as_bytes())
    }
}

/// Symbolic name of an errno.
pub fn errno_name(errno: i32) -> String {
    match errno {
        libc::EIO => "EIO",
        libc::ENODATA => "ENODATA",
        libc::EILSEQ => "EILSEQ",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ENOLINK => "ENOLINK",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::EBADMSG => "EBADMSG",
        libc::ECOMM => "ECOMM",
        libc::EPROTO => "EPROTO",
        _ => return format!("errno {errno}"),
    }
    .to_string()
}
