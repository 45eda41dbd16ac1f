//! `exhibit ls IMAGE [pN:][/PATH]`: one directory of a file system in the image (or the one
//! entry a file path names), sorted by name.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

use super::{open_fs, open_image, parse_target, Place};
use crate::error::Result;
use crate::fs::{name_text, path_text, Entry, Kind};

/// What to list.
#[derive(Clone, Debug)]
pub struct LsOptions {
    /// Any file of the image.
    pub image: PathBuf,
    /// `[pN:][/PATH]` (empty: the root of the default file system).
    pub target: OsString,
    /// Decoded E01 chunks kept, in bytes.
    pub cache_bytes: usize,
}

impl LsOptions {
    /// The root of the default file system of `image`.
    pub fn new(image: impl Into<PathBuf>) -> LsOptions {
        LsOptions {
            image: image.into(),
            target: OsString::new(),
            cache_bytes: crate::image::DEFAULT_CACHE_BYTES,
        }
    }
}

/// One listed entry.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    /// The name (bytes that are not UTF-8 as `\xNN`).
    pub name: String,
    /// file, dir, symlink, special.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Bytes.
    pub size: u64,
    /// Last modification, RFC 3339 UTC (FAT: local time as written).
    pub modified: Option<String>,
    /// Inode or MFT record number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// A link's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A listing.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    /// Where the file system is.
    pub volume: Place,
    /// The path listed.
    pub path: String,
    /// What `id` is: `inode`, `MFT`, or empty.
    pub id_label: &'static str,
    /// The entries, by name.
    pub entries: Vec<Listed>,
}

/// Lists `opts.target`.
pub fn ls(opts: &LsOptions) -> Result<Listing> {
    let target = parse_target(&opts.target)?;
    let image = open_image(&opts.image, opts.cache_bytes)?;
    let mut opened = open_fs(&image, target.partition)?;
    let fs = &mut opened.fs;
    let here = fs.stat(&target.path)?;
    let mut entries: Vec<(Vec<Vec<u8>>, Entry)> = if here.kind == Kind::Dir {
        fs.list(&target.path)?
            .into_iter()
            .map(|e| {
                let mut p = target.path.clone();
                p.push(e.name.clone());
                (p, e)
            })
            .collect()
    } else {
        vec![(target.path.clone(), here)]
    };
    entries.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let mut listed = Vec::with_capacity(entries.len());
    for (path, e) in entries {
        // A link that cannot be read is still listed.
        let link = (e.kind == Kind::Symlink)
            .then(|| fs.read_link(&path).ok().map(|t| name_text(&t)))
            .flatten();
        listed.push(Listed {
            name: name_text(&e.name),
            kind: e.kind,
            size: e.size,
            modified: e.modified.map(|t| t.rfc3339()),
            id: e.id,
            target: link,
        });
    }
    Ok(Listing {
        id_label: opened.fs.id_label(),
        volume: opened.place,
        path: path_text(&target.path),
        entries: listed,
    })
}
