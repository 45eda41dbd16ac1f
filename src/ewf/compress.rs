//! Turning one chunk of media into the bytes stored for it, and back.
//!
//! Stored form (EWF-NOTES §7): the zlib stream when it is *strictly* smaller than the chunk,
//! otherwise the raw bytes followed by their Adler-32 (LE). All-zero chunks are detected at
//! memory speed and reuse one precomputed stream, in every mode (libewf's "empty block").
//!
//! Engines, chosen by measurement (docs/performance.md, "E01 by data class"): ISA-L's igzip
//! level 2 for `Fast` (2.1× less CPU than libdeflate-1 on executables, 1.8× on text; its
//! images at most 0.8 % larger than ewfacquire's `fast` ones on every class measured, smaller
//! on text), and libdeflate level 9 for `Best` (about 3× zlib-9, smaller than zlib-9). Both
//! emit plain RFC 1950 zlib streams. Chunks that look like random data ([`classify`]: byte
//! entropy as high as random data's, no repeated sectors or strings) are stored raw without
//! trying: deflate cannot shrink them by more than ~0.06 %, and trying costs several times
//! the test. Random-looking chunks with repeated sectors go to libdeflate-1 even in `Fast`:
//! ISA-L's fast levels lose long matches amid random bytes (a 16 KiB random block stored
//! twice: 28 734 bytes from ISA-L 2, 16 617 from libdeflate-1, 16 575 from zlib-1).

use super::format::adler32;
use super::Compression;

/// A 64 KiB run of zeros to compare chunks against with `memcmp` speed.
static ZEROS: [u8; 65536] = [0u8; 65536];

/// True when every byte is zero (compared in 64 KiB slices against a static zero block).
pub fn is_all_zero(data: &[u8]) -> bool {
    data.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// How many bits per byte the order-0 entropy of a histogram over `n` bytes falls short of
/// 8, to first order: χ² / (2 n ln 2), which is exact enough near 8 bits (within a few %
/// of the deficit at 0.1 bits) and costs 256 integer multiply-adds instead of 256 log2.
fn entropy_deficit(hist: &[u32; 256], n: usize) -> f64 {
    let squares: u64 = hist.iter().map(|&c| u64::from(c) * u64::from(c)).sum();
    let n = n as f64;
    let chi_square = 256.0 * squares as f64 / n - n;
    chi_square / (2.0 * n * std::f64::consts::LN_2)
}

/// Whether deflate can shrink this chunk by more than a negligible amount, decided at a
/// fraction of deflate's cost (measured in docs/performance.md, "Giving up early"):
///
/// 1. every 8th byte's order-0 entropy < 7.9 bits: compressible (text ~5, executables ~6;
///    random data scores ≥ 7.93 on this 4096-byte sample of a 32 KiB chunk). Nearly every
///    chunk that is not random stops here, after 4096 byte loads.
/// 2. no two 512-byte sectors of the chunk start with the same 16 bytes: the order-0 tests
///    are blind to repeats, and on a disk repeats come sector-aligned (a file or block stored
///    twice); random data never repeats 16 bytes by chance. A repeat sends the chunk to an
///    engine that finds long matches amid noise ([`Content::NoiseWithRepeats`]).
/// 3. every other byte's entropy within 0.0045 bits of what uniform random data scores on
///    as many bytes (7.984 on the 16 384 of a 32 KiB chunk; the estimate's bias is
///    255 / (2 n ln 2), its spread 0.001): then Huffman coding can save at most ~0.06 %.
///    Compressed media (gzip, PNG, .deb) often passes (1) but not (3), and deflate still
///    takes 1–3 % off such chunks.
/// 4. in the first 1 KiB, fewer than 16 positions start a 4-byte string seen before
///    ([`has_matches`]): no structure that order-0 entropy cannot see (counting patterns).
fn classify(data: &[u8]) -> Content {
    if data.len() < 4096 {
        return Content::Ordinary;
    }
    let mut hist = [0u32; 256];
    for &b in data.iter().step_by(8) {
        hist[b as usize] += 1;
    }
    if entropy_deficit(&hist, data.len().div_ceil(8)) > 0.1 {
        return Content::Ordinary;
    }
    let mut heads: Vec<[u8; 16]> = data
        .chunks_exact(512)
        .map(|s| {
            let mut h = [0u8; 16];
            h.copy_from_slice(&s[..16]);
            h
        })
        .collect();
    heads.sort_unstable();
    if heads.windows(2).any(|w| w[0] == w[1]) {
        return Content::NoiseWithRepeats;
    }
    // Every other byte (half the cost of all of them, and as tight a test: measured), into
    // four histograms so that equal bytes in a row do not wait on one counter.
    let mut h4 = [[0u32; 256]; 4];
    let mut octets = data.chunks_exact(8);
    for q in &mut octets {
        h4[0][q[0] as usize] += 1;
        h4[1][q[2] as usize] += 1;
        h4[2][q[4] as usize] += 1;
        h4[3][q[6] as usize] += 1;
    }
    for &b in octets.remainder().iter().step_by(2) {
        h4[0][b as usize] += 1;
    }
    let mut all = [0u32; 256];
    for (i, c) in all.iter_mut().enumerate() {
        *c = h4[0][i] + h4[1][i] + h4[2][i] + h4[3][i];
    }
    let n = data.len().div_ceil(2);
    let random_falls_short = 255.0 / (2.0 * n as f64 * std::f64::consts::LN_2);
    if entropy_deficit(&all, n) > random_falls_short + 0.0045 {
        return Content::Ordinary;
    }
    if has_matches(&data[..PROBE]) {
        return Content::Ordinary;
    }
    Content::Noise
}

/// Bytes of a random-looking chunk that [`has_matches`] looks at.
const PROBE: usize = 1024;

/// Order-0 entropy is blind to structure: a counting pattern or a ramp has every byte value
/// equally often and deflates to almost nothing. This is deflate's own first step, cut down:
/// a table of where each 4-byte string was last seen, and a count of the positions whose
/// string was seen before (what a match finder would extend). In random bytes a 4-byte
/// string recurs within 1 KiB once in ~8000 chunks; 16 recurrences mean structure. Longer
/// periods are sector-aligned repeats on a disk, which the sector test sees.
fn has_matches(head: &[u8]) -> bool {
    const EMPTY: u16 = u16::MAX;
    let mut last = [EMPTY; 4096];
    let mut seen = 0u32;
    for (i, w) in head.windows(4).enumerate() {
        let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let slot = (word.wrapping_mul(0x9E37_79B1) >> 20) as usize;
        let before = last[slot];
        if before != EMPTY && head[before as usize..before as usize + 4] == *w {
            seen += 1;
            if seen >= 16 {
                return true;
            }
        }
        last[slot] = i as u16;
    }
    false
}

/// What [`classify`] finds in a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Content {
    /// Deflate will shrink it: the worker's engine.
    Ordinary,
    /// Random bytes: stored raw without trying.
    Noise,
    /// Random bytes with repeated sectors: deflate halves such a chunk, but only an engine
    /// that keeps long matches amid noise (libdeflate, zlib) finds the repeats.
    NoiseWithRepeats,
}

