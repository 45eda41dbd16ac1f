//! A block of the source as it travels from the reader to every consumer: read once, shared
//! by reference (an `Arc<Block>`), never copied per consumer.

use crate::buffer::PooledBuf;
use crate::map::BadRun;

/// `len` bytes of the source starting at `offset`, in a pooled aligned buffer. Sectors that
/// could not be read are zeros here and listed in `unreadable`.
pub struct Block {
    /// Sequence number: blocks reach consumers in increasing order, without gaps.
    pub index: u64,
    /// Byte offset in the source.
    pub offset: u64,
    len: usize,
    buf: PooledBuf,
    /// Unreadable runs inside this block (absolute byte offsets), already zero-filled.
    pub unreadable: Vec<BadRun>,
}

impl Block {
    /// Wraps a filled buffer. `len` must not exceed the buffer.
    pub fn new(
        index: u64,
        offset: u64,
        buf: PooledBuf,
        len: usize,
        unreadable: Vec<BadRun>,
    ) -> Self {
        assert!(len <= buf.len(), "block longer than its buffer");
        Block {
            index,
            offset,
            len,
            buf,
            unreadable,
        }
    }

    /// The block's bytes (aligned to [`crate::buffer::ALIGN`] at the start).
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a block with no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the last byte's offset in the source.
    pub fn end(&self) -> u64 {
        self.offset + self.len as u64
    }
}
