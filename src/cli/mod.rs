//! The command line: every flag defined once, here and in [`groups`], and each subcommand's
//! flags turned into the library's options struct in one place (`options`). Printing is in
//! [`report`], progress drawing in [`draw`].

pub mod background;
pub mod batch;
pub mod browse;
pub mod devices;
pub mod draw;
pub mod groups;
pub mod report;
pub mod restore;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use exhibit::acquire::AcquireOptions;
use exhibit::reader::ReaderOptions;
use exhibit::rescue::RescueOptions;
use exhibit::verify::VerifyOptions;

use groups::{
    CaseArgs, FormatArgs, GiveUpArgs, HashArgs, IoArg, ReaderArgs, Size, SplitArgs, StoreArgs,
};

/// Forensic sector-level disk acquisition.
#[derive(Debug, Parser)]
#[command(name = "exhibit", version = crate_version(), about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 complete; 1 complete but some sectors were unreadable \
(filled with zeros, listed in BASE.map and BASE.yaml); 2 failed or refused."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

fn crate_version() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("EXHIBIT_GIT_REVISION"),
        ")"
    )
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Image a source (device, partition or image file) in one pass: raw image, hashes,
    /// hash logs, sector map and audit record.
    Acquire(AcquireArgs),
    /// Re-read an image once, recompute MD5, SHA-1 and SHA-256, compare them with every
    /// stored hash, record and hash log found, and check an E01's container and every chunk.
    /// Exit codes: 0 every check passed; 1 a check failed (mismatch, damage, missing or
    /// truncated file); 2 could not run.
    Verify(VerifyArgs),
    /// Show what an image holds: format, segments, media and sector size, case metadata,
    /// stored hashes, acquisition errors, the partition table and the record's summary (of
    /// the media only the partition table's sectors are read).
    Info(InfoArgs),
    /// Rescue a failing disk the way GNU ddrescue does (copy skipping trouble, trim, scrape,
    /// retry passes), keeping the map on disk so that running the same command again resumes;
    /// hashes, hash logs and the record when done.
    Rescue(RescueArgs),
    /// Mount an image read-only (FUSE): MOUNTPOINT/disk.raw is the whole media, p1.raw, … one
    /// file per partition, info.yaml what `exhibit info` says with the partition table. Runs
    /// until `umount MOUNTPOINT`, Ctrl-C or SIGTERM (--background: returns once served). Reads
    /// of damaged E01 chunks fail with EIO and are reported on stderr (or --log).
    Mount(MountArgs),
    /// Write an image's media bytes to standard output (for pipes: `| sha256sum`, `| ssh`),
    /// hashing them on the way; at the end compare with the image's stored hashes and the
    /// record beside it. Exit codes: 0 sent and every stored hash matches; 1 a hash differs or
    /// a chunk was damaged (the data sent is then known bad); 2 could not run.
    Cat(CatArgs),
    /// Convert an image (raw, split raw, an E01 set of any writer) into raw, split raw and/or
    /// E01 in one pass, like ewfexport: new hash logs, map, piece list and a record that names
    /// the source, what it claims and whether the bytes read hold it; case metadata and the
    /// acquisition's unreadable sectors carried over. Exit codes: 0 converted and every stored
    /// hash matches; 1 a hash differs, a chunk was damaged, or the source has unreadable
    /// sectors; 2 failed or refused.
    Convert(ConvertArgs),
    /// Write an image (raw, split raw, an E01 set of any writer) back onto disks or files,
    /// several at once from one read, then read every target back and prove it against the
    /// hashes the image claims (its E01, its record, its hash logs). Refuses a mounted, held
    /// or too small target, one that holds the image or the running system, the device the
    /// image was acquired from (without --force), a target named twice. Exit codes: 0 every
    /// target verified; 1 a target differs (the record names the ranges) or the image does
    /// not hold its hashes; 2 refused, failed or interrupted. `restore - --size BYTES
    /// --expect-sha256 HEX` takes the media from standard input (deploying over a network).
    Restore(restore::RestoreArgs),
    /// List a directory of a file system in the image (ext2/3/4, FAT12/16/32, NTFS), without
    /// mounting: type, size, modification time, inode or MFT number, name.
    Ls(browse::LsArgs),
    /// Copy files or whole directories out of a file system in the image into DIR/pN/PATH,
    /// with their modification times, and write DIR/extract.yaml (the image, its stored
    /// hashes, each path with its size and SHA-256). Exit codes: 0 all extracted; 1 some path
    /// could not be (damage, refused names: listed); 2 could not run.
    Extract(browse::ExtractArgs),
    /// List every block device (loop, zram and RAM disks with --all): size, sector sizes,
    /// transport, vendor, model, serial, WWID, firmware, flags, partitions with their mount
    /// points, holders, whether it holds the running system's root, and the partition table
    /// exhibit reads itself. Reads nothing but sysfs, the mount table and each partition
    /// table.
    Devices(DevicesArgs),
    /// Image several drives at the same time, as JOBS.yaml lists them (each entry `source`,
    /// `output` and any acquire option by its long name): one progress bar per drive, each
    /// job with its own outputs, record and exit status, a summary table at the end. One
    /// failing or vanishing drive does not stop the others; Ctrl-C stops all (every record
    /// says interrupted). Exit codes: 0 all complete; 1 some sectors were unreadable; 2 a job
    /// failed, or the batch was refused before any started.
    Batch(batch::BatchArgs),
}

