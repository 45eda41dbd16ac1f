//! `exhibit rescue` through the binary, as an examiner runs it: interrupted, resumed with the
//! same command, and sealed into an E01 that libewf verifies with the bad sectors listed.

use std::time::Duration;

use crate::support::*;

#[test]
fn interrupted_resumed_and_sealed_into_e01() {
    require_faulty_device!();
    let bad = [0u64, 9, 10, 11, 3000, 4095];
    let mut b = FaultyDevice::builder(4096 * 512).read_delay(Duration::from_millis(25));
    for &s in &bad {
        b = b.bad(s);
    }
    let dev = b.build();
    let base = dev.dir.join("rescued");
    let args = ["--format", "raw,e01", "--case-number", "R-1"];

    // Interrupt the first run part-way: it says how to go on, and leaves no E01.
    let child = rescue_cmd(&dev.device, &base, &args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    send_signal(&child, libc::SIGINT);
    let first = child.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(2),
        "the first run was not interrupted"
    );
    assert!(
        stderr(&first).contains("run the same command again"),
        "{}",
        stderr(&first)
    );
    assert!(!with_ext(&base, "E01").exists());
    let saved = std::fs::read_to_string(with_ext(&base, "map")).unwrap();
    assert!(
        saved.lines().any(|l| l.ends_with(" ?")),
        "part of the source still untried:\n{saved}"
    );

    // The same command resumes and finishes.
    dev.set_read_delay(Duration::ZERO);
    rescue_cmd(&dev.device, &base, &args).exits(1);
    let expected = dev.expected_image(&bad);
    assert!(
        std::fs::read(with_ext(&base, "raw")).unwrap() == expected,
        "image differs"
    );
    let map = load_map(&with_ext(&base, "map"));
    assert_eq!(bad_sectors(&map, 512), bad);

    // The E01 verifies with libewf, holds the rescued media and lists the bad runs.
    let e01 = with_ext(&base, "E01");
    let Some(info) = ewfinfo(&e01) else {
        eprintln!("SKIP e01 checks: ewf-tools not installed");
        return;
    };
    ewfverify_ok(&e01);
    assert!(info.contains("R-1"), "{info}");
    for (first, count) in [(0u64, 1u64), (9, 3), (3000, 1), (4095, 1)] {
        assert!(
            info.contains(&format!("at sector(s): {first} - {}", first + count - 1))
                || info.contains(&format!("{first} - {}", first + count - 1)),
            "error2 run {first}+{count} missing: {info}"
        );
    }
    assert!(ewfexport(&e01).unwrap() == expected);
    let rec = record(&base);
    let kinds = output_kinds(&rec);
    assert!(kinds.contains(&"e01-segment"), "{kinds:?}");
    assert_eq!(
        rec["outcome"]["status"].as_str(),
        Some("complete-with-unreadable-sectors")
    );

    // And exhibit's own verify agrees.
    expect(&verify(&e01, &["--quiet"]), 0, &[]);
}

#[test]
fn an_existing_e01_is_refused_before_any_read() {
    require_faulty_device!();
    let dev = FaultyDevice::builder(256 * 512).bad(5).build();
    let base = dev.dir.join("r");
    std::fs::write(with_ext(&base, "E01"), b"earlier").unwrap();
    let o = rescue_cmd(&dev.device, &base, &["--format", "e01"]).exits(2);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(!with_ext(&base, "raw").exists() && !with_ext(&base, "map").exists());
    assert_eq!(std::fs::read(with_ext(&base, "E01")).unwrap(), b"earlier");
}
