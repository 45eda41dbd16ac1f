//! Where the files of an `s3://` BASE go: a [`Store`] (the client, the BASE's object name,
//! what goes with every object) registered for the BASE while its job runs, so every writer
//! of the set (the image sinks, the record, the map, the piece list, the hash logs) that is
//! handed a name under it writes an object instead of a file, with the same name.
//!
//! Side files are small and written whole: one PutObject each, with its CRC64NVME checked by
//! the server. Images are streamed by [`crate::sink::object::ObjectWriter`].

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::client::{Client, ObjectLock, PutOptions};
use super::url::S3Url;
use crate::error::{Error, Result};

/// What a job asks of an `s3://` output (flags of `acquire` and `convert`); in the record's
/// options when any is set (no secret is among them).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreOptions {
    /// `--endpoint`, beating `AWS_ENDPOINT_URL` and the profile.
    pub endpoint: Option<String>,
    /// `--object-lock-mode` (`GOVERNANCE` or `COMPLIANCE`) with `--retain-until`.
    pub lock: Option<ObjectLock>,
    /// Parts uploaded at once per image object (0: the default, 4).
    pub parts_in_flight: usize,
}

impl StoreOptions {
    /// Nothing chosen (a local run's record leaves them out).
    pub fn is_default(&self) -> bool {
        *self == StoreOptions::default()
    }
}

/// Parts in flight per object when not chosen.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 4;

/// S3's smallest part (but the last).
pub const MIN_PART: u64 = 5 << 20;
/// The smallest part exhibit uploads: fewer requests than S3's minimum for the same bytes.
pub const SMALLEST_PART: u64 = 8 << 20;
/// S3's largest part.
pub const MAX_PART: u64 = 5 << 30;
/// S3's most parts in one object.
pub const MAX_PARTS: u64 = 10_000;

/// The part size for objects of at most `largest` bytes: the smallest whole MiB from
/// [`SMALLEST_PART`] up that fits them in 10,000 parts.
pub fn part_size_for(largest: u64) -> Result<u64> {
    let mib = 1u64 << 20;
    let needed = largest.div_ceil(MAX_PARTS).div_ceil(mib) * mib;
    let size = needed.max(SMALLEST_PART);
    if size > MAX_PART {
        return Err(Error::InvalidOption(format!(
            "an object of {largest} bytes does not fit S3's 10,000 parts of at most 5 GiB; \
             use --split or a smaller --segment-size"
        )));
    }
    Ok(size)
}

/// The bucket, BASE and settings every object of one set is written with.
#[derive(Debug)]
pub struct Store {
    /// The client (shared by every writer and upload thread of the set).
    pub client: Arc<Client>,
    /// BASE as an object name.
    pub base: S3Url,
    /// Metadata and retention of every object.
    pub put: PutOptions,
    /// Bytes per part of the image objects.
    pub part_size: u64,
    /// Parts in flight per image object.
    pub parts_in_flight: usize,
    /// The media hashes once the pass has them (`media-md5`, …): metadata of every side file
    /// written after it (hash logs, record). The image objects' metadata is fixed when their
    /// uploads begin, before any hash is known.
    pub media: Mutex<Vec<(String, String)>>,
}

impl Store {
    /// The key of `path` when it names an object of this set (`s3://BUCKET/BASE…`).
    pub fn key_of(&self, path: &Path) -> Option<String> {
        let text = path.to_str()?;
        let base = self.base.to_string();
        text.starts_with(&base).then(|| {
            let url = S3Url::parse(text).ok()?;
            (url.bucket() == self.base.bucket()).then(|| url.key().to_string())
        })?
    }

    /// Writes a small side file whole, as one object with its checksum checked.
    pub fn put_file(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let media = self.media.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if media.is_empty() {
            self.client.put_object(key, bytes, &self.put)?;
        } else {
            let mut put = self.put.clone();
            put.metadata.extend(media);
            self.client.put_object(key, bytes, &put)?;
        }
        self.check_lock(key)
    }

    /// From now on, side files carry the media hashes as metadata.
    pub fn set_media_hashes(&self, hashes: &crate::hash::MediaHashes) {
        *self.media.lock().unwrap_or_else(|p| p.into_inner()) = hashes
            .hex()
            .into_iter()
            .map(|(a, hex)| (format!("media-{}", a.name()), hex))
            .collect();
    }

    /// With Object Lock asked for: the object written has it, or the job fails (a server
    /// without Object Lock, such as Garage, may take the headers and ignore them).
    pub fn check_lock(&self, key: &str) -> Result<()> {
        let Some(lock) = &self.put.lock else {
            return Ok(());
        };
        let head = self.client.head_object(key)?;
        let applied = head.as_ref().and_then(|h| h.lock_mode.as_deref());
        if applied != Some(lock.mode.as_str()) {
            return Err(Error::Storage {
                url: self.client.url_of(key),
                message: format!(
                    "the server did not apply Object Lock ({} until {}; it reports {}): the \
                     bucket needs Object Lock enabled (with versioning), and some servers \
                     (Garage) have none; nothing more is written",
                    lock.mode,
                    lock.retain_until,
                    applied.unwrap_or("none")
                ),
            });
        }
        Ok(())
    }
}

static STORES: Mutex<Vec<Arc<Store>>> = Mutex::new(Vec::new());

/// Keeps a [`Store`] registered; dropping it unregisters.
#[derive(Debug)]
pub struct Registration(Arc<Store>);

impl Registration {
    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut stores = STORES.lock().unwrap_or_else(|p| p.into_inner());
        stores.retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

/// Registers `store` for its BASE until the registration is dropped.
pub fn register(store: Store) -> Registration {
    let store = Arc::new(store);
    STORES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(store.clone());
    Registration(store)
}

/// The store and key `path` belongs to, if it names an object of a registered set.
pub fn route(path: &Path) -> Option<(Arc<Store>, String)> {
    if !super::url::is_s3_os(path.as_os_str()) {
        return None;
    }
    let stores = STORES.lock().unwrap_or_else(|p| p.into_inner());
    stores
        .iter()
        .find_map(|s| s.key_of(path).map(|k| (s.clone(), k)))
}

/// For the writer of side files: `Some` (the object written, or why not) when `path` names
/// an object of a registered set, `None` for a local file; an `s3://` name of no set is an
/// error rather than a local file named `s3:`.
pub fn put_if_object(path: &Path, bytes: &[u8]) -> Option<Result<()>> {
    if !super::url::is_s3_os(path.as_os_str()) {
        return None;
    }
    Some(match route(path) {
        Some((store, key)) => store.put_file(&key, bytes),
        None => Err(Error::Internal(format!(
            "{}: an object name outside the set being written",
            crate::text::printable_path(path)
        ))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fit_the_largest_object_in_10000() {
        assert_eq!(part_size_for(0).unwrap(), SMALLEST_PART);
        assert_eq!(part_size_for(78 << 30).unwrap(), SMALLEST_PART);
        assert_eq!(part_size_for(80 << 30).unwrap(), 9 << 20);
        // 2 TB: at least 200 MB a part, rounded up to whole MiB.
        let p = part_size_for(2_000_000_000_000).unwrap();
        assert!(p * MAX_PARTS >= 2_000_000_000_000 && p.is_multiple_of(1 << 20) && p < 201 << 20);
        assert!(part_size_for(60 << 40).is_err());
    }
}
