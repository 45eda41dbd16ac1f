//! A whole check of an E01 set: the container walk ([`E01Image::open`]), every chunk decoded
//! through the image reader ([`crate::image::E01Media::stream`]) into the one fan-out
//! ([`crate::pipeline::run`]) with MD5 and SHA-1, and the stored hashes compared with the
//! media as read.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::reader::problem;
use super::Problem;
use crate::buffer::BufferPool;
use crate::error::Result;
use crate::hash::HashAlgorithm;
use crate::image::E01Media;
use crate::pipeline::{self, Consumers, Tuning};
use crate::progress::Progress;

/// What a full check found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The segment files, in order.
    pub segments: Vec<PathBuf>,
    /// Every problem, structural and per chunk, with its place.
    pub problems: Vec<Problem>,
    /// Media size from the volume (0 when there is none).
    pub media_size: u64,
    /// MD5 of the media as read (damaged chunks as zeros).
    pub md5: [u8; 16],
    /// SHA-1 of the media as read.
    pub sha1: [u8; 20],
    /// The stored MD5.
    pub stored_md5: Option<[u8; 16]>,
    /// The stored SHA-1.
    pub stored_sha1: Option<[u8; 20]>,
}

impl CheckReport {
    /// No problem found and every stored hash matches.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Opens, walks and reads a whole set: structure, every chunk, and the stored hashes against
/// the media as read. A hash mismatch is a problem too.
pub fn check(first: &Path) -> Result<CheckReport> {
    // Nothing is read twice: no cache.
    let media = E01Media::open(first, 0)?;
    let img = media.structure();
    let mut problems = img.problems().to_vec();
    let workers = crate::image::workers(0);
    let (len, count) = media.pass_buffers(workers);
    let pool = BufferPool::new(count, len);
    let consumers = Consumers {
        hashes: vec![HashAlgorithm::Md5, HashAlgorithm::Sha1],
        ..Consumers::default()
    };
    let (progress, stop) = (Progress::default(), AtomicBool::new(false));
    let passed = pipeline::run(
        consumers,
        &pool,
        Tuning::default(),
        &progress,
        &stop,
        |feed| media.stream(feed, workers),
    )?;
    problems.extend(passed.value);
    let md5 = passed.hashes.md5.unwrap_or_default();
    let sha1 = passed.hashes.sha1.unwrap_or_default();
    let last = img.segment_paths().last().cloned().unwrap_or_default();
    if let Some(s) = img.stored_md5() {
        if s != md5 {
            problems.push(problem(
                &last,
                Some("hash"),
                None,
                format!(
                    "stored MD5 {} but the media reads as {}",
                    crate::hash::to_hex(&s),
                    crate::hash::to_hex(&md5)
                ),
            ));
        }
    }
    if let Some(s) = img.stored_sha1() {
        if s != sha1 {
            problems.push(problem(
                &last,
                Some("digest"),
                None,
                format!(
                    "stored SHA-1 {} but the media reads as {}",
                    crate::hash::to_hex(&s),
                    crate::hash::to_hex(&sha1)
                ),
            ));
        }
    }
    Ok(CheckReport {
        segments: img.segment_paths(),
        problems,
        media_size: img.media_size().unwrap_or(0),
        md5,
        sha1,
        stored_md5: img.stored_md5(),
        stored_sha1: img.stored_sha1(),
    })
}
