//! An image object streamed into a bucket: a multipart upload with several parts in flight,
//! each part with a CRC64NVME the server checks, and the whole object's CRC64NVME (combined
//! from the parts') compared with what the completed object reports. Memory is bounded by the
//! parts in flight: `(parts_in_flight + 2) × part_size`.
//!
//! Bytes are appended in order into part-sized buffers; the last [`ObjectWriter::patch_window`]
//! bytes are held back (not yet sent), so a writer that fills in a header after its data (the
//! E01 `sectors` descriptor) can still patch them. A buffer is copied into once and handed to
//! an upload thread whole, which hands it back for reuse when its part is sent. An object that
//! fits in one part is one PutObject.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::s3::checksum::crc64nvme_combine;
use crate::s3::client::UploadedPart;
use crate::s3::Store;

type PartJob = (u16, Vec<u8>);
/// What an upload thread answers for a part: the part (or why not), its length, and its
/// buffer back.
type PartDone = (Result<UploadedPart>, u64, Vec<u8>);

/// One object being written.
pub struct ObjectWriter {
    store: Arc<Store>,
    key: String,
    part_size: usize,
    held: HeldParts,
    next_part: u16,
    upload: Option<Upload>,
}

/// The bytes of an object not yet sent, from object offset `start`: whole parts, the last one
/// possibly partial; and buffers back from sent parts, for the next ones.
struct HeldParts {
    part_size: usize,
    parts: VecDeque<Vec<u8>>,
    len: usize,
    start: u64,
    spare: Vec<Vec<u8>>,
}

impl HeldParts {
    fn new(part_size: usize) -> HeldParts {
        HeldParts {
            part_size,
            parts: VecDeque::new(),
            len: 0,
            start: 0,
            spare: Vec::new(),
        }
    }

    /// Object offset after the last byte held.
    fn end(&self) -> u64 {
        self.start + self.len as u64
    }

    /// Copies as much of `data` as fills the current part (a new one when it is whole);
    /// returns how many bytes it took.
    fn append(&mut self, data: &[u8]) -> usize {
        if self.parts.back().is_none_or(|b| b.len() == self.part_size) {
            let mut buffer = self.spare.pop().unwrap_or_default();
            buffer.clear();
            buffer.reserve_exact(self.part_size);
            self.parts.push_back(buffer);
        }
        let buffer = self.parts.back_mut().expect("a buffer was just pushed");
        let n = (self.part_size - buffer.len()).min(data.len());
        buffer.extend_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// Overwrites held bytes from object offset `offset` (the caller checked the range).
    fn patch(&mut self, offset: u64, mut data: &[u8]) {
        // Every buffer but the last is a whole part, so an offset's buffer is found by
        // division; a patch may run on into the next buffer.
        let mut at = (offset - self.start) as usize;
        while !data.is_empty() {
            let buffer = &mut self.parts[at / self.part_size];
            let first = at % self.part_size;
            let n = (buffer.len() - first).min(data.len());
            buffer[first..first + n].copy_from_slice(&data[..n]);
            at += n;
            data = &data[n..];
        }
    }

    /// The oldest part, no longer held.
    fn take_first(&mut self) -> Option<Vec<u8>> {
        let part = self.parts.pop_front()?;
        self.len -= part.len();
        self.start += part.len() as u64;
        Some(part)
    }

    /// Everything held, as one body (for an object sent in one request).
    fn take_all(&mut self) -> Vec<u8> {
        let body = self.parts.drain(..).flatten().collect();
        self.start += self.len as u64;
        self.len = 0;
        body
    }

    fn clear(&mut self) {
        self.parts.clear();
        self.len = 0;
    }
}

struct Upload {
    id: String,
    jobs: Option<SyncSender<PartJob>>,
    results: Receiver<PartDone>,
    threads: Vec<JoinHandle<()>>,
    /// Parts sent with their lengths.
    done: Vec<(UploadedPart, u64)>,
}

impl ObjectWriter {
    /// A writer of the object `key` of `store` (nothing is sent before a whole part is held).
    pub fn new(store: Arc<Store>, key: String) -> ObjectWriter {
        let part_size = store.part_size as usize;
        ObjectWriter {
            store,
            key,
            part_size,
            held: HeldParts::new(part_size),
            next_part: 1,
            upload: None,
        }
    }

    /// `s3://BUCKET/KEY`.
    pub fn url(&self) -> String {
        self.store.client.url_of(&self.key)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.held.end()
    }

    /// True before the first byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How far back from the end a [`ObjectWriter::patch`] may always reach: one part.
    pub fn patch_window(&self) -> u64 {
        self.part_size as u64
    }

