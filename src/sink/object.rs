//! An image object streamed into a bucket: a multipart upload with several parts in flight,
//! each part with a CRC64NVME the server checks, and the whole object's CRC64NVME computed
//! here and compared with what the completed object reports. Memory is bounded by the parts
//! in flight: `(parts_in_flight + 2) × part_size`.
//!
//! Bytes are appended in order; the last [`ObjectWriter::patch_window`] bytes are held back
//! (not yet sent), so a writer that fills in a header after its data (the E01 `sectors`
//! descriptor) can still patch them. An object that fits in one part is one PutObject.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::s3::client::UploadedPart;
use crate::s3::Store;

type PartJob = (u16, Vec<u8>);

/// One object being written.
pub struct ObjectWriter {
    store: Arc<Store>,
    key: String,
    part_size: usize,
    /// Bytes not yet sent, starting at object offset `held_start`.
    held: Vec<u8>,
    held_start: u64,
    next_part: u16,
    crc: crc64fast_nvme::Digest,
    upload: Option<Upload>,
}

struct Upload {
    id: String,
    jobs: Option<SyncSender<PartJob>>,
    results: Receiver<Result<UploadedPart>>,
    threads: Vec<JoinHandle<()>>,
    done: Vec<UploadedPart>,
}

impl ObjectWriter {
    /// A writer of the object `key` of `store` (nothing is sent before a whole part is held).
    pub fn new(store: Arc<Store>, key: String) -> ObjectWriter {
        let part_size = store.part_size as usize;
        ObjectWriter {
            store,
            key,
            part_size,
            held: Vec::new(),
            held_start: 0,
            next_part: 1,
            crc: crc64fast_nvme::Digest::new(),
            upload: None,
        }
    }

    /// `s3://BUCKET/KEY`.
    pub fn url(&self) -> String {
        self.store.client.url_of(&self.key)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.held_start + self.held.len() as u64
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
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.held.extend_from_slice(data);
        while self.held.len() >= 2 * self.part_size {
            self.send_part()?;
        }
        Ok(())
    }

    /// Overwrites bytes at `offset` written earlier, within the patch window.
    pub fn patch(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        if offset < self.held_start || end > self.len() {
            return Err(Error::Internal(format!(
                "{}: a patch of bytes {offset}..{end} outside the held bytes {}..{}",
                self.url(),
                self.held_start,
                self.len()
            )));
        }
        let at = (offset - self.held_start) as usize;
        self.held[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn send_part(&mut self) -> Result<()> {
        let rest = self.held.split_off(self.part_size.min(self.held.len()));
        let part = std::mem::replace(&mut self.held, rest);
        self.held_start += part.len() as u64;
        self.crc.write(&part);
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
        while let Ok(result) = upload.results.try_recv() {
            upload.done.push(result?);
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
            while let Ok(result) = upload.results.try_recv() {
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
                    let _ = result_tx.send(result);
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
    /// CRC64NVME against the one computed here. Returns the object's length.
    pub fn finish(mut self) -> Result<u64> {
        let len = self.len();
        if self.upload.is_none() {
            let body = std::mem::take(&mut self.held);
            self.store
                .client
                .put_object(&self.key, &body, &self.store.put)?;
            return Ok(len);
        }
        let result = (|| -> Result<()> {
            while !self.held.is_empty() {
                self.send_part()?;
            }
            let upload = self.upload.as_mut().expect("upload begun");
            upload.jobs = None;
            for t in upload.threads.drain(..) {
                let _ = t.join();
            }
            while let Ok(result) = upload.results.try_recv() {
                upload.done.push(result?);
            }
            let mut parts = std::mem::take(&mut upload.done);
            parts.sort_by_key(|p| p.number);
            let expected = u64::from(self.next_part - 1);
            if parts.len() as u64 != expected {
                return Err(Error::Internal(format!(
                    "{}: {} of {expected} parts uploaded",
                    self.url(),
                    parts.len()
                )));
            }
            let id = upload.id.clone();
            self.store
                .client
                .complete_multipart(&self.key, &id, &parts, self.crc.sum64())?;
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
