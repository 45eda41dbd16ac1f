//! Randomly corrupted small E01 sets through `verify` and `info` (in process, through the
//! library): no panic, no hang (a watchdog aborts an iteration that takes over 30 s), and no
//! unbounded memory (the address space is capped at 3 GiB, so an allocation sized from a
//! forged field fails loudly instead of swapping). The cap and the watchdog's abort would hit
//! every test of the binary, so the body runs in a child process of its own.
//!
//! The same corpus runs under libFuzzer with `cargo +nightly fuzz run verify_e01` (fuzz/);
//! this test is the stable-toolchain version. `EXHIBIT_FUZZ_ITERATIONS` changes the count.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exhibit::ewf::Compression;
use exhibit::progress::Progress;
use exhibit::verify::{verify, VerifyOptions};

use crate::support::*;

/// Set in the child process that runs the body of the test.
const CHILD: &str = "EXHIBIT_TEST_FUZZ_CHILD";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// One random change to one segment (or to the set).
fn mutate(rng: &mut Rng, segs: &mut Vec<Vec<u8>>) -> String {
    let s = rng.below(segs.len() as u64) as usize;
    let len = segs[s].len() as u64;
    if len == 0 || segs[s] == MISSING {
        return format!("seg {s} left as it is (empty or missing)");
    }
    // Structures live at both ends of a segment: bias positions there.
    let pos = match rng.below(3) {
        0 => rng.below(len.min(2048)),
        1 => len.saturating_sub(1 + rng.below(len.min(1024))),
        _ => rng.below(len),
    } as usize;
    let nsegs = segs.len();
    match rng.below(10) {
        0..=2 => {
            let bit = rng.below(8);
            segs[s][pos] ^= 1 << bit;
            format!("seg {s} flip bit {bit} at {pos}")
        }
        3 => {
            let v = match rng.below(3) {
                0 => 0u64,
                1 => u64::MAX,
                _ => rng.next(),
            };
            let n = if rng.below(2) == 0 { 4 } else { 8 };
            let end = (pos + n).min(segs[s].len());
            segs[s][pos..end].copy_from_slice(&v.to_le_bytes()[..end - pos]);
            format!("seg {s} overwrite {n} bytes at {pos} with {v:#x}")
        }
        4 => {
            segs[s].truncate(pos);
            format!("seg {s} truncated to {pos}")
        }
        5 => {
            let n = 1 + rng.below(64) as usize;
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            segs[s].extend_from_slice(&junk);
            format!("seg {s} {n} bytes appended")
        }
        6 if nsegs > 1 => {
            segs.remove(s);
            format!("seg {s} removed")
        }
        7 => {
            // Tiny files: nothing, part of the file header, a header and a descriptor's start.
            let n = [0usize, 1, 8, 12, 13, 40, 89][rng.below(7) as usize].min(segs[s].len());
            segs[s].truncate(n);
            format!("seg {s} cut to a tiny {n} bytes")
        }
        8 => forge_volume(rng, segs),
        _ => {
            let v = rng.next() as u8;
            segs[s][pos] = v;
            format!("seg {s} byte at {pos} set to {v:#x}")
        }
    }
}

/// Extreme values in the first segment's volume section, with its Adler-32 made right again so
/// that they are believed (a forged count, not a damaged one), sometimes with a middle segment
/// gone as well: the sizes the reader bounds by what the files can hold.
fn forge_volume(rng: &mut Rng, segs: &mut [Vec<u8>]) -> String {
    use exhibit::ewf::format::{self, Volume};
    let b = &segs[0];
    let mut off = format::FILE_HEADER_SIZE as usize;
    let mut body = None;
    while off + 76 <= b.len() {
        let Ok(d) = format::decode_descriptor(&b[off..off + 76]) else {
            break;
        };
        if d.type_name == "volume" || d.type_name == "disk" {
            body = Some(off + 76);
            break;
        }
        if d.next as usize <= off {
            break;
        }
        off = d.next as usize;
    }
    let Some(body) = body else {
        return "no volume section to forge".into();
    };
    let Ok((mut v, _)) = Volume::decode(&segs[0][body..]) else {
        return "volume section too short to forge".into();
    };
    let extreme = |rng: &mut Rng| match rng.below(4) {
        0 => u64::MAX,
        1 => 1 << 50,
        2 => 0,
        _ => rng.next(),
    };
    let what = match rng.below(4) {
        0 => {
            v.sector_count = extreme(rng);
            format!("sector count {:#x}", v.sector_count)
        }
        1 => {
            v.chunk_count = extreme(rng) as u32;
            format!("chunk count {:#x}", v.chunk_count)
        }
        2 => {
            v.sectors_per_chunk = extreme(rng) as u32;
            format!("sectors per chunk {:#x}", v.sectors_per_chunk)
        }
        _ => {
            v.bytes_per_sector = extreme(rng) as u32;
            format!("bytes per sector {:#x}", v.bytes_per_sector)
        }
    };
    let enc = v.encode();
    segs[0][body..body + enc.len()].copy_from_slice(&enc);
    if segs.len() > 2 && rng.below(2) == 0 {
        segs[1] = MISSING.to_vec();
        return format!("volume {what} (checksum right), segment 1 missing (a gap in the names)");
    }
    format!("volume {what} (checksum right)")
}

