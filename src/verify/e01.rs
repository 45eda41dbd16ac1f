//! E01 verification on top of the structural checker ([`crate::ewf::E01Image`]): every
//! container problem and every damaged chunk becomes a failed [`Check`] with its place (segment,
//! section, file offset, chunk number, media byte range); the media is decoded once and fed to
//! the hash threads; the stored `hash`/`digest` become references.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::refs::{file_name, Reference};
use super::stream::{self, PassResult};
use super::{Check, Topic, Verdict, VerifyOptions};
use crate::error::Result;
use crate::ewf::{E01Image, Problem};
use crate::hash::{to_hex, HashAlgorithm};
use crate::progress::Progress;

/// What the E01 part of a verification found.
pub(super) struct E01Verify {
    pub segments: Vec<PathBuf>,
    pub checks: Vec<Check>,
    pub refs: Vec<Reference>,
    pub pass: PassResult<()>,
}

fn problem_check(p: &Problem) -> Check {
    let topic = if p.chunk.is_some() {
        Topic::Chunk
    } else {
        Topic::Container
    };
    let mut c = Check::new(Verdict::Fail, topic, p.to_string());
    if let Some(r) = &p.media_range {
        c = c.range(r.start, r.end);
    }
    c
}

pub(super) fn verify_e01(
    first: &Path,
    algorithms: &[HashAlgorithm],
    piece_size: Option<u32>,
    _opts: &VerifyOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<E01Verify> {
    let img = E01Image::open(first)?;
    let segments = img.segment_paths();
    let mut checks: Vec<Check> = img.problems().iter().map(problem_check).collect();
    let structural = checks.len();
    let name = file_name(first);

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

    if let (Some(v), false) = (img.volume(), img.error2().is_empty()) {
        let bps = u64::from(v.bytes_per_sector);
        let sectors: u64 = img.error2().iter().map(|e| u64::from(e.sector_count)).sum();
        checks.push(Check::new(
            Verdict::Note,
            Topic::AcquisitionErrors,
            format!(
                "{name} records {sectors} unreadable sectors in {} runs (error2), filled with zeros at acquisition",
                img.error2().len()
            ),
        ));
        for e in img.error2().iter().take(1000) {
            let s = u64::from(e.first_sector);
            let n = u64::from(e.sector_count);
            checks.push(
                Check::new(
                    Verdict::Note,
                    Topic::AcquisitionErrors,
                    format!("error2: sectors {s}..{} unreadable at acquisition", s + n),
                )
                .range(s * bps, (s + n) * bps),
            );
        }
    }

    let mut chunk_problems = Vec::new();
    let pass = stream::run(algorithms, piece_size, progress, stop, |feed| {
        let mut failure = None;
        chunk_problems = img.read_media(|_, bytes| {
            if failure.is_none() {
                if let Err(e) = feed.write(bytes) {
                    failure = Some(e);
                }
            }
        });
        failure.map_or(Ok(()), Err)
    })?;
    let damaged = chunk_problems.len();
    checks.extend(chunk_problems.iter().map(problem_check));
    if structural == 0 {
        checks.push(Check::new(
            Verdict::Pass,
            Topic::Container,
            format!(
                "{name}: {} segment{}, every section descriptor, table and the chain check out",
                segments.len(),
                if segments.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    if damaged == 0 && img.volume().is_some() {
        checks.push(Check::new(
            Verdict::Pass,
            Topic::Chunk,
            format!(
                "{name}: all {} chunks decode and match their checksums",
                img.chunk_count()
            ),
        ));
    }
    Ok(E01Verify {
        segments,
        checks,
        refs,
        pass,
    })
}
