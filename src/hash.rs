//! Media hashes: MD5, SHA-1 and SHA-256 over the image as written (unreadable sectors as the
//! zeros they were filled with), each on its own thread because each is one serial stream,
//! and hash logs in the coreutils format that `md5sum -c` / `sha256sum -c` accept.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::str::FromStr;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A hash algorithm exhibit computes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// MD5 (what E01 `hash` stores; still what courts ask for).
    Md5,
    /// SHA-1 (E01 `digest`).
    Sha1,
    /// SHA-256.
    Sha256,
}

impl HashAlgorithm {
    /// All three, in the order they are reported.
    pub const ALL: [HashAlgorithm; 3] = [
        HashAlgorithm::Md5,
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
    ];

    /// Lower-case name, also the hash log's extension (`md5`, `sha1`, `sha256`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
        }
    }

    /// The coreutils program that checks this algorithm's log.
    pub fn checker(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5sum",
            HashAlgorithm::Sha1 => "sha1sum",
            HashAlgorithm::Sha256 => "sha256sum",
        }
    }

    /// A fresh hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlgorithm::Md5 => Hasher::Md5(Md5::new()),
            HashAlgorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            HashAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "md5" => Ok(HashAlgorithm::Md5),
            "sha1" => Ok(HashAlgorithm::Sha1),
            "sha256" => Ok(HashAlgorithm::Sha256),
            other => Err(format!("unknown hash '{other}' (md5, sha1, sha256)")),
        }
    }
}

/// A running hash of one algorithm. Cloning copies the state (a few hundred bytes): a rescue
/// keeps copies to roll back to when a sector it already hashed is rescued later.
#[derive(Clone)]
pub enum Hasher {
    /// MD5 state.
    Md5(Md5),
    /// SHA-1 state.
    Sha1(Sha1),
    /// SHA-256 state.
    Sha256(Sha256),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The media hashes of one pass; `None` where that algorithm was not asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaHashes {
    /// MD5 digest.
    pub md5: Option<[u8; 16]>,
    /// SHA-1 digest.
    pub sha1: Option<[u8; 20]>,
    /// SHA-256 digest.
    pub sha256: Option<[u8; 32]>,
}

impl MediaHashes {
    /// Stores a finished digest under its algorithm.
    pub fn set(&mut self, algorithm: HashAlgorithm, digest: &[u8]) {
        match algorithm {
            HashAlgorithm::Md5 => self.md5 = digest.try_into().ok(),
            HashAlgorithm::Sha1 => self.sha1 = digest.try_into().ok(),
            HashAlgorithm::Sha256 => self.sha256 = digest.try_into().ok(),
        }
    }

    /// The digest of one algorithm, if computed.
    pub fn get(&self, algorithm: HashAlgorithm) -> Option<&[u8]> {
        match algorithm {
            HashAlgorithm::Md5 => self.md5.as_ref().map(|d| &d[..]),
            HashAlgorithm::Sha1 => self.sha1.as_ref().map(|d| &d[..]),
            HashAlgorithm::Sha256 => self.sha256.as_ref().map(|d| &d[..]),
        }
    }

    /// (algorithm, lower-case hex) for each computed digest.
    pub fn hex(&self) -> Vec<(HashAlgorithm, String)> {
        HashAlgorithm::ALL
            .iter()
            .filter_map(|&a| self.get(a).map(|d| (a, to_hex(d))))
            .collect()
    }
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses lower- or upper-case hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One line of a coreutils hash log: `HEX  NAME`. A name of `-` means "standard input", which
/// is how a log for split segments or an E01 says "pipe the media in" (`cat BASE.0* |
/// sha256sum -c BASE.sha256`).
///
/// The name goes in as its raw bytes (a Latin-1 name stays the file `md5sum -c` opens). A name
/// with a backslash, newline or carriage return is escaped as coreutils (9.x) itself writes it:
/// the line starts with `\` and those become `\\`, `\n`, `\r`; [`unescape_log_name`] reads it back.
pub fn log_line(digest: &[u8], name: &OsStr) -> Vec<u8> {
    let name = name.as_bytes();
    let escape = name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    let mut line = Vec::with_capacity(name.len() + digest.len() * 2 + 4);
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(to_hex(digest).as_bytes());
    line.extend_from_slice(b"  ");
    for &b in name {
        match b {
            b'\\' if escape => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(b),
        }
    }
    line.push(b'\n');
    line
}

/// The name of an escaped log line (one that started with `\`, see [`log_line`]): `\\`,
/// `\n` and `\r` back to the characters; any other backslash is kept as it is.
pub fn unescape_log_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let mut h = HashAlgorithm::Md5.hasher();
        h.update(b"abc");
        assert_eq!(to_hex(&h.finish()), "900150983cd24fb0d6963f7d28e17f72");
        let mut h = HashAlgorithm::Sha256.hasher();
        h.update(b"abc");
        assert_eq!(
            to_hex(&h.finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(from_hex("00ff").unwrap(), vec![0, 255]);
    }

    /// What `md5sum` (coreutils 9.1) writes for each name, taken from its own output.
    #[test]
    fn log_lines_escape_names_as_coreutils_does() {
        let d = from_hex("9dd4e461268c8034f5c8564e155c67a6").unwrap();
        let line = |n: &[u8]| log_line(&d, OsStr::from_bytes(n));
        let hex = "9dd4e461268c8034f5c8564e155c67a6";
        assert_eq!(line(b"disk.raw"), format!("{hex}  disk.raw\n").into_bytes());
        assert_eq!(line(b"-"), format!("{hex}  -\n").into_bytes());
        assert_eq!(
            line(b"it's a disk"),
            format!("{hex}  it's a disk\n").into_bytes()
        );
        assert_eq!(line(b"a\nb"), format!("\\{hex}  a\\nb\n").into_bytes());
        assert_eq!(line(b"c\\d"), format!("\\{hex}  c\\\\d\n").into_bytes());
        assert_eq!(line(b"e\rf"), format!("\\{hex}  e\\rf\n").into_bytes());
        assert_eq!(line(b"i\tj"), format!("{hex}  i\tj\n").into_bytes());
        let mut latin1 = format!("{hex}  g").into_bytes();
        latin1.extend_from_slice(b"\xffh\n");
        assert_eq!(line(b"g\xffh"), latin1);
        for name in ["a\nb", "c\\d", "e\rf", "x\\n\\\n"] {
            let l = line(name.as_bytes());
            let text = std::str::from_utf8(&l).unwrap();
            let written = text.trim_end_matches('\n').split_once("  ").unwrap().1;
            assert_eq!(unescape_log_name(written), name);
        }
    }
}
