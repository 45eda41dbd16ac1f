//! Where the expected hashes come from: the audit record, the coreutils hash logs beside the
//! image, and (for E01) the image's own `hash`/`digest` sections.

use std::path::{Path, PathBuf};

use crate::hash::{from_hex, HashAlgorithm};

/// One expected hash and where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The algorithm.
    pub algorithm: HashAlgorithm,
    /// Lower-case hex.
    pub hex: String,
    /// Where it came from, for messages (`disk.yaml`, `disk.md5`, `disk.E01 hash section`).
    pub source: String,
}

/// The file name of `p`, for messages.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Checks a hex digest's shape for `algorithm` and lower-cases it.
pub fn normal_hex(algorithm: HashAlgorithm, hex: &str) -> Option<String> {
    let want = match algorithm {
        HashAlgorithm::Md5 => 32,
        HashAlgorithm::Sha1 => 40,
        HashAlgorithm::Sha256 => 64,
    };
    let h = hex.trim();
    (h.len() == want && from_hex(h).is_some()).then(|| h.to_ascii_lowercase())
}

/// What one line of a hash log says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Hex digest, lower case.
    pub hex: String,
    /// The file it names (`-` = standard input, i.e. the media stream).
    pub name: String,
}

/// Parses a coreutils (`HEX  NAME`, `HEX *NAME`) or BSD (`MD5 (NAME) = HEX`) hash log for
/// `algorithm`. Lines that are neither are returned as errors (line number, text).
pub fn parse_log(algorithm: HashAlgorithm, text: &str) -> (Vec<LogEntry>, Vec<(usize, String)>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_end_matches('\r');
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let parsed = if let Some((hex, rest)) = l.split_once(' ') {
            let name = rest
                .strip_prefix(' ')
                .or_else(|| rest.strip_prefix('*'))
                .unwrap_or(rest);
            normal_hex(algorithm, hex).map(|hex| LogEntry {
                hex,
                name: name.to_string(),
            })
        } else {
            None
        };
        let parsed = parsed.or_else(|| {
            // BSD style: "SHA256 (name) = hex"
            let (head, hex) = l.rsplit_once(" = ")?;
            let open = head.find(" (")?;
            let name = head[open + 2..].strip_suffix(')')?;
            normal_hex(algorithm, hex).map(|hex| LogEntry {
                hex,
                name: name.to_string(),
            })
        });
        match parsed {
            Some(e) => entries.push(e),
            None => bad.push((i + 1, l.chars().take(120).collect())),
        }
    }
    (entries, bad)
}

/// `BASE` for an image or record path: the path without its last extension.
pub fn base_of(path: &Path) -> PathBuf {
    path.with_extension("")
}

/// `BASE.ext`.
pub fn side_file(base: &Path, ext: &str) -> PathBuf {
    crate::audit::with_extension(base, ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_in_both_styles() {
        let md5 = "900150983cd24fb0d6963f7d28e17f72";
        let text = format!(
            "{md5}  disk.raw\n{}  -\nMD5 (disk.raw) = {md5}\n\ngarbage here\n",
            md5.to_uppercase()
        );
        let (e, bad) = parse_log(HashAlgorithm::Md5, &text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "disk.raw");
        assert_eq!(e[1].hex, md5);
        assert_eq!(e[1].name, "-");
        assert_eq!(e[2].name, "disk.raw");
        assert_eq!(bad, vec![(5, "garbage here".to_string())]);
        let (e, bad) = parse_log(HashAlgorithm::Sha1, &format!("{md5}  x\n"));
        assert!(e.is_empty());
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn bases() {
        assert_eq!(base_of(Path::new("a/disk.E01")), PathBuf::from("a/disk"));
        assert_eq!(base_of(Path::new("disk.v2.raw")), PathBuf::from("disk.v2"));
        assert_eq!(
            side_file(Path::new("a/disk"), "md5"),
            PathBuf::from("a/disk.md5")
        );
    }
}