/// A clap error as one line, like every other error (`--help` has the details).
pub fn clap_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    exhibit::text::printable(message).into_owned()
}

/// `exhibit convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Any file of the image: BASE.raw, BASE.001 (or any segment), BASE.E01 (or any segment).
    pub image: PathBuf,

    /// Output base name: writes BASE.raw (or BASE.001, …; BASE.E01, … with --format e01),
    /// BASE.md5/.sha1/.sha256, BASE.map, BASE.crc64 and BASE.yaml.
    #[arg(short, long, value_name = "BASE")]
    pub output: PathBuf,

    /// Output formats and E01 settings.
    #[command(flatten)]
    pub output_format: FormatArgs,

    /// Split raw output.
    #[command(flatten)]
    pub split: SplitArgs,

    /// Hashes.
    #[command(flatten)]
    pub hash: HashArgs,

    /// Threads that decode E01 chunks (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,

    /// Replace existing output files instead of refusing.
    #[arg(long)]
    pub overwrite: bool,

    /// Object storage.
    #[command(flatten)]
    pub store: StoreArgs,

    /// No progress and no summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Case metadata (each field given replaces the source image's).
    #[command(flatten, next_help_heading = "Case metadata")]
    pub case: CaseArgs,
}

impl ConvertArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> anyhow::Result<exhibit::convert::ConvertOptions> {
        Ok(exhibit::convert::ConvertOptions {
            formats: self.output_format.formats.clone(),
            e01: self.output_format.e01(),
            split: self.split.bytes(),
            hashes: self.hash.hashes.clone(),
            overwrite: self.overwrite,
            store: self.store.options(&self.output)?,
            workers: self.workers,
            case: self.case.metadata()?,
            command_line: exhibit::text::args_text(std::env::args_os()),
            ..exhibit::convert::ConvertOptions::new(&self.image, &self.output)
        })
    }
}

/// `exhibit acquire`.
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// The source: a block device, a partition, or an image file. Opened read-only.
    pub source: PathBuf,

    /// Output base name: writes BASE.raw (or BASE.001, …; BASE.E01, … with --format e01),
    /// BASE.md5/.sha1/.sha256, BASE.map, BASE.crc64 and BASE.yaml.
    #[arg(short, long, value_name = "BASE")]
    pub output: PathBuf,

    /// Output formats and E01 settings.
    #[command(flatten)]
    pub output_format: FormatArgs,

    /// Split raw output.
    #[command(flatten)]
    pub split: SplitArgs,

    /// Write the raw image onto this block device (a clone) instead of BASE.raw. The device
    /// must be at least as large as the source and not mounted.
    #[arg(long, value_name = "DEVICE")]
    pub clone: Option<PathBuf>,

    /// Hashes.
    #[command(flatten)]
    pub hash: HashArgs,

    /// Reader settings.
    #[command(flatten)]
    pub reader: ReaderArgs,

    /// Replace existing output files instead of refusing.
    #[arg(long)]
    pub overwrite: bool,

    /// Object storage.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Set the kernel's read-only flag on the source device first (BLKROSET, like `blockdev
    /// --setro`; it stays set, `blockdev --setrw` clears it). A software guard, not a
    /// hardware write blocker.
    #[arg(long)]
    pub set_readonly: bool,

    /// Image a live source: one that is mounted read-write (or a partition of it is), held
    /// by device-mapper or md, or active swap. Refused without it; with it, warned and
    /// recorded. (A source mounted read-only is imaged with a warning without it.)
    #[arg(long)]
    pub allow_live: bool,

    /// No progress and no summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Case metadata.
    #[command(flatten, next_help_heading = "Case metadata")]
    pub case: CaseArgs,
}

