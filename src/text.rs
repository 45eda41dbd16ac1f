//! Text that leaves exhibit for a person or another program: strings from hostile places (a
//! record, an E01 header, a file name) made safe for a terminal, and paths that are not UTF-8
//! (Latin-1 names on old evidence) written into the record and JSON without failing.
//!
//! One rule each, used everywhere: [`printable`] for what is printed, [`path_text`] and the
//! [`path`] serde helpers for what is stored, [`shell_quote`] for a name in a shell command.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// `s` as it may be printed on a terminal: control characters (C0, DEL, C1, which carry ANSI
/// and OSC sequences that retitle, recolour or rewrite a terminal) and the bidirectional
/// overrides (which reorder what is shown) become visible escapes, `\n`, `\x1b` or `\u{202e}`.
/// Everything else, backslashes included, is shown as it is; `--json` has the exact text.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if let Some(e) = match c {
            '\n' => Some("\\n"),
            '\t' => Some("\\t"),
            '\r' => Some("\\r"),
            _ => None,
        } {
            out.push_str(e);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// A path as [`printable`] text (invalid UTF-8 bytes as `\xNN`, see [`path_text`]).
pub fn printable_path(p: &Path) -> String {
    printable(&path_text(p)).into_owned()
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A path as text: itself when it is UTF-8; otherwise each byte that is not part of valid
/// UTF-8 as `\xNN` (lower-case hex), the rest as it is. Escaped rather than replaced by U+FFFD
/// so that the record keeps the exact name (two Latin-1 names never read the same) and
/// [`path_from_text`] gives the original bytes back.
pub fn path_text(p: &Path) -> Cow<'_, str> {
    let bytes = p.as_os_str().as_bytes();
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`path_text`]: `\xNN` escapes are turned back into bytes when, and only
/// when, the result is not UTF-8 (which is exactly what [`path_text`] escapes). A UTF-8 name
/// that really contains the four characters `\xe9` is then the one name read differently;
/// names on Linux almost never do.
pub fn path_from_text(s: &str) -> PathBuf {
    if !s.contains("\\x") {
        return PathBuf::from(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    if std::str::from_utf8(&out).is_ok() {
        PathBuf::from(s)
    } else {
        PathBuf::from(OsString::from_vec(out))
    }
}

/// serde helpers for `PathBuf` fields through [`path_text`] / [`path_from_text`]:
/// `#[serde(with = "crate::text::path")]`, and [`path::option`], [`path::vec`] for
/// `Option<PathBuf>` and `Vec<PathBuf>`. serde's own impl fails on a non-UTF-8 path, which
/// would lose the whole record.
pub mod path {
    use super::{path_from_text, path_text};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::path::{Path, PathBuf};

    /// Serializes a path as text.
    pub fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&path_text(p))
    }

    /// Reads a path written by [`serialize`] (or by serde's own impl).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        Ok(path_from_text(&String::deserialize(d)?))
    }

    /// For `Option<PathBuf>`.
    pub mod option {
        use super::*;

        /// Serializes an optional path as text.
        pub fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
            match p {
                Some(p) => s.serialize_some(&*path_text(p)),
                None => s.serialize_none(),
            }
        }

        /// Reads an optional path.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
            Ok(Option::<String>::deserialize(d)?.map(|s| path_from_text(&s)))
        }
    }

    /// For `Vec<PathBuf>`.
    pub mod vec {
        use super::*;
        use serde::ser::SerializeSeq;

        /// Serializes paths as text.
        pub fn serialize<S: Serializer>(p: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(p.len()))?;
            for p in p {
                seq.serialize_element(&*path_text(p))?;
            }
            seq.end()
        }

        /// Reads paths.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
            Ok(Vec::<String>::deserialize(d)?
                .iter()
                .map(|s| path_from_text(s))
                .collect())
        }
    }
}

