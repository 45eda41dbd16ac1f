//! Sources made on the fly, damage done to files, and records and maps read back.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use exhibit::audit::AuditRecord;
use exhibit::map::{BlockState, SectorMap};

/// Sector-marked mixed content (the fake disk's): see [`exhibit::fake_disk::pattern`].
pub use exhibit::fake_disk::pattern;

/// `testdata/sample.img`: an MBR disk with an ext4 and a FAT12 partition (testdata/README.md).
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample.img")
}

/// An uncompressed E01 of the sample in segments of 300 KiB (three or more) at `base`;
/// returns `base.E01`.
pub fn segmented_e01_of_sample(base: &Path) -> PathBuf {
    let args = [
        "--format",
        "e01",
        "--compression",
        "none",
        "--segment-size",
        "300K",
    ];
    super::process::acquire(&sample(), base, &args, 0);
    assert!(with_ext(base, "E03").exists(), "several segments");
    with_ext(base, "E01")
}

/// A temporary directory under `${TMPDIR:-/tmp}/exhibit-test-*` (the CI sweep knows the prefix).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("exhibit-test-")
        .tempdir()
        .expect("tempdir")
}

/// Writes a [`pattern`] file of `size` bytes.
pub fn make_source(dir: &Path, name: &str, size: usize, seed: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pattern(size, seed)).expect("write source");
    p
}

fn lcg(s: &mut u64) -> u64 {
    *s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *s >> 33
}

/// A source of `size` bytes mixing random, zero and text 4 KiB pieces (seeded): what E01
/// compression sees on a real disk.
pub fn mixed(size: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let words = [
        "evidence ",
        "sector ",
        "the ",
        "disk ",
        "exhibit ",
        "chunk ",
        "zlib ",
    ];
    let mut v = Vec::with_capacity(size);
    while v.len() < size {
        let kind = lcg(&mut s) % 3;
        let n = (size - v.len()).min(4096);
        match kind {
            0 => v.extend((0..n).map(|_| lcg(&mut s) as u8)),
            1 => v.extend(std::iter::repeat_n(0u8, n)),
            _ => {
                let mut t = Vec::with_capacity(n + 16);
                while t.len() < n {
                    t.extend_from_slice(words[(lcg(&mut s) % 7) as usize].as_bytes());
                }
                v.extend_from_slice(&t[..n]);
            }
        }
    }
    v
}

/// `size` bytes of seeded random data (stored raw in an E01).
pub fn random(size: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..size).map(|_| lcg(&mut s) as u8).collect()
}

/// `BASE` + `.ext`.
pub fn with_ext(base: &Path, ext: &str) -> PathBuf {
    PathBuf::from(format!("{}.{ext}", base.display()))
}

/// The parsed audit record `BASE.yaml`.
pub fn record(base: &Path) -> serde_yaml::Value {
    let p = with_ext(base, "yaml");
    serde_yaml::from_str(&std::fs::read_to_string(&p).expect("read record")).expect("parse record")
}

/// A sector map file (ours or GNU ddrescue's).
pub fn load_map(path: &Path) -> SectorMap {
    SectorMap::parse(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

/// Bad sectors of a map, in units of `ss`.
pub fn bad_sectors(map: &SectorMap, ss: u64) -> Vec<u64> {
    map.blocks_in(BlockState::BadSector)
        .flat_map(|b| (b.pos / ss..b.end().div_ceil(ss)).collect::<Vec<_>>())
        .collect()
}

/// Sector numbers as (first, count) runs.
pub fn runs_of(sectors: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in sectors {
        match out.last_mut() {
            Some((first, count)) if *first + *count == s => *count += 1,
            _ => out.push((s, 1)),
        }
    }
    out
}

/// XORs byte `offset` of `path` with 0x5a.
pub fn flip(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5A;
    f.write_all_at(&b, offset).unwrap();
}

/// Keeps the first `len` bytes of `path`.
pub fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

/// The kinds of the outputs a record lists (`raw`, `e01-segment`, ...).
pub fn output_kinds(rec: &serde_yaml::Value) -> Vec<&str> {
    rec["outputs"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect()
}

/// The unreadable runs a record lists, as (first sector, sector count).
pub fn unreadable_runs(record: &AuditRecord) -> Vec<(u64, u64)> {
    record
        .unreadable
        .runs
        .iter()
        .map(|r| (r.first_sector, r.sector_count))
        .collect()
}