/// ISA-L's stateless zlib compressor, the only place exhibit calls into libisal.
#[allow(unsafe_code)]
mod igzip {
    use isal_sys::igzip_lib as il;

    /// Level-2 state: the stream structure (about 100 KiB, so boxed once, not per chunk) and
    /// the level buffer (its hash table), both reused for every chunk. Level 2 rather than 1:
    /// 5 % more CPU for executables 0.9 % smaller, which keeps them well inside 2 % of
    /// ewfacquire's size (level 1 came to +1.8 % on /usr/lib).
    pub struct Level2 {
        stream: Box<std::mem::MaybeUninit<il::isal_zstream>>,
        level_buf: Vec<u8>,
    }

    impl Level2 {
        pub fn new() -> Self {
            Level2 {
                stream: Box::new(std::mem::MaybeUninit::uninit()),
                level_buf: vec![0u8; il::ISAL_DEF_LVL2_DEFAULT as usize],
            }
        }

        /// The zlib stream of `input` in `out`; `None` when it does not fit in `out` (then
        /// ISA-L stops and reports an overflow: it never writes past `out`).
        pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
            let avail_in = u32::try_from(input.len()).ok()?;
            let avail_out = u32::try_from(out.len()).ok()?;
            let level_buf_size = u32::try_from(self.level_buf.len()).ok()?;
            let z = self.stream.as_mut_ptr();
            // SAFETY: `isal_deflate_stateless_init` initialises every field of the stream
            // structure that `isal_deflate_stateless` reads. The pointers handed over (input,
            // output, level buffer) are valid for the lengths given, live across the call, and
            // ISA-L keeps none of them after it returns; `next_in` is `*mut` only by the C
            // declaration: a stateless deflate never writes to its input.
            let (rc, total_out) = unsafe {
                il::isal_deflate_stateless_init(z);
                (*z).level = 2;
                (*z).level_buf = self.level_buf.as_mut_ptr();
                (*z).level_buf_size = level_buf_size;
                (*z).gzip_flag = il::IGZIP_ZLIB as u16;
                (*z).end_of_stream = 1;
                (*z).flush = il::NO_FLUSH as u16;
                (*z).next_in = input.as_ptr().cast_mut();
                (*z).avail_in = avail_in;
                (*z).next_out = out.as_mut_ptr();
                (*z).avail_out = avail_out;
                let rc = il::isal_deflate_stateless(z);
                (rc, (*z).total_out)
            };
            let n = usize::try_from(total_out).ok()?;
            (rc == il::COMP_OK as i32 && n <= out.len()).then_some(n)
        }
    }
}

