//! The piece list: a CRC-64 of every fixed-size piece of the media (1 MiB by default), kept
//! beside the image so that a later verify can name the damaged byte ranges of a raw image
//! instead of only saying "hash mismatch".
//!
//! File format (`BASE.crc64`, all integers little-endian), documented in docs/formats.md:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `EXHCRC64` |
//! | 8 | 4 | format version, 1 |
//! | 12 | 4 | piece size in bytes |
//! | 16 | 8 | media size in bytes |
//! | 24 | 8 | number of pieces n = ceil(media size / piece size) |
//! | 32 | 8·n | CRC-64/XZ (ECMA-182 reflected, init and xorout all ones) of each piece |
//! | 32+8n | 8 | CRC-64/XZ of all preceding bytes |

use std::path::Path;

use crate::error::{Error, Result};

/// Default piece size: 1 MiB, so that 1 TB of media costs 8 MB of list.
pub const DEFAULT_PIECE_SIZE: u32 = 1 << 20;
const MAGIC: &[u8; 8] = b"EXHCRC64";

/// CRC-64 of each piece of a media stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceList {
    /// Bytes per piece (the last may be shorter).
    pub piece_size: u32,
    /// Total media bytes.
    pub media_size: u64,
    /// One CRC per piece.
    pub crcs: Vec<u64>,
}

/// Computes a [`PieceList`] from a stream fed in order, in blocks of any size.
pub struct PieceHasher {
    piece_size: u32,
    filled: u64,
    total: u64,
    digest: crc64fast::Digest,
    crcs: Vec<u64>,
}

impl PieceHasher {
    /// A hasher for pieces of `piece_size` bytes.
    pub fn new(piece_size: u32) -> Self {
        PieceHasher {
            piece_size,
            filled: 0,
            total: 0,
            digest: crc64fast::Digest::new(),
            crcs: Vec::new(),
        }
    }

    /// Feeds the next bytes of the media.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let room = (self.piece_size as u64 - self.filled) as usize;
            let take = room.min(data.len());
            self.digest.write(&data[..take]);
            self.filled += take as u64;
            data = &data[take..];
            if self.filled == self.piece_size as u64 {
                self.crcs.push(self.digest.sum64());
                self.digest = crc64fast::Digest::new();
                self.filled = 0;
            }
        }
    }

    /// The list, including a final short piece.
    pub fn finish(mut self) -> PieceList {
        if self.filled > 0 {
            self.crcs.push(self.digest.sum64());
        }
        PieceList {
            piece_size: self.piece_size,
            media_size: self.total,
            crcs: self.crcs,
        }
    }
}

impl PieceList {
    /// Byte range of piece `i` in the media.
    pub fn range(&self, i: usize) -> (u64, u64) {
        let start = i as u64 * self.piece_size as u64;
        (start, (start + self.piece_size as u64).min(self.media_size))
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + self.crcs.len() * 8);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&self.piece_size.to_le_bytes());
        v.extend_from_slice(&self.media_size.to_le_bytes());
        v.extend_from_slice(&(self.crcs.len() as u64).to_le_bytes());
        for c in &self.crcs {
            v.extend_from_slice(&c.to_le_bytes());
        }
        let mut d = crc64fast::Digest::new();
        d.write(&v);
        v.extend_from_slice(&d.sum64().to_le_bytes());
        v
    }

    /// Parses the file's bytes; `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |m: &str| Error::Format {
            path: path.to_path_buf(),
            message: format!("not a valid piece list: {m}"),
        };
        if bytes.len() < 40 || &bytes[..8] != MAGIC {
            return Err(bad("no EXHCRC64 header"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        if u32_at(8) != 1 {
            return Err(bad("unknown version"));
        }
        let piece_size = u32_at(12);
        let media_size = u64_at(16);
        let n = u64_at(24);
        if piece_size == 0 || n != media_size.div_ceil(piece_size as u64) {
            return Err(bad("piece count does not match the media size"));
        }
        let expected_len =
            40u64.checked_add(n.checked_mul(8).ok_or_else(|| bad("too many pieces"))?);
        if expected_len != Some(bytes.len() as u64) {
            return Err(bad("wrong length"));
        }
        let body = bytes.len() - 8;
        let mut d = crc64fast::Digest::new();
        d.write(&bytes[..body]);
        if d.sum64() != u64_at(body) {
            return Err(bad("its own checksum does not match (the list is damaged)"));
        }
        let crcs = (0..n as usize).map(|i| u64_at(32 + i * 8)).collect();
        Ok(PieceList {
            piece_size,
            media_size,
            crcs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_do_not_depend_on_block_boundaries() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31) as u8).collect();
        let mut a = PieceHasher::new(4096);
        a.update(&data);
        let mut b = PieceHasher::new(4096);
        for c in data.chunks(333) {
            b.update(c);
        }
        let (a, b) = (a.finish(), b.finish());
        assert_eq!(a, b);
        assert_eq!(a.crcs.len(), 3);
        assert_eq!(a.range(2), (8192, 10_000));
        let back = PieceList::from_bytes(&a.to_bytes(), Path::new("x")).unwrap();
        assert_eq!(back, a);
        let mut damaged = a.to_bytes();
        damaged[35] ^= 1;
        assert!(PieceList::from_bytes(&damaged, Path::new("x")).is_err());
    }
}
