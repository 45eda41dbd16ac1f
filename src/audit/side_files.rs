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

impl SideFiles {
    /// The files in `BASE`'s directory named like a segment of `BASE` (by name only, also
    /// links and things that are not files): split raw segments (`BASE.001`, …) with `split`,
    /// E01 segments (`BASE.E01` … `BASE.ZZZ`) with `e01`. A run that writes segments may
    /// create, replace or remove any of them, and how many is not known before the end.
    pub fn segment_names(&self, split: bool, e01: bool) -> Result<Vec<PathBuf>> {
        let dir = self
            .base
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let Some(prefix) = self.base.file_name().map(|n| n.as_encoded_bytes().to_vec()) else {
            return Ok(Vec::new());
        };
        let entries = std::fs::read_dir(dir).map_err(|e| crate::error::Error::io(dir, e))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(ext) = name
                .as_encoded_bytes()
                .strip_prefix(prefix.as_slice())
                .and_then(|rest| rest.strip_prefix(b"."))
            else {
                continue;
            };
            if (split && is_split_extension(ext)) || (e01 && is_e01_extension(ext)) {
                found.push(dir.join(&name));
            }
        }
        found.sort();
        Ok(found)
    }
}

/// `001`, `002`, … `1000`: three digits or more.
fn is_split_extension(ext: &[u8]) -> bool {
    ext.len() >= 3 && ext.iter().all(u8::is_ascii_digit)
}

/// `E01` … `E99`, `EAA` … `ZZZ` (see [`crate::ewf::naming`]).
fn is_e01_extension(ext: &[u8]) -> bool {
    match ext {
        [b'E', a, b] if a.is_ascii_digit() && b.is_ascii_digit() => (a, b) != (&b'0', &b'0'),
        [a, b, c] => (b'E'..=b'Z').contains(a) && b.is_ascii_uppercase() && c.is_ascii_uppercase(),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_those_a_run_may_write() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "disk.001",
            "disk.0042",
            "disk.E01",
            "disk.EAA",
            "disk.ZZZ",
            "disk.E00",
            "disk.e01",
            "disk.img",
            "disk.01",
            "disk.raw",
            "disk2.E01",
            "other.001",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let side = SideFiles::new(dir.path().join("disk"));
        let got = |split, e01| -> Vec<String> {
            side.segment_names(split, e01)
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(got(true, false), ["disk.001", "disk.0042"]);
        assert_eq!(got(false, true), ["disk.E01", "disk.EAA", "disk.ZZZ"]);
        assert!(got(false, false).is_empty());
        // Each E01 name the writer can produce is recognised.
        for n in [1, 99, 100, 775, 776, crate::ewf::naming::MAX_SEGMENTS] {
            let ext = crate::ewf::naming::extension(n).unwrap();
            assert!(is_e01_extension(ext.as_bytes()), "{ext}");
        }
    }
}
