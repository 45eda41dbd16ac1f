//! Stale outputs: with `--overwrite`, a run writes the files of its own layout, but an earlier
//! run on the same BASE may have written others (more split segments, a single raw file where
//! this run splits, more E01 segments, a hash log this run does not compute). Left beside the
//! new set they make it lie: `verify BASE.001` reads the old tail and fails a good
//! acquisition. After a completed run, every regular file with one of exhibit's own names for
//! BASE that the run did not write is removed; nothing else is ever touched.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// True for an extension exhibit writes for a BASE: `raw`, a split segment (`001` …, three or
/// more digits, not all zeros), a hash log or the piece list.
pub fn is_own_extension(ext: &str) -> bool {
    let b = ext.as_bytes();
    let split = b.len() >= 3 && b.iter().all(u8::is_ascii_digit) && b.iter().any(|&c| c != b'0');
    split || matches!(ext, "raw" | "md5" | "sha1" | "sha256" | "crc64")
}

/// True for an E01 segment name (`E01` … `E99`, `EAA` … `ZZZ`). Such a name (`.DOC`, `.TXT`)
/// is only taken for a segment when the file also starts with the EWF signature.
pub fn is_e01_extension(ext: &str) -> bool {
    let b = ext.as_bytes();
    let numbered =
        b.len() == 3 && b[0] == b'E' && b[1..].iter().all(u8::is_ascii_digit) && &b[1..] != b"00";
    let lettered = b.len() == 3 && b[0] >= b'E' && b.iter().all(u8::is_ascii_uppercase);
    numbered || lettered
}

/// The files named `BASE.<own extension>` beside BASE that are not in `keep` (compared by
/// file name: they are all in BASE's directory) and are not `protect` (device, inode: the
/// source, which must never be removed).
pub fn stale_files(
    base: &Path,
    keep: &[PathBuf],
    protect: Option<(u64, u64)>,
) -> Result<Vec<PathBuf>> {
    if crate::s3::url::is_s3_os(base.as_os_str()) {
        return stale_objects(base, keep);
    }
    let dir = base
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(stem) = base.file_name() else {
        return Ok(Vec::new());
    };
    let mut prefix = stem.to_os_string();
    prefix.push(".");
    let prefix = prefix.as_encoded_bytes().to_vec();
    let kept: Vec<&std::ffi::OsStr> = keep.iter().filter_map(|p| p.file_name()).collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(ext) = name.as_encoded_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let ext = std::str::from_utf8(ext).unwrap_or("");
        let own = is_own_extension(ext)
            || is_e01_extension(ext) && crate::image::looks_like_e01(&entry.path());
        if !own || kept.contains(&name.as_os_str()) {
            continue;
        }
        // Only a regular file exhibit could have written: never a symlink, device or directory.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.file_type().is_file() || protect == Some((meta.dev(), meta.ino())) {
            continue;
        }
        found.push(dir.join(&name));
    }
    found.sort();
    Ok(found)
}

/// Removes [`stale_files`]; returns what was removed.
pub fn remove_stale(
    base: &Path,
    keep: &[PathBuf],
    protect: Option<(u64, u64)>,
) -> Result<Vec<PathBuf>> {
    let stale = stale_files(base, keep, protect)?;
    for p in &stale {
        match crate::s3::store::route(p) {
            Some((store, key)) => store.client.delete_object(&key)?,
            None => std::fs::remove_file(p).map_err(|e| Error::io(p, e))?,
        }
    }
    Ok(stale)
}

/// [`stale_files`] of an `s3://` BASE: its objects with an own extension not in `keep`
/// (none before the set's store is registered: nothing can be removed then either).
fn stale_objects(base: &Path, keep: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let Some((store, key)) = crate::s3::store::route(base) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{key}.");
    let mut found = Vec::new();
    for object in store.client.list_objects(&prefix, 100_000)? {
        let ext = &object.key[prefix.len()..];
        let path = PathBuf::from(store.client.url_of(&object.key));
        if (is_own_extension(ext) || is_e01_extension(ext)) && !keep.contains(&path) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_names_not_kept_and_not_the_source_are_stale() {
        assert!(is_own_extension("001") && is_own_extension("1000") && is_own_extension("raw"));
        assert!(is_e01_extension("E07") && is_e01_extension("EAB") && is_own_extension("sha1"));
        for other in [
            "000", "01", "yaml", "map", "E00", "txt", "e01", "Eab", "docx",
        ] {
            assert!(
                !is_own_extension(other) && !is_e01_extension(other),
                "{other}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("ev");
        for n in [
            "ev.001", "ev.002", "ev.003", "ev.raw", "ev.yaml", "ev.notes", "evx.004",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        // A user's ev.DOC is not an E01 segment; an old ev.E02 is.
        std::fs::write(dir.path().join("ev.DOC"), b"letter").unwrap();
        std::fs::write(dir.path().join("ev.E02"), b"EVF\x09\x0d\x0a\xff\x00rest").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("ev.E01")).unwrap();
        let source = std::fs::metadata(dir.path().join("ev.003")).unwrap();
        let keep = vec![dir.path().join("ev.001")];
        let stale = stale_files(&base, &keep, Some((source.dev(), source.ino()))).unwrap();
        let names = ["ev.002", "ev.E02", "ev.raw"].map(|n| dir.path().join(n));
        assert_eq!(stale, names);
    }
}
