//! The `exhibit` binary: parses flags, draws progress, prints, and picks the exit code. All
//! the work is in the library.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use exhibit::acquire::{acquire, AcquireOptions};
use exhibit::audit::exit::FAILED as EXIT_FAILED;
use exhibit::case::CaseMetadata;
use exhibit::cli::{AcquireArgs, CaseArgs, Cli, Command};
use exhibit::progress::Progress;
use exhibit::reader::ReaderOptions;

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
        Command::Verify(args) => run_verify(args, &stop),
        Command::Info(args) => run_info(args),
        Command::Rescue(args) => run_rescue(args, &stop),
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
    opts.formats = args.output_format.formats.clone();
    opts.e01 = args.output_format.e01();
    opts.split = args.split;
    opts.clone_target = args.clone.clone();
    opts.hashes = args.hash.hashes.clone();
    opts.overwrite = args.overwrite;
    opts.set_readonly = args.set_readonly;
    opts.case = case_metadata(&args.case)?;
    opts.command_line = std::env::args().collect();
    opts.reader = ReaderOptions {
        block_size: usize::try_from(args.block_size)
            .map_err(|_| anyhow::anyhow!("--block-size is too large"))?,
        queue_depth: args.queue_depth,
        engine: args.io.into(),
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
    spawn_progress_from(move || progress.snapshot(), done)
}

/// Draws whatever `snapshot` reports until `done`.
fn spawn_progress_from(
    snapshot: impl Fn() -> exhibit::progress::Snapshot + Send + 'static,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
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
            let s = snapshot();
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

/// `exhibit verify`: one line per check, the computed hashes, and a total; exit code from the
/// report (0 verified, 1 a check failed); errors (could not run) exit 2 through `main`.
fn run_verify(args: exhibit::cli::VerifyArgs, stop: &Arc<AtomicBool>) -> anyhow::Result<i32> {
    use exhibit::verify::{verify, Verdict, VerifyOptions};
    let mut opts = VerifyOptions::new(&args.path);
    opts.hashes = args.hash.hashes.clone();
    opts.side_files = !args.no_side_files;
    opts.workers = args.workers;
    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let show = !args.quiet && !args.json;
    let drawer = show.then(|| spawn_progress(Arc::clone(&progress), Arc::clone(&done)));
    let clock = Instant::now();
    let result = verify(&opts, &progress, stop);
    let seconds = clock.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(d) = drawer {
        let _ = d.join();
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(report.exit_code());
    }
    for c in &report.checks {
        if args.quiet && c.verdict != Verdict::Fail {
            continue;
        }
        let tag = match c.verdict {
            Verdict::Pass => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Note => "note",
        };
        let topic = serde_json::to_value(c.topic)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!("{tag}  {topic:<18} {}", c.message);
    }
    let bytes: u64 = report.images.iter().map(|i| i.media_bytes).sum();
    if !args.quiet {
        for image in &report.images {
            for (alg, hex) in &image.computed {
                println!(
                    "{:<7} {hex}  (computed from {})",
                    alg.name(),
                    image.files[0].display()
                );
            }
        }
    }
    let rate = if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    };
    let summary = format!("{} media bytes in {seconds:.2} s ({rate:.0} MB/s)", bytes);
    if report.exit_code() == exhibit::verify::EXIT_VERIFIED {
        println!(
            "exhibit: VERIFIED: all {} checks passed; {summary}",
            report.passed()
        );
    } else if report.failed() == 0 {
        println!("exhibit: NOT VERIFIED: nothing to check against; {summary}");
    } else {
        println!(
            "exhibit: FAILED: {} of {} checks failed; {summary}",
            report.failed(),
            report.failed() + report.passed()
        );
    }
    Ok(report.exit_code())
}

