//! The checksums S3 requests carry: CRC64NVME (`x-amz-checksum-crc64nvme`, checked by the
//! server per part and for the whole object) and the SHA-256 of a body that SigV4 signs.
//!
//! A part's two digests are taken in one pass over cache-sized slices, so a part is read from
//! memory once, not twice; and the whole object's CRC64NVME is combined from its parts'
//! instead of being computed over every byte a second time.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// CRC-64/NVME's polynomial, bit-reflected (the form its table-less update shifts right by).
const POLY_REFLECTED: u64 = 0x9a6c_9329_ac4b_c9b5;

/// The slice both digests of [`part_digests`] take in turn: well inside a core's L2 cache.
const SLICE: usize = 64 << 10;

/// The CRC64NVME of `data`, as S3 computes it.
pub fn crc64nvme(data: &[u8]) -> u64 {
    let mut c = crc64fast_nvme::Digest::new();
    c.write(data);
    c.sum64()
}

/// A body's CRC64NVME and its SHA-256 in hex (the `x-amz-content-sha256` SigV4 signs).
pub fn part_digests(body: &[u8]) -> (u64, String) {
    let mut crc = crc64fast_nvme::Digest::new();
    let mut sha = Sha256::new();
    for slice in body.chunks(SLICE) {
        crc.write(slice);
        sha.update(slice);
    }
    (crc.sum64(), crate::hash::to_hex(&sha.finalize()))
}

/// The SHA-256 of `data` in hex.
pub fn hex_sha256(data: &[u8]) -> String {
    crate::hash::to_hex(&Sha256::digest(data))
}

/// The CRC64NVME of `A ‖ B` from `crc64nvme(A)`, `crc64nvme(B)` and the length of `B`
/// (zlib's `crc32_combine`, for this polynomial: appending `len_b` zero bytes is a linear map
/// over GF(2), applied to `crc_a` by repeated squaring of the one-zero-bit operator).
pub fn crc64nvme_combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    let mut odd = [0u64; 64];
    odd[0] = POLY_REFLECTED;
    for (n, row) in odd.iter_mut().enumerate().skip(1) {
        *row = 1 << (n - 1);
    }
    let mut even = [0u64; 64];
    square(&mut even, &odd); // two zero bits
    square(&mut odd, &even); // four zero bits
    let (mut crc, mut len) = (crc_a, len_b);
    loop {
        square(&mut even, &odd); // the first pass: one zero byte
        if len & 1 != 0 {
            crc = times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        square(&mut odd, &even);
        if len & 1 != 0 {
            crc = times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

fn times(matrix: &[u64; 64], mut vector: u64) -> u64 {
    let mut sum = 0;
    let mut row = 0;
    while vector != 0 {
        if vector & 1 != 0 {
            sum ^= matrix[row];
        }
        vector >>= 1;
        row += 1;
    }
    sum
}

fn square(result: &mut [u64; 64], matrix: &[u64; 64]) {
    for (n, row) in result.iter_mut().enumerate() {
        *row = times(matrix, matrix[n]);
    }
}

/// The base64 of a CRC64NVME's 8 big-endian bytes: how S3 writes it in headers and XML.
pub fn crc64nvme_header(crc: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// A CRC64NVME from its header form, if it is one.
pub fn parse_crc64nvme(header: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64nvme_is_s3s() {
        // The check value of CRC-64/NVME ("123456789"), and its header form.
        assert_eq!(crc64nvme(b"123456789"), 0xae8b_1486_0a79_9888);
        assert_eq!(
            parse_crc64nvme(&crc64nvme_header(0x0102_0304_0506_0708)),
            Some(0x0102_0304_0506_0708)
        );
        assert_eq!(parse_crc64nvme("not base64"), None);
    }

    #[test]
    fn combined_parts_give_the_whole_objects_crc() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for cut in [0, 1, 7, 8, 4096, 65_537, 299_999, 300_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                crc64nvme_combine(crc64nvme(a), crc64nvme(b), b.len() as u64),
                crc64nvme(&data),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn part_digests_equal_the_separate_digests() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for body in [&data[..0], &data[..1], &data[..65_536], &data[..]] {
            assert_eq!(part_digests(body), (crc64nvme(body), hex_sha256(body)));
        }
    }
}
