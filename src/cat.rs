//! `exhibit cat IMAGE`: the media bytes of any image on a byte stream (standard output), in
//! one pass through the image reader and the one fan-out: a stream sink and the three hash
//! threads see the same blocks. At the end the hashes are compared with every hash the image
//! claims ([`crate::image::references`]: the E01's stored MD5/SHA-1, the record and the hash
//! logs beside it): the data already sent is then known good or known bad, never assumed.
//!
//! `--range OFFSET:LENGTH` sends part of the media, read at that offset (no comparison: no
//! stored hash covers a part). A damaged chunk there ends the output before its bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ewf::Problem;
use crate::hash::{to_hex, HashAlgorithm, MediaHashes};
use crate::image::references::{self, Reference};
use crate::image::Image;
use crate::pipeline::{Consumers, Tuning};
use crate::progress::Progress;
use crate::sink::stream::StreamSink;

/// What to send.
#[derive(Clone, Debug)]
pub struct CatOptions {
    /// Any file of the image.
    pub image: PathBuf,
    /// Only these media bytes (offset, length).
    pub range: Option<(u64, u64)>,
    /// E01 decoder threads (0: one per core).
    pub workers: usize,
    /// The S3 endpoint for an image in a bucket (`s3://…`), beating `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
}

/// One comparison of a recomputed hash with one the image holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HashCheck {
    /// The algorithm.
    pub algorithm: HashAlgorithm,
    /// Where the stored value comes from.
    pub source: String,
    /// The stored value, hex.
    pub stored: String,
    /// The value of the bytes sent, hex.
    pub computed: String,
}

impl HashCheck {
    /// The bytes sent have the stored hash.
    pub fn matches(&self) -> bool {
        self.stored.eq_ignore_ascii_case(&self.computed)
    }
}

/// What was sent and what it proves.
#[derive(Clone, Debug, Serialize)]
pub struct CatReport {
    /// Media bytes sent.
    pub bytes: u64,
    /// Damaged chunks, sent as zeros (whole-media output only).
    pub damaged: Vec<String>,
    /// Files of the image that changed while they were read (objects in a bucket are read
    /// anew by every request): the bytes sent may mix two versions.
    pub changed: Vec<String>,
    /// Every stored hash, against the bytes sent.
    pub checks: Vec<HashCheck>,
}

impl CatReport {
    /// 0: nothing damaged and every stored hash matches (or there is none); 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.damaged.is_empty()
            && self.changed.is_empty()
            && self.checks.iter().all(HashCheck::matches)
        {
            crate::audit::exit::COMPLETE
        } else {
            crate::audit::exit::FINDINGS
        }
    }
}

/// Writes the media of `opts.image` to `out`.
pub fn cat(
    opts: &CatOptions,
    out: impl Write + Send + 'static,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<CatReport> {
    let place = crate::image::Place::of(&opts.image, opts.endpoint.as_deref())?;
    let image = Image::open_in(&place, &opts.image)?;
    let mut report = match opts.range {
        Some((offset, len)) => cat_range(&image, offset, len, out, progress, stop),
        None => cat_all(&image, &opts.image, opts.workers, out, progress, stop),
    }?;
    // The bytes sent are not known good when a file changed under them.
    report.changed = place.changed_since_opened()?;
    Ok(report)
}

fn cat_all(
    image: &Image,
    path: &Path,
    workers: usize,
    out: impl Write + Send + 'static,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<CatReport> {
    progress.set_total(image.media_size());
    let consumers = Consumers {
        hashes: HashAlgorithm::ALL.to_vec(),
        piece_size: None,
        sinks: vec![Box::new(StreamSink::new(out, "standard output"))],
    };
    let passed = image.pass(consumers, workers, Tuning::default(), progress, stop)?;
    let summary = crate::sink::MediaSummary {
        media_size: passed.bytes,
        sector_size: image.sector_size(),
        hashes: passed.hashes.clone(),
        unreadable: Vec::new(),
    };
    for sink in passed.sinks {
        sink.finish(&summary)?;
    }
    Ok(CatReport {
        bytes: passed.bytes,
        damaged: passed.value.iter().map(Problem::to_string).collect(),
        changed: Vec::new(),
        checks: compare(&references::of_image(path, image).refs, &passed.hashes),
    })
}

fn cat_range(
    image: &Image,
    offset: u64,
    len: u64,
    mut out: impl Write,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<CatReport> {
    let media = image.media_size();
    if offset.checked_add(len).is_none_or(|end| end > media) {
        return Err(Error::InvalidOption(format!(
            "--range {offset}:{len} reaches past the end of the media ({media} bytes)"
        )));
    }
    progress.set_total(len);
    let mut buf = vec![0u8; crate::image::BLOCK_SIZE];
    let mut at = offset;
    while at < offset + len {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Interrupted("a signal"));
        }
        let want = (offset + len - at).min(buf.len() as u64) as usize;
        let n = image.read_at(&mut buf[..want], at)?;
        out.write_all(&buf[..n]).map_err(|e| Error::Write {
            path: "standard output".into(),
            offset: at - offset,
            source: e,
        })?;
        at += n as u64;
        progress.add_done(n as u64);
    }
    out.flush().map_err(|e| Error::io("standard output", e))?;
    Ok(CatReport {
        bytes: len,
        damaged: Vec::new(),
        changed: Vec::new(),
        checks: Vec::new(),
    })
}

fn compare(stored: &[Reference], got: &MediaHashes) -> Vec<HashCheck> {
    stored
        .iter()
        .filter_map(|r| {
            Some(HashCheck {
                algorithm: r.algorithm,
                source: r.source.clone(),
                stored: r.hex.clone(),
                computed: to_hex(got.get(r.algorithm)?),
            })
        })
        .collect()
}
