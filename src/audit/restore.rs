//! The record's `restore` section: the image a restore wrote, the hashes it was proven
//! against, and every target with its identity, what was written, its tail and its read-back.
//! Documented in docs/audit-record.md (schema `exhibit-audit/1.1`, optional section).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ClaimedHash;
use crate::source::Identity;

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreInfo {
    /// The path given (`-` for standard input).
    #[serde(with = "crate::text::path")]
    pub image: PathBuf,
    /// `raw`, `split-raw`, `device`, `e01`; absent for standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<crate::image::ImageFormat>,
    /// Its files, segments in order.
    #[serde(with = "crate::text::path::vec")]
    pub files: Vec<PathBuf>,
    /// Media bytes written to every target.
    pub media_size: u64,
    /// Every hash the image claims (its E01, its record, its hash logs, or `--expect-…`),
    /// against the image as read while writing.
    pub claimed_hashes: Vec<ClaimedHash>,
    /// What every target's read-back is compared with, in words.
    pub compared_with: String,
    /// Where the piece list that names differing ranges comes from (`disk.crc64`, or the
    /// image as read while writing).
    pub pieces_from: String,
    /// False with `--no-verify`: nothing was read back.
    pub verified: bool,
    /// Where the acquisition's unreadable runs come from; the record's `unreadable` lists
    /// them as target ranges (zeros on every target, not data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_from: Option<String>,
    /// Each target, in the order given.
    pub targets: Vec<RestoreTarget>,
}

/// One target of a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreTarget {
    /// Path as given.
    #[serde(with = "crate::text::path")]
    pub path: PathBuf,
    /// `device` or `file`.
    pub kind: crate::sink::target::TargetKind,
    /// sysfs identity (model, serial, WWID, …); empty for a file.
    pub identity: Identity,
    /// Its size in bytes when opened.
    pub size: u64,
    /// Logical sector size.
    pub logical_sector_size: u32,
    /// Physical sector size.
    pub physical_sector_size: u32,
    /// `written` (all media bytes written and synced), `not-finished` (the run stopped
    /// while writing it), `not-started`.
    pub status: String,
    /// Media bytes written.
    pub bytes_written: u64,
    /// Zero pieces of a file left as holes (`--sparse`).
    pub sparse: bool,
    /// The bytes after the media, when the target is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
    /// What reading it back found; absent when it was not read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_back: Option<ReadBack>,
}

/// The rest of a target larger than the media.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// First byte after the media.
    pub offset: u64,
    /// Bytes to the end of the target.
    pub length: u64,
    /// `left-as-it-was` or `zeroed` (`--wipe-tail`).
    pub action: String,
}

/// A target read back over the media length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadBack {
    /// `matches` (every hash compared is equal), `differs`.
    pub verdict: String,
    /// O_DIRECT reads (false where the file system refuses them: read through the cache).
    pub direct_io: bool,
    /// MD5, hex, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// SHA-1, hex, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// SHA-256, hex, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Media ranges whose pieces differ from the image's (whole pieces, merged).
    pub differing_ranges: Vec<ByteRange>,
    /// Ranges of the target that could not be read back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable_ranges: Vec<ByteRange>,
}

/// A byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Bytes.
    pub length: u64,
}
