//! The flag groups several subcommands share, each defined once and turned into the
//! library's option type in one place: hashes (acquire, rescue, verify, convert), output formats
//! and E01 settings (acquire, rescue, convert), split raw output (acquire, convert), case
//! metadata (acquire, rescue, convert), the reader (acquire), and the value types (`Size`,
//! `IoArg`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use exhibit::acquire::{E01Settings, OutputFormat};
use exhibit::case::CaseMetadata;
use exhibit::ewf::Compression;
use exhibit::hash::HashAlgorithm;
use exhibit::reader::{EngineChoice, ReaderOptions};

/// The hash selection, shared by acquire, rescue, verify and convert.
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
    pub hashes: Vec<HashAlgorithm>,
}

/// Output formats and the E01 settings, shared by acquire, rescue and convert.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output formats, comma-separated: raw, e01 (both from the same single read).
    #[arg(
        long = "format",
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "raw"
    )]
    pub formats: Vec<OutputFormat>,

    /// E01 chunk compression: none (all-zero chunks are still compressed), fast, best.
    #[arg(long, value_name = "LEVEL", default_value = "fast")]
    pub compression: Compression,

    /// Largest E01 segment file (e.g. 640M, 2000M); default 2000 MiB, below 2 GiB for old
    /// readers.
    #[arg(long, value_name = "SIZE", default_value_t = Size(exhibit::ewf::DEFAULT_SEGMENT_SIZE))]
    pub segment_size: Size,
}

impl FormatArgs {
    /// True when E01 output was asked for.
    pub fn wants_e01(&self) -> bool {
        self.formats.contains(&OutputFormat::E01)
    }

    /// The E01 settings given.
    pub fn e01(&self) -> E01Settings {
        E01Settings {
            compression: self.compression,
            segment_size: self.segment_size.0,
        }
    }
}

/// Split raw output, shared by acquire and convert.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Split the raw image into segments of SIZE (e.g. 640M, 2G; a multiple of 512 bytes).
    #[arg(long, value_name = "SIZE")]
    pub split: Option<Size>,
}

impl SplitArgs {
    /// The segment size given, in bytes.
    pub fn bytes(&self) -> Option<u64> {
        self.split.map(u64::from)
    }
}

/// How acquire reads the source.
#[derive(Debug, Args)]
pub struct ReaderArgs {
    /// Bytes per read request (a multiple of 4096).
    #[arg(long, value_name = "SIZE", default_value_t = Size(exhibit::reader::DEFAULT_BLOCK_SIZE as u64))]
    pub block_size: Size,

    /// Reads in flight (io_uring engine).
    #[arg(long, value_name = "N", default_value_t = exhibit::reader::DEFAULT_QUEUE_DEPTH)]
    pub queue_depth: usize,

    /// Read engine.
    #[arg(long = "io", value_enum, default_value = "auto")]
    pub io: IoArg,

    /// Read through the page cache instead of O_DIRECT (not recommended: it smears read
    /// errors over neighbouring sectors).
    #[arg(long)]
    pub no_direct: bool,

    /// Extra reads of a sector that failed alone before it is called unreadable.
    #[arg(long, value_name = "N", default_value_t = exhibit::reader::DEFAULT_RETRIES)]
    pub retries: u32,

    /// When to give up on a source that keeps failing.
    #[command(flatten)]
    pub give_up: GiveUpArgs,
}

/// When to give up on a source that keeps failing (acquire and rescue). A source that vanished
/// (unplugged, its loop device's backing file unreachable) always stops the job.
#[derive(Debug, Args)]
pub struct GiveUpArgs {
    /// Stop (exit 2; the rest stays unread in the map, for a rescue or a re-run) after this
    /// many bytes of newly unreadable sectors in a row with no good read between them; 0:
    /// never.
    #[arg(long, value_name = "SIZE",
          default_value_t = Size(exhibit::reader::liveness::DEFAULT_GIVE_UP_BYTES))]
    pub give_up_after: Size,

    /// Stop after this many seconds without a good read; 0: never.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub give_up_time: u64,
}

impl From<&GiveUpArgs> for exhibit::reader::GiveUp {
    fn from(a: &GiveUpArgs) -> Self {
        exhibit::reader::GiveUp {
            after_bytes: a.give_up_after.0,
            after_seconds: a.give_up_time,
        }
    }
}

impl TryFrom<&ReaderArgs> for ReaderOptions {
    type Error = anyhow::Error;
    fn try_from(args: &ReaderArgs) -> anyhow::Result<ReaderOptions> {
        Ok(ReaderOptions {
            block_size: usize::try_from(args.block_size.0)
                .map_err(|_| anyhow::anyhow!("--block-size is too large"))?,
            queue_depth: args.queue_depth,
            engine: args.io.into(),
            retries: args.retries,
            direct: !args.no_direct,
            give_up: (&args.give_up).into(),
        })
    }
}

