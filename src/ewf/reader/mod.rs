//! The E01 container reader: [`E01Image::open`] walks every segment and every section
//! descriptor and checks the container (file headers, descriptor Adler-32s,
//! `next == offset + size`, the section chain, volume checksum and counts, `table` against
//! `table2`, entry order, `done`, missing segments), and keeps the metadata, the stored hashes
//! and where each table is: a chunk's place is read from its table on demand ([`store`]), so
//! memory does not grow with the image. Reading the media (decoding the chunks) is
//! [`crate::image::E01Media`]'s, on top of this; [`super::check()`] does both.
//!
//! It keeps going past damage and reports every problem with its place. It never panics on
//! arbitrary input and never allocates from a size field it has not bounded by the file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::format::{
    self, Error2Entry, HeaderFields, SectionType, Volume, COMPRESSED_FLAG, DESCRIPTOR_SIZE,
    FILE_HEADER_SIZE,
};
use super::naming;

mod store;
mod tables;
use crate::case::CaseMetadata;
use crate::error::{Error, Result};
use crate::image::place::{self, ByteSource, Place};
use store::{Segment, SegmentFiles, TableCache, TableLoc};

/// Largest header text we inflate (EnCase itself hangs long before this).
const MAX_HEADER_TEXT: usize = 16 << 20;
/// Largest section body we read into memory (a table of 4 M entries).
const MAX_BODY: u64 = 16 << 20;
/// Largest chunk we decode (the writer's limit; EnCase's largest is 32768 × 512 = 16 MiB).
pub(crate) const MAX_CHUNK: u64 = 64 << 20;
/// Table entries with a problem of their own listed one by one; the rest of a table's are
/// merged into one problem with a count (a forged table has millions).
const MAX_ENTRY_PROBLEMS: usize = 16;
/// How many names past a missing segment we look for later segments.
const GAP_PROBE: u32 = 16;

