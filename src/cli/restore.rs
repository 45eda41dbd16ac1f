//! `exhibit restore`: the flags, the confirmation before a device is overwritten, and the
//! summary. The work is the library's (`exhibit::restore`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::Args;
use exhibit::progress::Progress;
use exhibit::restore::{Prepared, RestoreOptions, RestoreReport};
use exhibit::sink::target::TargetKind;
use exhibit::text::{printable as t, printable_path as p};

use super::draw::with_progress;

/// `exhibit restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Any file of the image: BASE.raw, BASE.001 (or any segment), BASE.E01 (or any segment);
    /// `-`: the media on standard input (with --size and --expect-sha256), for deploying over
    /// a network (docs/restore.md).
    pub image: PathBuf,

    /// A target: a block device (not mounted, not held, at least as large as the media) or a
    /// file (new, or with --overwrite an existing one). Give it several times to write
    /// several targets at once from one read of the image.
    #[arg(long = "to", value_name = "TARGET", required = true)]
    pub to: Vec<PathBuf>,

    /// The restore record (default: BASE.restore-YYYYMMDDTHHMMSSZ.yaml beside the image).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Do not read the targets back (the record and the summary say they were not verified).
    #[arg(long)]
    pub no_verify: bool,

    /// Zero the rest of a target that is larger than the media (default: left as it was).
    #[arg(long)]
    pub wipe_tail: bool,

    /// Leave zero pieces of a new file target as holes.
    #[arg(long)]
    pub sparse: bool,

    /// Write onto the device the image was acquired from (refused without it).
    #[arg(long)]
    pub force: bool,

    /// Overwrite device targets without asking (needed when standard input is not a
    /// terminal).
    #[arg(short, long)]
    pub yes: bool,

    /// Write over an existing file target.
    #[arg(long)]
    pub overwrite: bool,

    /// With IMAGE `-` (the media on standard input): its size in bytes (K/M/G/T suffixes).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<super::groups::Size>,

    /// The MD5 the media must have (with `-`, what the targets are proven against).
    #[arg(long, value_name = "HEX")]
    pub expect_md5: Option<String>,

    /// The SHA-1 the media must have.
    #[arg(long, value_name = "HEX")]
    pub expect_sha1: Option<String>,

    /// The SHA-256 the media must have.
    #[arg(long, value_name = "HEX")]
    pub expect_sha256: Option<String>,

    /// Threads that decode E01 chunks (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,

    /// No progress and no summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

impl RestoreArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> RestoreOptions {
        RestoreOptions {
            record: self.record.clone(),
            verify: !self.no_verify,
            wipe_tail: self.wipe_tail,
            sparse: self.sparse,
            force: self.force,
            overwrite: self.overwrite,
            workers: self.workers,
            size: self.size.map(u64::from),
            expect_md5: self.expect_md5.clone(),
            expect_sha1: self.expect_sha1.clone(),
            expect_sha256: self.expect_sha256.clone(),
            command_line: exhibit::text::args_text(std::env::args_os()),
            ..RestoreOptions::new(&self.image, self.to.clone())
        }
    }
}

/// Refusals, the confirmation, the restore, its summary; the exit code from its record.
pub fn run(args: RestoreArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let opts = args.options();
    let prepared = exhibit::restore::prepare(&opts)?;
    if !args.yes {
        confirm(&prepared)?;
    }
    if args.no_verify {
        eprintln!("exhibit: --no-verify: the targets will not be read back or verified");
    }
    let report = with_progress(!args.quiet, |p: &Progress| prepared.run(p, stop))?;
    if !args.quiet {
        summary(&report);
    }
    Ok(report.exit_code)
}

