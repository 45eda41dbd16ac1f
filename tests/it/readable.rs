//! What exhibit writes can be read by anyone (issue 15): the record loads in a YAML 1.1 loader
//! (PyYAML) with every hostile string back exactly, nothing from a record or a file name
//! reaches the terminal raw, non-UTF-8 names are taken and recorded, the record's schema is
//! checked, and verify says the right thing about a split set with a missing or short middle
//! segment and about a pass that decoded nothing.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use exhibit::audit::AuditRecord;

use crate::support::{exhibit, tempdir, Exits};

/// Strings YAML 1.1 reads as something else, or that break a record for it.
const HOSTILE: &[&str] = &[
    "yes",
    "no",
    "on",
    "12:30",
    "2026-01-01",
    "1_000",
    "0x1F",
    "~",
    "=",
    "<<",
    "*a",
    "&a",
    "!x",
    "%",
    "@",
    " lead",
    "trail ",
    "two\nlines",
    "null",
    "8:0",
    "? x",
    "a: b",
    "#c",
    "'q'",
    "\"d\"",
];

fn latin1(name: &[u8]) -> OsString {
    OsString::from_vec(name.to_vec())
}

fn source(dir: &Path, name: &OsString, size: usize) -> PathBuf {
    let p = dir.join(name);
    let data: Vec<u8> = (0..size).map(|i| (i * 13 + i / 4096) as u8).collect();
    std::fs::write(&p, data).unwrap();
    p
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// PyYAML loads `records` (safe_load, YAML 1.1) and prints each one's case fields, command
/// line and paths as JSON; `None` (after saying so) when PyYAML is not installed.
fn pyyaml(records: &[PathBuf]) -> Option<Vec<serde_json::Value>> {
    let probe = Command::new("python3").args(["-c", "import yaml"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: PyYAML not installed (pip install pyyaml); YAML 1.1 check skipped");
        return None;
    }
    let script = r#"
import sys, json, yaml
out = []
for p in sys.argv[1:]:
    with open(p, "rb") as f:
        r = yaml.safe_load(f)
    out.append({"case": r["case"], "command_line": r["command_line"],
                "source": r["source"]["path"], "outputs": [o["path"] for o in r["outputs"]],
                "map": r["unreadable"]["map"], "logs": r["hashes"]["logs"],
                "schema": r["schema"], "device": r["source"]["identity"].get("device_number")})
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .args(records)
        .exits(0);
    Some(serde_json::from_slice(&out.stdout).expect("PyYAML output"))
}

#[test]
fn every_hostile_string_loads_back_exactly_in_pyyaml_and_in_our_reader() {
    let dir = tempdir();
    let src_name = latin1(b"caf\xe9 \xc0 = << yes.img");
    let src = source(dir.path(), &src_name, 64 << 10);
    let mut records = Vec::new();
    for (i, v) in HOSTILE.iter().enumerate() {
        let base = dir.path().join(format!("{i}{v}"));
        exhibit()
            .arg("acquire")
            .arg(&src)
            .arg("-o")
            .arg(&base)
            .args(["-q", "--case-number", v, "--examiner", v, "--notes", v])
            .args(["--description", v, "--evidence-number", v])
            .exits(0);
        let rec = PathBuf::from(format!("{}.yaml", base.display()));
        // Our own reader: every value exact.
        let r = AuditRecord::read(&rec).unwrap();
        for f in [
            &r.case.case_number,
            &r.case.examiner,
            &r.case.notes,
            &r.case.description,
            &r.case.evidence_number,
        ] {
            assert_eq!(f.as_deref(), Some(*v));
        }
        assert_eq!(r.source.path, src);
        assert_eq!(
            r.outputs[0].path,
            PathBuf::from(format!("{}.raw", base.display()))
        );
        // A record serde_yaml wrote before (plain scalars) still reads.
        let old = dir.path().join(format!("old{i}.yaml"));
        std::fs::write(&old, serde_yaml::to_string(&r).unwrap()).unwrap();
        assert_eq!(AuditRecord::read(&old).unwrap(), r);
        records.push(rec);
    }
    let Some(loaded) = pyyaml(&records) else {
        return;
    };
    // The escaped form of the Latin-1 source name (PyYAML gets text, not bytes).
    let src_text = exhibit::text::path_text(&src).into_owned();
    assert!(
        src_text.contains("caf\\xe9 \\xc0 = << yes.img"),
        "{src_text}"
    );
    for (v, r) in HOSTILE.iter().zip(&loaded) {
        for f in [
            "case_number",
            "examiner",
            "notes",
            "description",
            "evidence_number",
        ] {
            assert_eq!(r["case"][f], *v, "{f} of {v:?}: {r}");
        }
        let argv: Vec<&str> = r["command_line"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(argv.iter().filter(|a| **a == *v).count(), 5, "{argv:?}");
        assert!(argv.contains(&src_text.as_str()), "{argv:?}");
        assert_eq!(r["source"], src_text.as_str());
        let out = r["outputs"][0].as_str().unwrap();
        assert!(out.ends_with(&format!("{v}.raw")), "{out:?} for {v:?}");
        assert!(r["map"].as_str().unwrap().ends_with(&format!("{v}.map")));
        assert!(r["logs"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("{v}.md5")));
        assert_eq!(r["schema"], "exhibit-audit/1.1");
    }
}

#[test]
fn control_characters_from_a_record_are_printed_escaped() {
    let dir = tempdir();
    let src = source(dir.path(), &"s.img".into(), 64 << 10);
    let evil = "\x1b]0;pwned\x07\x1b[31m";
    let base = dir.path().join("x\x1b[2Jy");
    exhibit()
        .arg("acquire")
        .arg(&src)
        .arg("-o")
        .arg(&base)
        .args(["-q", "--examiner", evil, "--notes", "a\u{9b}31m\u{202e}b"])
        .exits(0);
    let rec = PathBuf::from(format!("{}.yaml", base.display()));
    let info = exhibit().arg("info").arg(&rec).exits(0);
    let text = stdout(&info);
    assert!(
        text.contains("examiner      \\x1b]0;pwned\\x07\\x1b[31m\n"),
        "{text}"
    );
    assert!(
        text.contains("notes         a\\x9b31m\\u{202e}b\n"),
        "{text}"
    );
    assert!(text.contains("x\\x1b[2Jy.raw"), "{text}");
    // JSON keeps the exact text.
    let json = exhibit().arg("info").arg("--json").arg(&rec).exits(0);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["case"]["examiner"], evil);
    let verify = exhibit().arg("verify").arg(&rec).exits(0);
    let raw = PathBuf::from(format!("{}.raw", base.display()));
    let by_image = exhibit().arg("verify").arg(&raw).exits(0);
    for out in [&info, &verify, &by_image] {
        let bytes = &out.stdout;
        assert!(
            !bytes.iter().any(|&b| b == 0x1b || b == 0x07),
            "{}",
            stdout(out)
        );
        assert!(!String::from_utf8_lossy(bytes).contains('\u{9b}'));
    }
    assert!(stdout(&verify).contains("x\\x1b[2Jy.raw"));
}

#[test]
fn latin1_names_are_acquired_and_rescued_and_recorded_escaped() {
    let dir = tempdir();
    let src = source(dir.path(), &latin1(b"\xc9vidence \xe9t\xe9.dd"), 1 << 20);
    let base = dir.path().join(latin1(b"acq \xe9"));
    exhibit()
        .arg("acquire")
        .arg(&src)
        .arg("-o")
        .arg(&base)
        .arg("-q")
        .exits(0);
    let rescued = dir.path().join(latin1(b"res \xe9"));
    exhibit()
        .arg("rescue")
        .arg(&src)
        .arg("-o")
        .arg(&rescued)
        .arg("-q")
        .exits(0);
    for (b, image) in [(&base, "raw"), (&rescued, "raw")] {
        let mut rec = b.as_os_str().to_owned();
        rec.push(".yaml");
        let rec = PathBuf::from(rec);
        let text = std::fs::read_to_string(&rec).expect("the record is UTF-8 text");
        assert!(
            text.contains(r"\\xc9vidence \\xe9t\\xe9.dd"),
            "source name escaped: {text}"
        );
        let r = AuditRecord::read(&rec).unwrap();
        assert_eq!(
            r.source.path, src,
            "the escaped name reads back as the bytes"
        );
        let mut img = b.as_os_str().to_owned();
        img.push(format!(".{image}"));
        assert!(r.outputs.iter().any(|o| o.path == Path::new(&img)));
        assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(&src).unwrap());
        // The record's names lead verify back to the Latin-1 files.
        exhibit().arg("verify").arg(&rec).exits(0);
        exhibit().arg("info").arg("--json").arg(&rec).exits(0);
    }
    let mut rec = base.as_os_str().to_owned();
    rec.push(".yaml");
    if let Some(loaded) = pyyaml(&[PathBuf::from(rec)]) {
        let want = exhibit::text::path_text(&src).into_owned();
        assert!(want.ends_with("\\xc9vidence \\xe9t\\xe9.dd"), "{want}");
        assert_eq!(loaded[0]["source"], want.as_str());
    }
}

fn record_with_schema(dir: &Path, schema: &str) -> PathBuf {
    let src = source(dir, &"s.img".into(), 64 << 10);
    let base = dir.join("r");
    exhibit()
        .arg("acquire")
        .arg(&src)
        .arg("-o")
        .arg(&base)
        .arg("-q")
        .exits(0);
    let rec = dir.join("r.yaml");
    let text = std::fs::read_to_string(&rec).unwrap();
    let text = text.replace(
        &format!("schema: \"{}\"", exhibit::audit::SCHEMA),
        &format!("schema: \"{schema}\""),
    );
    std::fs::write(&rec, text).unwrap();
    rec
}

#[test]
fn a_record_of_another_schema_major_is_refused_and_a_minor_is_read() {
    let dir = tempdir();
    let rec = record_with_schema(dir.path(), "exhibit-audit/2");
    for cmd in ["info", "verify"] {
        let out = exhibit().arg(cmd).arg(&rec).exits(2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("record schema 'exhibit-audit/2' is not exhibit-audit/1"),
            "{err}"
        );
    }
    // Beside an image, the unreadable record is a failed check, not a silent skip.
    let out = exhibit()
        .arg("verify")
        .arg(dir.path().join("r.raw"))
        .exits(1);
    assert!(stdout(&out).contains("record schema 'exhibit-audit/2'"));
    let dir = tempdir();
    let rec = record_with_schema(dir.path(), "exhibit-audit/1.4");
    exhibit().arg("info").arg(&rec).exits(0);
    exhibit().arg("verify").arg(&rec).exits(0);
}

#[test]
fn rescue_block_size_zero_is_refused_like_acquire() {
    let dir = tempdir();
    let src = source(dir.path(), &"s.img".into(), 64 << 10);
    for cmd in ["acquire", "rescue"] {
        let out = exhibit()
            .arg(cmd)
            .arg(&src)
            .args(["-o", "b", "--block-size", "0"])
            .current_dir(dir.path())
            .exits(2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("--block-size 0 is not a positive multiple"),
            "{err}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing written");
}

/// A 3-segment split acquisition in `dir` (`d.001`, `d.002`, `d.003`, 1 MiB each).
fn three_segments(dir: &Path) -> PathBuf {
    let src = source(dir, &"s.img".into(), 3 << 20);
    exhibit()
        .arg("acquire")
        .arg(&src)
        .args(["-o", "d", "--split", "1M", "-q"])
        .current_dir(dir)
        .exits(0);
    dir.join("d.001")
}

fn damage_lines(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("FAIL  damage"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_missing_or_short_middle_segment_is_the_one_named() {
    for short in [None, Some(300_000u64)] {
        let dir = tempdir();
        let first = three_segments(dir.path());
        let middle = dir.path().join("d.002");
        match short {
            None => std::fs::remove_file(&middle).unwrap(),
            Some(n) => crate::support::truncate(&middle, n),
        }
        for target in [first.clone(), dir.path().join("d.yaml")] {
            let out = exhibit().arg("verify").arg(&target).exits(1);
            let text = stdout(&out);
            let damage = damage_lines(&out);
            assert_eq!(damage.len(), 1, "{text}");
            if target.extension() == Some("yaml".as_ref()) {
                // By the record: the gap reads as zeros, the damage is exactly d.002.
                assert!(
                    damage[0].contains("media bytes 1048576..2097152")
                        && damage[0].ends_with(": in d.002 bytes 0..1048576"),
                    "{text}"
                );
            } else if let Some(n) = short {
                // By the segment: the files as they are, up to the short one.
                assert!(
                    damage[0].contains(&format!(
                        ": in d.002 bytes 0..{n}; media after d.002 is out of place"
                    )),
                    "{text}"
                );
            }
            assert!(!damage[0].contains("d.003"), "{text}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with("FAIL  output") && l.contains("d.002")),
                "{text}"
            );
            assert!(
                !text
                    .lines()
                    .any(|l| l.starts_with("FAIL") && l.contains("d.003 ")),
                "{text}"
            );
        }
    }
    // Without the record the gap is named too (the pass stops there).
    let dir = tempdir();
    let first = three_segments(dir.path());
    std::fs::remove_file(dir.path().join("d.002")).unwrap();
    let out = exhibit()
        .arg("verify")
        .arg("--no-side-files")
        .arg(&first)
        .exits(1);
    assert!(
        stdout(&out).contains("d.002 is missing: the set stops at d.001 but d.003 exists"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_pass_that_decoded_nothing_prints_no_pass_line() {
    let dir = tempdir();
    let src = source(dir.path(), &"s.img".into(), 1 << 20);
    exhibit()
        .arg("acquire")
        .arg(&src)
        .args(["-o", "d", "--format", "e01", "-q"])
        .current_dir(dir.path())
        .exits(0);
    // Cut the segment right after its volume section: no table, no chunk.
    let e01 = dir.path().join("d.E01");
    let (at, size) = crate::support::section(&e01, "volume");
    crate::support::truncate(&e01, at + size);
    let out = exhibit().arg("verify").arg(&e01).exits(1);
    let text = stdout(&out);
    assert!(text.contains("0 media bytes"), "{text}");
    for l in text.lines().filter(|l| l.starts_with("ok")) {
        assert!(l.starts_with("ok    record"), "a pass line: {l}\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("note") && l.contains("not a pass")),
        "{text}"
    );
}

/// The stable counterpart of `fuzz/fuzz_targets/map_parse.rs`, run in every suite (with
/// overflow checks on in the ci profile): a valid map mutated thousands of ways, extreme
/// numbers included, is refused or parsed, and a parsed map writes out and parses back the
/// same. Found a forged size that wrapped the map's end.
#[test]
fn the_map_parser_survives_mutated_and_extreme_maps() {
    use exhibit::map::{BlockState, SectorMap};
    let good = "# Mapfile\n0x00100000     +  3\n0x00000000  0x00100000  +\n0x00100000  0x00000200  -\n0x00100200  0x00EFFE00  ?\n";
    let extremes = [
        "0xFFFFFFFFFFFFFFFF",
        "0xFFFFFFFFFFFFFFFE",
        "18446744073709551615",
        "18446744073709551616",
        "0x8000000000000000",
        "-1",
        "0",
        "",
        "0x",
        "99999999999999999999999",
    ];
    let mut inputs: Vec<String> = Vec::new();
    for e in extremes {
        inputs.push(format!("0 ?\n0 {e} +\n{e} 0x10 -\n"));
        inputs.push(format!(
            "{e} + {e}\n0x0 0xFFFFFFFFFFFFFFF0 +\n0xFFFFFFFFFFFFFFF0 {e} ?\n"
        ));
    }
    let bytes = good.as_bytes();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..4000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut b = bytes.to_vec();
        let at = (seed as usize) % b.len();
        match (seed >> 32) % 4 {
            0 => b[at] = b"0123456789ABCDEFxX?+-*/ \n#"[(seed >> 40) as usize % 26],
            1 => b.truncate(at),
            2 => {
                b.splice(at..at, b"FFFFFFFFFFFF".iter().copied());
            }
            _ => {
                b.remove(at);
            }
        }
        if let Ok(t) = String::from_utf8(b) {
            inputs.push(t);
        }
    }
    let p = Path::new("m.map");
    let mut accepted = 0;
    for text in &inputs {
        let Ok(map) = SectorMap::parse(text, p) else {
            continue;
        };
        accepted += 1;
        let again = SectorMap::parse(&map.to_mapfile(&[]), p).expect("a map we wrote parses");
        assert_eq!(again.blocks(), map.blocks(), "{text:?}");
        for state in [
            BlockState::Finished,
            BlockState::BadSector,
            BlockState::NonTried,
        ] {
            assert!(map.bytes_in(state) <= map.size(), "{text:?}");
            let _ = map.next_in(state, map.size() / 2);
        }
    }
    assert!(accepted > 10, "the mutations should not all be refusals");
}
