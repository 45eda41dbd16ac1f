//! `exhibit acquire --format e01` through the binary, read back by other people's readers:
//! libewf's ewfverify/ewfinfo/ewfexport and The Sleuth Kit.

use std::process::Command;

use crate::support::*;

#[test]
fn raw_and_e01_from_one_read_agree_with_libewf_and_the_sleuth_kit() {
    if !have("ewfverify") || !have("mmls") {
        return;
    }
    let dir = tempdir();
    let base = dir.path().join("sample");
    acquire(
        &sample(),
        &base,
        &[
            "--format",
            "raw,e01",
            "--case-number",
            "2026-117",
            "--examiner",
            "Jürgen Müller",
            "--evidence-number",
            "E-1",
            "--description",
            "sample disk",
        ],
        0,
    );
    let e01 = with_ext(&base, "E01");
    let raw = with_ext(&base, "raw");
    let source = std::fs::read(sample()).unwrap();
    assert_eq!(std::fs::read(&raw).unwrap(), source);

    // libewf: the container verifies, the stored MD5 is the source's, the metadata is ours.
    let verify = ewfverify_ok(&e01).unwrap();
    let md5 = coreutils_sum("md5sum", &sample());
    assert!(
        verify.contains(&md5),
        "ewfverify's MD5 is the source's: {verify}"
    );
    let info = ewfinfo(&e01).unwrap();
    assert!(info.contains("2026-117"), "{info}");
    assert!(
        info.contains("Jürgen Müller"),
        "header2 keeps Unicode: {info}"
    );
    assert!(info.contains("E-1"), "{info}");
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(field("Bytes per sector:"), "512", "{info}");
    assert_eq!(
        field("Number of sectors:"),
        (source.len() / 512).to_string(),
        "{info}"
    );
    assert!(
        field("Media size:").contains(&format!("({} bytes)", source.len())),
        "{info}"
    );
    assert_eq!(field("MD5:"), md5, "{info}");
    assert_eq!(ewfexport(&e01).unwrap(), source);

    // The Sleuth Kit lists the same partitions and files from the E01 as from the raw image.
    for args in [
        vec!["mmls"],
        vec!["fls", "-r", "-o", "2048"],
        vec!["fls", "-o", "8192"],
    ] {
        let from_raw = tool_stdout(Command::new(args[0]).args(&args[1..]).arg(&raw));
        let from_e01 = tool_stdout(Command::new(args[0]).args(&args[1..]).arg(&e01));
        assert_eq!(from_raw, from_e01, "{args:?}");
        assert!(!from_e01.trim().is_empty());
    }
    let fls = tool_stdout(Command::new("fls").args(["-r", "-o", "2048"]).arg(&e01));
    assert!(
        fls.contains("marker.bin") && fls.contains("deleted.txt"),
        "{fls}"
    );
    let stat = tool_stdout(Command::new("img_stat").arg(&e01));
    assert!(
        stat.to_ascii_lowercase().contains("image type:\t\tewf"),
        "{stat}"
    );

    // The record lists the E01 and its hashes are the source's.
    let rec = record(&base);
    let kinds = output_kinds(&rec);
    assert_eq!(kinds, vec!["raw", "e01-segment"]);
    assert_eq!(rec["hashes"]["md5"].as_str(), Some(md5.as_str()));
}

