//! MD5 of several independent streams of the same length at once, one stream per 32-bit lane
//! of a vector register: reading three restored disks back costs about one MD5 of CPU instead
//! of three.
//!
//! One MD5 stream is a chain of 64 dependent steps per 64-byte block and cannot go faster than
//! that chain, whatever the vector width; independent streams have no dependency on each
//! other, so eight of them run in the eight lanes of one AVX-512VL `__m256i` at about the cost
//! of one (`vpternlogd` computes each step's boolean function and `vprold` its rotation in one
//! instruction each, so a lane's chain is no longer than the scalar one). Where AVX-512VL is
//! missing each stream goes through the scalar assembly of `md5-asm`, the same code `md-5`
//! runs for a single stream, so nothing is slower than hashing the streams one by one.
//!
//! The streams are fed in lockstep: every [`Md5Lanes::update`] takes the same number of bytes
//! of every live stream, so all of them sit at the same offset and block boundary.

/// Streams one vector register holds.
pub const LANES: usize = 8;

use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::block::Block;

const INITIAL: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// MD5 over several streams fed in lockstep.
pub struct Md5Lanes {
    states: Vec<[u32; 4]>,
    /// Bytes of every stream's unfinished block (the same count for every stream).
    carry: Vec<[u8; 64]>,
    carry_len: usize,
    /// Bytes of each stream so far.
    total: u64,
}

impl Md5Lanes {
    /// `streams` fresh hashes.
    pub fn new(streams: usize) -> Md5Lanes {
        Md5Lanes {
            states: vec![INITIAL; streams],
            carry: vec![[0; 64]; streams],
            carry_len: 0,
            total: 0,
        }
    }

    /// Streams hashed.
    pub fn streams(&self) -> usize {
        self.states.len()
    }

    /// Takes the next bytes of every stream: `inputs[i]` for stream `i`, all of one length.
    pub fn update(&mut self, inputs: &[&[u8]]) {
        assert_eq!(inputs.len(), self.states.len(), "one input per stream");
        let Some(len) = inputs.first().map(|i| i.len()) else {
            return;
        };
        assert!(
            inputs.iter().all(|i| i.len() == len),
            "streams are fed in lockstep"
        );
        self.total += len as u64;
        let mut at = 0;
        if self.carry_len > 0 {
            let fill = (64 - self.carry_len).min(len);
            for (carry, input) in self.carry.iter_mut().zip(inputs) {
                carry[self.carry_len..self.carry_len + fill].copy_from_slice(&input[..fill]);
            }
            self.carry_len += fill;
            at = fill;
            if self.carry_len < 64 {
                return;
            }
            let blocks: Vec<&[u8]> = self.carry.iter().map(|c| &c[..]).collect();
            compress_all(&mut self.states, &blocks, 1);
            self.carry_len = 0;
        }
        let whole = (len - at) / 64;
        if whole > 0 {
            let blocks: Vec<&[u8]> = inputs.iter().map(|i| &i[at..at + whole * 64]).collect();
            compress_all(&mut self.states, &blocks, whole);
            at += whole * 64;
        }
        let rest = len - at;
        for (carry, input) in self.carry.iter_mut().zip(inputs) {
            carry[..rest].copy_from_slice(&input[at..]);
        }
        self.carry_len = rest;
    }

