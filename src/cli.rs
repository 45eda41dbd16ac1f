//! Command-line definitions: every flag defined once, here; `main.rs` maps them onto the
//! library's options structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// stored hashes, acquisition errors and the record's summary (media is not read).
    Info(InfoArgs),
    /// Rescue a failing disk the way GNU ddrescue does (copy skipping trouble, trim, scrape,
    /// retry passes), keeping the map on disk so that running the same command again resumes;
    /// hashes, hash logs and the record when done.
    Rescue(RescueArgs),
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
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64K")]
    pub block_size: u64,

    /// Read every area like GNU ddrescue: one --block-size read at a time, also where the
    /// disk reads well (slower; for disks that fail when pushed).
    #[arg(long)]
    pub careful: bool,

    /// Engine for healthy stretches: io_uring (auto: where available) or single reads.
    #[arg(long = "io", value_enum, default_value = "auto")]
    pub io: IoArg,

    /// First jump past a failed read while copying; it doubles on each further failure.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64K")]
    pub min_skip: u64,

    /// Largest jump (default 1% of the source, at most 1 GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_skip: Option<u64>,

    /// Longest time between two saves of the map, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub map_interval: f64,

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
}

/// `exhibit info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// BASE.E01, BASE.raw, BASE.001 or BASE.yaml.
    pub path: PathBuf,

    /// Print as JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// How to pick the read engine.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum IoArg {
    /// io_uring where available, else pread.
    Auto,
    /// io_uring only.
    Uring,
    /// pread only.
    Sync,
}

impl From<IoArg> for crate::reader::EngineChoice {
    fn from(io: IoArg) -> Self {
        match io {
            IoArg::Auto => crate::reader::EngineChoice::Auto,
            IoArg::Uring => crate::reader::EngineChoice::Uring,
            IoArg::Sync => crate::reader::EngineChoice::Sync,
        }
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

    /// Split the raw image into segments of SIZE (e.g. 640M, 2G; a multiple of 512 bytes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub split: Option<u64>,

    /// Write the raw image onto this block device (a clone) instead of BASE.raw. The device
    /// must be at least as large as the source and not mounted.
    #[arg(long, value_name = "DEVICE")]
    pub clone: Option<PathBuf>,

    /// Hashes.
    #[command(flatten)]
    pub hash: HashArgs,

    /// Bytes per read request (a multiple of 4096).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "1M")]
    pub block_size: u64,

    /// Reads in flight (io_uring engine).
    #[arg(long, value_name = "N", default_value_t = crate::reader::DEFAULT_QUEUE_DEPTH)]
    pub queue_depth: usize,

    /// Read engine.
    #[arg(long = "io", value_enum, default_value = "auto")]
    pub io: IoArg,

    /// Read through the page cache instead of O_DIRECT (not recommended: it smears read
    /// errors over neighbouring sectors).
    #[arg(long)]
    pub no_direct: bool,

    /// Extra reads of a sector that failed alone before it is called unreadable.
    #[arg(long, value_name = "N", default_value_t = crate::reader::DEFAULT_RETRIES)]
    pub retries: u32,

    /// Replace existing output files instead of refusing.
    #[arg(long)]
    pub overwrite: bool,

    /// Set the kernel's read-only flag on the source device first (BLKROSET, like `blockdev
    /// --setro`; it stays set, `blockdev --setrw` clears it). A software guard, not a
    /// hardware write blocker.
    #[arg(long)]
    pub set_readonly: bool,

    /// No progress and no summary (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Case metadata.
    #[command(flatten, next_help_heading = "Case metadata")]
    pub case: CaseArgs,
}

/// The hash selection, shared by acquire, rescue and verify.
#[derive(Debug, Args)]
pub struct HashArgs {
    /// Hashes to compute, comma-separated: md5, sha1, sha256 (E01 output always adds md5
    /// and sha1, which it stores).
    #[arg(
        long = "hash",
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "md5,sha1,sha256"
    )]
    pub hashes: Vec<crate::hash::HashAlgorithm>,
}

/// Output formats and the E01 settings, shared by acquire and rescue.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output formats, comma-separated: raw, e01 (both from the same single read).
    #[arg(
        long = "format",
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "raw"
    )]
    pub formats: Vec<crate::acquire::OutputFormat>,

    /// E01 chunk compression: none (all-zero chunks are still compressed), fast, best.
    #[arg(long, value_name = "LEVEL", default_value = "fast")]
    pub compression: crate::ewf::Compression,

    /// Largest E01 segment file (e.g. 640M, 2000M); default 2000 MiB, below 2 GiB for old
    /// readers.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "2000M")]
    pub segment_size: u64,
}

impl FormatArgs {
    /// True when E01 output was asked for.
    pub fn wants_e01(&self) -> bool {
        self.formats.contains(&crate::acquire::OutputFormat::E01)
    }

    /// The E01 settings given.
    pub fn e01(&self) -> crate::acquire::E01Settings {
        crate::acquire::E01Settings {
            compression: self.compression,
            segment_size: self.segment_size,
        }
    }
}

/// Case metadata flags (also accepted from `--case FILE.yaml`; flags win).
#[derive(Debug, Args)]
pub struct CaseArgs {
    /// YAML file with case_number, evidence_number, examiner, description, notes.
    #[arg(long = "case", value_name = "FILE.yaml")]
    pub case_file: Option<PathBuf>,
    /// Case number.
    #[arg(long)]
    pub case_number: Option<String>,
    /// Evidence number.
    #[arg(long)]
    pub evidence_number: Option<String>,
    /// Examiner name.
    #[arg(long)]
    pub examiner: Option<String>,
    /// Description of the evidence.
    #[arg(long)]
    pub description: Option<String>,
    /// Notes.
    #[arg(long)]
    pub notes: Option<String>,
}

/// Parses `4096`, `64K`, `1M`, `1.5G`, `2T` (powers of 1024; `KB`/`MB`/`GB`/`TB` are powers
/// of 1000).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KI" | "KIB" => 1 << 10,
        "M" | "MI" | "MIB" => 1 << 20,
        "G" | "GI" | "GIB" => 1 << 30,
        "T" | "TI" | "TIB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(format!("unknown unit '{other}' in '{s}' (use K, M, G, T)")),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 4096, 64K, 1M, 2G)"))?;
    let bytes = value * mult as f64;
    if !(0.0..1.8e19).contains(&bytes) || bytes.fract() != 0.0 {
        return Err(format!("'{s}' is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert!(parse_size("x").is_err());
        assert!(parse_size("1Q").is_err());
    }
}