/// `exhibit info`: a readable summary, or JSON with `--json`.
fn run_info(args: exhibit::cli::InfoArgs) -> anyhow::Result<i32> {
    let i = exhibit::info::info(&args.path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&i)?);
        return Ok(0);
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    println!("path          {}", i.path.display());
    println!(
        "format        {}",
        opt(i.format.map(|f| f.name().to_string()))
    );
    println!(
        "media size    {}",
        opt(i.media_size.map(|s| format!("{s} bytes")))
    );
    println!(
        "sector size   {}",
        opt(i.sector_size.map(|s| s.to_string()))
    );
    for f in &i.files {
        println!("file          {} ({} bytes)", f.path.display(), f.size);
    }
    let c = &i.case;
    for (k, v) in [
        ("case number", &c.case_number),
        ("evidence no.", &c.evidence_number),
        ("examiner", &c.examiner),
        ("description", &c.description),
        ("notes", &c.notes),
    ] {
        if let Some(v) = v {
            println!("{k:<13} {v}");
        }
    }
    if let Some(e) = &i.e01 {
        println!(
            "chunks        {} × {} bytes ({} sectors); volume says {}",
            e.chunks_in_tables, e.chunk_size, e.sectors_per_chunk, e.volume_chunk_count
        );
        println!(
            "compression   {} (level byte {})",
            match e.compression_level {
                0 => "none",
                1 => "fast",
                2 => "best",
                _ => "unknown",
            },
            e.compression_level
        );
        println!(
            "media type    {} flags {:#04x}, error granularity {} sectors, GUID {}",
            e.media_type, e.media_flags, e.error_granularity, e.guid
        );
        for (k, v) in &e.header_fields {
            if !v.is_empty() {
                println!("header {k:<6} {v}");
            }
        }
        for p in &e.problems {
            println!("PROBLEM       {p}");
        }
    }
    for h in &i.stored_hashes {
        println!("{:<13} {}  ({})", h.algorithm.name(), h.hex, h.source);
    }
    if i.acquisition_errors.is_empty() {
        println!("acq. errors   none recorded");
    }
    for e in &i.acquisition_errors {
        println!(
            "acq. error    sectors {}..{} ({})",
            e.first_sector,
            e.first_sector + e.sector_count,
            e.source
        );
    }
    if let Some(r) = &i.record {
        println!("record        {}", r.path.display());
        println!(
            "  status      {}{}",
            r.status,
            r.reason
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        );
        println!("  tool        {}", r.tool);
        println!("  started     {}", r.started_utc);
        println!("  finished    {}", opt(r.finished_utc.clone()));
        println!("  source      {} ({})", r.source.display(), r.source_kind);
        if let Some(m) = &r.source_model {
            println!("  model       {m}");
        }
        if let Some(s) = &r.source_serial {
            println!("  serial      {s}");
        }
        println!("  host        {}", r.host);
        println!("  unreadable  {} sectors", r.unreadable_sectors);
        if let Some(m) = r.megabytes_per_second {
            println!("  speed       {m:.0} MB/s");
        }
    }
    Ok(0)
}

/// `exhibit rescue`: the library does the phases and keeps the map; this draws progress and
/// says how to resume.
fn run_rescue(args: exhibit::cli::RescueArgs, stop: &Arc<AtomicBool>) -> anyhow::Result<i32> {
    use exhibit::rescue::{rescue, RescueOptions, RescueProgress};
    let source = exhibit::source::Source::open(&args.source, true)?;
    let mut opts = RescueOptions::new(&args.output);
    opts.target = args.target.clone();
    opts.block_size = args.block_size;
    opts.min_skip = args.min_skip;
    opts.max_skip = args.max_skip.unwrap_or(0);
    opts.retry_passes = args.retry_passes;
    opts.careful = args.careful;
    opts.io = args.io.into();
    opts.overwrite = args.overwrite;
    opts.map_interval = Duration::from_secs_f64(args.map_interval.max(0.1));
    opts.hashes = args.hash.hashes.clone();
    opts.e01 = args
        .output_format
        .wants_e01()
        .then(|| args.output_format.e01());
    opts.case = case_metadata(&args.case)?;
    opts.command_line = std::env::args().collect();

    let progress = Arc::new(RescueProgress::default());
    let done = Arc::new(AtomicBool::new(false));
    let drawer = (!args.quiet).then(|| {
        let p = Arc::clone(&progress);
        spawn_progress_from(
            move || {
                let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                let size = get(&p.size);
                let phase = p.phase();
                let hashing = phase.name() == "hashing";
                exhibit::progress::Snapshot {
                    total: size,
                    done: if hashing {
                        get(&p.hashed)
                    } else {
                        size.saturating_sub(get(&p.non_tried) + get(&p.pending))
                    },
                    unreadable_bytes: get(&p.bad_bytes),
                    unreadable_runs: get(&p.bad_areas),
                    phase: format!(
                        "{} (pass {}) at byte {}, rescued {}",
                        phase.name(),
                        p.pass.load(Ordering::Relaxed),
                        get(&p.position),
                        get(&p.rescued)
                    ),
                }
            },
            Arc::clone(&done),
        )
    });
    let result = rescue(&source, &opts, &progress, stop);
    done.store(true, Ordering::Relaxed);
    if let Some(d) = drawer {
        let _ = d.join();
    }
    let report = match result {
        Ok(r) => r,
        Err(e @ exhibit::Error::Interrupted(_)) => {
            anyhow::bail!("{e}; {}", exhibit::audit::RESUME_GUIDANCE)
        }
        Err(e) => return Err(e.into()),
    };
    if !args.quiet {
        println!(
            "exhibit: rescue {}: {} bytes rescued, {} bytes unreadable{}",
            if report.complete {
                "complete"
            } else {
                "incomplete"
            },
            report.rescued_bytes,
            report.bad_bytes,
            if report.resumed {
                " (resumed from the map)"
            } else {
                ""
            }
        );
        for (alg, hex) in report.hashes.hex() {
            println!("{:<7} {hex}", alg.name());
        }
        println!("map     {}", report.map.display());
    }
    Ok(exhibit::audit::Outcome::complete(report.bad_bytes != 0)
        .exit_code()
        .unwrap_or(EXIT_FAILED))
}