    /// The digest of stream `stream` over everything fed so far.
    pub fn digest(&self, stream: usize) -> [u8; 16] {
        let mut state = self.states[stream];
        let mut tail = [0u8; 128];
        tail[..self.carry_len].copy_from_slice(&self.carry[stream][..self.carry_len]);
        tail[self.carry_len] = 0x80;
        let blocks = if self.carry_len < 56 { 1 } else { 2 };
        tail[blocks * 64 - 8..blocks * 64].copy_from_slice(&(self.total * 8).to_le_bytes());
        let tail: Vec<[u8; 64]> = tail
            .chunks_exact(64)
            .take(blocks)
            .map(|b| b.try_into().expect("64 bytes"))
            .collect();
        md5_asm::compress(&mut state, &tail);
        let mut out = [0u8; 16];
        for (word, bytes) in state.iter().zip(out.chunks_exact_mut(4)) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Stops hashing stream `stream` (it ended early); the others go on.
    pub fn remove(&mut self, stream: usize) {
        self.states.remove(stream);
        self.carry.remove(stream);
    }
}

/// Hashes the streams that arrive on `streams` (blocks of any sizes, in order) in lockstep,
/// until each sender is dropped; returns each stream's MD5. A stream that ends early is
/// finished there and the others go on (its digest then covers what it sent).
///
/// Waiting on one stream while the others are ahead is what lockstep means: each producer is
/// held back only by its own bounded channel, and the stream waited on always has an empty
/// one, so it can always go on.
pub fn hash_in_lockstep(streams: Vec<Receiver<Arc<Block>>>) -> Vec<[u8; 16]> {
    let mut digests = vec![[0u8; 16]; streams.len()];
    let mut lanes = Md5Lanes::new(streams.len());
    // Per live lane: its stream's index and the block it is in, with the bytes used of it.
    type Lane = (usize, Option<(Arc<Block>, usize)>);
    let mut live: Vec<Lane> = (0..streams.len()).map(|i| (i, None)).collect();
    loop {
        let mut lane = 0;
        while lane < live.len() {
            let (stream, current) = &mut live[lane];
            if current.as_ref().is_some_and(|(b, used)| *used < b.len()) {
                lane += 1;
                continue;
            }
            match streams[*stream].recv() {
                Ok(block) => *current = Some((block, 0)),
                Err(_) => {
                    digests[*stream] = lanes.digest(lane);
                    lanes.remove(lane);
                    live.remove(lane);
                }
            }
        }
        if live.is_empty() {
            return digests;
        }
        let take = live
            .iter()
            .map(|(_, c)| c.as_ref().map_or(0, |(b, used)| b.len() - used))
            .min()
            .unwrap_or(0);
        let inputs: Vec<&[u8]> = live
            .iter()
            .map(|(_, c)| {
                let (b, used) = c.as_ref().expect("every live lane has a block");
                &b.data()[*used..*used + take]
            })
            .collect();
        lanes.update(&inputs);
        for (_, c) in live.iter_mut() {
            if let Some((_, used)) = c {
                *used += take;
            }
        }
    }
}

/// `blocks` whole 64-byte blocks of every stream (`inputs[i]` is `blocks × 64` bytes) into
/// `states`, eight streams to a register where the CPU can, else one by one.
fn compress_all(states: &mut [[u32; 4]], inputs: &[&[u8]], blocks: usize) {
    #[cfg(target_arch = "x86_64")]
    if states.len() > 1
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        for (states, inputs) in states.chunks_mut(LANES).zip(inputs.chunks(LANES)) {
            // SAFETY: the CPU has AVX-512F and AVX-512VL (checked above).
            unsafe { x86::compress8(states, inputs, blocks) };
        }
        return;
    }
    for (state, input) in states.iter_mut().zip(inputs) {
        compress_one(state, &input[..blocks * 64]);
    }
}

