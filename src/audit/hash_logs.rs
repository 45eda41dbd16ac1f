//! Hash logs (`BASE.md5`, …, one coreutils-style line each) and the shell commands that check
//! them, for the record.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::side_files::SideFiles;
use crate::error::Result;
use crate::hash::{log_line, MediaHashes};
use crate::sink::OutputFile;
use crate::text::shell_quote;

/// The hash logs written and how to check each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashLogs {
    /// `BASE.md5`, …, in the order of [`MediaHashes::hex`].
    pub logs: Vec<PathBuf>,
    /// One bash command per log (`md5sum -c disk.md5`, `cat disk.001 disk.002 | …`), every
    /// name in it quoted by [`shell_quote`].
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
        .unwrap_or(OsStr::new("-"));
    let feed = media_feed_command(outputs, size);
    let mut out = HashLogs::default();
    for (alg, _) in digests.hex() {
        let Some(digest) = digests.get(alg) else {
            continue;
        };
        let path = side.hash_log(alg);
        super::write_atomically(&path, &log_line(digest, media_name))?;
        let log_file = word(file_name(&path));
        out.checks.push(match &feed {
            None => format!("{} -c {log_file}", alg.checker()),
            Some(feed) => format!("{feed} | {} -c {log_file}", alg.checker()),
        });
        out.logs.push(path);
    }
    Ok(out)
}

fn file_name(p: &Path) -> &OsStr {
    p.file_name().unwrap_or_default()
}

/// A file name beside the log as one argument: quoted, and behind `./` when it starts with
/// `-`, which a command would take for an option.
fn word(name: &OsStr) -> Cow<'_, str> {
    if name.as_bytes().starts_with(b"-") {
        let mut dotted = b"./".to_vec();
        dotted.extend_from_slice(name.as_bytes());
        return Cow::Owned(shell_quote(&OsString::from_vec(dotted)).into_owned());
    }
    shell_quote(name)
}

/// A shell pipeline that writes the media to stdout, when the hash log cannot name one file.
fn media_feed_command(outputs: &[OutputFile], size: u64) -> Option<String> {
    if outputs.iter().any(|o| o.kind == "raw") {
        return None;
    }
    let segments: Vec<&OutputFile> = outputs.iter().filter(|o| o.kind == "raw-segment").collect();
    if !segments.is_empty() {
        let names: Vec<&OsStr> = segments.iter().map(|o| file_name(&o.path)).collect();
        return Some(if names.len() <= 8 {
            let words: Vec<Cow<str>> = names.iter().map(|n| word(n)).collect();
            format!("cat {}", words.join(" "))
        } else {
            // The stem is quoted, the glob after it is not, so that bash expands it.
            let first = names[0].as_bytes();
            let stem = first.strip_suffix(b".001").unwrap_or(first);
            format!("cat {}.[0-9][0-9][0-9]", word(OsStr::from_bytes(stem)))
        });
    }
    if let Some(dev) = outputs.iter().find(|o| o.kind == "device") {
        return Some(format!("head -c {size} {}", word(dev.path.as_os_str())));
    }
    if let Some(e01) = outputs.iter().find(|o| o.kind == "e01-segment") {
        // ewfexport prints its verdict to stdout after the data, hence the head.
        return Some(format!(
            "ewfexport -q -u -f raw -t - {} | head -c {size}",
            word(file_name(&e01.path))
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;

    /// Digests with only an MD5 (of "x"): one log per check.
    fn md5_of_x() -> MediaHashes {
        let mut digests = MediaHashes::default();
        let mut h = HashAlgorithm::Md5.hasher();
        h.update(b"x");
        digests.set(HashAlgorithm::Md5, &h.finish());
        digests
    }

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
        let digests = md5_of_x();

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

    #[test]
    fn every_name_in_a_check_is_quoted_and_the_log_has_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let side = SideFiles::new(dir.path().join("it's a disk"));
        let digests = md5_of_x();
        let latin1 = |b: &[u8]| PathBuf::from(OsString::from_vec(b.to_vec()));
        let one = |path: PathBuf, kind: &str| OutputFile {
            path,
            size: 0,
            kind: kind.into(),
        };

        let raw = write(&side, &digests, &[one(latin1(b"d/caf\xe9.raw"), "raw")], 1).unwrap();
        assert_eq!(raw.checks, vec![r"md5sum -c 'it'\''s a disk.md5'"]);
        let line = std::fs::read(&raw.logs[0]).unwrap();
        assert!(line.ends_with(b"  caf\xe9.raw\n"), "{line:?}");

        let odd = write(&side, &digests, &[one("d/a\\b\n.raw".into(), "raw")], 1).unwrap();
        let line = std::fs::read_to_string(&odd.logs[0]).unwrap();
        assert!(
            line.starts_with('\\') && line.ends_with("  a\\\\b\\n.raw\n"),
            "{line}"
        );

        let dev = write(
            &side,
            &digests,
            &[one("/dev/disk/by-id/a b".into(), "device")],
            7,
        );
        assert_eq!(
            dev.unwrap().checks,
            vec![r"head -c 7 '/dev/disk/by-id/a b' | md5sum -c 'it'\''s a disk.md5'"]
        );

        let e01 = write(
            &side,
            &digests,
            &[one(latin1(b"d/-x\xff.E01"), "e01-segment")],
            3,
        );
        assert_eq!(
            e01.unwrap().checks,
            vec![
                r"ewfexport -q -u -f raw -t - $'./-x\xff.E01' | head -c 3 | md5sum -c 'it'\''s a disk.md5'"
            ]
        );

        let two: Vec<_> = ["a b.001", "a b.002"]
            .map(|n| one(format!("d/{n}").into(), "raw-segment"))
            .into();
        let s = write(&side, &digests, &two, 2).unwrap();
        assert_eq!(
            s.checks[0],
            r"cat 'a b.001' 'a b.002' | md5sum -c 'it'\''s a disk.md5'"
        );
        let many: Vec<_> = (1..=9)
            .map(|i| one(format!("d/a $b.{i:03}").into(), "raw-segment"))
            .collect();
        let s = write(&side, &digests, &many, 9).unwrap();
        assert_eq!(
            s.checks[0],
            r"cat 'a $b'.[0-9][0-9][0-9] | md5sum -c 'it'\''s a disk.md5'"
        );
    }
}
