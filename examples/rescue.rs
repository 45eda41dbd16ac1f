//! A minimal `rescue` front end over the library, for bench/rescue.sh until `exhibit rescue`
//! is wired into the binary: `rescue SOURCE -o BASE [--retry-passes N]`. Prints one summary
//! line; exit code 0 complete, 1 complete with unreadable sectors, 2 failed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

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
    let progress = RescueProgress::default();
    let done = AtomicBool::new(false);
    let t0 = std::time::Instant::now();
    let result = std::thread::scope(|scope| {
        // Phase changes with their times, on stderr (EXHIBIT_RESCUE_PHASES=1).
        if std::env::var_os("EXHIBIT_RESCUE_PHASES").is_some() {
            scope.spawn(|| {
                let mut last = None;
                while !done.load(Ordering::Relaxed) {
                    let p = progress.phase();
                    if last != Some(p) {
                        eprintln!("{:8.3} s {}", t0.elapsed().as_secs_f64(), p.name());
                        last = Some(p);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                eprintln!("{:8.3} s end", t0.elapsed().as_secs_f64());
            });
        }
        let r = Source::open(&source, true)
            .and_then(|src| rescue(&src, &opts, &progress, &AtomicBool::new(false)));
        done.store(true, Ordering::Relaxed);
        r
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