/// `word` as one word of a **bash** command line, for the commands the record tells a person
/// to paste (`hashes.check`). A word of only `[A-Za-z0-9._/+=:,@%^-]` is left as it is (so
/// ordinary names read as before); any other UTF-8 word without control characters goes in
/// POSIX single quotes (`'it'\''s'`); a word that is not UTF-8 or holds control characters
/// (a newline, an escape sequence, a bidirectional override) uses bash's ANSI-C quoting,
/// `$'caf\xe9'`, because the record is UTF-8 YAML and cannot carry the raw bytes. `$'…'` is
/// not POSIX `sh`: the commands are for bash.
pub fn shell_quote(word: &OsStr) -> Cow<'_, str> {
    let bytes = word.as_bytes();
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"._/+=:,@%^-".contains(b);
    if !bytes.is_empty() && bytes.iter().all(safe) {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Cow::Borrowed(s);
        }
    }
    let text = std::str::from_utf8(bytes).ok();
    if let Some(s) = text.filter(|s| !s.chars().any(needs_escape)) {
        return Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")));
    }
    let mut out = String::with_capacity(bytes.len() * 2 + 3);
    out.push_str("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' | '\'' => {
                    out.push('\\');
                    out.push(c);
                }
                c if needs_escape(c) => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

/// [`shell_quote`] for a path.
pub fn shell_quote_path(p: &Path) -> Cow<'_, str> {
    shell_quote(p.as_os_str())
}

/// argv for the record: each argument as text, non-UTF-8 bytes escaped like [`path_text`]
/// (`std::env::args` would panic on them).
pub fn args_text(args: impl IntoIterator<Item = OsString>) -> Vec<String> {
    args.into_iter()
        .map(|a| path_text(Path::new(&a)).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(
            printable("\x1b]0;pwned\x07\x1b[31m"),
            "\\x1b]0;pwned\\x07\\x1b[31m"
        );
        assert_eq!(printable("a\u{202e}b\u{9b}c\n"), "a\\u{202e}b\\x9bc\\n");
        assert!(matches!(printable("Jane Doe, café"), Cow::Borrowed(_)));
    }

    #[test]
    fn non_utf8_paths_round_trip_through_text() {
        let latin1 = PathBuf::from(OsString::from_vec(b"/ev/caf\xe9 disk.raw".to_vec()));
        assert_eq!(path_text(&latin1), "/ev/caf\\xe9 disk.raw");
        assert_eq!(path_from_text(&path_text(&latin1)), latin1);
        for plain in ["/ev/café.raw", "a\\xzz", "a\\x4"] {
            assert_eq!(path_from_text(plain), PathBuf::from(plain));
        }
    }

    #[test]
    fn shell_words_are_quoted_for_bash() {
        let q = |b: &[u8]| shell_quote(OsStr::from_bytes(b)).into_owned();
        assert!(matches!(
            shell_quote(OsStr::new("/dev/sdz")),
            Cow::Borrowed("/dev/sdz")
        ));
        assert_eq!(q(b"disk-1_a.E01"), "disk-1_a.E01");
        assert_eq!(q(b"a+b=c:d,e@f%g^h"), "a+b=c:d,e@f%g^h");
        assert_eq!(q(b""), "''");
        assert_eq!(q(b"my disk.raw"), "'my disk.raw'");
        assert_eq!(q(b"it's"), "'it'\\''s'");
        assert_eq!(q(b"$(rm -rf ~);*`x`\\"), "'$(rm -rf ~);*`x`\\'");
        assert_eq!(q("café".as_bytes()), "'café'");
        assert_eq!(q(b"caf\xe9 it's\\"), "$'caf\\xe9 it\\'s\\\\'");
        assert_eq!(q(b"a\nb\x1b[0m"), "$'a\\x0ab\\x1b[0m'");
        assert_eq!(q("a\u{202e}b".as_bytes()), "$'a\\xe2\\x80\\xaeb'");
        assert_eq!(shell_quote_path(Path::new("/ev/a b")), "'/ev/a b'");
    }
}
