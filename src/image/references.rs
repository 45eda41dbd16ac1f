//! The hashes an image claims, and where each claim is: the image's own (an E01's
//! `hash`/`digest` sections), the acquisition record beside it, and the coreutils hash logs
//! beside it. One part for every job that compares what it reads with what an image says it
//! holds (verify, cat, convert), so that they all find the same references in the same way.

use std::path::{Path, PathBuf};

use super::{Image, ImageFormat, Place};
use crate::audit::AuditRecord;
use crate::ewf::E01Image;
use crate::hash::{from_hex, to_hex, HashAlgorithm};
use crate::small_file::HASH_LOG_LIMIT;

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
        // coreutils starts a line with `\` when it escaped the name (a backslash or newline).
        let (l, escaped) = match l.strip_prefix('\\') {
            Some(rest) => (rest, true),
            None => (l, false),
        };
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
            Some(mut e) => {
                if escaped {
                    e.name = crate::hash::unescape_log_name(&e.name);
                }
                entries.push(e)
            }
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

/// Something found while looking for references: a side file that could not be used
/// (`failed`), or a line that is not about this image (a note).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The side file is unusable (unreadable, malformed): a check that fails.
    pub failed: bool,
    /// A sentence naming the file and what was found.
    pub message: String,
}

impl Finding {
    fn fail(message: String) -> Self {
        Finding {
            failed: true,
            message,
        }
    }
    fn note(message: String) -> Self {
        Finding {
            failed: false,
            message,
        }
    }
}

/// The MD5 and SHA-1 an E01 stores (`digest`, else `hash`), named after its file `name`.
pub fn stored_in_e01(img: &E01Image, name: &str) -> Vec<Reference> {
    let mut refs = Vec::new();
    if let Some(md5) = img.stored_md5() {
        refs.push(Reference {
            algorithm: HashAlgorithm::Md5,
            hex: to_hex(&md5),
            source: format!("{name} (stored MD5)"),
        });
    }
    if let Some(sha1) = img.stored_sha1() {
        refs.push(Reference {
            algorithm: HashAlgorithm::Sha1,
            hex: to_hex(&sha1),
            source: format!("{name} (stored SHA-1)"),
        });
    }
    refs
}

/// The media hashes a record states; `path` is where the record is.
pub fn from_record(record: &AuditRecord, path: &Path) -> Vec<Reference> {
    let Some(h) = &record.hashes else {
        return Vec::new();
    };
    let name = file_name(path);
    [
        (HashAlgorithm::Md5, &h.md5),
        (HashAlgorithm::Sha1, &h.sha1),
        (HashAlgorithm::Sha256, &h.sha256),
    ]
    .into_iter()
    .filter_map(|(alg, v)| {
        let v = v.as_deref()?;
        Some(Reference {
            algorithm: alg,
            // A malformed value stays as written so that it fails, visibly.
            hex: normal_hex(alg, v).unwrap_or_else(|| v.to_string()),
            source: name.clone(),
        })
    })
    .collect()
}

/// File names of the single raw images a record lists (hash logs name them).
pub fn raw_output_names(record: &AuditRecord) -> Vec<String> {
    record
        .outputs
        .iter()
        .filter(|o| o.kind == "raw")
        .map(|o| file_name(&o.path))
        .collect()
}

/// "PATH: cannot be read: WHY" for a side file that could not be read (missing, unreadable,
/// or refused by the small-file reader: a FIFO, a device, a symlink, too large).
pub fn cannot_read(path: &Path, e: &crate::error::Error) -> String {
    let why = match e {
        crate::error::Error::Io { source, .. } => source.to_string(),
        crate::error::Error::Format { message, .. } => message.clone(),
        other => other.to_string(),
    };
    format!("{}: cannot be read: {why}", path.display())
}

/// References from one hash log: lines naming `-` (the media stream), the image's own file
/// when it is a single raw file, or a raw image the record lists as an output of the same
/// acquisition (`same_media`: its media is this image's media). What is not used, and why,
/// goes to `findings`. The log is in `place`.
pub fn from_log(
    place: &Place,
    alg: HashAlgorithm,
    log: &Path,
    image_names: &[String],
    format: ImageFormat,
    same_media: &[String],
    findings: &mut Vec<Finding>,
) -> Vec<Reference> {
    let text = match place.read_small(log, HASH_LOG_LIMIT) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            findings.push(Finding::fail(cannot_read(log, &e)));
            return Vec::new();
        }
    };
    let (entries, bad) = parse_log(alg, &text);
    let lname = file_name(log);
    for (line, t) in bad {
        findings.push(Finding::fail(format!(
            "{lname} line {line} is not a {alg} hash line: {t:?}"
        )));
    }
    let mut out = Vec::new();
    for e in entries {
        let single = matches!(format, ImageFormat::Raw) && image_names.len() == 1;
        // `./disk.raw` or `dir/disk.raw` name the same file as `disk.raw` beside the log.
        let named = Path::new(&e.name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if e.name == "-" || (single && image_names[0] == named) {
            out.push(Reference {
                algorithm: alg,
                hex: e.hex,
                source: lname.clone(),
            });
        } else if same_media.contains(&named) {
            out.push(Reference {
                algorithm: alg,
                hex: e.hex,
                source: format!("{lname} (for {}, same acquisition)", e.name),
            });
        } else {
            findings.push(Finding::note(format!(
                "{lname} has a line for '{}', which is not this image; not used",
                e.name
            )));
        }
    }
    out
}

