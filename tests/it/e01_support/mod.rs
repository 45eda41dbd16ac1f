//! Shared helpers for the E01 tests: sources made on the fly, the sink driven with pooled
//! blocks, and the independent readers (libewf's tools, TSK, the `ewf` crate).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use exhibit::block::Block;
use exhibit::buffer::BufferPool;
use exhibit::ewf::{E01Options, E01Sink};
use exhibit::hash::MediaHashes;
use exhibit::map::BadRun;
use exhibit::sink::{MediaSummary, OutputFile, Sink};
use md5::{Digest, Md5};
use sha1::Sha1;

pub const BLOCK: usize = 1 << 20;

fn lcg(s: &mut u64) -> u64 {
    *s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *s >> 33
}

/// A source of `size` bytes mixing random, zero and text 4 KiB pieces (seeded).
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

/// `size` bytes of seeded random data.
pub fn random(size: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..size).map(|_| lcg(&mut s) as u8).collect()
}

pub fn hashes(data: &[u8]) -> MediaHashes {
    MediaHashes {
        md5: Some(Md5::digest(data).into()),
        sha1: Some(Sha1::digest(data).into()),
        sha256: None,
    }
}

pub fn options(data: &[u8], bps: u32) -> E01Options {
    let mut o = E01Options::new(data.len() as u64, bps);
    o.case.case_number = Some("CASE-42".into());
    o.case.evidence_number = Some("EV-7".into());
    o.case.examiner = Some("Jürgen Müller".into());
    o.case.description = Some("test disk".into());
    o.case.notes = Some("line1\nline2\tx".into());
    o.model = Some("TESTDISK 1000".into());
    o.serial = Some("SN123".into());
    o.workers = 2;
    o
}

/// Feeds `data` to a sink in 1 MiB pooled blocks; `bad` runs are attached to their blocks
/// (the data there should already be zeros) and passed in the summary.
pub fn feed(mut sink: E01Sink, data: &[u8], bad: &[BadRun], bps: u32) -> Vec<OutputFile> {
    let pool = BufferPool::new(4, BLOCK);
    for (i, piece) in data.chunks(BLOCK).enumerate() {
        let offset = (i * BLOCK) as u64;
        let mut buf = pool.take();
        buf[..piece.len()].copy_from_slice(piece);
        let end = offset + piece.len() as u64;
        let runs = bad
            .iter()
            .filter(|r| r.offset < end && r.offset + r.length > offset)
            .cloned()
            .collect();
        let block = Block::new(i as u64, offset, buf, piece.len(), runs);
        sink.write_block(&std::sync::Arc::new(block))
            .expect("write_block");
    }
    let summary = MediaSummary {
        media_size: data.len() as u64,
        sector_size: bps,
        hashes: hashes(data),
        unreadable: bad.to_vec(),
    };
    Box::new(sink).finish(&summary).expect("finish")
}

pub fn write(dir: &Path, name: &str, data: &[u8], opts: E01Options, bad: &[BadRun]) -> PathBuf {
    let base = dir.join(name);
    let bps = opts.bytes_per_sector;
    let sink = E01Sink::create(&base, opts, false).expect("create");
    let files = feed(sink, data, bad, bps);
    assert!(!files.is_empty());
    PathBuf::from(format!("{}.E01", base.display()))
}

/// The path of a tool, or `None` with a message saying the check is skipped.
pub fn tool(name: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    if out.status.success() {
        Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    } else {
        eprintln!(
            "SKIP: {name} not installed; that check is skipped (apt install ewf-tools sleuthkit)"
        );
        None
    }
}

/// `ewfverify` must pass; returns its output.
pub fn ewfverify_ok(first: &Path) -> Option<String> {
    let t = tool("ewfverify")?;
    let out = Command::new(t)
        .args(["-q", "-d", "sha1"])
        .arg(first)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "ewfverify failed on {}:\n{text}",
        first.display()
    );
    assert!(
        text.contains("SUCCESS"),
        "ewfverify did not say SUCCESS:\n{text}"
    );
    Some(text)
}