/// Asks for every device target's name on the terminal; without a terminal, refuses.
fn confirm(prepared: &Prepared<'_>) -> anyhow::Result<()> {
    let devices: Vec<_> = prepared
        .targets()
        .iter()
        .filter(|d| d.kind() == TargetKind::Device)
        .collect();
    if devices.is_empty() {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if prepared.from_stdin() || !stdin.is_terminal() {
        let names: Vec<String> = devices.iter().map(|d| p(&d.path)).collect();
        return Err(exhibit::Error::Refused(format!(
            "restore overwrites {}: standard input is not a terminal to confirm it (or carries \
             the media), give --yes",
            names.join(", ")
        ))
        .into());
    }
    for d in devices {
        let id = d.identity();
        let what: Vec<String> = [&id.vendor, &id.model, &id.serial]
            .into_iter()
            .flatten()
            .map(|s| t(s.trim()).into_owned())
            .collect();
        let name = d.path.file_name().map(|n| n.to_string_lossy().into_owned());
        eprint!(
            "exhibit: this overwrites {} ({}{} bytes) with {} bytes of {}.\n\
             Type the device name ({}) to go on: ",
            p(&d.path),
            if what.is_empty() {
                String::new()
            } else {
                format!("{}, ", what.join(" "))
            },
            d.size(),
            prepared.media_size(),
            p(prepared.image_path()),
            p(&d.path)
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let typed = line.trim();
        let ok = !typed.is_empty()
            && (std::path::Path::new(typed) == d.path || Some(typed) == name.as_deref());
        if !ok {
            return Err(exhibit::Error::Refused(format!(
                "not confirmed: {} was not typed; nothing was written",
                p(&d.path)
            ))
            .into());
        }
    }
    Ok(())
}

/// The outcome and speed, each target's verdict, the claims, where the record is.
fn summary(report: &RestoreReport) {
    let r = &report.record;
    let speed = r.throughput.as_ref();
    println!(
        "exhibit: {}: {} bytes onto {} target{} in {:.2} s ({:.0} MB/s of media)",
        r.outcome.status,
        r.source.size,
        r.restore.as_ref().map_or(0, |i| i.targets.len()),
        if r.restore.as_ref().map_or(0, |i| i.targets.len()) == 1 {
            ""
        } else {
            "s"
        },
        speed.map(|s| s.seconds).unwrap_or(0.0),
        speed.map(|s| s.megabytes_per_second).unwrap_or(0.0),
    );
    if let Some(info) = &r.restore {
        for c in &info.claimed_hashes {
            if !c.matches {
                println!(
                    "exhibit: the image does NOT hold its {}: {} says {}, it reads as {}",
                    c.algorithm,
                    t(&c.source),
                    t(&c.claimed),
                    c.computed
                );
            }
        }
        if info.verified {
            println!(
                "exhibit: read back and compared with {}",
                t(&info.compared_with)
            );
        }
        for tg in &info.targets {
            let verdict = match &tg.read_back {
                Some(rb) if rb.verdict == "matches" => "verified".to_string(),
                Some(rb) => {
                    let ranges: Vec<String> = rb
                        .differing_ranges
                        .iter()
                        .take(4)
                        .map(|x| format!("{}+{}", x.offset, x.length))
                        .collect();
                    format!(
                        "DIFFERS from the image{}",
                        if ranges.is_empty() {
                            String::new()
                        } else {
                            format!(" at bytes {}", ranges.join(", "))
                        }
                    )
                }
                None => "written, NOT verified (--no-verify)".into(),
            };
            println!("target  {}: {verdict}", p(&tg.path));
            if let Some(tail) = &tg.tail {
                println!(
                    "        {} bytes after the media: {}",
                    tail.length,
                    tail.action.replace('-', " ")
                );
            }
        }
    }
    if r.unreadable.sectors > 0 {
        println!(
            "exhibit: {} sectors in {} runs were unreadable at acquisition: zeros on every \
             target, not data (listed in the record)",
            r.unreadable.sectors,
            r.unreadable.runs.len()
        );
    }
    if let Some(reason) = &r.outcome.reason {
        println!("exhibit: {}", t(reason));
    }
    println!("record  {}", p(&report.record_path));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn restore_defaults_are_the_library_defaults() {
        let cli = super::super::Cli::try_parse_from(["exhibit", "restore", "d.E01", "--to", "t"])
            .unwrap();
        let super::super::Command::Restore(r) = cli.command else {
            panic!("not restore")
        };
        let json = |v: &RestoreOptions| serde_json::to_value(v).unwrap();
        assert_eq!(
            json(&r.options()),
            json(&RestoreOptions::new("d.E01", vec!["t".into()]))
        );
    }
}
