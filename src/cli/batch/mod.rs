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

    /// The summary as JSON on stdout instead of the table (also with --quiet): one entry per
    /// job with its outcome, exit code, bytes, unreadable sectors, hashes, seconds, record
    /// and error. See docs/batch.md.
    #[arg(long)]
    pub json: bool,
}

/// The version of the `--json` shape: raised when a field changes meaning or goes away; new
/// fields may be added within a version.
pub const JSON_VERSION: u32 = 1;

/// The summary, as `--json` prints it.
#[derive(serde::Serialize)]
struct Summary {
    version: u32,
    /// The batch's exit code.
    exit_code: i32,
    jobs: Vec<Row>,
}

/// One job's line of the summary: the table's row and `--json`'s entry.
#[derive(serde::Serialize)]
struct Row {
    job: usize,
    #[serde(with = "exhibit::text::path")]
    source: PathBuf,
    #[serde(with = "exhibit::text::path")]
    output: PathBuf,
    /// The record's status, or `refused`, `failed`, `interrupted` for a job that ended in an
    /// error.
    outcome: String,
    exit_code: i32,
    /// Media bytes (of a failed job: read before it stopped).
    bytes: u64,
    unreadable_sectors: u64,
    md5: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
    #[serde(serialize_with = "milliseconds")]
    seconds: f64,
    /// The record this run wrote, if it wrote one.
    #[serde(with = "exhibit::text::path::option")]
    record: Option<PathBuf>,
    /// Why a job ended in an error.
    error: Option<String>,
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
        if let Err(err) = &e.result {
            eprintln!(
                "exhibit: error: job {} ({}): {}",
                job.number,
                p(&job.options.source),
                t(&err.to_string().replace('\n', " "))
            );
        }
        code = code.max(job_code(e));
    }
    let rows = rows(&jobs, &ended, &progress, &checked);
    if args.json {
        let summary = Summary {
            version: JSON_VERSION,
            exit_code: code,
            jobs: rows,
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !args.quiet {
        print!("{}", table(&rows));
    }
    Ok(code)
}

/// Seconds to the millisecond.
fn milliseconds<S: serde::Serializer>(seconds: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((seconds * 1000.0).round() / 1000.0)
}

fn job_code(e: &Ended) -> i32 {
    match &e.result {
        Ok(r) => r.exit_code,
        Err(_) => exit::FAILED,
    }
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

/// One row per drive, from each job's report, or for a job that ended in an error from its
/// progress counters and the record it wrote.
fn rows(
    jobs: &[jobs::Job],
    ended: &[Ended],
    progress: &[Arc<Progress>],
    checked: &[preflight::Checked],
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (((job, e), prog), c) in jobs.iter().zip(ended).zip(progress).zip(checked) {
        let base = &job.options.base;
        let mut row = Row {
            job: job.number,
            source: job.options.source.clone(),
            output: base.clone(),
            outcome: String::new(),
            exit_code: job_code(e),
            bytes: 0,
            unreadable_sectors: 0,
            md5: None,
            sha1: None,
            sha256: None,
            seconds: e.seconds,
            record: None,
            error: None,
        };
        match &e.result {
            Ok(r) => {
                let hashes = r.record.hashes.as_ref();
                row.outcome = r.record.outcome.status.clone();
                row.bytes = r.record.source.size;
                row.unreadable_sectors = r.record.unreadable.sectors;
                row.md5 = hashes.and_then(|h| h.md5.clone());
                row.sha1 = hashes.and_then(|h| h.sha1.clone());
                row.sha256 = hashes.and_then(|h| h.sha256.clone());
                row.record = Some(r.record_path.clone());
            }
            Err(err) => {
                let snap = prog.snapshot();
                let record_path = exhibit::audit::with_extension(base, "yaml");
                // A record this run wrote (failed, interrupted), not one a refused run found.
                let ours = std::fs::metadata(&record_path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m >= e.started);
                row.outcome = outcome_of_error(err).to_string();
                row.bytes = snap.done;
                row.unreadable_sectors = snap.unreadable_bytes / u64::from(c.sector_size.max(1));
                row.record = ours.then_some(record_path);
                row.error = Some(err.to_string());
            }
        }
        rows.push(row);
    }
    rows
}

/// The table: one row per drive (job, drive, outcome, bytes, unreadable sectors, MD5,
/// duration, record).
fn table(rows: &[Row]) -> String {
    let mut cells = vec![[
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
    for r in rows {
        cells.push([
            r.job.to_string(),
            p(&r.source),
            r.outcome.clone(),
            r.bytes.to_string(),
            r.unreadable_sectors.to_string(),
            r.md5.clone().unwrap_or_else(|| "-".into()),
            format_duration(Duration::from_secs_f64(r.seconds)),
            r.record.as_deref().map_or_else(|| "-".into(), p),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
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