pub fn ewfinfo(first: &Path) -> Option<String> {
    let t = tool("ewfinfo")?;
    let out = Command::new(t).arg(first).output().unwrap();
    assert!(
        out.status.success(),
        "ewfinfo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ewfexport` to a raw file must give the source bytes.
pub fn ewfexport_matches(first: &Path, data: &[u8]) {
    let Some(t) = tool("ewfexport") else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("export");
    let out = Command::new(t)
        .args(["-q", "-u", "-f", "raw", "-t"])
        .arg(&target)
        .arg(first)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ewfexport failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exported = std::fs::read(dir.path().join("export.raw"))
        .or_else(|_| std::fs::read(&target))
        .unwrap_or_default();
    if data.is_empty() {
        exported.clear();
    }
    assert!(
        exported == data,
        "ewfexport output differs from the source ({} vs {} bytes)",
        exported.len(),
        data.len()
    );
}

/// TSK's `img_stat` must open it and report the media size.
pub fn img_stat_ok(first: &Path, size: u64) {
    let Some(t) = tool("img_stat") else { return };
    let out = Command::new(t)
        .args(["-i", "ewf"])
        .arg(first)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "img_stat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("Size of data in bytes:\t{size}\n")),
        "img_stat: {text}"
    );
}

/// The `ewf` crate reads the same bytes and the same stored hashes.
pub fn ewf_crate_matches(first: &Path, data: &[u8]) {
    let mut r = ewf::EwfReader::open(first).expect("ewf crate opens the image");
    assert_eq!(r.total_size(), data.len() as u64);
    let mut got = Vec::with_capacity(data.len());
    r.read_to_end(&mut got).expect("ewf crate reads the image");
    assert!(got == data, "ewf crate reads different bytes");
    assert_eq!(r.metadata().case_number.as_deref(), Some("CASE-42"));
    let h = r.stored_hashes();
    let want = hashes(data);
    assert_eq!(h.md5, want.md5);
    assert_eq!(h.sha1, want.sha1);
}

/// Our own checker finds nothing and computes the source's hashes.
pub fn own_check_clean(first: &Path, data: &[u8]) {
    let rep = exhibit::ewf::check::check(first).expect("check opens");
    assert!(
        rep.problems.is_empty(),
        "checker found problems:\n{}",
        rep.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let want = hashes(data);
    assert_eq!(Some(rep.md5), want.md5);
    assert_eq!(Some(rep.sha1), want.sha1);
    assert_eq!(rep.stored_md5, want.md5);
    assert_eq!(rep.media_size, data.len() as u64);
}

/// Current libewf through pyewf (`pip install libewf-python`): same MD5 and media size, and
/// the stored MD5 as it reads it. Skipped with a message when pyewf is not installed.
pub fn pyewf_matches(first: &Path, data: &[u8]) {
    let script = r#"
import sys, hashlib, pyewf
h = pyewf.handle()
h.open(pyewf.glob(sys.argv[1]))
size = h.get_media_size()
m = hashlib.md5()
left = size
while left > 0:
    b = h.read(min(left, 1 << 20))
    if not b:
        break
    m.update(b)
    left -= len(b)
print(size, m.hexdigest(), h.get_hash_value("MD5"))
"#;
    let probe = Command::new("python3")
        .args(["-c", "import pyewf"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIP: pyewf not installed (pip install libewf-python); current-libewf check skipped"
        );
        return;
    }
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(first)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyewf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let md5 = exhibit::hash::to_hex(&Md5::digest(data));
    assert_eq!(text.trim(), format!("{} {md5} {md5}", data.len()), "pyewf");
}

/// Every reader we have.
pub fn all_readers_agree(first: &Path, data: &[u8]) {
    own_check_clean(first, data);
    pyewf_matches(first, data);
    ewfverify_ok(first);
    ewfexport_matches(first, data);
    img_stat_ok(first, data.len() as u64);
    ewf_crate_matches(first, data);
}