fn compress_one(state: &mut [u32; 4], input: &[u8]) {
    let (blocks, rest) = input.as_chunks::<64>();
    debug_assert!(rest.is_empty());
    md5_asm::compress(state, blocks);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// MD5's additive constants, one per step.
    const K: [u32; 64] = [
        0xd76a_a478,
        0xe8c7_b756,
        0x2420_70db,
        0xc1bd_ceee,
        0xf57c_0faf,
        0x4787_c62a,
        0xa830_4613,
        0xfd46_9501,
        0x6980_98d8,
        0x8b44_f7af,
        0xffff_5bb1,
        0x895c_d7be,
        0x6b90_1122,
        0xfd98_7193,
        0xa679_438e,
        0x49b4_0821,
        0xf61e_2562,
        0xc040_b340,
        0x265e_5a51,
        0xe9b6_c7aa,
        0xd62f_105d,
        0x0244_1453,
        0xd8a1_e681,
        0xe7d3_fbc8,
        0x21e1_cde6,
        0xc337_07d6,
        0xf4d5_0d87,
        0x455a_14ed,
        0xa9e3_e905,
        0xfcef_a3f8,
        0x676f_02d9,
        0x8d2a_4c8a,
        0xfffa_3942,
        0x8771_f681,
        0x6d9d_6122,
        0xfde5_380c,
        0xa4be_ea44,
        0x4bde_cfa9,
        0xf6bb_4b60,
        0xbebf_bc70,
        0x289b_7ec6,
        0xeaa1_27fa,
        0xd4ef_3085,
        0x0488_1d05,
        0xd9d4_d039,
        0xe6db_99e5,
        0x1fa2_7cf8,
        0xc4ac_5665,
        0xf429_2244,
        0x432a_ff97,
        0xab94_23a7,
        0xfc93_a039,
        0x655b_59c3,
        0x8f0c_cc92,
        0xffef_f47d,
        0x8584_5dd1,
        0x6fa8_7e4f,
        0xfe2c_e6e0,
        0xa301_4314,
        0x4e08_11a1,
        0xf753_7e82,
        0xbd3a_f235,
        0x2ad7_d2bb,
        0xeb86_d391,
    ];

    /// Up to eight streams, one per lane: `blocks` 64-byte blocks of each. Lanes without a
    /// stream compute a copy of the first one's and are thrown away.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512VL.
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) unsafe fn compress8(states: &mut [[u32; 4]], inputs: &[&[u8]], blocks: usize) {
        let lanes = states.len();
        let lane_state = |word: usize| {
            let mut v = [0u32; 8];
            for (l, slot) in v.iter_mut().enumerate() {
                *slot = states[l.min(lanes - 1)][word];
            }
            // SAFETY: `v` is 8 u32s: 32 bytes, read unaligned.
            unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
        };
        let (mut a, mut b, mut c, mut d) =
            (lane_state(0), lane_state(1), lane_state(2), lane_state(3));
        let mut words = [[0u32; 8]; 16];
        for block in 0..blocks {
            // Word j of every lane's block side by side: lane l's bytes are its own buffer's.
            for l in 0..8 {
                let input = inputs[l.min(lanes - 1)];
                let bytes = &input[block * 64..block * 64 + 64];
                for (j, word) in words.iter_mut().enumerate() {
                    word[l] = u32::from_le_bytes(bytes[j * 4..j * 4 + 4].try_into().unwrap());
                }
            }
            // SAFETY: each row of `words` is 8 u32s.
            let m: [__m256i; 16] =
                std::array::from_fn(|j| unsafe { _mm256_loadu_si256(words[j].as_ptr().cast()) });
            let (a0, b0, c0, d0) = (a, b, c, d);
            macro_rules! step {
                ($f:literal, $a:ident, $b:ident, $c:ident, $d:ident, $i:literal, $g:literal, $s:literal) => {
                    // a + K + M does not wait for the previous step; only F(b, c, d) does,
                    // so the chain per step is four instructions long.
                    let ready = _mm256_add_epi32(
                        $a,
                        _mm256_add_epi32(_mm256_set1_epi32(K[$i] as i32), m[$g]),
                    );
                    let sum = _mm256_add_epi32(ready, _mm256_ternarylogic_epi32::<$f>($b, $c, $d));
                    $a = _mm256_add_epi32($b, _mm256_rol_epi32::<$s>(sum));
                };
            }
            // Round 1: F = b ? c : d (0xca); message word i.
            step!(0xca, a, b, c, d, 0, 0, 7);
            step!(0xca, d, a, b, c, 1, 1, 12);
            step!(0xca, c, d, a, b, 2, 2, 17);
            step!(0xca, b, c, d, a, 3, 3, 22);
            step!(0xca, a, b, c, d, 4, 4, 7);
            step!(0xca, d, a, b, c, 5, 5, 12);
            step!(0xca, c, d, a, b, 6, 6, 17);
            step!(0xca, b, c, d, a, 7, 7, 22);
            step!(0xca, a, b, c, d, 8, 8, 7);
            step!(0xca, d, a, b, c, 9, 9, 12);
            step!(0xca, c, d, a, b, 10, 10, 17);
            step!(0xca, b, c, d, a, 11, 11, 22);
            step!(0xca, a, b, c, d, 12, 12, 7);
            step!(0xca, d, a, b, c, 13, 13, 12);
            step!(0xca, c, d, a, b, 14, 14, 17);
            step!(0xca, b, c, d, a, 15, 15, 22);
            // Round 2: G = d ? b : c (0xe4); word (5i + 1) mod 16.
            step!(0xe4, a, b, c, d, 16, 1, 5);
            step!(0xe4, d, a, b, c, 17, 6, 9);
            step!(0xe4, c, d, a, b, 18, 11, 14);
            step!(0xe4, b, c, d, a, 19, 0, 20);
            step!(0xe4, a, b, c, d, 20, 5, 5);
            step!(0xe4, d, a, b, c, 21, 10, 9);
            step!(0xe4, c, d, a, b, 22, 15, 14);
            step!(0xe4, b, c, d, a, 23, 4, 20);
            step!(0xe4, a, b, c, d, 24, 9, 5);
            step!(0xe4, d, a, b, c, 25, 14, 9);
            step!(0xe4, c, d, a, b, 26, 3, 14);
            step!(0xe4, b, c, d, a, 27, 8, 20);
            step!(0xe4, a, b, c, d, 28, 13, 5);
            step!(0xe4, d, a, b, c, 29, 2, 9);
            step!(0xe4, c, d, a, b, 30, 7, 14);
            step!(0xe4, b, c, d, a, 31, 12, 20);
            // Round 3: H = b ^ c ^ d (0x96); word (3i + 5) mod 16.
            step!(0x96, a, b, c, d, 32, 5, 4);
            step!(0x96, d, a, b, c, 33, 8, 11);
            step!(0x96, c, d, a, b, 34, 11, 16);
            step!(0x96, b, c, d, a, 35, 14, 23);
            step!(0x96, a, b, c, d, 36, 1, 4);
            step!(0x96, d, a, b, c, 37, 4, 11);
            step!(0x96, c, d, a, b, 38, 7, 16);
            step!(0x96, b, c, d, a, 39, 10, 23);
            step!(0x96, a, b, c, d, 40, 13, 4);
            step!(0x96, d, a, b, c, 41, 0, 11);
            step!(0x96, c, d, a, b, 42, 3, 16);
            step!(0x96, b, c, d, a, 43, 6, 23);
            step!(0x96, a, b, c, d, 44, 9, 4);
            step!(0x96, d, a, b, c, 45, 12, 11);
            step!(0x96, c, d, a, b, 46, 15, 16);
            step!(0x96, b, c, d, a, 47, 2, 23);
            // Round 4: I = c ^ (b | !d) (0x39); word 7i mod 16.
            step!(0x39, a, b, c, d, 48, 0, 6);
            step!(0x39, d, a, b, c, 49, 7, 10);
            step!(0x39, c, d, a, b, 50, 14, 15);
            step!(0x39, b, c, d, a, 51, 5, 21);
            step!(0x39, a, b, c, d, 52, 12, 6);
            step!(0x39, d, a, b, c, 53, 3, 10);
            step!(0x39, c, d, a, b, 54, 10, 15);
            step!(0x39, b, c, d, a, 55, 1, 21);
            step!(0x39, a, b, c, d, 56, 8, 6);
            step!(0x39, d, a, b, c, 57, 15, 10);
            step!(0x39, c, d, a, b, 58, 6, 15);
            step!(0x39, b, c, d, a, 59, 13, 21);
            step!(0x39, a, b, c, d, 60, 4, 6);
            step!(0x39, d, a, b, c, 61, 11, 10);
            step!(0x39, c, d, a, b, 62, 2, 15);
            step!(0x39, b, c, d, a, 63, 9, 21);
            a = _mm256_add_epi32(a, a0);
            b = _mm256_add_epi32(b, b0);
            c = _mm256_add_epi32(c, c0);
            d = _mm256_add_epi32(d, d0);
        }
        for (word, v) in [a, b, c, d].into_iter().enumerate() {
            let mut out = [0u32; 8];
            // SAFETY: `out` is 8 u32s.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
            for (state, value) in states.iter_mut().zip(out) {
                state[word] = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn bytes(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn every_lane_count_and_feed_gives_md5s_digests() {
        for streams in [1, 2, 3, 8, 9, 17] {
            for len in [0, 1, 55, 56, 63, 64, 65, 1000, 4096 + 17] {
                let data: Vec<Vec<u8>> = (0..streams).map(|s| bytes(len, s as u32 + 7)).collect();
                // Fed in uneven pieces, to cross block boundaries inside the carry.
                let mut lanes = Md5Lanes::new(streams);
                let mut at = 0;
                for step in [3, 61, 64, 200, 1, 5000].iter().cycle() {
                    if at == len {
                        break;
                    }
                    let n = (*step).min(len - at);
                    let inputs: Vec<&[u8]> = data.iter().map(|d| &d[at..at + n]).collect();
                    lanes.update(&inputs);
                    at += n;
                }
                for (s, d) in data.iter().enumerate() {
                    assert_eq!(
                        lanes.digest(s)[..],
                        Md5::digest(d)[..],
                        "{streams} streams, {len} bytes, stream {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn streams_of_differently_cut_blocks_hash_in_lockstep() {
        use std::sync::mpsc::sync_channel;
        let data: Vec<Vec<u8>> = (0..3).map(|s| bytes(10_000, s + 1)).collect();
        let cuts: [&[usize]; 3] = [&[4096, 4096, 1808], &[512; 20], &[10_000]];
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| sync_channel(2)).unzip();
        let hasher = std::thread::spawn(move || hash_in_lockstep(receivers));
        std::thread::scope(|scope| {
            for ((tx, d), cut) in senders.into_iter().zip(&data).zip(cuts) {
                scope.spawn(move || {
                    let pool = crate::buffer::BufferPool::new(4, 16 << 10);
                    let mut at = 0;
                    for (index, &n) in cut.iter().cycle().enumerate() {
                        if at == d.len() {
                            break;
                        }
                        let n = n.min(d.len() - at);
                        let mut buf = pool.take();
                        buf[..n].copy_from_slice(&d[at..at + n]);
                        let block = Block::new(index as u64, at as u64, buf, n, Vec::new());
                        tx.send(Arc::new(block)).unwrap();
                        at += n;
                    }
                });
            }
        });
        let digests = hasher.join().unwrap();
        for (digest, d) in digests.iter().zip(&data) {
            assert_eq!(digest[..], Md5::digest(d)[..]);
        }
    }

    #[test]
    fn a_stream_removed_leaves_the_others_right() {
        let data: Vec<Vec<u8>> = (0..3).map(|s| bytes(300, s)).collect();
        let mut lanes = Md5Lanes::new(3);
        let first: Vec<&[u8]> = data.iter().map(|d| &d[..100]).collect();
        lanes.update(&first);
        lanes.remove(1);
        lanes.update(&[&data[0][100..], &data[2][100..]]);
        assert_eq!(lanes.digest(0)[..], Md5::digest(&data[0])[..]);
        assert_eq!(lanes.digest(1)[..], Md5::digest(&data[2])[..]);
    }
}
