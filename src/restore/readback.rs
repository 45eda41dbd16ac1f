//! Reading every target back after it was written and synced: the one reader (O_DIRECT,
//! io_uring where the kernel allows it) over the media length only, into the one fan-out with
//! the hashes and the piece list, all targets at once; then each target's hashes against what
//! the image claims, and its pieces against the image's to name the ranges that differ.
//!
//! Several targets proven by MD5 are hashed in lockstep, one lane each of one vector register
//! ([`crate::md5_lanes`]): MD5 is the slowest of the three and one serial stream per target,
//! so three targets would otherwise take three cores' worth of it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use crate::audit::{ByteRange, ReadBack};
use crate::block::Block;
use crate::error::{Error, Result};
use crate::hash::{to_hex, HashAlgorithm, MediaHashes};
use crate::image::references::Reference;
use crate::map::BadRun;
use crate::pieces::PieceList;
use crate::pipeline::{self, Consumers, Tuning};
use crate::progress::Progress;
use crate::reader::{read_source, ReaderOptions};
use crate::sink::lane_feed::{LaneFeed, LANE_DEPTH};
use crate::source::Source;

/// What reading one target back gave.
pub(super) struct Read {
    pub hashes: MediaHashes,
    pub pieces: PieceList,
    pub unreadable: Vec<BadRun>,
    pub direct_io: bool,
}

/// Reads `path` back over `media` bytes, hashing it with `algorithms` (and its MD5 in the
/// lane `md5_lane` when given) and listing its pieces of `piece_size` bytes.
fn read_one(
    path: &Path,
    media: u64,
    algorithms: &[HashAlgorithm],
    md5_lane: Option<SyncSender<Arc<Block>>>,
    piece_size: u32,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Read> {
    let source = Source::open(path, true)?.limited(media);
    let opts = ReaderOptions::default();
    let pool = opts.pool_for(media)?;
    let consumers = Consumers {
        hashes: algorithms.to_vec(),
        piece_size: Some(piece_size),
        sinks: md5_lane
            .map(|lane| Box::new(LaneFeed::new(lane)) as Box<dyn crate::sink::Sink>)
            .into_iter()
            .collect(),
    };
    let mut unreadable = Vec::new();
    let passed = pipeline::run(
        consumers,
        &pool,
        Tuning::default(),
        progress,
        stop,
        |feed| {
            let mut emit = |block: Block| -> Result<()> {
                for run in &block.unreadable {
                    progress.add_unreadable(run.length);
                    unreadable.push(run.clone());
                }
                feed.send_block(block)
            };
            read_source(&source, &opts, &pool, stop, &mut emit)
        },
    )
    .map_err(Error::from)?;
    if passed.bytes != media {
        return Err(Error::Internal(format!(
            "{}: read back {} of {media} bytes",
            path.display(),
            passed.bytes
        )));
    }
    Ok(Read {
        hashes: passed.hashes,
        pieces: passed
            .pieces
            .unwrap_or_else(|| crate::pieces::PieceHasher::new(piece_size).finish()),
        unreadable,
        direct_io: passed.value.direct_io,
    })
}

/// Reads every target back at once (each its own reader and hashes; one progress over all),
/// in the order given. With more than one target, their MD5s (when asked for) are taken in
/// lockstep on one thread instead of one thread each.
pub(super) fn read_all(
    paths: &[PathBuf],
    media: u64,
    algorithms: &[HashAlgorithm],
    piece_size: u32,
    progress: &Progress,
    stop: &AtomicBool,
) -> Vec<Result<Read>> {
    progress.set_done(0);
    progress.set_total(media.saturating_mul(paths.len() as u64));
    progress.set_phase("reading back");
    let in_lanes = paths.len() > 1 && algorithms.contains(&HashAlgorithm::Md5);
    let per_target: Vec<HashAlgorithm> = algorithms
        .iter()
        .copied()
        .filter(|a| !(in_lanes && *a == HashAlgorithm::Md5))
        .collect();
    let per_target = &per_target;
    let (lanes, streams): (Vec<_>, Vec<_>) = if in_lanes {
        paths
            .iter()
            .map(|_| {
                let (tx, rx) = sync_channel(LANE_DEPTH);
                (Some(tx), rx)
            })
            .unzip()
    } else {
        (paths.iter().map(|_| None).collect(), Vec::new())
    };
    std::thread::scope(|scope| {
        let md5s =
            in_lanes.then(|| scope.spawn(move || crate::md5_lanes::hash_in_lockstep(streams)));
        let threads: Vec<_> = paths
            .iter()
            .zip(lanes)
            .map(|(p, lane)| {
                scope
                    .spawn(move || read_one(p, media, per_target, lane, piece_size, progress, stop))
            })
            .collect();
        let mut reads: Vec<Result<Read>> = threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(Error::Internal("a read-back thread panicked".into())))
            })
            .collect();
        if let Some(md5s) = md5s {
            match md5s.join() {
                Ok(digests) => {
                    for (read, digest) in reads.iter_mut().zip(digests) {
                        if let Ok(read) = read {
                            read.hashes.set(HashAlgorithm::Md5, &digest);
                        }
                    }
                }
                Err(_) => {
                    for read in &mut reads {
                        *read = Err(Error::Internal("the lockstep MD5 thread panicked".into()));
                    }
                }
            }
        }
        reads
    })
}

