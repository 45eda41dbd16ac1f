//! An image in a bucket: the files of `s3://BUCKET/PREFIX/BASE.E01` (and of raw and split
//! raw images, and their side files) read with ranged GETs through [`crate::s3::Client`], as
//! a [`Place`](super::Place) the image reader reads like a directory.
//!
//! - What is there is found by listing: the first name asked about under `PREFIX/BASE.`
//!   lists every object under it once (segments, record, hash logs, piece list), so a
//!   missing segment is found as on disk, by its name not being there.
//! - Opening an object asks for its size and ETag (HEAD); the ETag is its identity, so a
//!   segment reopened after it was replaced is refused as a replaced file is.
//! - A sequential pass reads through [`ReadAhead`]: several ranged GETs in flight ahead of
//!   it. One object at a time is read ahead (a pass moves from segment to segment), so memory
//!   stays at one window whatever the number of segments.
//! - A random read of a few bytes (a section descriptor, a chunk) fetches a small block
//!   around it and keeps the last one, so the walk over a segment's sections costs a GET per
//!   section, not two.
//! - The client retries transient failures a bounded number of times; what still fails is
//!   one line naming the object, never the secret.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::place::{ByteSource, Entry, FileId, Kind};
use super::prefetch::{Depth, FetchFn, ReadAhead};
use crate::error::{Error, Result};
use crate::s3::{Client, S3Config, S3Url};

/// Most objects one listing may hold: an E01 set has at most 14 971 segments, a split raw
/// set a few thousand; a prefix holding more is not an image's.
const LIST_LIMIT: usize = 100_000;
/// A random read smaller than this fetches this much from its offset and keeps it.
const SMALL_BLOCK: u64 = 256 << 10;
/// Bases listed one by one in a directory before the whole directory is listed instead: a
/// record may name thousands of outputs of other bases, and a LIST for each would take long.
const BASES_PER_DIRECTORY: usize = 16;

/// A bucket's objects as an image reader's place.
pub struct BucketPlace {
    client: Arc<Client>,
    bucket: String,
    depth: Depth,
    known: Mutex<Known>,
    /// The object being read ahead now.
    streaming: Mutex<Weak<ReadAhead>>,
    /// Key → the ETag it had when first opened: an object is not pinned by being read, so
    /// one replaced during a pass is found by asking again at the end ([`Self::changed`]).
    opened: Mutex<HashMap<String, String>>,
}

#[derive(Default)]
struct Known {
    /// Prefixes listed.
    listed: HashSet<String>,
    /// Directories that could not be listed whole (too many objects): not tried again.
    unlistable: HashSet<String>,
    /// Key → size, from the listings.
    objects: HashMap<String, u64>,
}

impl fmt::Debug for BucketPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketPlace")
            .field("bucket", &self.bucket)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// The prefix listed for `key`: everything up to the last dot of its file name
/// (`case/disk.` for `case/disk.E01`, so all of BASE's files), or the key itself.
fn list_prefix(key: &str) -> &str {
    let name_at = key.rfind('/').map_or(0, |i| i + 1);
    match key[name_at..].rfind('.') {
        Some(dot) => &key[..name_at + dot + 1],
        None => key,
    }
}

/// An error of the client as a reader's I/O error: its message without the object's URL
/// when `url` is that object (the caller names it already).
fn io_error(e: Error, url: &str) -> io::Error {
    match e {
        Error::Storage { url: u, message } if u == url => io::Error::other(message),
        other => io::Error::other(other.to_string()),
    }
}