/// One thing wrong with an image, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The segment file (or the missing one's expected path).
    pub segment: PathBuf,
    /// The section type concerned, if any.
    pub section: Option<String>,
    /// Byte offset in the segment file.
    pub offset: Option<u64>,
    /// Chunk number (0-based, in media order).
    pub chunk: Option<u64>,
    /// The media bytes affected.
    pub media_range: Option<Range<u64>>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.segment.display())?;
        if let Some(s) = &self.section {
            write!(f, " section {s}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " at byte {o}")?;
        }
        if let Some(c) = self.chunk {
            write!(f, " chunk {c}")?;
        }
        if let Some(r) = &self.media_range {
            write!(f, " (media bytes {}..{})", r.start, r.end)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where one chunk is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkPlace {
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset of the stored chunk in that file.
    pub offset: u64,
    /// Stored size (zlib stream, or raw bytes + 4-byte Adler-32).
    pub stored_size: u64,
    /// Stored as a zlib stream.
    pub compressed: bool,
    /// The segment's number in [`E01Image::segment_paths`].
    pub(crate) segment_index: usize,
}

/// A table read from `table`, waiting for its `table2`.
struct PendingTable {
    offset: u64,
    /// File offset of its body.
    body_at: u64,
    body: Vec<u8>,
    table: Option<format::Table>,
    sectors: Option<(u64, u64)>,
}

/// An opened E01 set: its structure, metadata and where its tables are.
pub struct E01Image {
    place: Place,
    segments: Vec<Segment>,
    files: SegmentFiles,
    volume: Option<Volume>,
    header2: Option<HeaderFields>,
    header: Option<HeaderFields>,
    md5: Option<[u8; 16]>,
    sha1: Option<[u8; 20]>,
    error2: Vec<Error2Entry>,
    /// In media order; `first_chunk` increases.
    tables: Vec<TableLoc>,
    chunk_total: u64,
    table_cache: TableCache,
    problems: Vec<Problem>,
}

pub(super) fn problem(
    seg: &Path,
    section: Option<&str>,
    offset: Option<u64>,
    msg: String,
) -> Problem {
    Problem {
        segment: seg.to_path_buf(),
        section: section.map(str::to_string),
        offset,
        chunk: None,
        media_range: None,
        message: msg,
    }
}

fn read_at(file: &dyn ByteSource, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; len as usize];
    place::read_exact_at(file, &mut b, offset)?;
    Ok(b)
}

/// Inflates header text with a bounded, growing output buffer.
fn inflate_text(stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut d = libdeflater::Decompressor::new();
    let mut cap = (stored.len() * 8).clamp(4096, MAX_HEADER_TEXT);
    loop {
        let mut out = vec![0u8; cap];
        match d.zlib_decompress(stored, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(libdeflater::DecompressionError::InsufficientSpace) if cap < MAX_HEADER_TEXT => {
                cap = (cap * 4).min(MAX_HEADER_TEXT);
            }
            Err(e) => return Err(format!("header text does not inflate: {e:?}")),
        }
    }
}

impl E01Image {
    /// Opens the set whose first segment is `first` (`x.E01` or `x.e01`) and checks its
    /// structure. Fails only when `first` cannot be opened at all; everything else is a
    /// [`Problem`].
    pub fn open(first: &Path) -> Result<E01Image> {
        Self::open_in(&Place::Local, first)
    }

    /// [`Self::open`] for a set in `place`.
    pub fn open_in(place: &Place, first: &Path) -> Result<E01Image> {
        let (base, lower) = naming::base_of_first_segment(first).ok_or_else(|| Error::Format {
            path: first.to_path_buf(),
            message: "an E01 set is opened by its first segment, named *.E01".into(),
        })?;
        let file = place.open(first, false)?;
        let mut img = E01Image {
            place: place.clone(),
            segments: vec![Segment {
                path: first.to_path_buf(),
                len: file.len(),
                id: file.identity(),
            }],
            files: SegmentFiles::new(store::MAX_OPEN_SEGMENTS),
            volume: None,
            header2: None,
            header: None,
            md5: None,
            sha1: None,
            error2: Vec::new(),
            tables: Vec::new(),
            chunk_total: 0,
            table_cache: TableCache::default(),
            problems: Vec::new(),
        };
        // Discover the rest: consecutive names, and across a gap (reported) if later ones exist.
        let mut n = 2;
        while let Some(p) = naming::sibling_path(&base, lower, n) {
            // A name that exists but is no segment file (a FIFO, a device) is a gap too, and
            // the problem says what it is.
            let why = match place.open(&p, false) {
                Ok(f) => {
                    // Closed again: the walk and the readers open it through `files`.
                    img.segments.push(Segment {
                        path: p,
                        len: f.len(),
                        id: f.identity(),
                    });
                    n += 1;
                    continue;
                }
                Err(e) if place.symlink_metadata(&p).is_ok() => Some(match e {
                    Error::Format { message, .. } => format!("segment file {message}"),
                    other => format!("segment file cannot be opened: {other}"),
                }),
                Err(_) => None,
            };
            let later = (n + 1..n + 1 + GAP_PROBE)
                .find(|&m| naming::sibling_path(&base, lower, m).is_some_and(|p| place.exists(&p)));
            match later {
                Some(m) => {
                    for missing in n..m {
                        if let Some(p) = naming::sibling_path(&base, lower, missing) {
                            let message = match (&why, missing == n) {
                                (Some(w), true) => format!("{w} (later segments exist)"),
                                _ => "segment file missing (later segments exist)".into(),
                            };
                            img.problems.push(problem(&p, None, None, message));
                        }
                    }
                    n = m;
                }
                None => break,
            }
        }
        let expected_numbers: Vec<u32> = {
            // The number each found file should carry, from its name.
            let mut v = Vec::new();
            let mut m = 1;
            for s in &img.segments {
                while naming::sibling_path(&base, lower, m).is_some_and(|p| p != s.path) {
                    m += 1;
                }
                v.push(m);
                m += 1;
            }
            v
        };
        let mut saw_done = false;
        for (i, &number) in expected_numbers.iter().enumerate() {
            let last = i + 1 == img.segments.len();
            let end = img.walk_segment(i, number);
            match end {
                Some(SectionType::Done) => {
                    saw_done = true;
                    if !last {
                        let p = img.segments[i].path.clone();
                        img.problems.push(problem(
                            &p,
                            Some("done"),
                            None,
                            "`done` in a segment that is not the last".into(),
                        ));
                    }
                }
                Some(SectionType::Next) if last => {
                    let p = img.segments[i].path.clone();
                    img.problems.push(problem(
                        &p,
                        Some("next"),
                        None,
                        "last segment found ends with `next`: later segments are missing".into(),
                    ));
                }
                _ => {}
            }
        }
        if !saw_done {
            let p = img.segments[img.segments.len() - 1].path.clone();
            img.problems.push(problem(
                &p,
                None,
                None,
                "no `done` section: the set is incomplete (interrupted or truncated)".into(),
            ));
        }
        img.check_counts();
        Ok(img)
    }

    /// Walks one segment's sections; returns how it ended (`next`, `done`, or neither).
    fn walk_segment(&mut self, i: usize, expected_number: u32) -> Option<SectionType> {
        let path = self.segments[i].path.clone();
        let len = self.segments[i].len;
        let mut probs = Vec::new();
        let mut pending: Option<PendingTable> = None;
        let mut sectors: Option<(u64, u64)> = None;
        let mut ended = None;
        let file = match self.files.get(&self.place, i, &self.segments[i]) {
            Ok(f) => f,
            Err(e) => {
                self.problems
                    .push(problem(&path, None, Some(0), format!("unreadable: {e}")));
                return None;
            }
        };
        {
            match read_at(&*file, 0, FILE_HEADER_SIZE.min(len)) {
                Ok(h) => match format::decode_file_header(&h) {
                    Ok(n) if u32::from(n) == expected_number => {}
                    Ok(n) => probs.push(problem(
                        &path,
                        None,
                        Some(0),
                        format!("file header says segment {n}, its name says {expected_number}"),
                    )),
                    Err(m) => probs.push(problem(&path, None, Some(0), m)),
                },
                Err(e) => probs.push(problem(&path, None, Some(0), format!("unreadable: {e}"))),
            }
        }
        let mut off = FILE_HEADER_SIZE;
        loop {
            if off == len {
                probs.push(problem(
                    &path,
                    None,
                    Some(off),
                    "segment ends without `next` or `done` (truncated?)".into(),
                ));
                break;
            }
            // `off` comes from a forged `next` and may lie past the end (or near 2^64).
            if off.checked_add(DESCRIPTOR_SIZE).is_none_or(|end| end > len) {
                probs.push(problem(
                    &path,
                    None,
                    Some(off),
                    if off > len {
                        format!(
                            "a section is said to start past the end of the segment ({len} bytes)"
                        )
                    } else {
                        format!(
                            "segment truncated: section descriptor cut off ({} of 76 bytes)",
                            len - off
                        )
                    },
                ));
                break;
            }
            let raw = match read_at(&*file, off, DESCRIPTOR_SIZE) {
                Ok(b) => b,
                Err(e) => {
                    probs.push(problem(&path, None, Some(off), format!("unreadable: {e}")));
                    break;
                }
            };
            let d = match format::decode_descriptor(&raw) {
                Ok(d) => d,
                Err(m) => {
                    probs.push(problem(&path, None, Some(off), m));
                    break;
                }
            };
            let name = d.type_name.clone();
            if !d.checksum_ok {
                probs.push(problem(
                    &path,
                    Some(&name),
                    Some(off),
                    "section descriptor Adler-32 mismatch".into(),
                ));
            }
            let kind = SectionType::from_name(&name);
            if kind.is_none() && !format::OTHER_KNOWN_SECTIONS.contains(&name.as_str()) {
                probs.push(problem(
                    &path,
                    Some(&name),
                    Some(off),
                    "unknown section type".into(),
                ));
            }
            if let Some(SectionType::Next | SectionType::Done) = kind {
                if d.next != off || (d.size != 0 && d.size != DESCRIPTOR_SIZE) {
                    probs.push(problem(
                        &path,
                        Some(&name),
                        Some(off),
                        format!(
                            "terminal section should point to itself with size 0 or 76 (next {}, size {})",
                            d.next, d.size
                        ),
                    ));
                }
                if off + DESCRIPTOR_SIZE != len {
                    probs.push(problem(
                        &path,
                        Some(&name),
                        Some(off),
                        format!(
                            "{} bytes follow the segment's last section",
                            len - off - DESCRIPTOR_SIZE
                        ),
                    ));
                }
                ended = kind;
                break;
            }
            let size_ok =
                d.size >= DESCRIPTOR_SIZE && off.checked_add(d.size).is_some_and(|e| e <= len);
            if !size_ok {
                probs.push(problem(
                    &path,
                    Some(&name),
                    Some(off),
                    format!(
                        "section size {} does not fit the segment ({} bytes left)",
                        d.size,
                        len - off
                    ),
                ));
                break;
            }
            if d.next != off + d.size {
                probs.push(problem(
                    &path,
                    Some(&name),
                    Some(off),
                    format!(
                        "next offset {} differs from offset + size {} (readers would disagree)",
                        d.next,
                        off + d.size
                    ),
                ));
            }
            // A table2 must directly follow its table; anything else commits the table alone.
            if kind != Some(SectionType::Table2) {
                if let Some(p) = pending.take() {
                    self.commit_table(i, &path, p, None, &mut probs);
                }
            }
            let body_len = d.size - DESCRIPTOR_SIZE;
            let body_at = off + DESCRIPTOR_SIZE;
            let needs_body = !matches!(kind, Some(SectionType::Sectors) | None);
            let body = if needs_body {
                if body_len > MAX_BODY {
                    probs.push(problem(
                        &path,
                        Some(&name),
                        Some(off),
                        format!("section body of {body_len} bytes is implausibly large"),
                    ));
                    None
                } else {
                    match read_at(&*file, body_at, body_len) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            probs.push(problem(
                                &path,
                                Some(&name),
                                Some(off),
                                format!("unreadable: {e}"),
                            ));
                            None
                        }
                    }
                }
            } else {
                None
            };
            match (kind, body) {
                (Some(SectionType::Sectors), _) => sectors = Some((body_at, off + d.size)),
                (Some(SectionType::Header2 | SectionType::Header), Some(b)) => {
                    match inflate_text(&b) {
                        Ok(t) => {
                            let fields =
                                format::parse_header_fields(&format::decode_header_text(&t));
                            if fields.is_none() {
                                probs.push(problem(
                                    &path,
                                    Some(&name),
                                    Some(off),
                                    "no `main` category in header text".into(),
                                ));
                            }
                            if kind == Some(SectionType::Header2) {
                                if self.header2.is_none() {
                                    self.header2 = fields;
                                }
                            } else if self.header.is_none() {
                                self.header = fields;
                            }
                        }
                        Err(m) => probs.push(problem(&path, Some(&name), Some(off), m)),
                    }
                }
                (Some(SectionType::Volume | SectionType::Disk | SectionType::Data), Some(b)) => {
                    match Volume::decode(&b) {
                        Ok((v, ok)) => {
                            if !ok {
                                probs.push(problem(
                                    &path,
                                    Some(&name),
                                    Some(off),
                                    "volume Adler-32 mismatch".into(),
                                ));
                            }
                            match &self.volume {
                                None if kind != Some(SectionType::Data) => self.volume = Some(v),
                                None => self.volume = Some(v),
                                Some(existing) if *existing != v => probs.push(problem(
                                    &path,
                                    Some(&name),
                                    Some(off),
                                    "differs from the first volume section".into(),
                                )),
                                Some(_) => {}
                            }
                        }
                        Err(m) => probs.push(problem(&path, Some(&name), Some(off), m)),
                    }
                }
                (Some(SectionType::Table), Some(b)) => {
                    let table = match format::decode_table(&b) {
                        Ok(t) => Some(t),
                        Err(m) => {
                            probs.push(problem(&path, Some(&name), Some(off), m));
                            None
                        }
                    };
                    pending = Some(PendingTable {
                        offset: off,
                        body_at,
                        body: b,
                        table,
                        sectors: sectors.take(),
                    });
                }
                (Some(SectionType::Table2), Some(b)) => match pending.take() {
                    Some(p) => {
                        if p.body != b {
                            probs.push(problem(
                                &path,
                                Some("table2"),
                                Some(off),
                                "table2 differs from table".into(),
                            ));
                        }
                        let t2 = format::decode_table(&b).ok().map(|t| (t, body_at));
                        self.commit_table(i, &path, p, t2, &mut probs);
                    }
                    None => probs.push(problem(
                        &path,
                        Some("table2"),
                        Some(off),
                        "table2 without a table before it".into(),
                    )),
                },
                (Some(SectionType::Error2), Some(b)) => match format::decode_error2(&b) {
                    Ok((e, ok)) => {
                        if !ok {
                            probs.push(problem(
                                &path,
                                Some(&name),
                                Some(off),
                                "error2 Adler-32 mismatch".into(),
                            ));
                        }
                        self.error2 = e;
                    }
                    Err(m) => probs.push(problem(&path, Some(&name), Some(off), m)),
                },
                (Some(SectionType::Hash), Some(b)) => match format::decode_hash(&b) {
                    Ok((m, ok)) => {
                        if !ok {
                            probs.push(problem(
                                &path,
                                Some(&name),
                                Some(off),
                                "hash Adler-32 mismatch".into(),
                            ));
                        }
                        self.md5.get_or_insert(m);
                    }
                    Err(m) => probs.push(problem(&path, Some(&name), Some(off), m)),
                },
                (Some(SectionType::Digest), Some(b)) => match format::decode_digest(&b) {
                    Ok((m, s, ok)) => {
                        if !ok {
                            probs.push(problem(
                                &path,
                                Some(&name),
                                Some(off),
                                "digest Adler-32 mismatch".into(),
                            ));
                        }
                        self.md5 = Some(m);
                        self.sha1 = Some(s);
                    }
                    Err(m) => probs.push(problem(&path, Some(&name), Some(off), m)),
                },
                _ => {}
            }
            off += d.size;
        }
        if let Some(p) = pending.take() {
            self.commit_table(i, &path, p, None, &mut probs);
        }
        if sectors.is_some() {
            probs.push(problem(
                &path,
                Some("sectors"),
                None,
                "sectors section without a table after it".into(),
            ));
        }
        self.problems.extend(probs);
        ended
    }

    /// Every problem found so far (structure; chunk problems are added by reading).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The problems that say a segment file of the set is missing.
    pub fn missing_segments(&self) -> Vec<&Problem> {
        self.problems
            .iter()
            .filter(|p| {
                p.message.starts_with("segment file missing")
                    || p.message.contains("later segments are missing")
            })
            .collect()
    }

    /// Where its files are.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The segment files found, in order.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// The decoded volume section (geometry, flags, GUID).
    pub fn volume(&self) -> Option<&Volume> {
        self.volume.as_ref()
    }

    /// Media size in bytes (sector count × bytes per sector), if a volume was found.
    pub fn media_size(&self) -> Option<u64> {
        self.volume.as_ref().map(Volume::media_size)
    }

    /// Bytes per sector, if a volume was found.
    pub fn bytes_per_sector(&self) -> Option<u32> {
        self.volume.as_ref().map(|v| v.bytes_per_sector)
    }

    /// The stored MD5 (`digest`, else `hash`).
    pub fn stored_md5(&self) -> Option<[u8; 16]> {
        self.md5
    }

    /// The stored SHA-1 (`digest`).
    pub fn stored_sha1(&self) -> Option<[u8; 20]> {
        self.sha1
    }

    /// The `error2` runs (first sector, sector count).
    pub fn error2(&self) -> &[Error2Entry] {
        &self.error2
    }

    /// Header fields: `header2` (Unicode) when present, else `header` (ASCII).
    pub fn header_fields(&self) -> Option<&HeaderFields> {
        self.header2.as_ref().or(self.header.as_ref())
    }

    /// The case metadata as exhibit names it, from [`Self::header_fields`].
    pub fn case_metadata(&self) -> CaseMetadata {
        let f = self.header_fields();
        let get = |id: &str| {
            f.and_then(|f| f.get(id))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        CaseMetadata {
            case_number: get("c"),
            evidence_number: get("n"),
            examiner: get("e"),
            description: get("a"),
            notes: get("t"),
        }
    }
}
