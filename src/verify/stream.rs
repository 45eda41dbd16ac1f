//! Verify's pass over an image's media: [`crate::pipeline::run`] with hash threads and the
//! piece list and no sink, fed from the buffers the image asks for
//! ([`crate::image::Image::pass_buffers`]).

use std::sync::atomic::AtomicBool;

use crate::buffer::BufferPool;
use crate::error::Result;
use crate::hash::{HashAlgorithm, MediaHashes};
use crate::pieces::PieceList;
use crate::pipeline::{self, Consumers, Feed, Tuning};
use crate::progress::Progress;

/// What one pass computed.
#[derive(Debug)]
pub struct PassResult<T> {
    /// The media hashes.
    pub hashes: MediaHashes,
    /// The piece list of the media, when one was asked for.
    pub pieces: Option<PieceList>,
    /// Media bytes seen.
    pub bytes: u64,
    /// What the producer returned.
    pub value: T,
}

/// Runs `produce` with hash threads for `algorithms` and, with `piece_size`, a piece-list
/// thread, all fed from `blocks` buffers of `block_len` bytes.
pub fn run_sized<T>(
    algorithms: &[HashAlgorithm],
    piece_size: Option<u32>,
    block_len: usize,
    blocks: usize,
    progress: &Progress,
    stop: &AtomicBool,
    produce: impl FnOnce(&mut Feed<'_>) -> Result<T>,
) -> Result<PassResult<T>> {
    let pool = BufferPool::new(blocks.max(1), block_len);
    let consumers = Consumers {
        hashes: algorithms.to_vec(),
        piece_size,
        sinks: Vec::new(),
    };
    let p = pipeline::run(consumers, &pool, Tuning::default(), progress, stop, produce)?;
    Ok(PassResult {
        hashes: p.hashes,
        pieces: p.pieces,
        bytes: p.bytes,
        value: p.value,
    })
}