impl AcquireArgs {
    /// The library's options for these flags (reads `--case FILE` and argv for the record).
    pub fn options(&self) -> anyhow::Result<AcquireOptions> {
        Ok(AcquireOptions {
            formats: self.output_format.formats.clone(),
            e01: self.output_format.e01(),
            split: self.split.bytes(),
            clone_target: self.clone.clone(),
            hashes: self.hash.hashes.clone(),
            overwrite: self.overwrite,
            store: self.store.options(&self.output)?,
            set_readonly: self.set_readonly,
            allow_live: self.allow_live,
            case: self.case.metadata()?,
            command_line: exhibit::text::args_text(std::env::args_os()),
            reader: ReaderOptions::try_from(&self.reader)?,
            ..AcquireOptions::new(&self.source, &self.output)
        })
    }
}

/// `exhibit rescue`.
#[derive(Debug, Args)]
pub struct RescueArgs {
    /// The failing source: a block device, a partition, or an image file. Opened read-only.
    pub source: PathBuf,

    /// Output base name: BASE.raw (sparse until read), BASE.map (the state: run the same
    /// command again to resume), BASE.md5/.sha1/.sha256 and BASE.yaml when done.
    #[arg(short, long, value_name = "BASE")]
    pub output: PathBuf,

    /// Write the image onto this block device instead of BASE.raw.
    #[arg(long, value_name = "DEVICE")]
    pub target: Option<PathBuf>,

    /// Output formats (the raw image is always written: it is the rescue's working copy; e01
    /// also seals the finished image into BASE.E01, … with the bad sectors in its error
    /// section) and E01 settings.
    #[command(flatten)]
    pub output_format: FormatArgs,

    /// Passes over the bad sectors after scraping, each one more read of every bad sector.
    #[arg(long, visible_alias = "retries", value_name = "N", default_value_t = 1)]
    pub retry_passes: u32,

    /// Bytes per read while copying near trouble (GNU ddrescue's cluster). On healthy
    /// stretches reads grow to 1 MiB, several in flight, unless --careful.
    #[arg(long, value_name = "SIZE", default_value_t = Size(64 << 10))]
    pub block_size: Size,

    /// Read every area like GNU ddrescue: one --block-size read at a time, also where the
    /// disk reads well (slower; for disks that fail when pushed).
    #[arg(long)]
    pub careful: bool,

    /// Engine for healthy stretches: io_uring (auto: where available) or single reads.
    #[arg(long = "io", value_enum, default_value = "auto")]
    pub io: IoArg,

    /// First jump past a failed read while copying; it doubles on each further failure.
    #[arg(long, value_name = "SIZE", default_value_t = Size(64 << 10))]
    pub min_skip: Size,

    /// Largest jump (default 1% of the source, at most 1 GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_skip: Option<Size>,

    /// Longest time between two saves of the map, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub map_interval: f64,

    /// When to give up on a source that keeps failing.
    #[command(flatten)]
    pub give_up: GiveUpArgs,

    /// Resume a map that names another source than this one (refused without it: the image
    /// would mix two disks).
    #[arg(long)]
    pub force_source: bool,

    /// Rescue a live source (mounted read-write, held by device-mapper or md, active swap):
    /// refused without it; with it, warned and recorded.
    #[arg(long)]
    pub allow_live: bool,

    /// Hashes.
    #[command(flatten)]
    pub hash: HashArgs,

    /// Start afresh, replacing an existing image, map and logs (without it an existing map is
    /// resumed).
    #[arg(long)]
    pub overwrite: bool,

