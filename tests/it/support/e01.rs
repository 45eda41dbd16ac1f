//! E01 sets: written through the sink with pooled blocks, taken apart (sections, tables,
//! chunks), made by libewf's `ewfacquire`, and read back by every independent reader we have
//! (libewf's tools, current libewf through pyewf, TSK, the `ewf` crate) and by our checker.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use exhibit::block::Block;
use exhibit::buffer::BufferPool;
use exhibit::ewf::format;
use exhibit::ewf::{E01Options, E01Sink};
use exhibit::hash::MediaHashes;
use exhibit::map::BadRun;
use exhibit::sink::{MediaSummary, OutputFile, Sink};
use md5::{Digest, Md5};
use sha1::Sha1;

use super::data::tempdir;
use super::process::Exits;
use super::tools::{tool, tool_stdout};

/// The pipeline's block size.
pub const BLOCK: usize = 1 << 20;

/// MD5 and SHA-1 of `data` (what an E01 stores).
pub fn hashes(data: &[u8]) -> MediaHashes {
    MediaHashes {
        md5: Some(Md5::digest(data).into()),
        sha1: Some(Sha1::digest(data).into()),
        sha256: None,
    }
}

/// Options for `data` with case metadata that exercises the header encodings.
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

/// Writes `data` to a sink in pooled blocks of `block` bytes (the last may be shorter);
/// `bad` runs are attached to their blocks (the data there should already be zeros).
pub fn write_blocks(sink: &mut E01Sink, data: &[u8], bad: &[BadRun], block: usize) {
    let pool = BufferPool::new(4, block);
    for (i, piece) in data.chunks(block).enumerate() {
        let offset = (i * block) as u64;
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
}

/// What the pipeline tells a sink at the end about `data`.
pub fn summary(data: &[u8], bps: u32, bad: &[BadRun]) -> MediaSummary {
    MediaSummary {
        media_size: data.len() as u64,
        sector_size: bps,
        hashes: hashes(data),
        unreadable: bad.to_vec(),
    }
}

/// Feeds `data` to a sink in 1 MiB pooled blocks and finishes it; `bad` runs are attached to
/// their blocks and passed in the summary.
pub fn feed(mut sink: E01Sink, data: &[u8], bad: &[BadRun], bps: u32) -> Vec<OutputFile> {
    write_blocks(&mut sink, data, bad, BLOCK);
    Box::new(sink)
        .finish(&summary(data, bps, bad))
        .expect("finish")
}

/// Writes `data` as the E01 set `dir/name.E01...`; returns the first segment.
pub fn write(dir: &Path, name: &str, data: &[u8], opts: E01Options, bad: &[BadRun]) -> PathBuf {
    let base = dir.join(name);
    let bps = opts.bytes_per_sector;
    let sink = E01Sink::create(&base, opts, false).expect("create");
    let files = feed(sink, data, bad, bps);
    assert!(!files.is_empty());
    PathBuf::from(format!("{}.E01", base.display()))
}

/// The sections of one segment file, by walking `next`: (offset, type, size).
pub fn sections(path: &Path) -> Vec<(u64, String, u64)> {
    let b = std::fs::read(path).unwrap();
    let mut off = format::FILE_HEADER_SIZE;
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
    c.arg("-t").arg(target).arg(source).exits(0);
    Some(PathBuf::from(format!("{}.E01", target.display())))
}

/// [`ewfacquire`] (uncompressed, segments of `segment`) with every case field set:
/// `-C case -E evidence -e examiner -D description -N notes`.
pub fn ewfacquire_with_case(
    source: &Path,
    target: &Path,
    segment: &str,
    case: [&str; 5],
) -> Option<PathBuf> {
    let exe = tool("ewfacquire")?;
    let [c, e, x, d, n] = case;
    Command::new(exe)
        .args(["-u", "-q", "-c", "none", "-d", "sha1", "-S", segment])
        .args(["-C", c, "-E", e, "-e", x, "-D", d, "-N", n])
        .arg("-t")
        .arg(target)
        .arg(source)
        .exits(0);
    Some(PathBuf::from(format!("{}.E01", target.display())))
}

/// `ewfverify` must pass; returns its output.
pub fn ewfverify_ok(first: &Path) -> Option<String> {
    let t = tool("ewfverify")?;
    let out = Command::new(t)
        .args(["-q", "-d", "sha1"])
        .arg(first)
        .exits(0);
    let text = super::process::text(&out);
    assert!(
        text.contains("SUCCESS"),
        "ewfverify did not say SUCCESS on {}:\n{text}",
        first.display()
    );
    Some(text)
}

/// Whether `ewfverify -q` refuses the set (`None` without ewfverify).
pub fn ewfverify_refuses(first: &Path) -> Option<bool> {
    let t = tool("ewfverify")?;
    let out = Command::new(t).arg("-q").arg(first).output().unwrap();
    Some(!out.status.success())
}

/// What `ewfinfo` says about the set.
pub fn ewfinfo(first: &Path) -> Option<String> {
    let t = tool("ewfinfo")?;
    Some(tool_stdout(Command::new(t).arg(first)))
}

/// The media `ewfexport` writes to a raw file.
pub fn ewfexport(first: &Path) -> Option<Vec<u8>> {
    let t = tool("ewfexport")?;
    let dir = tempdir();
    let target = dir.path().join("export");
    Command::new(t)
        .args(["-q", "-u", "-f", "raw", "-t"])
        .arg(&target)
        .arg(first)
        .exits(0);
    Some(
        std::fs::read(dir.path().join("export.raw"))
            .or_else(|_| std::fs::read(&target))
            .unwrap_or_default(),
    )
}

/// `ewfexport` to a raw file must give the source bytes.
pub fn ewfexport_matches(first: &Path, data: &[u8]) {
    let Some(mut exported) = ewfexport(first) else {
        return;
    };
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
    let text = tool_stdout(Command::new(t).args(["-i", "ewf"]).arg(first));
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
    let text = tool_stdout(Command::new("python3").args(["-c", script]).arg(first));
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