fn not_found() -> io::Error {
    // The words a missing local file gets, so both say the same.
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl BucketPlace {
    /// The bucket of `url` with `config`'s endpoint and credentials; lists `url`'s prefix at
    /// once, so that a wrong key, secret, endpoint or bucket is one clear error before
    /// anything else.
    pub fn open(url: &S3Url, config: &S3Config) -> Result<BucketPlace> {
        Self::with_client(url, Client::new(config, url.bucket())?, Depth::default())
    }

    /// [`Self::open`] with a client and a read-ahead depth of the caller's (tests).
    pub fn with_client(url: &S3Url, client: Client, depth: Depth) -> Result<BucketPlace> {
        let place = BucketPlace {
            bucket: url.bucket().to_string(),
            client: Arc::new(client),
            depth,
            known: Mutex::default(),
            streaming: Mutex::default(),
            opened: Mutex::default(),
        };
        place.list_for(url.key())?;
        Ok(place)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The key `path` names in this bucket.
    fn key<'p>(&self, path: &'p Path) -> io::Result<&'p str> {
        let s = path.to_str().ok_or_else(not_found)?;
        let rest = s
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("s3://"))
            .map(|_| &s[5..])
            .ok_or_else(not_found)?;
        match rest.split_once('/') {
            Some((b, key)) if b == self.bucket => Ok(key),
            _ => Err(io::Error::other(format!(
                "is not in the bucket {} the image is read from",
                self.bucket
            ))),
        }
    }

    /// Lists what `key` is among, unless a listing made covers it: its base's prefix
    /// ([`list_prefix`]), or its whole directory once many bases of it were listed.
    fn list_for(&self, key: &str) -> Result<()> {
        let dir = &key[..key.rfind('/').map_or(0, |i| i + 1)];
        let prefix = {
            let k = self.lock();
            if k.listed.iter().any(|p| key.starts_with(p.as_str())) {
                return Ok(());
            }
            let bases = k
                .listed
                .iter()
                .filter(|p| p.starts_with(dir) && !p[dir.len()..].contains('/'))
                .count();
            (bases >= BASES_PER_DIRECTORY && !k.unlistable.contains(dir)).then_some(dir)
        };
        // A directory of more objects than a listing may hold is listed base by base.
        match prefix.map(|dir| (dir, self.list(dir))) {
            Some((_, Ok(()))) => Ok(()),
            Some((dir, Err(_))) => {
                self.lock().unlistable.insert(dir.to_string());
                self.list(list_prefix(key))
            }
            None => self.list(list_prefix(key)),
        }
    }

    /// Lists `prefix`.
    fn list(&self, prefix: &str) -> Result<()> {
        let found = self.client.list_objects(prefix, LIST_LIMIT)?;
        let mut k = self.lock();
        for o in found {
            k.objects.insert(o.key, o.size);
        }
        k.listed.insert(prefix.to_string());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the listing says is at `path`: an object, a "directory" (a name ending in `/`),
    /// or nothing.
    pub fn metadata(&self, path: &Path) -> io::Result<Entry> {
        let key = self.key(path)?;
        if key.is_empty() || key.ends_with('/') {
            return Ok(Entry {
                kind: Kind::Dir,
                len: 0,
            });
        }
        self.list_for(key)
            .map_err(|e| io_error(e, &self.url(key)))?;
        match self.lock().objects.get(key) {
            Some(&len) => Ok(Entry {
                kind: Kind::File,
                len,
            }),
            None => Err(not_found()),
        }
    }

    /// Opens the object `path` for reading: its size and ETag as the server says now.
    pub fn open_object(self: &Arc<Self>, path: &Path) -> Result<Arc<dyn ByteSource>> {
        let entry = self.metadata(path).map_err(|e| Error::io(path, e))?;
        if !entry.is_file() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                message: "is a directory, not a regular file; not read".into(),
            });
        }
        let key = self.key(path).map_err(|e| Error::io(path, e))?.to_string();
        let Some(head) = self.client.head_object(&key)? else {
            return Err(Error::io(path, not_found()));
        };
        let etag = head.etag.unwrap_or_else(|| format!("size {}", head.size));
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert_with(|| etag.clone());
        let url = self.url(&key);
        let fetch: Arc<FetchFn> = {
            let (client, key, url) = (Arc::clone(&self.client), key.clone(), url.clone());
            Arc::new(move |r| client.get_range(&key, r).map_err(|e| io_error(e, &url)))
        };
        Ok(Arc::new(Object {
            place: Arc::clone(self),
            id: FileId::Object(etag),
            len: head.size,
            ahead: Arc::new(ReadAhead::new(head.size, self.depth, Arc::clone(&fetch))),
            fetch,
            last: Mutex::default(),
        }))
    }

    /// The whole object `path`, refused (as a local side file is) when longer than `limit`.
    pub fn read_small(&self, path: &Path, limit: u64) -> Result<Vec<u8>> {
        let entry = self.metadata(path).map_err(|e| Error::io(path, e))?;
        if entry.len > limit {
            return Err(crate::small_file::too_large(path, limit));
        }
        let key = self.key(path).map_err(|e| Error::io(path, e))?;
        // Exactly the listed length: an object that grew since is read no further.
        let body = self.client.get_range(key, 0..entry.len)?;
        Ok(body)
    }

    /// The split raw segments `BASE.NNN` (three digits or more) in the bucket, sorted.
    pub fn split_segment_names(&self, base: &Path) -> Result<Vec<PathBuf>> {
        let base_key = self.key(base).map_err(|e| Error::io(base, e))?;
        let prefix = format!("{base_key}.");
        self.list_for(&prefix)?;
        let k = self.lock();
        let mut names: Vec<PathBuf> = k
            .objects
            .keys()
            .filter_map(|key| key.strip_prefix(&prefix))
            .filter(|ext| ext.len() >= 3 && ext.bytes().all(|b| b.is_ascii_digit()))
            .map(|ext| PathBuf::from(self.url(&format!("{prefix}{ext}"))))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every object opened so far that is not the one it was when first opened (replaced,
    /// rewritten or deleted since), each as a sentence naming it: what was read of it may
    /// mix two objects' bytes. One HEAD per object.
    pub fn changed(&self) -> Result<Vec<String>> {
        let opened: Vec<(String, String)> = {
            let o = self.opened.lock().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<_> = o.iter().map(|(k, e)| (k.clone(), e.clone())).collect();
            v.sort();
            v
        };
        let mut out = Vec::new();
        for (key, etag) in opened {
            let now = self.client.head_object(&key)?;
            let now = now.map(|h| h.etag.unwrap_or_else(|| format!("size {}", h.size)));
            if now.as_deref() != Some(etag.as_str()) {
                out.push(format!(
                    "{} changed while it was read (ETag {etag}, now {}): the bytes read may \
                     not be one object's",
                    self.url(&key),
                    now.as_deref().unwrap_or("gone")
                ));
            }
        }
        Ok(out)
    }

    /// Makes `ahead` the one object read ahead: the window of the one before is dropped.
    fn stream(&self, ahead: &Arc<ReadAhead>) {
        let mut s = self.streaming.lock().unwrap_or_else(|e| e.into_inner());
        if !std::ptr::eq(s.as_ptr(), Arc::as_ptr(ahead)) {
            if let Some(before) = s.upgrade() {
                before.release();
            }
            *s = Arc::downgrade(ahead);
        }
    }
}

/// One object opened for reading.
struct Object {
    place: Arc<BucketPlace>,
    id: FileId,
    len: u64,
    fetch: Arc<FetchFn>,
    ahead: Arc<ReadAhead>,
    /// The last small block fetched for random reads: (its offset, its bytes).
    last: Mutex<Option<(u64, Arc<[u8]>)>>,
}

impl ByteSource for Object {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - offset);
        if want >= SMALL_BLOCK {
            let data = (self.fetch)(offset..offset + want)?;
            buf[..data.len()].copy_from_slice(&data);
            return Ok(data.len());
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let held = last
            .as_ref()
            .filter(|(at, d)| *at <= offset && offset + want <= at + d.len() as u64);
        let (at, data) = match held {
            Some((at, d)) => (*at, Arc::clone(d)),
            None => {
                let end = (offset + SMALL_BLOCK).min(self.len);
                let d: Arc<[u8]> = Arc::from((self.fetch)(offset..end)?);
                *last = Some((offset, Arc::clone(&d)));
                (offset, d)
            }
        };
        drop(last);
        let from = (offset - at) as usize;
        let n = want as usize;
        buf[..n].copy_from_slice(&data[from..from + n]);
        Ok(n)
    }

    fn read_ahead(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.place.stream(&self.ahead);
        self.ahead.read(buf, offset)
    }

    fn identity(&self) -> FileId {
        self.id.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_lists_the_files_of_its_base() {
        assert_eq!(list_prefix("case/disk.E01"), "case/disk.");
        assert_eq!(list_prefix("case/disk.v2.yaml"), "case/disk.v2.");
        assert_eq!(list_prefix("disk.001"), "disk.");
        assert_eq!(list_prefix("case.d/disk"), "case.d/disk");
    }
}
