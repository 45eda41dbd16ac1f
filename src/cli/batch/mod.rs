//! `exhibit batch JOBS.yaml`: several acquisitions at the same time, one per drive.
//!
//! The binary's composition of the library's [`exhibit::acquire::acquire`], not a job of the
//! library (a job never imports another job): each entry of JOBS.yaml becomes acquire's own
//! options through acquire's own flags ([`jobs`]), everything a batch refuses is refused
//! before any job starts ([`preflight`]), then every job runs on its own thread with its own
//! [`Progress`], outputs, record and exit status. They share only the stop flag of Ctrl-C
//! and SIGTERM, so that one signal stops all and every record says `interrupted`; a job that
//! fails (its drive vanished, its target filled up) ends alone while the others go on.
//!
//! Threads rather than `exhibit acquire` child processes: the progress of each drive is the
//! library's counters, drawn by one drawer as one bar per drive; the summary comes from each
//! job's typed report and error, not from parsing a child's output; and the one stop flag
//! reaches every job exactly as it reaches a single acquire, with no signals to forward.
//! Isolation from a drive that hangs inside the kernel would not be had either way: a read
//! stuck in the kernel holds a child process as it holds a thread (not even SIGKILL ends it
//! before the read returns), and the batch waits to report that drive in both cases; the
//! reader already ends a job whose source vanished or gives no good read (`--give-up-after`,
//! `--give-up-time`).

pub mod jobs;
pub mod preflight;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use exhibit::acquire::AcquireReport;
use exhibit::audit::exit;
use exhibit::progress::{Observe, Progress};
use exhibit::text::{printable as t, printable_path as p};

use crate::cli::draw::with_progress_of;

/// `exhibit batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The jobs: a YAML file with a top-level `jobs:` list; each entry has `source`, `output`
    /// (BASE) and any `exhibit acquire` option by its long name (`format: raw,e01`, `split:
    /// 2G`, `case-number: "42"`, `overwrite: true`). See docs/batch.md.
    #[arg(value_name = "JOBS.yaml")]
    pub jobs: PathBuf,

    /// No progress and no summary table (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

/// How one job ended.
struct Ended {
    result: exhibit::Result<AcquireReport>,
    seconds: f64,
    started: SystemTime,
}

/// Runs the batch; the exit code is 0 when every job completed, 1 when one had unreadable
/// sectors (and none failed), 2 when one failed, was refused or was interrupted.
pub fn run(args: BatchArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let name = p(&args.jobs);
    let jobs = jobs::read(&args.jobs).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let checked =
        preflight::check(&args.jobs, &jobs).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    for job in &jobs {
        crate::warn_live(&job.options.source, job.options.allow_live);
    }
    let progress: Vec<Arc<Progress>> = jobs.iter().map(|_| Arc::default()).collect();
    let labels: Vec<String> = jobs
        .iter()
        .map(|j| format!("job {} {}", j.number, p(&j.options.source)))
        .collect();
    let drawn = labels
        .iter()
        .cloned()
        .zip(progress.iter().map(|pr| Arc::clone(pr) as Arc<dyn Observe>))
        .collect();
    let ended: Vec<Ended> = with_progress_of(!args.quiet, drawn, || {
        std::thread::scope(|s| {
            let running: Vec<_> = jobs
                .iter()
                .zip(&progress)
                .map(|(job, prog)| {
                    std::thread::Builder::new()
                        .name(format!("job-{}", job.number))
                        .spawn_scoped(s, move || run_one(job, prog, stop))
                })
                .collect();
            running
                .into_iter()
                .map(|spawned| match spawned.map(|h| h.join()) {
                    Ok(Ok(ended)) => ended,
                    Ok(Err(_)) => failed_to_run("the job's thread panicked"),
                    Err(e) => failed_to_run(&format!("no thread for the job: {e}")),
                })
                .collect()
        })
    });

    let mut code = exit::COMPLETE;
    for (job, e) in jobs.iter().zip(&ended) {
        let job_code = match &e.result {
            Ok(r) => r.exit_code,
            Err(err) => {
                eprintln!(
                    "exhibit: error: job {} ({}): {}",
                    job.number,
                    p(&job.options.source),
                    t(&err.to_string().replace('\n', " "))
                );
                exit::FAILED
            }
        };
        code = code.max(job_code);
    }
    if !args.quiet {
        print!("{}", summary(&jobs, &ended, &progress, &checked));
    }
    Ok(code)
}

fn run_one(job: &jobs::Job, progress: &Progress, stop: &AtomicBool) -> Ended {
    let started = SystemTime::now();
    let clock = Instant::now();
    let result = exhibit::acquire::acquire(&job.options, progress, stop);
    // The bar of a job that ended stays, saying how, while the others go on.
    progress.set_phase(&match &result {
        Ok(r) => r.record.outcome.status.clone(),
        Err(e) => outcome_of_error(e).to_string(),
    });
    Ended {
        result,
        seconds: clock.elapsed().as_secs_f64(),
        started,
    }
}

fn failed_to_run(why: &str) -> Ended {
    Ended {
        result: Err(exhibit::Error::Internal(why.to_string())),
        seconds: 0.0,
        started: SystemTime::now(),
    }
}

fn outcome_of_error(e: &exhibit::Error) -> &'static str {
    match e {
        exhibit::Error::Interrupted(_) => "interrupted",
        exhibit::Error::Refused(_) => "refused",
        _ => "failed",
    }
}

/// The table: one row per drive (job, drive, outcome, bytes, unreadable sectors, MD5,
/// duration, record).
fn summary(
    jobs: &[jobs::Job],
    ended: &[Ended],
    progress: &[Arc<Progress>],
    checked: &[preflight::Checked],
) -> String {
    let mut rows = vec![[
        "JOB",
        "DRIVE",
        "OUTCOME",
        "BYTES",
        "UNREADABLE",
        "MD5",
        "TIME",
        "RECORD",
    ]
    .map(String::from)];
    for (((job, e), prog), c) in jobs.iter().zip(ended).zip(progress).zip(checked) {
        let snap = prog.snapshot();
        let base = &job.options.base;
        let record_path = exhibit::audit::with_extension(base, "yaml");
        let (outcome, bytes, unreadable, md5, record) = match &e.result {
            Ok(r) => (
                r.record.outcome.status.clone(),
                r.record.source.size.to_string(),
                r.record.unreadable.sectors.to_string(),
                r.record
                    .hashes
                    .as_ref()
                    .and_then(|h| h.md5.clone())
                    .unwrap_or_else(|| "-".into()),
                p(&r.record_path),
            ),
            Err(err) => {
                // A record this run wrote (failed, interrupted), not one a refused run found.
                let ours = std::fs::metadata(&record_path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m >= e.started);
                (
                    outcome_of_error(err).to_string(),
                    snap.done.to_string(),
                    (snap.unreadable_bytes / u64::from(c.sector_size.max(1))).to_string(),
                    "-".into(),
                    if ours { p(&record_path) } else { "-".into() },
                )
            }
        };
        rows.push([
            job.number.to_string(),
            p(&job.options.source),
            outcome,
            bytes,
            unreadable,
            md5,
            format_duration(Duration::from_secs_f64(e.seconds)),
            record,
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let numeric = matches!(c, 0 | 3 | 4);
            let pad = widths[c] - cell.chars().count();
            if c > 0 {
                line.push_str("  ");
            }
            if numeric {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if c + 1 < row.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let whole = d.as_secs();
        format!("{}:{:02}:{:02}", whole / 3600, whole / 60 % 60, whole % 60)
    }
}