/// The deflate engine of one worker.
enum Deflater {
    Isal(igzip::Level2),
    Libdeflate(libdeflater::Compressor),
}

impl Deflater {
    fn zlib_compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        match self {
            Deflater::Isal(c) => c.compress(input, out),
            Deflater::Libdeflate(c) => c.zlib_compress(input, out).ok(),
        }
    }
}

/// One worker's compression state; each compression thread owns one.
pub struct ChunkEncoder {
    compression: Compression,
    deflate: Deflater,
    /// libdeflate-1 for [`Content::NoiseWithRepeats`] in `Fast`, made on first use.
    repeats: Option<Deflater>,
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
        let deflate = match compression {
            Compression::Best => Deflater::Libdeflate(libdeflater::Compressor::new(
                libdeflater::CompressionLvl::new(9).unwrap_or_default(),
            )),
            // None uses it only for short all-zero chunks.
            Compression::Fast | Compression::None => Deflater::Isal(igzip::Level2::new()),
        };
        ChunkEncoder {
            compression,
            deflate,
            repeats: None,
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
            return self.deflate_into(data, out, false);
        }
        match self.compression {
            Compression::None => self.store_raw(data, out),
            Compression::Fast | Compression::Best => match classify(data) {
                Content::Noise => self.store_raw(data, out),
                Content::NoiseWithRepeats => self.deflate_into(data, out, true),
                Content::Ordinary => self.deflate_into(data, out, false),
            },
        }
    }

    fn deflate_into(&mut self, data: &[u8], out: &mut Vec<u8>, noisy_repeats: bool) -> bool {
        let room = data.len().saturating_sub(1);
        if self.scratch.len() < room {
            self.scratch.resize(room, 0);
        }
        let engine = if noisy_repeats && matches!(self.deflate, Deflater::Isal(_)) {
            self.repeats.get_or_insert_with(|| {
                Deflater::Libdeflate(libdeflater::Compressor::new(
                    libdeflater::CompressionLvl::new(1).unwrap_or_default(),
                ))
            })
        } else {
            &mut self.deflate
        };
        match engine.zlib_compress(data, &mut self.scratch[..room]) {
            Some(n) if n > 0 && n < data.len() => {
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

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect()
    }

    #[test]
    fn the_early_give_up_takes_random_chunks_only() {
        let random = pseudo_random(32768, 7);
        assert_eq!(classify(&random), Content::Noise);
        // A sector-aligned repeat (a 4 KiB block stored twice) keeps the entropy of random
        // data but deflate halves it: the chunk must be compressed, not stored.
        let mut repeated = random[..16384].to_vec();
        repeated.extend_from_slice(&random[..16384]);
        assert_eq!(classify(&repeated), Content::NoiseWithRepeats);
        assert!(round_trip(Compression::Fast, &repeated, 32768));
        let mut enc = ChunkEncoder::new(
            Compression::Fast,
            32768,
            Arc::new(compressed_zero_chunk(32768)),
        );
        let mut stored = Vec::new();
        assert!(enc.encode(&repeated, &mut stored));
        assert!(stored.len() < 17 * 1024, "{} bytes", stored.len());
        // Random bytes drawn from 250 of the 256 values: order-0 entropy 7.97, which the
        // 1-in-8 sample cannot tell from random but the whole chunk can; deflate saves ~0.4 %.
        let skewed: Vec<u8> = random.iter().map(|&b| b % 250).collect();
        assert_eq!(classify(&skewed), Content::Ordinary);
        assert!(round_trip(Compression::Fast, &skewed, 32768));
        let text: Vec<u8> = b"forensic images keep every byte ".repeat(1024);
        assert_eq!(classify(&text), Content::Ordinary);
        // Every byte value equally often, no sector starting like another (period 251), and
        // deflate takes it to a few hundred bytes: only the match probe sees that.
        let counting: Vec<u8> = (0..32768u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(classify(&counting), Content::Ordinary);
        assert!(round_trip(Compression::Best, &counting, 32768));
    }

    #[test]
    fn fast_streams_are_plain_zlib() {
        // What readers other than ours see: RFC 1950 (header check bits, Adler-32 trailer).
        let data: Vec<u8> = (0..32768u32)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect();
        let mut enc = ChunkEncoder::new(
            Compression::Fast,
            32768,
            Arc::new(compressed_zero_chunk(32768)),
        );
        let mut stored = Vec::new();
        assert!(enc.encode(&data, &mut stored));
        assert_eq!(stored[0] & 0x0f, 8, "deflate method");
        assert_eq!(
            u16::from_be_bytes([stored[0], stored[1]]) % 31,
            0,
            "header check"
        );
        let trailer = &stored[stored.len() - 4..];
        assert_eq!(trailer, adler32(&data).to_be_bytes());
        let mut out = vec![0u8; 32768];
        let n = libdeflater::Decompressor::new()
            .zlib_decompress(&stored, &mut out)
            .unwrap();
        assert_eq!(&out[..n], &data[..]);
    }
}
