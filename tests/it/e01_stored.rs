//! Chunks that do not shrink are stored raw with their Adler-32 (EWF-NOTES §7.1), found
//! before deflate is tried (compress.rs `looks_random`): random data gives an image of raw
//! chunks that libewf, the `ewf` crate and our checker read back byte for byte, while data
//! that deflate can shrink is still compressed.

use crate::support::*;

/// Every chunk of `e01` (one segment, one table): (stored bytes, compressed flag).
fn stored_chunks(e01: &std::path::Path) -> Vec<(Vec<u8>, bool)> {
    let bytes = std::fs::read(e01).unwrap();
    let (table, _) = section(e01, "table");
    let list = chunks(e01);
    assert!(!list.is_empty());
    list.iter()
        .enumerate()
        .map(|(i, &(start, compressed))| {
            let end = list.get(i + 1).map_or(table, |n| n.0);
            (bytes[start as usize..end as usize].to_vec(), compressed)
        })
        .collect()
}

fn acquire_e01(source: &std::path::Path, base: &std::path::Path, compression: &str) {
    acquire(
        source,
        base,
        &[
            "--format",
            "e01",
            "--compression",
            compression,
            "--case-number",
            "CASE-42",
        ],
        0,
    );
}

#[test]
fn random_data_is_stored_raw_and_read_back_byte_identical() {
    let dir = tempdir();
    // Not a multiple of the 32 KiB chunk: the short last chunk is raw too.
    let data = random(4 * 1024 * 1024 + 3 * 512, 31);
    let source = dir.path().join("random.img");
    std::fs::write(&source, &data).unwrap();
    for compression in ["fast", "best"] {
        let base = dir.path().join(format!("random-{compression}"));
        acquire_e01(&source, &base, compression);
        let e01 = with_ext(&base, "E01");
        let stored = stored_chunks(&e01);
        assert_eq!(stored.len(), data.len().div_ceil(32768));
        for (i, (bytes, compressed)) in stored.iter().enumerate() {
            assert!(
                !compressed,
                "{compression}: chunk {i} of random data compressed"
            );
            // Raw chunk = 32 KiB (the last one zero-padded) + its Adler-32, little-endian.
            assert_eq!(bytes.len(), 32768 + 4, "{compression}: chunk {i}");
            let (raw, sum) = bytes.split_at(32768);
            assert_eq!(sum, exhibit::ewf::format::adler32(raw).to_le_bytes());
            let media = &data[i * 32768..data.len().min((i + 1) * 32768)];
            assert_eq!(&raw[..media.len()], media, "{compression}: chunk {i}");
        }
        let image = std::fs::metadata(&e01).unwrap().len();
        assert!(
            image < data.len() as u64 + data.len() as u64 / 500 + 64 * 1024,
            "{compression}: {image} bytes for {} of random data",
            data.len()
        );
        // ewfverify checks every raw chunk's Adler-32 and the MD5; ewfexport, pyewf, TSK, the
        // `ewf` crate and our checker give back the source bytes.
        if have("ewfverify") {
            let out = ewfverify_ok(&e01).unwrap();
            assert!(out.contains(&coreutils_sum("md5sum", &source)), "{out}");
        }
        all_readers_agree(&e01, &data);
    }
}

#[test]
fn compressible_data_is_still_compressed() {
    let dir = tempdir();
    let words = b"evidence sector chunk exhibit disk image the of and ";
    let mut data: Vec<u8> = Vec::new();
    let mut i = 0usize;
    while data.len() < 2 * 1024 * 1024 {
        data.extend_from_slice(&words[i % 7 * 5..]);
        data.extend_from_slice(format!("{i} ").as_bytes());
        i += 1;
    }
    data.truncate(2 * 1024 * 1024);
    // A random 16 KiB block stored twice in one chunk: random bytes to the entropy test, but
    // deflate halves the chunk, so it must not be given up on.
    let block = random(16 * 1024, 5);
    data.extend_from_slice(&block);
    data.extend_from_slice(&block);
    let source = dir.path().join("text.img");
    std::fs::write(&source, &data).unwrap();
    for compression in ["fast", "best"] {
        let base = dir.path().join(format!("text-{compression}"));
        acquire_e01(&source, &base, compression);
        let e01 = with_ext(&base, "E01");
        let stored = stored_chunks(&e01);
        for (i, (bytes, compressed)) in stored.iter().enumerate() {
            assert!(compressed, "{compression}: chunk {i} stored raw");
            assert!(bytes.len() < 32768, "{compression}: chunk {i}");
        }
        let repeated = &stored.last().unwrap().0;
        assert!(repeated.len() < 20 * 1024, "{}", repeated.len());
        let image = std::fs::metadata(&e01).unwrap().len();
        assert!(
            image < data.len() as u64 / 4,
            "{compression}: {image} bytes for {}",
            data.len()
        );
        all_readers_agree(&e01, &data);
    }
}