/// Everything an opened image claims about its media.
#[derive(Clone, Debug, Default)]
pub struct Claims {
    /// Every reference, in this order: the record's, the hash logs', the E01's own.
    pub refs: Vec<Reference>,
    /// The record beside the image and where it is, when one was read and is about media of
    /// this image's size.
    pub record: Option<(PathBuf, AuditRecord)>,
    /// What could not be used, and why.
    pub findings: Vec<Finding>,
}

/// The references of `image`, opened from `path` (any of its file names: the side files are
/// `BASE.yaml`, `BASE.md5`, … for that name's BASE). A record of another media size is not
/// this image's record: its hashes are left out, with a finding that says so.
pub fn of_image(path: &Path, image: &Image) -> Claims {
    let mut claims = Claims::default();
    let place = image.place();
    let base = base_of(path);
    let record_path = side_file(&base, "yaml");
    let mut same_media = Vec::new();
    if place.symlink_metadata(&record_path).is_ok() {
        match place.read_record(&record_path) {
            Ok(r) if r.source.size == image.media_size() => {
                claims.refs.extend(from_record(&r, &record_path));
                same_media = raw_output_names(&r);
                claims.record = Some((record_path, r));
            }
            Ok(r) => claims.findings.push(Finding::fail(format!(
                "{} is about {} bytes of media, the image holds {}; its hashes are not used",
                file_name(&record_path),
                r.source.size,
                image.media_size()
            ))),
            Err(e) => claims.findings.push(Finding::fail(format!(
                "{} is beside the image but cannot be read: {e}",
                file_name(&record_path)
            ))),
        }
    }
    let files = image.files();
    let names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
    for alg in HashAlgorithm::ALL {
        let log = side_file(&base, alg.name());
        if place.symlink_metadata(&log).is_ok() {
            claims.refs.extend(from_log(
                place,
                alg,
                &log,
                &names,
                image.format(),
                &same_media,
                &mut claims.findings,
            ));
        }
    }
    if let Some(e) = image.e01() {
        let name = files.first().map(|f| file_name(f)).unwrap_or_default();
        claims.refs.extend(stored_in_e01(e, &name));
    }
    claims
}

/// Every claim in `refs` against the `computed` hashes of the bytes read (a claim whose
/// algorithm was not computed is left out): what convert and restore record.
pub fn against(
    refs: &[Reference],
    computed: &crate::hash::MediaHashes,
) -> Vec<crate::audit::ClaimedHash> {
    refs.iter()
        .filter_map(|r| {
            let computed = to_hex(computed.get(r.algorithm)?);
            Some(crate::audit::ClaimedHash {
                algorithm: r.algorithm,
                source: r.source.clone(),
                matches: computed == r.hex,
                claimed: r.hex.clone(),
                computed,
            })
        })
        .collect()
}

/// The image's own files (opened from `path`) and the side files its claims come from: what
/// a job that writes a new set from it must never write to.
pub fn input_files(path: &Path, image: &Image, claims: &Claims) -> Vec<PathBuf> {
    let mut v = image.files();
    v.push(path.to_path_buf());
    let base = base_of(path);
    v.push(side_file(&base, "yaml"));
    v.push(side_file(&base, "crc64"));
    v.extend(
        HashAlgorithm::ALL
            .iter()
            .map(|a| side_file(&base, a.name())),
    );
    if let Some((p, _)) = &claims.record {
        v.push(p.clone());
    }
    v
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
    fn escaped_coreutils_lines_give_the_real_name() {
        let md5 = "900150983cd24fb0d6963f7d28e17f72";
        let text = format!("\\{md5}  a\\\\b\\n.raw\n\\MD5 (c\\nd) = {md5}\n");
        let (e, bad) = parse_log(HashAlgorithm::Md5, &text);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(e[0].name, "a\\b\n.raw");
        assert_eq!(e[1].name, "c\nd");
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