    /// No progress and no summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// Case metadata.
    #[command(flatten, next_help_heading = "Case metadata")]
    pub case: CaseArgs,
}

impl RescueArgs {
    /// The library's options for these flags (reads `--case FILE` and argv for the record).
    pub fn options(&self) -> anyhow::Result<RescueOptions> {
        Ok(RescueOptions {
            target: self.target.clone(),
            block_size: groups::rescue_block_size(self.block_size)?,
            min_skip: self.min_skip.0,
            max_skip: self.max_skip.map_or(0, u64::from),
            retry_passes: self.retry_passes,
            careful: self.careful,
            io: self.io.into(),
            give_up: (&self.give_up).into(),
            force_source: self.force_source,
            allow_live: self.allow_live,
            overwrite: self.overwrite,
            map_interval: Duration::try_from_secs_f64(self.map_interval.max(0.1)).map_err(
                |_| {
                    exhibit::Error::InvalidOption(format!(
                        "--map-interval {} is not a time in seconds",
                        self.map_interval
                    ))
                },
            )?,
            hashes: self.hash.hashes.clone(),
            e01: self
                .output_format
                .wants_e01()
                .then(|| self.output_format.e01()),
            case: self.case.metadata()?,
            command_line: exhibit::text::args_text(std::env::args_os()),
            ..RescueOptions::new(&self.output)
        })
    }
}

/// `exhibit devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Only these devices (a partition shows its disk); every device when none is given.
    pub devices: Vec<PathBuf>,

    /// JSON for scripts (shape: docs/devices.md, `"version": 1`).
    #[arg(long)]
    pub json: bool,

    /// Also loop devices, zram and RAM disks.
    #[arg(long)]
    pub all: bool,

    /// Do not open the devices to read their partition tables or ask the drives who they
    /// are (sysfs and the mount table only: nothing touches a drive that hangs on reads).
    #[arg(long)]
    pub no_partition_tables: bool,
}

impl DevicesArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> exhibit::devices::DevicesOptions {
        exhibit::devices::DevicesOptions {
            all: self.all,
            partition_tables: !self.no_partition_tables,
            only: self.devices.clone(),
        }
    }
}

/// `exhibit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// BASE.E01 (first segment of any E01 set), BASE.raw (or any raw image file), BASE.001
    /// (first split segment), or the record BASE.yaml (then every image it lists).
    pub path: PathBuf,

    /// Hashes.
    #[command(flatten)]
    pub hash: HashArgs,

    /// Ignore BASE.yaml, BASE.md5/.sha1/.sha256 and BASE.crc64 beside an image.
    #[arg(long)]
    pub no_side_files: bool,

    /// Threads that decode E01 chunks (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,

    /// Print the report as JSON on stdout (exit codes unchanged).
    #[arg(long)]
    pub json: bool,

    /// Only failed checks and the total line (no progress, no passed checks).
    #[arg(short, long)]
    pub quiet: bool,

    /// The S3 endpoint for an image in a bucket (s3://…), beating AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

impl VerifyArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> VerifyOptions {
        VerifyOptions {
            hashes: self.hash.hashes.clone(),
            side_files: !self.no_side_files,
            workers: self.workers,
            endpoint: self.endpoint.clone(),
            ..VerifyOptions::new(&self.path)
        }
    }
}

/// `exhibit info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// BASE.E01, BASE.raw, BASE.001 or BASE.yaml (local, or s3://BUCKET/PREFIX/…).
    pub path: PathBuf,

    /// Print as JSON for scripts.
    #[arg(long)]
    pub json: bool,

    /// The S3 endpoint for an image in a bucket (s3://…), beating AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

/// `exhibit cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Any file of the image: BASE.raw, BASE.001 (or any segment), BASE.E01 (or any segment).
    pub image: PathBuf,

    /// Only part of the media: OFFSET:LENGTH (bytes, or with K/M/G/T suffixes).
    #[arg(long, value_name = "OFFSET:LENGTH", value_parser = parse_range)]
    pub range: Option<(u64, u64)>,

    /// Threads that decode E01 chunks (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,

    /// The S3 endpoint for an image in a bucket (s3://…), beating AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not OFFSET:LENGTH"))?;
    Ok((groups::parse_size(a)?, groups::parse_size(b)?))
}

