//! `exhibit ls` and `exhibit extract`: the files inside an image, read without mounting
//! through [`crate::fs`] over the shared image reader and partition parser. Both name what
//! they read as `pN:/PATH` (the partition as Linux numbers it, [`crate::partition`]); without
//! `pN:` the first partition holding a file system exhibit reads is used, or the whole media
//! when it has no partition table.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fs::{self, FileSystem, Volume};
use crate::image::Image;
use crate::partition::{self, Role};

pub mod extract;
pub mod ls;

/// Where in the image: a partition (none: the default) and a path in its file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `N` of `pN:`.
    pub partition: Option<u32>,
    /// The path's components (empty: the root).
    pub path: Vec<Vec<u8>>,
}

/// Parses `[pN:][/PATH]`. A path is absolute; `.` components are dropped, `..` refused (it
/// would mean different things in different readers).
pub fn parse_target(s: &OsStr) -> Result<Target> {
    let b = s.as_bytes();
    let (partition, rest) = match b.iter().position(|&c| c == b':') {
        Some(i) if i >= 2 && b[0] == b'p' && b[1..i].iter().all(u8::is_ascii_digit) => {
            let n = std::str::from_utf8(&b[1..i])
                .ok()
                .and_then(|d| d.parse::<u32>().ok())
                .ok_or_else(|| {
                    Error::InvalidOption(format!("{}: no such partition number", show(s)))
                })?;
            (Some(n), &b[i + 1..])
        }
        _ => (None, b),
    };
    if !rest.is_empty() && rest[0] != b'/' {
        return Err(Error::InvalidOption(format!(
            "{}: give pN:/PATH or /PATH (an absolute path inside the file system)",
            show(s)
        )));
    }
    let mut path = Vec::new();
    for c in rest.split(|&c| c == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(Error::InvalidOption(format!(
                    "{}: '..' is not taken in a path inside the image",
                    show(s)
                )))
            }
            c => path.push(c.to_vec()),
        }
    }
    Ok(Target { partition, path })
}

fn show(s: &OsStr) -> String {
    crate::text::printable_path(Path::new(s))
}

/// The file system of one partition (or of the whole media).
pub struct Opened {
    /// `p1`, or `disk` for a file system on the whole media.
    pub label: String,
    /// Where it is on the media.
    pub place: Place,
    /// The file system.
    pub fs: Box<dyn FileSystem>,
}

/// A volume's place on the media, for the listing and the record.
#[derive(Clone, Debug, Serialize)]
pub struct Place {
    /// `p1` or `disk`.
    pub label: String,
    /// Partition number, none for the whole media.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// First byte on the media.
    pub offset: u64,
    /// Bytes.
    pub bytes: u64,
    /// `ext4`, `FAT32`, `NTFS`.
    pub file_system: String,
}

/// Opens the image `path` belongs to, with `cache_bytes` of decoded E01 chunks.
pub fn open_image(path: &Path, cache_bytes: usize) -> Result<Arc<Image>> {
    Ok(Arc::new(Image::open_cached(path, cache_bytes)?))
}

fn volume_fs(image: &Arc<Image>, label: &str, offset: u64, bytes: u64) -> Result<Opened> {
    let volume = Volume::new(Arc::clone(image), offset, bytes, label);
    let fs = fs::open(volume)?;
    Ok(Opened {
        label: label.to_string(),
        place: Place {
            label: label.to_string(),
            partition: label.strip_prefix('p').and_then(|n| n.parse().ok()),
            offset,
            bytes,
            file_system: fs.name().to_string(),
        },
        fs,
    })
}

/// The file system of partition `number`, or (none) of the first partition that holds one
/// exhibit reads, or of the whole media when there is no partition table.
pub fn open_fs(image: &Arc<Image>, number: Option<u32>) -> Result<Opened> {
    let media = image.media_size();
    let mut head = vec![0u8; fs::HEAD_BYTES.min(media) as usize];
    let n = image.read_at(&mut head, 0)?;
    head.truncate(n);
    // A file system on the whole media: its boot sector's 55 AA is not a partition table.
    let table = match fs::identify_strict(&head) {
        Some(_) => None,
        None => partition::of_image(image)?,
    };
    let image_name =
        || crate::text::printable_path(&image.files().into_iter().next().unwrap_or_default());
    let Some(table) = table else {
        if let Some(n) = number {
            return Err(Error::InvalidOption(format!(
                "p{n}: {} has no partition table; leave out pN: to read the file system on the whole media",
                image_name()
            )));
        }
        return volume_fs(image, "disk", 0, media);
    };
    let names = || {
        table
            .partitions
            .iter()
            .map(|p| format!("p{}", p.number))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(n) = number {
        let Some(p) = table.partitions.iter().find(|p| p.number == n) else {
            return Err(Error::InvalidOption(format!(
                "p{n}: no such partition in {} (its {} table has {})",
                image_name(),
                scheme(&table),
                if table.partitions.is_empty() {
                    "none".into()
                } else {
                    names()
                }
            )));
        };
        if p.role == Role::Extended {
            return Err(Error::InvalidOption(format!(
                "p{n} is the extended partition, a container for the logical ones (p5 on)"
            )));
        }
        let r = p.byte_range(media);
        return volume_fs(image, &format!("p{n}"), r.start, r.end - r.start);
    }
    let mut seen = Vec::new();
    for p in table.partitions.iter().filter(|p| p.role != Role::Extended) {
        let r = p.byte_range(media);
        let label = format!("p{}", p.number);
        match volume_fs(image, &label, r.start, r.end - r.start) {
            Ok(o) => return Ok(o),
            Err(e) => seen.push(e.to_string()),
        }
    }
    Err(Error::Format {
        path: image.files().into_iter().next().unwrap_or_default(),
        message: format!(
            "no partition holds a file system exhibit reads (ext2/3/4, FAT12/16/32, NTFS): {}",
            if seen.is_empty() {
                "the partition table is empty".into()
            } else {
                seen.join("; ")
            }
        ),
    })
}

fn scheme(t: &partition::PartitionTable) -> &'static str {
    match t.scheme {
        partition::Scheme::Mbr => "MBR",
        partition::Scheme::Gpt => "GPT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    fn t(s: &str) -> Result<Target> {
        parse_target(OsStr::new(s))
    }

    #[test]
    fn targets_name_a_partition_and_an_absolute_path() {
        assert_eq!(
            t("").unwrap(),
            Target {
                partition: None,
                path: vec![]
            }
        );
        assert_eq!(
            t("p12:/a//./b/").unwrap(),
            Target {
                partition: Some(12),
                path: vec![b"a".to_vec(), b"b".to_vec()]
            }
        );
        assert_eq!(t("p1:").unwrap().partition, Some(1));
        assert!(t("p1:relative").is_err());
        assert!(t("/a/../../etc").is_err());
        assert!(t("p99999999999:/").is_err());
        // A file literally called "p1:x" needs a leading slash: "/p1:x".
        assert_eq!(t("/p1:x").unwrap().path, vec![b"p1:x".to_vec()]);
        let raw = OsString::from_vec(b"p2:/caf\xe9".to_vec());
        assert_eq!(parse_target(&raw).unwrap().path, vec![b"caf\xe9".to_vec()]);
    }
}