    /// Appends `data`, sending whole parts once more than a part plus the patch window is
    /// held.
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = self.held.append(data);
            data = &data[n..];
            while self.held.len >= 2 * self.part_size {
                self.send_part()?;
            }
        }
        Ok(())
    }

    /// Overwrites bytes at `offset` written earlier, within the patch window.
    pub fn patch(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        if offset < self.held.start || end > self.len() {
            return Err(Error::Internal(format!(
                "{}: a patch of bytes {offset}..{end} outside the held bytes {}..{}",
                self.url(),
                self.held.start,
                self.len()
            )));
        }
        self.held.patch(offset, data);
        Ok(())
    }

    fn send_part(&mut self) -> Result<()> {
        let part = self.held.take_first().expect("a part is held");
        if self.upload.is_none() {
            self.upload = Some(self.begin()?);
        }
        let number = self.next_part;
        if u64::from(number) > crate::s3::store::MAX_PARTS {
            return Err(Error::Internal(format!(
                "{}: more than 10,000 parts",
                self.url()
            )));
        }
        self.next_part += 1;
        let upload = self.upload.as_mut().expect("upload begun");
        // A failed part ends the object: say so now instead of after the whole pass.
        while let Ok((result, len, buffer)) = upload.results.try_recv() {
            self.held.spare.push(buffer);
            upload.done.push((result?, len));
        }
        let sent = upload
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((number, part)).is_ok());
        if !sent {
            // Every upload thread has ended: one of them failed; its error is in `results`.
            return Err(self.first_failure());
        }
        Ok(())
    }

    fn first_failure(&mut self) -> Error {
        let url = self.url();
        if let Some(upload) = self.upload.as_mut() {
            upload.jobs = None;
            for t in upload.threads.drain(..) {
                let _ = t.join();
            }
            while let Ok((result, _, _)) = upload.results.try_recv() {
                if let Err(e) = result {
                    return e;
                }
            }
        }
        Error::Internal(format!("{url}: the upload threads ended without a result"))
    }

    fn begin(&self) -> Result<Upload> {
        let client = &self.store.client;
        let id = client.create_multipart(&self.key, &self.store.put)?;
        let in_flight = self.store.parts_in_flight.max(1);
        // A rendezvous channel: a part is handed over only to an idle upload thread, so at
        // most `in_flight` parts are out besides the ones held here.
        let (jobs, job_rx) = mpsc::sync_channel::<PartJob>(0);
        let job_rx = Arc::new(std::sync::Mutex::new(job_rx));
        let (result_tx, results) = mpsc::channel();
        let threads = (0..in_flight)
            .map(|_| {
                let (store, key, id) = (self.store.clone(), self.key.clone(), id.clone());
                let (job_rx, result_tx) = (job_rx.clone(), result_tx.clone());
                std::thread::spawn(move || loop {
                    let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((number, body)) = job else { return };
                    let result = store.client.upload_part(&key, &id, number, &body);
                    let failed = result.is_err();
                    let _ = result_tx.send((result, body.len() as u64, body));
                    if failed {
                        return;
                    }
                })
            })
            .collect();
        Ok(Upload {
            id,
            jobs: Some(jobs),
            results,
            threads,
            done: Vec::new(),
        })
    }

    /// Sends what is held, completes the upload and checks the completed object's
    /// CRC64NVME against the one combined here from its parts'. Returns the object's length.
    pub fn finish(mut self) -> Result<u64> {
        let len = self.len();
        if self.upload.is_none() {
            let body = self.held.take_all();
            self.store
                .client
                .put_object(&self.key, &body, &self.store.put)?;
            return Ok(len);
        }
        let result = (|| -> Result<()> {
            while self.held.len > 0 {
                self.send_part()?;
            }
            let upload = self.upload.as_mut().expect("upload begun");
            upload.jobs = None;
            for t in upload.threads.drain(..) {
                let _ = t.join();
            }
            while let Ok((result, len, _)) = upload.results.try_recv() {
                upload.done.push((result?, len));
            }
            let mut parts = std::mem::take(&mut upload.done);
            parts.sort_by_key(|(p, _)| p.number);
            let expected = u64::from(self.next_part - 1);
            if parts.len() as u64 != expected {
                return Err(Error::Internal(format!(
                    "{}: {} of {expected} parts uploaded",
                    self.url(),
                    parts.len()
                )));
            }
            let whole = parts
                .iter()
                .fold(0, |crc, (p, len)| crc64nvme_combine(crc, p.crc64nvme, *len));
            let parts: Vec<UploadedPart> = parts.into_iter().map(|(p, _)| p).collect();
            let id = upload.id.clone();
            self.store
                .client
                .complete_multipart(&self.key, &id, &parts, whole)?;
            self.store.check_lock(&self.key)
        })();
        match result {
            Ok(()) => {
                self.upload = None;
                Ok(len)
            }
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// Stops: the upload is aborted, so no part stays behind and no object appears.
    pub fn abort(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            upload.jobs = None;
            for t in upload.threads.drain(..) {
                let _ = t.join();
            }
            let _ = self.store.client.abort_multipart(&self.key, &upload.id);
        }
        self.held.clear();
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // An upload neither finished nor aborted (a panic, an early return) is aborted.
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::HeldParts;

    #[test]
    fn held_parts_give_back_the_bytes_written_with_patches_across_parts() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut held = HeldParts::new(64);
        let mut expected = data.clone();
        let mut sent = Vec::new();
        let mut rest = &data[..];
        for step in [1, 63, 64, 65, 200, 3, 604] {
            let (now, later) = rest.split_at(step);
            let mut now = now;
            while !now.is_empty() {
                let n = held.append(now);
                now = &now[n..];
            }
            rest = later;
            while held.len >= 2 * 64 {
                let part = held.take_first().unwrap();
                assert_eq!(part.len(), 64, "every part but the last is whole");
                sent.extend_from_slice(&part);
                held.spare.push(part);
            }
            // A patch over the boundary of two held parts, as the E01 writer's header patch
            // may be.
            let at = held.start + 60;
            if at + 8 <= held.end() {
                held.patch(at, &[0xee; 8]);
                expected[at as usize..at as usize + 8].fill(0xee);
            }
        }
        sent.extend(held.take_all());
        assert_eq!(sent, expected);
        assert_eq!(held.end(), 1000);
    }
}