impl CatArgs {
    /// The library's options.
    pub fn options(&self) -> exhibit::cat::CatOptions {
        exhibit::cat::CatOptions {
            image: self.image.clone(),
            range: self.range,
            workers: self.workers,
            endpoint: self.endpoint.clone(),
        }
    }
}

/// `exhibit mount`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// Any file of the image: BASE.raw, BASE.001 (or any segment), BASE.E01 (or any segment).
    pub image: PathBuf,

    /// An existing, empty directory.
    pub mountpoint: PathBuf,

    /// Memory for decoded E01 chunks, whatever the image's size.
    #[arg(long, value_name = "SIZE", default_value_t = Size(exhibit::image::DEFAULT_CACHE_BYTES as u64))]
    pub cache_size: Size,

    /// Threads that answer reads (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Only the user who mounts may read the files (default: everyone may read them, FUSE
    /// allow_other, so that other tools and users can).
    #[arg(long)]
    pub private: bool,

    /// Return once the mount is served, leaving a daemon that serves until `umount
    /// MOUNTPOINT` or SIGTERM (errors before that still come here, exit 2).
    #[arg(long)]
    pub background: bool,

    /// Append the reports of failed reads (damaged chunks) to FILE, each with its UTC time,
    /// instead of stderr. Without it a --background mount keeps no reports (the reads still
    /// fail with EIO).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

impl MountArgs {
    /// The library's options.
    pub fn options(&self) -> exhibit::mount::MountOptions {
        let mut o = exhibit::mount::MountOptions::new(&self.image, &self.mountpoint);
        o.cache_bytes = usize::try_from(self.cache_size.0).unwrap_or(usize::MAX);
        o.threads = self.threads;
        o.allow_other = !self.private;
        o
    }
}

#[cfg(test)]
mod tests {
    //! The defaults written on the flags are the library's defaults: parse the shortest
    //! command line and compare with the options structs' `new`.
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("exhibit").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    fn json(v: impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn acquire_defaults_are_the_library_defaults() {
        let Command::Acquire(a) = parse(&["acquire", "/dev/src", "-o", "out"]) else {
            panic!("not acquire")
        };
        assert_eq!(
            json(a.options().unwrap()),
            json(AcquireOptions::new("/dev/src", "out"))
        );
    }

    #[test]
    fn rescue_defaults_are_the_library_defaults() {
        let Command::Rescue(r) = parse(&["rescue", "/dev/src", "-o", "out"]) else {
            panic!("not rescue")
        };
        let mut got = json(r.options().unwrap());
        // The library takes 0 to mean its default cluster, 64 KiB; the flag shows it.
        assert_eq!(got["block_size"], 64 << 10);
        got["block_size"] = 0.into();
        assert_eq!(got, json(RescueOptions::new("out")));
    }

    #[test]
    fn verify_defaults_are_the_library_defaults() {
        let Command::Verify(v) = parse(&["verify", "img.E01"]) else {
            panic!("not verify")
        };
        let (got, want) = (v.options(), VerifyOptions::new("img.E01"));
        assert_eq!(got.path, want.path);
        assert_eq!(got.hashes, want.hashes);
        assert_eq!(got.side_files, want.side_files);
        assert_eq!(got.workers, want.workers);
    }

    #[test]
    fn shared_groups_map_the_same_way_in_every_subcommand() {
        let flags = [
            "--hash",
            "sha1",
            "--format",
            "raw,e01",
            "--compression",
            "best",
        ];
        let flags = flags.iter().copied();
        let Command::Acquire(a) = parse(
            &[
                &["acquire", "s", "-o", "b"][..],
                &flags.clone().collect::<Vec<_>>(),
            ]
            .concat(),
        ) else {
            panic!("not acquire")
        };
        let Command::Rescue(r) =
            parse(&[&["rescue", "s", "-o", "b"][..], &flags.collect::<Vec<_>>()].concat())
        else {
            panic!("not rescue")
        };
        let (a, r) = (a.options().unwrap(), r.options().unwrap());
        assert_eq!(a.hashes, r.hashes);
        assert_eq!(json(&a.e01), json(r.e01.as_ref().unwrap()));
        assert_eq!(a.e01.compression, exhibit::ewf::Compression::Best);
    }
}