#[test]
fn e01_only_with_small_segments_and_every_compression() {
    if !have("ewfverify") {
        return;
    }
    let dir = tempdir();
    let src = make_source(dir.path(), "src", (3 << 20) + 5 * 512, 9);
    let want_sha256 = coreutils_sum("sha256sum", &src);
    for compression in ["none", "fast", "best"] {
        let base = dir.path().join(format!("img-{compression}"));
        acquire(
            &src,
            &base,
            &[
                "--format",
                "e01",
                "--compression",
                compression,
                "--segment-size",
                "1M",
            ],
            0,
        );
        assert!(!with_ext(&base, "raw").exists());
        let segments: Vec<_> = (1..=9)
            .map(|i| with_ext(&base, &format!("E{i:02}")))
            .filter(|p| p.exists())
            .collect();
        if compression == "none" {
            assert!(segments.len() >= 3, "1 MiB segments: {segments:?}");
        }
        for s in &segments {
            assert!(
                std::fs::metadata(s).unwrap().len() <= 1 << 20,
                "{s:?} over the segment size"
            );
        }
        let verify = tool_stdout(
            Command::new("ewfverify")
                .arg("-q")
                .arg(with_ext(&base, "E01")),
        );
        assert!(verify.contains("SUCCESS"), "{compression}: {verify}");
        assert_eq!(
            ewfexport(&with_ext(&base, "E01")).unwrap(),
            std::fs::read(&src).unwrap()
        );
        // The hash log reads the media from the E01 through the record's pipeline.
        let rec = record(&base);
        assert_eq!(rec["hashes"]["sha256"].as_str(), Some(want_sha256.as_str()));
        let check = record_checks(&rec)
            .into_iter()
            .find(|c| c.contains("sha256sum"))
            .unwrap();
        sh_ok(&check, dir.path());
    }
}

#[test]
fn e01_refusals() {
    let dir = tempdir();
    let d = dir.path();
    let odd = make_source(d, "odd", 1000, 1);
    let out = run_exit(
        2,
        &[
            "acquire",
            odd.to_str().unwrap(),
            "-o",
            d.join("o").to_str().unwrap(),
            "--format",
            "e01",
        ],
    );
    assert!(stderr(&out).contains("whole 512-byte sectors"));
    assert!(!d.join("o.E01").exists() && !d.join("o.yaml").exists());

    let src = make_source(d, "src", 64 << 10, 2);
    std::fs::write(d.join("x.E01"), b"earlier").unwrap();
    run_exit(
        2,
        &[
            "acquire",
            src.to_str().unwrap(),
            "-o",
            d.join("x").to_str().unwrap(),
            "--format",
            "e01",
        ],
    );
    assert_eq!(std::fs::read(d.join("x.E01")).unwrap(), b"earlier");
    assert!(!d.join("x.yaml").exists());

    run_exit(
        2,
        &[
            "acquire",
            src.to_str().unwrap(),
            "-o",
            d.join("y").to_str().unwrap(),
            "--format",
            "e01",
            "--segment-size",
            "1K",
        ],
    );
    assert!(!d.join("y.E01").exists());

    // An E01 always carries MD5 and SHA-1, whatever --hash says.
    acquire(
        &src,
        &d.join("h"),
        &["--format", "e01", "--hash", "sha256"],
        0,
    );
    let rec = record(&d.join("h"));
    for key in ["md5", "sha1", "sha256"] {
        assert!(rec["hashes"][key].as_str().is_some(), "{key} missing");
    }
    if let Some(info) = ewfinfo(&d.join("h.E01")) {
        assert!(info.contains(&coreutils_sum("md5sum", &src)), "{info}");
        assert!(info.contains(&coreutils_sum("sha1sum", &src)), "{info}");
    }

    // A refusal by the second output leaves nothing from the first.
    run_exit(
        2,
        &[
            "acquire",
            src.to_str().unwrap(),
            "-o",
            d.join("w").to_str().unwrap(),
            "--format",
            "raw,e01",
            "--segment-size",
            "1K",
        ],
    );
    assert!(!d.join("w.raw").exists() && !d.join("w.E01").exists() && !d.join("w.yaml").exists());

    let out = run_exit(
        2,
        &[
            "acquire",
            src.to_str().unwrap(),
            "-o",
            d.join("z").to_str().unwrap(),
            "--format",
            "tiff",
        ],
    );
    assert!(stderr(&out).contains("tiff"));
}
