//! A minimal `rescue` front end over the library, for bench/rescue.sh until `exhibit rescue`
//! is wired into the binary: `rescue SOURCE -o BASE [--retry-passes N]`. Prints one summary
//! line; exit code 0 complete, 1 complete with unreadable sectors, 2 failed.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use exhibit::rescue::{rescue, RescueOptions, RescueProgress};
use exhibit::source::Source;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut source = None;
    let mut base = None;
    let mut passes = 1;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" => base = args.next().map(PathBuf::from),
            "--retry-passes" | "--retries" => passes = args.next().unwrap().parse().unwrap(),
            _ => source = Some(PathBuf::from(a)),
        }
    }
    let (Some(source), Some(base)) = (source, base) else {
        eprintln!("usage: rescue SOURCE -o BASE [--retry-passes N]");
        std::process::exit(2);
    };
    let mut opts = RescueOptions::new(base);
    opts.retry_passes = passes;
    opts.command_line = std::env::args().collect();
    let result = Source::open(&source, true).and_then(|src| {
        rescue(
            &src,
            &opts,
            &RescueProgress::default(),
            &AtomicBool::new(false),
        )
    });
    match result {
        Ok(r) => {
            println!(
                "rescued {} bytes, {} bad bytes in {} runs, {} reads ({} failed)",
                r.rescued_bytes,
                r.bad_bytes,
                r.bad_runs.len(),
                r.reads,
                r.read_errors
            );
            std::process::exit(if r.bad_bytes == 0 { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("rescue: {e}");
            std::process::exit(2);
        }
    }
}
