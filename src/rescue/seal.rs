//! Sealing the finished image into an E01 set: what `exhibit rescue --format e01` does once
//! the map says done. The image is read again in one pass of the image reader into the E01
//! sink ([`Image::pass`], as cat and convert read theirs); MD5 and SHA-1 are recomputed on the
//! way and must equal the hashes the rescue computed, so an image that changed in between can
//! never be sealed into an E01 under hashes it does not have.
//!
//! Not the shared outputs of a BASE (`crate::outputs`): the rescue owns its raw image, its map
//! (the resumable state), its hash logs and its record, so only the E01 sink is new here.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::error::{Error, Result};
use crate::ewf::{E01Options, E01Sink};
use crate::hash::{to_hex, HashAlgorithm, MediaHashes};
use crate::image::{Image, ImageFormat, RawImage};
use crate::map::BadRun;
use crate::pipeline::{Consumers, Tuning};
use crate::progress::Progress;
use crate::sink::{MediaSummary, OutputFile};

/// Writes `BASE.E01`, … from the first `opts.media_size` bytes of `image`, with `unreadable`
/// in `error2`. `expected` holds the MD5/SHA-1 the image must have.
pub(super) fn seal(
    image: &Path,
    base: &Path,
    opts: E01Options,
    overwrite: bool,
    expected: &MediaHashes,
    unreadable: &[BadRun],
    stop: &AtomicBool,
) -> Result<Vec<OutputFile>> {
    let media_size = opts.media_size;
    let sector_size = opts.bytes_per_sector;
    let raw = RawImage::open_recorded(&[image.to_path_buf()], None, Some(media_size))?;
    if raw.media_size() < media_size {
        return Err(Error::Format {
            path: image.to_path_buf(),
            message: format!(
                "the image holds {} bytes, the media {media_size}; no E01 written",
                raw.media_size()
            ),
        });
    }
    use std::os::unix::fs::FileTypeExt;
    let on_device = std::fs::metadata(image).is_ok_and(|m| m.file_type().is_block_device());
    let format = if on_device {
        ImageFormat::Device
    } else {
        ImageFormat::Raw
    };
    let sink = E01Sink::create(base, opts, overwrite)?;
    let consumers = Consumers {
        hashes: vec![HashAlgorithm::Md5, HashAlgorithm::Sha1],
        piece_size: None,
        sinks: vec![Box::new(sink)],
    };
    let passed = Image::Raw(format, raw).pass(
        consumers,
        0,
        Tuning::default(),
        &Progress::default(),
        stop,
    )?;
    let mut sinks = passed.sinks;
    let Some(sink) = sinks.pop() else {
        return Err(Error::Internal("the E01 output went missing".into()));
    };
    let mut hashes = passed.hashes;
    for alg in [HashAlgorithm::Md5, HashAlgorithm::Sha1] {
        if let (Some(want), Some(got)) = (expected.get(alg), hashes.get(alg)) {
            if want != got {
                sink.abandon();
                return Err(Error::Format {
                    path: image.to_path_buf(),
                    message: format!(
                        "the image changed since it was hashed ({alg} {} now, {} then); no E01 written",
                        to_hex(got),
                        to_hex(want)
                    ),
                });
            }
        }
    }
    hashes.sha256 = expected.sha256;
    sink.finish(&MediaSummary {
        media_size,
        sector_size,
        hashes,
        unreadable: unreadable.to_vec(),
    })
}
