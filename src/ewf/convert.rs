//! Converting a finished raw image into an E01 set: what `exhibit rescue --format e01` does
//! once the map says done. The image is read again, block by block, into the same writer that
//! acquisition uses; MD5 and SHA-1 are recomputed on the way and must equal the hashes the
//! rescue computed, so an image that changed in between can never be sealed into an E01 under
//! hashes it does not have.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::block::Block;
use crate::buffer::BufferPool;
use crate::error::{Error, Result};
use crate::hash::{to_hex, HashAlgorithm, MediaHashes};
use crate::map::BadRun;
use crate::sink::{MediaSummary, OutputFile, Sink};

use super::{E01Options, E01Sink};

const BLOCK: usize = 1 << 20;

/// Writes `BASE.E01`, … from the first `opts.media_size` bytes of `image`, with `unreadable`
/// in `error2`. `expected` holds the MD5/SHA-1 the image must have.
pub fn raw_to_e01(
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
    let file = File::open(image).map_err(|e| Error::io(image, e))?;
    let mut sink: Box<dyn Sink> = Box::new(E01Sink::create(base, opts, overwrite)?);
    let pool = BufferPool::new(2, BLOCK);
    let mut md5 = HashAlgorithm::Md5.hasher();
    let mut sha1 = HashAlgorithm::Sha1.hasher();
    let mut offset = 0u64;
    let mut index = 0u64;
    while offset < media_size {
        if stop.load(Ordering::Relaxed) {
            sink.abandon();
            return Err(Error::Interrupted("a signal"));
        }
        let len = (media_size - offset).min(BLOCK as u64) as usize;
        let mut buf = pool.take();
        if let Err(e) = file.read_exact_at(&mut buf[..len], offset) {
            sink.abandon();
            return Err(Error::Read {
                path: image.to_path_buf(),
                offset,
                source: e,
            });
        }
        md5.update(&buf[..len]);
        sha1.update(&buf[..len]);
        let block = Arc::new(Block::new(index, offset, buf, len, Vec::new()));
        if let Err(e) = sink.write_block(&block) {
            sink.abandon();
            return Err(e);
        }
        offset += len as u64;
        index += 1;
    }
    let mut hashes = MediaHashes::default();
    hashes.set(HashAlgorithm::Md5, &md5.finish());
    hashes.set(HashAlgorithm::Sha1, &sha1.finish());
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
