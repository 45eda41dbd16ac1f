//! Our checker on images written by someone else: `ewfacquire` (libewf 20140813) output, raw
//! and compressed, several segments, an odd size. A clean third-party image must check clean
//! and read as the source.

use std::process::Command;

use crate::support::*;

#[test]
fn ewfacquire_images_check_clean() {
    let Some(ewfacquire) = tool("ewfacquire") else {
        return;
    };
    let dir = tempdir();
    // 3 MiB + 512: the last chunk is one sector; the tail is random (raw in every mode).
    let mut data = mixed(3 * 1024 * 1024 + 512, 21);
    let n = data.len();
    data[n - 40000..].copy_from_slice(&random(40000, 22));
    let src = dir.path().join("src.raw");
    std::fs::write(&src, &data).unwrap();
    for c in ["none", "fast", "best"] {
        let target = dir.path().join(format!("ref_{c}"));
        Command::new(&ewfacquire)
            .args(["-q", "-u", "-c", c, "-d", "sha1", "-S", "1MiB", "-t"])
            .arg(&target)
            .arg(&src)
            .exits(0);
        let first = dir.path().join(format!("ref_{c}.E01"));
        assert!(dir.path().join(format!("ref_{c}.E02")).exists());
        own_check_clean(&first, &data);
        let img = exhibit::ewf::E01Image::open(&first).unwrap();
        assert_eq!(img.chunk_count(), (n as u64).div_ceil(32768));
    }
}
