//! Arbitrary bytes as a one- or two-segment E01 set through `verify` and `info`: neither may
//! panic, hang or allocate without bound, whatever the input. The first input byte picks how
//! the rest is split into segments, so that segment-chain code is reached too.
#![no_main]

use std::sync::atomic::AtomicBool;

use exhibit::progress::Progress;
use exhibit::verify::{verify, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let Ok(dir) = tempfile_dir() else { return };
    let first = dir.join("f.E01");
    let cut = if split & 1 == 1 {
        rest.len() * usize::from(split) / 256
    } else {
        rest.len()
    };
    if std::fs::write(&first, &rest[..cut]).is_err() {
        return;
    }
    if cut < rest.len() {
        let _ = std::fs::write(dir.join("f.E02"), &rest[cut..]);
    }
    let mut opts = VerifyOptions::new(&first);
    opts.workers = 2;
    let stop = AtomicBool::new(false);
    let _ = verify(&opts, &Progress::default(), &stop);
    let _ = exhibit::info::info(&first);
    let _ = std::fs::remove_dir_all(&dir);
});

/// A fresh directory per input (no tempfile dependency in the fuzz crate).
fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "exhibit-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
