//! Turning one chunk of media into the bytes stored for it, and back.
//!
//! Stored form (EWF-NOTES §7): the zlib stream when it is *strictly* smaller than the chunk,
//! otherwise the raw bytes followed by their Adler-32 (LE). All-zero chunks are detected at
//! memory speed and reuse one precomputed stream, in every mode (libewf's "empty block").
//!
//! Engine, chosen by measurement (docs/e01.md, bench/deflate): libdeflate, level 1 for
//! `Fast` (about 2× zlib-1 per core, smaller output than zlib-1 on every kind of data we
//! measured) and level 9 for `Best` (about 3× zlib-9, smaller than zlib-9). ISA-L was faster
//! but its output was larger than zlib-1's on executables. Both emit plain RFC 1950 zlib
//! streams. Chunks that look like
//! random data (order-0 entropy of a 1-in-8 byte sample ≥ 7.9 bits) are stored raw without
//! trying: deflate cannot shrink them by more than a fraction of a percent, and trying costs
//! as much as compressing text.

use super::format::adler32;
use super::Compression;

/// A 64 KiB run of zeros to compare chunks against with `memcmp` speed.
static ZEROS: [u8; 65536] = [0u8; 65536];

/// True when every byte is zero (compared in 64 KiB slices against a static zero block).
pub fn is_all_zero(data: &[u8]) -> bool {
    data.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// Order-0 entropy of every 8th byte ≥ 7.9 bits: uniform random data scores ~7.95 on a
/// 4096-byte sample of a 32 KiB chunk; text scores ~5, executables ~6.
fn looks_random(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    let mut hist = [0u32; 256];
    let mut n = 0u32;
    for &b in data.iter().step_by(8) {
        hist[b as usize] += 1;
        n += 1;
    }
    let n = n as f32;
    let mut e = 0.0f32;
    for &c in &hist {
        if c > 0 {
            let p = c as f32 / n;
            e -= p * p.log2();
        }
    }
    e >= 7.9
}

/// One worker's compression state; each compression thread owns one.
pub struct ChunkEncoder {
    compression: Compression,
    deflate: libdeflater::Compressor,
    zero_full: std::sync::Arc<Vec<u8>>,
    chunk_size: usize,
    scratch: Vec<u8>,
}

/// The zlib stream of a full all-zero chunk, computed once per set (libdeflate level 12 gives
/// the smallest stream; it is a constant, so its cost does not matter).
pub fn compressed_zero_chunk(chunk_size: usize) -> Vec<u8> {
    let zeros = vec![0u8; chunk_size];
    let mut c =
        libdeflater::Compressor::new(libdeflater::CompressionLvl::new(12).unwrap_or_default());
    let mut out = vec![0u8; c.zlib_compress_bound(chunk_size)];
    let n = c.zlib_compress(&zeros, &mut out).unwrap_or(0);
    out.truncate(n);
    out
}

impl ChunkEncoder {
    /// An encoder for chunks of `chunk_size` bytes; `zero_full` from [`compressed_zero_chunk`].
    pub fn new(
        compression: Compression,
        chunk_size: usize,
        zero_full: std::sync::Arc<Vec<u8>>,
    ) -> Self {
        let level = match compression {
            Compression::Best => 9,
            // None uses it only for short all-zero chunks.
            Compression::Fast | Compression::None => 1,
        };
        ChunkEncoder {
            compression,
            deflate: libdeflater::Compressor::new(
                libdeflater::CompressionLvl::new(level).unwrap_or_default(),
            ),
            zero_full,
            chunk_size,
            scratch: vec![0u8; chunk_size],
        }
    }

    /// Appends the stored form of `data` (one chunk, possibly the short last one) to `out`;
    /// returns whether it was stored compressed.
    pub fn encode(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        if is_all_zero(data) {
            if data.len() == self.chunk_size && self.zero_full.len() < data.len() {
                out.extend_from_slice(&self.zero_full);
                return true;
            }
            return self.deflate_into(data, out);
        }
        match self.compression {
            Compression::None => self.store_raw(data, out),
            Compression::Fast | Compression::Best => {
                if looks_random(data) {
                    return self.store_raw(data, out);
                }
                self.deflate_into(data, out)
            }
        }
    }

    fn deflate_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let room = data.len().saturating_sub(1);
        if self.scratch.len() < room {
            self.scratch.resize(room, 0);
        }
        match self.deflate.zlib_compress(data, &mut self.scratch[..room]) {
            Ok(n) if n > 0 && n < data.len() => {
                out.extend_from_slice(&self.scratch[..n]);
                true
            }
            _ => self.store_raw(data, out),
        }
    }

    /// Raw bytes + Adler-32. A short (last) chunk is padded with zeros to a full chunk: the
    /// `ewf` crate 0.4 cannot read a short raw last chunk (EWF-NOTES §11.4 bug 1), and libewf
    /// 2014/2026, TSK and ewf-image all read the padded form (the media size comes from the
    /// volume's sector count, so the padding is never part of the media). See docs/e01.md.
    fn store_raw(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(data);
        let mut sum = libdeflater::Adler32::new();
        sum.update(data);
        if data.len() < self.chunk_size {
            let pad = self.chunk_size - data.len();
            out.resize(out.len() + pad, 0);
            sum.update(&ZEROS[..pad.min(ZEROS.len())]);
            let mut left = pad.saturating_sub(ZEROS.len());
            while left > 0 {
                let n = left.min(ZEROS.len());
                sum.update(&ZEROS[..n]);
                left -= n;
            }
        }
        out.extend_from_slice(&sum.sum().to_le_bytes());
        false
    }
}

