//! The files beside an image, all named `BASE` + extension: the record (`BASE.yaml`), the map
//! (`BASE.map`), the piece list (`BASE.crc64`), the hash logs (`BASE.md5`, …), a raw image
//! (`BASE.raw`) and the lock of a run (`BASE.lock`). Every job names them through here.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::hash::HashAlgorithm;
use crate::map::SectorMap;

/// `BASE` + `.ext`: appended, never replacing an extension (`disk.v2` gives `disk.v2.map`).
pub fn with_extension(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The side files of one output base name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideFiles {
    base: PathBuf,
}

impl SideFiles {
    /// The side files of `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        SideFiles { base: base.into() }
    }

    /// `BASE`.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `BASE.yaml`, the audit record.
    pub fn record(&self) -> PathBuf {
        with_extension(&self.base, "yaml")
    }

    /// `BASE.map`, the sector map.
    pub fn map(&self) -> PathBuf {
        with_extension(&self.base, "map")
    }

    /// `BASE.crc64`, the piece list.
    pub fn pieces(&self) -> PathBuf {
        with_extension(&self.base, "crc64")
    }

    /// `BASE.lock`, held while a run writes under `BASE` (see [`crate::exclusive::BaseLock`]).
    pub fn lock(&self) -> PathBuf {
        with_extension(&self.base, "lock")
    }

    /// `BASE.raw`, a single raw image.
    pub fn raw(&self) -> PathBuf {
        with_extension(&self.base, "raw")
    }

    /// `BASE.md5`, `BASE.sha1`, `BASE.sha256`: the hash log of `alg`.
    pub fn hash_log(&self, alg: HashAlgorithm) -> PathBuf {
        with_extension(&self.base, alg.name())
    }

    /// The record, the map, the piece list and the hash logs of `hashes`: everything a job
    /// refuses to overwrite.
    pub fn all(&self, hashes: &[HashAlgorithm]) -> Vec<PathBuf> {
        let mut v = vec![self.record(), self.map(), self.pieces()];
        v.extend(hashes.iter().map(|&a| self.hash_log(a)));
        v
    }
}

/// Writes `map` to `path` atomically in GNU ddrescue's format, its header naming this build,
/// followed by `header` lines.
pub fn write_map(map: &SectorMap, path: &Path, header: &[String]) -> Result<()> {
    let mut lines = vec![format!(
        "Mapfile. Created by {} {} ({})",
        crate::TOOL_NAME,
        crate::VERSION,
        crate::GIT_REVISION
    )];
    lines.extend(header.iter().cloned());
    super::write_atomically(path, map.to_mapfile(&lines).as_bytes())
}
