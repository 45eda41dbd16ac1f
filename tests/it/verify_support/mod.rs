//! Helpers for the verify/info tests: run the binary, make sources, damage files, find E01
//! sections and chunks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use exhibit::ewf::format;

pub const EXE: &str = env!("CARGO_BIN_EXE_exhibit");

/// Runs `exhibit ARGS`; returns (exit code, stdout + stderr).
pub fn run(args: &[&str]) -> (i32, String) {
    let out: Output = Command::new(EXE).args(args).output().expect("run exhibit");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `exhibit verify PATH [more]`.
pub fn verify(path: &Path, more: &[&str]) -> (i32, String) {
    let p = path.to_str().unwrap();
    let mut args = vec!["verify", p];
    args.extend_from_slice(more);
    run(&args)
}

/// Asserts exit code `code` and that every needle is in the output.
pub fn expect(result: &(i32, String), code: i32, needles: &[&str]) {
    let (c, text) = result;
    assert_eq!(*c, code, "exit code {c}, expected {code}; output:\n{text}");
    for n in needles {
        assert!(text.contains(n), "missing {n:?} in output:\n{text}");
    }
}

/// Acquires `source` with exhibit into `base` (extra flags in `more`).
pub fn acquire(source: &Path, base: &Path, more: &[&str]) {
    let mut args = vec![
        "acquire",
        source.to_str().unwrap(),
        "-o",
        base.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(more);
    let (code, text) = run(&args);
    assert_eq!(code, 0, "acquire failed:\n{text}");
}

/// XORs byte `offset` of `path` with 0x5a.
pub fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

/// Keeps the first `len` bytes of `path`.
pub fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

/// The sections of one segment file: (offset, type, size).
pub fn sections(path: &Path) -> Vec<(u64, String, u64)> {
    let b = std::fs::read(path).unwrap();
    let mut off = 13u64;
    let mut v = Vec::new();
    while off as usize + 76 <= b.len() {
        let d = format::decode_descriptor(&b[off as usize..off as usize + 76]).unwrap();
        v.push((off, d.type_name.clone(), d.size));
        if d.next <= off {
            break;
        }
        off = d.next;
    }
    v
}

/// The first section of `kind` in `path`: (offset, size).
pub fn section(path: &Path, kind: &str) -> (u64, u64) {
    sections(path)
        .into_iter()
        .find(|s| s.1 == kind)
        .map(|s| (s.0, s.2))
        .unwrap_or_else(|| panic!("no {kind} section in {}", path.display()))
}

/// Chunks of the first table of `path`: (file offset, compressed).
pub fn chunks(path: &Path) -> Vec<(u64, bool)> {
    let b = std::fs::read(path).unwrap();
    let (off, size) = section(path, "table");
    let body = &b[off as usize + 76..(off + size) as usize];
    let t = format::decode_table(body).unwrap();
    t.entries
        .iter()
        .map(|e| {
            (
                t.base_offset + u64::from(e & 0x7fff_ffff),
                e & 0x8000_0000 != 0,
            )
        })
        .collect()
}

/// Path of a tool, or None after saying the test part is skipped.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    eprintln!("SKIPPED: {name} is not installed (apt install ewf-tools)");
    None
}

/// `ewfacquire -u -c COMPRESSION [-S SEGMENT] -t TARGET SOURCE`; returns TARGET.E01.
pub fn ewfacquire(
    source: &Path,
    target: &Path,
    compression: &str,
    segment: Option<&str>,
) -> Option<PathBuf> {
    let exe = tool("ewfacquire")?;
    let mut c = Command::new(exe);
    c.args(["-u", "-q", "-c", compression, "-d", "sha1"]);
    if let Some(s) = segment {
        c.args(["-S", s]);
    }
    c.arg("-t").arg(target).arg(source);
    let out = c.output().expect("run ewfacquire");
    assert!(
        out.status.success(),
        "ewfacquire failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(PathBuf::from(format!("{}.E01", target.display())))
}

/// A seeded mix of random, zero and text 4 KiB pieces.
pub fn mixed(size: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    let mut v = Vec::with_capacity(size);
    while v.len() < size {
        let n = (size - v.len()).min(4096);
        match next() % 3 {
            0 => v.extend((0..n).map(|_| next() as u8)),
            1 => v.extend(std::iter::repeat_n(0u8, n)),
            _ => {
                let text = b"evidence sector chunk exhibit zlib the disk ";
                v.extend((0..n).map(|i| text[i % text.len()]));
            }
        }
    }
    v
}
