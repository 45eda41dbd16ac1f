//! The `exhibit` binary: parses flags, draws progress, prints, and picks the exit code. All
//! the work is in the library.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use exhibit::acquire::{acquire, AcquireOptions, EXIT_FAILED};
use exhibit::case::CaseMetadata;
use exhibit::cli::{AcquireArgs, CaseArgs, Cli, Command, IoArg};
use exhibit::progress::Progress;
use exhibit::reader::{EngineChoice, ReaderOptions};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // One line, like every other error; `--help` has the details.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("exhibit: error: {message} (see exhibit --help)");
            return ExitCode::from(EXIT_FAILED as u8);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once; the first asks the job to stop cleanly.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop));
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    let result = match cli.command {
        Command::Acquire(args) => run_acquire(args, &stop),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("exhibit: error: {}", one_line(&e));
            ExitCode::from(EXIT_FAILED as u8)
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn case_metadata(args: &CaseArgs) -> anyhow::Result<CaseMetadata> {
    let from_file = match &args.case_file {
        Some(path) => CaseMetadata::from_yaml_file(path)?,
        None => CaseMetadata::default(),
    };
    Ok(from_file.overlay(CaseMetadata {
        case_number: args.case_number.clone(),
        evidence_number: args.evidence_number.clone(),
        examiner: args.examiner.clone(),
        description: args.description.clone(),
        notes: args.notes.clone(),
    }))
}

fn run_acquire(args: AcquireArgs, stop: &Arc<AtomicBool>) -> anyhow::Result<i32> {
    let mut opts = AcquireOptions::new(&args.source, &args.output);
    opts.formats = args.formats.clone();
    opts.e01.compression = args.compression;
    opts.e01.segment_size = args.segment_size;
    opts.split = args.split;
    opts.clone_target = args.clone.clone();
    opts.hashes = args.hashes.clone();
    opts.overwrite = args.overwrite;
    opts.set_readonly = args.set_readonly;
    opts.case = case_metadata(&args.case)?;
    opts.command_line = std::env::args().collect();
    opts.reader = ReaderOptions {
        block_size: usize::try_from(args.block_size)
            .map_err(|_| anyhow::anyhow!("--block-size is too large"))?,
        queue_depth: args.queue_depth,
        engine: match args.io {
            IoArg::Auto => EngineChoice::Auto,
            IoArg::Uring => EngineChoice::Uring,
            IoArg::Sync => EngineChoice::Sync,
        },
        retries: args.retries,
        direct: !args.no_direct,
    };

    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let drawer = (!args.quiet).then(|| spawn_progress(Arc::clone(&progress), Arc::clone(&done)));
    let result = acquire(&opts, &progress, stop);
    done.store(true, Ordering::Relaxed);
    if let Some(d) = drawer {
        let _ = d.join();
    }
    let report = result?;
    if !args.quiet {
        let r = &report.record;
        let t = r.throughput.as_ref();
        println!(
            "exhibit: {}: {} bytes in {:.2} s ({:.0} MB/s), engine {}",
            r.outcome.status,
            r.source.size,
            t.map(|t| t.seconds).unwrap_or(0.0),
            t.map(|t| t.megabytes_per_second).unwrap_or(0.0),
            r.reader
                .as_ref()
                .map(|x| format!("{:?}", x.engine).to_lowercase())
                .unwrap_or_default()
        );
        if r.unreadable.sectors > 0 {
            println!(
                "exhibit: {} unreadable sectors in {} runs, filled with zeros; see {}",
                r.unreadable.sectors,
                r.unreadable.runs.len(),
                r.unreadable
                    .map
                    .as_deref()
                    .unwrap_or(Path::new("the map"))
                    .display()
            );
        }
        if let Some(note) = &r.unreadable_not_in_e01 {
            println!("exhibit: WARNING: {note}");
        }
        if let Some(h) = &r.hashes {
            for (name, v) in [("md5", &h.md5), ("sha1", &h.sha1), ("sha256", &h.sha256)] {
                if let Some(v) = v {
                    println!("{name:<7} {v}");
                }
            }
        }
        println!("record  {}", report.record_path.display());
    }
    Ok(report.exit_code)
}

/// Draws progress from the counters: a bar on a terminal, a line every 5 s otherwise.
fn spawn_progress(progress: Arc<Progress>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let tty = std::io::stderr().is_terminal();
        let start = Instant::now();
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        let mut last_line = Instant::now();
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let s = progress.snapshot();
            let bad = if s.unreadable_runs > 0 {
                format!(
                    "{} unreadable bytes in {} runs",
                    s.unreadable_bytes, s.unreadable_runs
                )
            } else {
                String::new()
            };
            if let Some(b) = &bar {
                b.set_length(s.total);
                b.set_position(s.done);
                b.set_message(format!("{} {bad}", s.phase));
            } else if last_line.elapsed() >= Duration::from_secs(5) {
                last_line = Instant::now();
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                let rate = s.done as f64 / secs;
                let eta = if rate > 0.0 {
                    (s.total.saturating_sub(s.done)) as f64 / rate
                } else {
                    0.0
                };
                eprintln!(
                    "exhibit: {}: {} of {} bytes ({:.1}%), {:.0} MB/s, ETA {:.0} s {bad}",
                    s.phase,
                    s.done,
                    s.total,
                    if s.total > 0 {
                        s.done as f64 * 100.0 / s.total as f64
                    } else {
                        100.0
                    },
                    rate / 1e6,
                    eta
                );
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    })
}