/// Pieces of `got` that differ from `want` (whole pieces, adjacent ones merged), and pieces
/// one list has and the other has not.
pub(super) fn differing(want: &PieceList, got: &PieceList) -> Vec<ByteRange> {
    let n = want.crcs.len().max(got.crcs.len());
    let mut out: Vec<ByteRange> = Vec::new();
    let size = u64::from(want.piece_size);
    let end = want.media_size.max(got.media_size);
    for i in 0..n {
        if want.crcs.get(i) == got.crcs.get(i) {
            continue;
        }
        let start = i as u64 * size;
        let length = size.min(end - start);
        match out.last_mut() {
            Some(last) if last.offset + last.length == start => last.length += length,
            _ => out.push(ByteRange {
                offset: start,
                length,
            }),
        }
    }
    out
}

/// The verdict on one target read back: it matches when every expected hash is equal and
/// every byte could be read.
pub(super) fn verdict(
    read: &Read,
    expected: &[Reference],
    reference_pieces: &PieceList,
) -> ReadBack {
    let hex = |a| read.hashes.get(a).map(to_hex);
    let hashes_equal = expected
        .iter()
        .all(|r| hex(r.algorithm).as_deref() == Some(r.hex.as_str()));
    let differing_ranges = differing(reference_pieces, &read.pieces);
    let unreadable_ranges: Vec<ByteRange> = read
        .unreadable
        .iter()
        .map(|r| ByteRange {
            offset: r.offset,
            length: r.length,
        })
        .collect();
    let matches = hashes_equal && unreadable_ranges.is_empty();
    ReadBack {
        verdict: if matches { "matches" } else { "differs" }.into(),
        direct_io: read.direct_io,
        md5: hex(HashAlgorithm::Md5),
        sha1: hex(HashAlgorithm::Sha1),
        sha256: hex(HashAlgorithm::Sha256),
        differing_ranges,
        unreadable_ranges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(crcs: &[u64], media: u64) -> PieceList {
        PieceList {
            piece_size: 1 << 20,
            media_size: media,
            crcs: crcs.to_vec(),
        }
    }

    #[test]
    fn differing_pieces_are_merged_into_ranges() {
        let mib = 1u64 << 20;
        let want = list(&[1, 2, 3, 4, 5], 4 * mib + 100);
        let got = list(&[1, 9, 9, 4, 6], 4 * mib + 100);
        assert_eq!(
            differing(&want, &got),
            vec![
                ByteRange {
                    offset: mib,
                    length: 2 * mib
                },
                ByteRange {
                    offset: 4 * mib,
                    length: 100
                }
            ]
        );
        assert!(differing(&want, &want).is_empty());
    }
}
