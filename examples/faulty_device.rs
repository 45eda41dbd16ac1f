//! A faulty block device for scripts (bench/rescue.sh): the test fixture of
//! `tests/it/support/faulty.rs`, run on its own. Prints `DEVICE /dev/loopN`, then obeys commands on stdin,
//! one per line, answering `OK` to each:
//!
//! - `reset`: empty the read log and re-arm "first N times" faults
//! - `log PATH`: write the read log to PATH, one `offset length failed` line per read
//! - `quit` (or end of input): abort the FUSE connection, detach the loop device, unmount
//!
//! ```text
//! faulty_device --size 64M [--sector-size 4096] [--bad 100,200-231] [--scatter N --seed S]
//!               [--transient SECTOR:TIMES] [--fail-delay-ms MS] [--read-delay-us US]
//!               [--bad-list PATH]
//! ```
//! `--bad-list PATH` writes the chosen bad sectors there, one per line.

// The fixture's helpers that this program does not use are for the tests.
#[allow(dead_code)]
#[path = "../tests/it/support/loops.rs"]
mod loops;
#[allow(dead_code)]
#[path = "../tests/it/support/faulty.rs"]
mod support;

use std::io::{BufRead, Write};
use std::time::Duration;

use support::{Fault, FaultyDevice};

fn parse_size(s: &str) -> u64 {
    let (num, mult) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().expect("size") * mult
}

fn main() {
    if let Some(why) = support::skip_reason() {
        eprintln!("faulty_device: cannot run here: {why}");
        std::process::exit(2);
    }
    let mut args = std::env::args().skip(1);
    let mut size = 64u64 << 20;
    let mut ss = 512u32;
    let mut bad: Vec<u64> = Vec::new();
    let mut scatter = 0u64;
    let mut seed = 1u64;
    let mut transient: Vec<(u64, u32)> = Vec::new();
    let mut fail_delay = Duration::ZERO;
    let mut read_delay = Duration::ZERO;
    let mut bad_list = None;
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--size" => size = parse_size(&v()),
            "--sector-size" => ss = v().parse().unwrap(),
            "--bad" => {
                for part in v().split(',') {
                    match part.split_once('-') {
                        Some((a, b)) => bad.extend(a.parse::<u64>().unwrap()..=b.parse().unwrap()),
                        None => bad.push(part.parse().unwrap()),
                    }
                }
            }
            "--scatter" => scatter = v().parse().unwrap(),
            "--seed" => seed = v().parse().unwrap(),
            "--transient" => {
                let s = v();
                let (a, b) = s.split_once(':').expect("SECTOR:TIMES");
                transient.push((a.parse().unwrap(), b.parse().unwrap()));
            }
            "--fail-delay-ms" => fail_delay = Duration::from_millis(v().parse().unwrap()),
            "--read-delay-us" => read_delay = Duration::from_micros(v().parse().unwrap()),
            "--bad-list" => bad_list = Some(v()),
            other => panic!("unknown argument {other}"),
        }
    }
    let sectors = size / u64::from(ss);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 0..scatter {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bad.push(x % sectors);
    }
    bad.sort_unstable();
    bad.dedup();
    let mut b = FaultyDevice::builder(size)
        .sector_size(ss)
        .read_delay(read_delay)
        .fail_delay(fail_delay);
    for &s in &bad {
        b = b.bad(s);
    }
    for &(s, n) in &transient {
        b = b.fault(s, 1, Fault::FirstN(n, libc::EIO));
    }
    if let Some(p) = &bad_list {
        let text: String = bad.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(p, text).expect("bad list");
    }
    let dev = b.build();
    let mut out = std::io::stdout();
    writeln!(out, "DEVICE {}", dev.device.display()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line == "quit" {
            break;
        } else if line == "reset" {
            dev.reset();
        } else if let Some(path) = line.strip_prefix("log ") {
            let text: String = dev
                .read_log()
                .iter()
                .map(|r| format!("{} {} {}\n", r.offset, r.len, u8::from(r.failed)))
                .collect();
            std::fs::write(path.trim(), text).expect("log");
        }
        writeln!(out, "OK").unwrap();
        out.flush().unwrap();
    }
    drop(dev);
}
