//! The `exhibit` binary: parses flags, draws progress, prints, and picks the exit code. All
//! the work is in the library; the flags are in `cli`.

mod cli;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use cli::draw::with_progress;
use cli::{
    report, AcquireArgs, CatArgs, Cli, Command, ConvertArgs, DevicesArgs, InfoArgs, MountArgs,
    RescueArgs, VerifyArgs,
};
use exhibit::audit::exit::FAILED as EXIT_FAILED;
use exhibit::progress::Progress;
use exhibit::rescue::RescueProgress;

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
            eprintln!(
                "exhibit: error: {} (see exhibit --help)",
                cli::clap_error_line(&e)
            );
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
        Command::Mount(args) => run_mount(args, &stop),
        Command::Cat(args) => run_cat(args, &stop),
        Command::Convert(args) => run_convert(args, &stop),
        Command::Restore(args) => cli::restore::run(args, &stop),
        Command::Ls(args) => run_ls(args),
        Command::Extract(args) => run_extract(args, &stop),
        Command::Devices(args) => run_devices(args),
        Command::Batch(args) => cli::batch::run(args, &stop),
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
    // Messages quote paths and record fields: no control character reaches the terminal.
    exhibit::text::printable(&parts.join(": ").replace('\n', " ")).into_owned()
}

/// Says on stderr, before a job starts, that its source is in use and the job goes on (a
/// read-only mount, or `--allow-live`); a use that is refused is the job's own error.
fn warn_live(source: &std::path::Path, allow_live: bool) {
    if let Ok(Some(live)) = exhibit::device::live::guard_path(source, allow_live) {
        eprintln!(
            "exhibit: warning: {}",
            exhibit::text::printable(&live.warning(source))
        );
    }
}

/// Says on stderr, before a job starts, that the drive hides sectors from the kernel (an HPA
/// or a DCO): an image of the device then misses them. The record says it too.
fn warn_hidden(source: &std::path::Path) {
    if let Some(w) = exhibit::device::hidden::probe_path(source).and_then(|d| d.hidden_warning()) {
        eprintln!("exhibit: warning: {}", exhibit::text::printable(&w));
    }
}

fn run_acquire(args: AcquireArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let opts = args.options()?;
    warn_live(&opts.source, opts.allow_live);
    warn_hidden(&opts.source);
    let report = with_progress(!args.quiet, |p: &Progress| {
        exhibit::acquire::acquire(&opts, p, stop)
    })?;
    if !args.quiet {
        report::acquire(&report);
    }
    Ok(report.exit_code)
}

/// `exhibit convert`: the summary, with every claim of the source against the bytes read.
fn run_convert(args: ConvertArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let opts = args.options()?;
    let report = with_progress(!args.quiet, |p: &Progress| {
        exhibit::convert::convert(&opts, p, stop)
    })?;
    if !args.quiet {
        report::convert(&report);
    }
    Ok(report.exit_code)
}

/// `exhibit verify`: one line per check, the computed hashes, and a total; exit code from the
/// report (0 verified, 1 a check failed); errors (could not run) exit 2 through `main`.
fn run_verify(args: VerifyArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let opts = args.options();
    let (result, seconds) = with_progress(!args.quiet && !args.json, |p: &Progress| {
        let clock = Instant::now();
        let result = exhibit::verify::verify(&opts, p, stop);
        (result, clock.elapsed().as_secs_f64())
    });
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report::verify(&report, args.quiet, seconds);
    }
    Ok(report.exit_code())
}

/// `exhibit info`: a readable summary, or JSON with `--json`.
fn run_info(args: InfoArgs) -> anyhow::Result<i32> {
    let place = exhibit::image::Place::of(&args.path, args.endpoint.as_deref())?;
    let i = exhibit::image::describe::describe_in(&place, &args.path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&i)?);
    } else {
        report::info(&i);
    }
    Ok(0)
}