/// A rescue's `--block-size`: refused at 0 like acquire's (the library would take 0 for its
/// default and the examiner would get a cluster they did not ask for).
pub fn rescue_block_size(size: Size) -> exhibit::Result<u64> {
    if size.0 == 0 {
        return Err(exhibit::Error::InvalidOption(
            "--block-size 0 is not a positive multiple of the sector size".into(),
        ));
    }
    Ok(size.0)
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

impl CaseArgs {
    /// The metadata: the file's, with the flags given on top.
    pub fn metadata(&self) -> exhibit::Result<CaseMetadata> {
        let from_file = match &self.case_file {
            Some(path) => CaseMetadata::from_yaml_file(path)?,
            None => CaseMetadata::default(),
        };
        Ok(from_file.overlay(CaseMetadata {
            case_number: self.case_number.clone(),
            evidence_number: self.evidence_number.clone(),
            examiner: self.examiner.clone(),
            description: self.description.clone(),
            notes: self.notes.clone(),
        }))
    }
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

impl From<IoArg> for EngineChoice {
    fn from(io: IoArg) -> Self {
        match io {
            IoArg::Auto => EngineChoice::Auto,
            IoArg::Uring => EngineChoice::Uring,
            IoArg::Sync => EngineChoice::Sync,
        }
    }
}

/// Object storage (`-o s3://BUCKET/PREFIX/BASE`), shared by acquire and convert (docs/s3.md).
/// Credentials come only from the environment and the AWS files, never from a flag, so that
/// no secret is on a command line (or in the record's copy of it).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// S3 endpoint for an s3:// BASE (beats AWS_ENDPOINT_URL and the profile's
    /// endpoint_url), e.g. http://127.0.0.1:3900 for a self-hosted Garage or MinIO.
    #[arg(long, value_name = "URL", help_heading = "Object storage")]
    pub endpoint: Option<String>,

    /// S3 Object Lock mode for every object written (GOVERNANCE or COMPLIANCE); needs
    /// --retain-until and a bucket with Object Lock enabled.
    #[arg(
        long,
        value_name = "MODE",
        requires = "retain_until",
        help_heading = "Object storage"
    )]
    pub object_lock_mode: Option<LockMode>,

    /// Retain every object until this time (RFC 3339, e.g. 2033-01-01T00:00:00Z).
    #[arg(
        long,
        value_name = "TIME",
        requires = "object_lock_mode",
        help_heading = "Object storage"
    )]
    pub retain_until: Option<String>,

    /// Parts of each image object uploaded at once (memory: about (N + 2) parts per object).
    #[arg(long, value_name = "N", default_value_t = 4,
        value_parser = clap::value_parser!(u64).range(1..=64),
        help_heading = "Object storage")]
    pub parts_in_flight: u64,
}

/// S3 Object Lock modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LockMode {
    /// Users with a special permission can still remove the retention.
    Governance,
    /// Nobody can remove the retention before it ends.
    Compliance,
}

impl StoreArgs {
    /// The library's options; refuses a retention time that is no RFC 3339 time.
    pub fn options(&self, output: &std::path::Path) -> anyhow::Result<exhibit::s3::StoreOptions> {
        let s3 = exhibit::s3::is_s3(&output.to_string_lossy());
        if !s3 && (self.endpoint.is_some() || self.object_lock_mode.is_some()) {
            anyhow::bail!(
                "--endpoint and --object-lock-mode need an s3:// output (-o s3://BUCKET/BASE)"
            );
        }
        let lock = match (&self.object_lock_mode, &self.retain_until) {
            (Some(mode), Some(until)) => {
                let t = chrono::DateTime::parse_from_rfc3339(until).map_err(|e| {
                    anyhow::anyhow!(
                        "--retain-until {}: not an RFC 3339 time ({e})",
                        exhibit::text::printable(until)
                    )
                })?;
                Some(exhibit::s3::client::ObjectLock {
                    mode: match mode {
                        LockMode::Governance => "GOVERNANCE",
                        LockMode::Compliance => "COMPLIANCE",
                    }
                    .into(),
                    retain_until: t
                        .with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                })
            }
            _ => None,
        };
        Ok(exhibit::s3::StoreOptions {
            endpoint: self.endpoint.clone(),
            lock,
            parts_in_flight: if s3 { self.parts_in_flight as usize } else { 0 },
        })
    }
}

/// A byte count on the command line: `4096`, `64K`, `1M`, `1.5G`, `2T` (powers of 1024;
/// `KB`/`MB`/`GB`/`TB` are powers of 1000). Shown (in defaults) in the largest binary unit
/// that divides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl From<Size> for u64 {
    fn from(s: Size) -> u64 {
        s.0
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Size, String> {
        parse_size(s).map(Size)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
            if n != 0 && n.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
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

    #[test]
    fn sizes_show_in_the_largest_unit_that_divides_them_and_read_back() {
        for (n, shown) in [
            (0, "0"),
            (512, "512"),
            (64 << 10, "64K"),
            (1 << 20, "1M"),
            (2000 << 20, "2000M"),
            (3 << 30, "3G"),
            (1536, "1536"),
            (5 << 40, "5T"),
        ] {
            assert_eq!(Size(n).to_string(), shown);
            assert_eq!(shown.parse::<Size>(), Ok(Size(n)));
        }
    }
}