/// A segment that [`write_set`] leaves out, so that later ones are found across the gap.
const MISSING: &[u8] = b"\0missing segment\0";

fn write_set(dir: &Path, segs: &[Vec<u8>]) -> PathBuf {
    for n in 1..=9 {
        let _ = std::fs::remove_file(dir.join(format!("f.E{n:02}")));
    }
    for (i, s) in segs.iter().enumerate() {
        if s == MISSING {
            continue;
        }
        std::fs::write(dir.join(format!("f.E{:02}", i + 1)), s).unwrap();
    }
    dir.join("f.E01")
}

fn cap_address_space(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit with a valid struct; it only lowers this test process's limit.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &lim);
    }
}

#[test]
fn corrupted_sets_never_panic_hang_or_explode() {
    if std::env::var_os(CHILD).is_none() {
        let out = child_test("verify_fuzz::corrupted_sets_never_panic_hang_or_explode")
            .env(CHILD, "1")
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        eprint!("{said}");
        assert!(
            out.status.success(),
            "the fuzz run failed ({}):\n{said}",
            out.status
        );
        return;
    }
    let iterations: u64 = std::env::var("EXHIBIT_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempdir();
    let gen = dir.path().join("gen");
    std::fs::create_dir(&gen).unwrap();
    let data = mixed(160 * 1024 + 3 * 512, 5);
    let mut o = options(&data, 512);
    o.compression = Compression::Fast;
    o.segment_size = 64 * 1024;
    let first = write(&gen, "f", &data, o, &[]);
    let pristine: Vec<Vec<u8>> = (1..=9)
        .map(|n| first.with_extension(format!("E{n:02}")))
        .take_while(|p| p.exists())
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(pristine.len() >= 2, "want a multi-segment set");
    cap_address_space(3 << 30);

    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let started = Arc::new(AtomicU64::new(0));
    let current = Arc::new(std::sync::Mutex::new(String::new()));
    let finished = Arc::new(AtomicBool::new(false));
    let clock = Instant::now();
    {
        let (started, current, finished) = (started.clone(), current.clone(), finished.clone());
        std::thread::spawn(move || {
            while !finished.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let s = started.load(Ordering::Relaxed);
                let now = clock.elapsed().as_millis() as u64;
                if s > 0 && now.saturating_sub(s) > 30_000 {
                    eprintln!(
                        "HANG: an iteration ran over 30 s: {}",
                        current.lock().unwrap()
                    );
                    std::process::abort();
                }
            }
        });
    }

    let stop = AtomicBool::new(false);
    let deadline = Duration::from_secs(60);
    let mut ran = 0u64;
    let mut failed_checks = 0u64;
    let mut errors = 0u64;
    for i in 0..iterations {
        if clock.elapsed() > deadline {
            eprintln!("deadline reached after {i} iterations");
            break;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
        let mut segs = pristine.clone();
        let changes: Vec<String> = (0..1 + rng.below(3))
            .map(|_| mutate(&mut rng, &mut segs))
            .collect();
        let what = format!("iteration {i}: {}", changes.join("; "));
        *current.lock().unwrap() = what.clone();
        started.store(clock.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        let path = write_set(&work, &segs);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut opts = VerifyOptions::new(&path);
            opts.workers = 2;
            let v = verify(&opts, &Progress::default(), &stop);
            let i = exhibit::image::describe::describe(&path);
            (v, i.is_ok())
        }));
        started.store(0, Ordering::Relaxed);
        match result {
            Err(_) => panic!("panic in {what}"),
            Ok((Ok(report), _)) => {
                if report.exit_code() != 0 {
                    failed_checks += 1;
                }
            }
            Ok((Err(_), _)) => errors += 1,
        }
        ran += 1;
    }
    finished.store(true, Ordering::Relaxed);
    eprintln!(
        "{ran} corrupted sets in {:.1} s: {failed_checks} with failed checks, {errors} could not run",
        clock.elapsed().as_secs_f64()
    );
    assert!(ran >= 200, "only {ran} iterations ran");
    // Nearly every mutation is damage verify must see (a few hit bytes nobody reads).
    assert!(
        failed_checks + errors >= ran * 8 / 10,
        "{failed_checks} + {errors} of {ran}"
    );
}