/// `exhibit devices`: a table, or JSON with `--json`.
fn run_devices(args: DevicesArgs) -> anyhow::Result<i32> {
    let report = exhibit::devices::devices(&args.options())?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        cli::devices::render(&report)
    };
    // `exhibit devices | head` closes the pipe early: that is not an error.
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// `exhibit cat`: the media on standard output (never a terminal), the verdict on stderr.
fn run_cat(args: CatArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        anyhow::bail!(
            "standard output is a terminal: pipe it (| sha256sum) or redirect it (> FILE)"
        );
    }
    // The descriptor itself, unbuffered: blocks are megabytes, and Stdout would scan them for
    // line ends.
    let out = std::fs::File::from(stdout.as_fd().try_clone_to_owned()?);
    let report = exhibit::cat::cat(&args.options(), out, &Progress::default(), stop)?;
    report::cat(&report);
    Ok(report.exit_code())
}

/// `exhibit ls`: a listing, or JSON with `--json`.
fn run_ls(args: cli::browse::LsArgs) -> anyhow::Result<i32> {
    let l = exhibit::browse::ls::ls(&args.options())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&l)?);
    } else {
        cli::browse::listing(&l);
    }
    Ok(0)
}

/// `exhibit extract`: failures and totals on stderr; 1 when a path could not be extracted.
fn run_extract(args: cli::browse::ExtractArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let r = exhibit::browse::extract::extract(&args.options(), stop)?;
    cli::browse::extracted(&r, args.quiet);
    Ok(r.exit_code())
}

/// `exhibit mount`: says what is served, then waits for an unmount or a signal; failed reads
/// are reported on stderr (or in `--log`) as they happen. `--background` forks first: the
/// parent returns once the child serves, or with the child's error.
fn run_mount(args: MountArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    use cli::background::{self, Side};
    let log = args.log.as_deref().map(background::open_log).transpose()?;
    let notice: Box<exhibit::mount::Notice<'static>> = match &log {
        Some(f) => {
            let f = f.try_clone()?;
            Box::new(move |line: &str| background::log_line(&f, line))
        }
        None => Box::new(|line: &str| eprintln!("exhibit mount: {line}")),
    };
    let mut daemon = None;
    if args.background {
        match background::fork(log.as_ref())? {
            Side::Parent(code) => return Ok(code),
            Side::Daemon(d) => daemon = Some(d),
        }
    }
    let mut detached = Ok(());
    exhibit::mount::mount(&args.options(), stop, notice, &mut |m| {
        report::mounted(m, daemon.is_some().then_some(&args.log));
        if let Some(d) = daemon.take() {
            detached = d.detach();
            if detached.is_err() {
                // Not ready for the caller: unmount at once rather than serve unseen.
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    })?;
    // A daemon that could not leave the caller's stdio never told it it was ready: the
    // caller has its exit code and this message.
    detached.map_err(|e| anyhow::anyhow!("--background: detaching: {e}"))?;
    Ok(0)
}

/// `exhibit rescue`: the library does the phases and keeps the map; this draws progress and
/// says how to resume.
fn run_rescue(args: RescueArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let source = exhibit::source::Source::open(&args.source, true)?;
    let opts = args.options()?;
    warn_live(&args.source, opts.allow_live);
    warn_hidden(&args.source);
    let result = with_progress(!args.quiet, |p: &RescueProgress| {
        exhibit::rescue::rescue(&source, &opts, p, stop)
    });
    let report = match result {
        Ok(r) => r,
        Err(e @ exhibit::Error::Interrupted(_)) => {
            anyhow::bail!("{e}; {}", exhibit::audit::RESUME_GUIDANCE)
        }
        Err(e) => return Err(e.into()),
    };
    if !args.quiet {
        report::rescue(&report);
    }
    Ok(exhibit::audit::Outcome::complete(report.bad_bytes != 0)
        .exit_code()
        .unwrap_or(EXIT_FAILED))
}
