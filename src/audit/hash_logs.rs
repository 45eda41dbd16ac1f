//! Hash logs (`BASE.md5`, …, one coreutils-style line each) and the shell commands that check
//! them, for the record.

use std::path::{Path, PathBuf};

use super::side_files::SideFiles;
use crate::error::Result;
use crate::hash::{log_line, MediaHashes};
use crate::sink::OutputFile;

/// The hash logs written and how to check each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashLogs {
    /// `BASE.md5`, …, in the order of [`MediaHashes::hex`].
    pub logs: Vec<PathBuf>,
    /// One shell command per log (`md5sum -c disk.md5`, `cat disk.001 disk.002 | …`).
    pub checks: Vec<String>,
}

/// Writes one log per digest in `digests`, next to `side`'s base. The logs name the single raw
/// image among `outputs`; otherwise (split segments, a device, only E01) they name stdin
/// (`-`), and the check command feeds the media (`size` bytes) from those outputs.
pub fn write(
    side: &SideFiles,
    digests: &MediaHashes,
    outputs: &[OutputFile],
    size: u64,
) -> Result<HashLogs> {
    let media_name = outputs
        .iter()
        .find(|o| o.kind == "raw")
        .and_then(|o| o.path.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "-".into());
    let feed = media_feed_command(outputs, size);
    let mut out = HashLogs::default();
    for (alg, _) in digests.hex() {
        let Some(digest) = digests.get(alg) else {
            continue;
        };
        let path = side.hash_log(alg);
        super::write_atomically(&path, log_line(digest, &media_name).as_bytes())?;
        let log_file = file_name(&path);
        out.checks.push(match &feed {
            None => format!("{} -c {log_file}", alg.checker()),
            Some(feed) => format!("{feed} | {} -c {log_file}", alg.checker()),
        });
        out.logs.push(path);
    }
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A shell pipeline that writes the media to stdout, when the hash log cannot name one file.
fn media_feed_command(outputs: &[OutputFile], size: u64) -> Option<String> {
    if outputs.iter().any(|o| o.kind == "raw") {
        return None;
    }
    let segments: Vec<&OutputFile> = outputs.iter().filter(|o| o.kind == "raw-segment").collect();
    if !segments.is_empty() {
        let names: Vec<String> = segments.iter().map(|o| file_name(&o.path)).collect();
        return Some(if names.len() <= 8 {
            format!("cat {}", names.join(" "))
        } else {
            let first = &names[0];
            let stem = first.strip_suffix(".001").unwrap_or(first);
            format!("cat {stem}.[0-9][0-9][0-9]")
        });
    }
    if let Some(dev) = outputs.iter().find(|o| o.kind == "device") {
        return Some(format!("head -c {size} {}", dev.path.display()));
    }
    if let Some(e01) = outputs.iter().find(|o| o.kind == "e01-segment") {
        // ewfexport prints its verdict to stdout after the data, hence the head.
        return Some(format!(
            "ewfexport -q -u -f raw -t - {} | head -c {size}",
            file_name(&e01.path)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;

    fn file(path: &str, kind: &str) -> OutputFile {
        OutputFile {
            path: path.into(),
            size: 0,
            kind: kind.into(),
        }
    }

    #[test]
    fn logs_name_the_raw_image_or_feed_the_media() {
        let dir = tempfile::tempdir().unwrap();
        let side = SideFiles::new(dir.path().join("disk"));
        let mut digests = MediaHashes::default();
        let mut h = HashAlgorithm::Md5.hasher();
        h.update(b"x");
        digests.set(HashAlgorithm::Md5, &h.finish());

        let raw = write(&side, &digests, &[file("d/disk.raw", "raw")], 1).unwrap();
        assert_eq!(raw.logs, vec![side.hash_log(HashAlgorithm::Md5)]);
        assert_eq!(raw.checks, vec!["md5sum -c disk.md5".to_string()]);
        let line = std::fs::read_to_string(&raw.logs[0]).unwrap();
        assert!(line.ends_with("  disk.raw\n"), "{line}");

        let dev = write(&side, &digests, &[file("/dev/sdz", "device")], 7).unwrap();
        assert_eq!(dev.checks, vec!["head -c 7 /dev/sdz | md5sum -c disk.md5"]);
        let line = std::fs::read_to_string(&dev.logs[0]).unwrap();
        assert!(line.ends_with("  -\n"), "{line}");

        let split: Vec<_> = (1..=9)
            .map(|i| file(&format!("disk.{i:03}"), "raw-segment"))
            .collect();
        let s = write(&side, &digests, &split, 9).unwrap();
        assert_eq!(
            s.checks,
            vec!["cat disk.[0-9][0-9][0-9] | md5sum -c disk.md5"]
        );
    }
}