/// Why a stored chunk could not be turned back into media bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkFault {
    /// zlib stream damaged (bad deflate data or Adler-32 trailer mismatch).
    BadStream,
    /// The stream inflates to more than the chunk size.
    TooLong,
    /// The stream inflates to a length other than the expected one.
    WrongLength(usize),
    /// A raw chunk's Adler-32 does not match.
    BadChecksum,
    /// A raw chunk's stored size is neither the chunk's length + 4 nor a padded full chunk.
    WrongStoredSize(usize),
}

impl std::fmt::Display for ChunkFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkFault::BadStream => {
                f.write_str("zlib stream damaged (deflate data or Adler-32 trailer)")
            }
            ChunkFault::TooLong => f.write_str("zlib stream inflates to more than the chunk size"),
            ChunkFault::WrongLength(n) => write!(
                f,
                "zlib stream inflates to {n} bytes, not the chunk's length"
            ),
            ChunkFault::BadChecksum => f.write_str("raw chunk's Adler-32 does not match"),
            ChunkFault::WrongStoredSize(n) => {
                write!(f, "raw chunk stored in {n} bytes, not its length + 4")
            }
        }
    }
}

/// One reader's decompression state.
pub struct ChunkDecoder {
    inflater: libdeflater::Decompressor,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        ChunkDecoder {
            inflater: libdeflater::Decompressor::new(),
        }
    }
}

impl ChunkDecoder {
    /// Decodes a stored chunk whose media length is `expected` into `out` (resized to
    /// `expected`). `chunk_size` bounds the output: a stream never inflates past it. A short
    /// last chunk that was stored padded to a full chunk is accepted (its padding is cut).
    pub fn decode(
        &mut self,
        stored: &[u8],
        compressed: bool,
        expected: usize,
        chunk_size: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ChunkFault> {
        out.clear();
        out.resize(chunk_size.max(expected), 0);
        if compressed {
            let n = match self.inflater.zlib_decompress(stored, out) {
                Ok(n) => n,
                Err(libdeflater::DecompressionError::InsufficientSpace) => {
                    return Err(ChunkFault::TooLong)
                }
                Err(libdeflater::DecompressionError::BadData) => return Err(ChunkFault::BadStream),
            };
            if n != expected && n != chunk_size {
                return Err(ChunkFault::WrongLength(n));
            }
            out.truncate(expected);
            Ok(())
        } else {
            if stored.len() < 4 || (stored.len() != expected + 4 && stored.len() != chunk_size + 4)
            {
                return Err(ChunkFault::WrongStoredSize(stored.len()));
            }
            let (data, sum) = stored.split_at(stored.len() - 4);
            if adler32(data).to_le_bytes() != sum {
                return Err(ChunkFault::BadChecksum);
            }
            out.clear();
            out.extend_from_slice(&data[..expected]);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn round_trip(c: Compression, data: &[u8], chunk: usize) -> bool {
        let mut enc = ChunkEncoder::new(c, chunk, Arc::new(compressed_zero_chunk(chunk)));
        let mut stored = Vec::new();
        let compressed = enc.encode(data, &mut stored);
        let mut out = Vec::new();
        ChunkDecoder::default()
            .decode(&stored, compressed, data.len(), chunk, &mut out)
            .unwrap();
        assert_eq!(out, data);
        if compressed {
            assert!(stored.len() < data.len());
        } else {
            assert_eq!(
                stored.len(),
                chunk + 4,
                "raw chunks are stored full (padded)"
            );
        }
        compressed
    }

    #[test]
    fn chunks_round_trip_in_every_mode() {
        let chunk = 32768;
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog "
            .iter()
            .cycle()
            .take(chunk)
            .copied()
            .collect();
        let mut x = 1u64;
        let random: Vec<u8> = (0..chunk)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
        for c in [Compression::None, Compression::Fast, Compression::Best] {
            assert!(round_trip(c, &vec![0u8; chunk], chunk));
            assert!(round_trip(c, &vec![0u8; 1000], chunk));
            assert_eq!(round_trip(c, &text, chunk), c != Compression::None);
            assert!(!round_trip(c, &random, chunk));
            assert!(!round_trip(c, &random[..700], chunk));
        }
    }
}
