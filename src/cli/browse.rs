//! `exhibit ls` and `exhibit extract`: their flags and what they print.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use exhibit::browse::extract::{ExtractOptions, ExtractReport};
use exhibit::browse::ls::{Listing, LsOptions};
use exhibit::text::printable;

use super::groups::Size;

/// `exhibit ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Any file of the image: BASE.raw, BASE.001 (or any segment), BASE.E01 (or any segment).
    pub image: PathBuf,

    /// [pN:][/PATH]: partition N (as Linux numbers it; default: the first with a file system
    /// exhibit reads, or the whole media without a partition table) and a directory or file.
    #[arg(default_value = "")]
    pub target: OsString,

    /// Print as JSON for scripts.
    #[arg(long)]
    pub json: bool,

    /// Memory for decoded E01 chunks.
    #[arg(long, value_name = "SIZE", default_value_t = Size(exhibit::image::DEFAULT_CACHE_BYTES as u64))]
    pub cache_size: Size,
}

impl LsArgs {
    /// The library's options.
    pub fn options(&self) -> LsOptions {
        LsOptions {
            target: self.target.clone(),
            cache_bytes: usize::try_from(self.cache_size.0).unwrap_or(usize::MAX),
            ..LsOptions::new(&self.image)
        }
    }
}

/// `exhibit extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Any file of the image: BASE.raw, BASE.001 (or any segment), BASE.E01 (or any segment).
    pub image: PathBuf,

    /// pN:/PATH of each file or directory to copy out (a directory with everything in it).
    #[arg(required = true, value_name = "pN:/PATH")]
    pub targets: Vec<OsString>,

    /// Output directory, new or empty: files go to DIR/pN/PATH, the record to
    /// DIR/extract.yaml.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,

    /// Memory for decoded E01 chunks.
    #[arg(long, value_name = "SIZE", default_value_t = Size(exhibit::image::DEFAULT_CACHE_BYTES as u64))]
    pub cache_size: Size,

    /// No summary (failures are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

impl ExtractArgs {
    /// The library's options.
    pub fn options(&self) -> ExtractOptions {
        ExtractOptions {
            image: self.image.clone(),
            targets: self.targets.clone(),
            output: self.output.clone(),
            cache_bytes: usize::try_from(self.cache_size.0).unwrap_or(usize::MAX),
            command_line: exhibit::text::args_text(std::env::args_os()),
        }
    }
}

/// A listing, one line per entry: type, size, modification time, inode/MFT number, name.
pub fn listing(l: &Listing) {
    let id = if l.id_label.is_empty() {
        "-"
    } else {
        l.id_label
    };
    println!(
        "# {} ({}) {}  [type size modified {id} name]",
        l.volume.label,
        l.volume.file_system,
        printable(&l.path)
    );
    for e in &l.entries {
        let link = e
            .target
            .as_deref()
            .map(|t| format!(" -> {}", printable(t)))
            .unwrap_or_default();
        println!(
            "{} {:>12} {:<24} {:>8} {}{link}",
            e.kind.letter(),
            e.size,
            e.modified.as_deref().unwrap_or("-"),
            e.id.map_or("-".to_string(), |n| n.to_string()),
            printable(&e.name)
        );
    }
}

/// Failures (always), then the totals.
pub fn extracted(r: &ExtractReport, quiet: bool) {
    for f in &r.failures {
        eprintln!("exhibit extract: not extracted: {f}");
    }
    if !quiet {
        let t = &r.totals;
        eprintln!(
            "extracted {} files ({} bytes), {} directories, {} links; {} skipped, {} failed; record {}",
            t.files,
            t.bytes,
            t.directories,
            t.links,
            t.skipped,
            t.failed,
            exhibit::text::printable_path(&r.record)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    #[test]
    fn ls_defaults_are_the_library_defaults_and_extract_needs_a_path() {
        let Command::Ls(a) = Cli::try_parse_from(["exhibit", "ls", "img.E01"])
            .unwrap()
            .command
        else {
            panic!("not ls")
        };
        let (got, want) = (a.options(), LsOptions::new("img.E01"));
        assert_eq!(got.image, want.image);
        assert_eq!(got.target, want.target);
        assert_eq!(got.cache_bytes, want.cache_bytes);
        assert!(Cli::try_parse_from(["exhibit", "extract", "img.E01", "-o", "out"]).is_err());
    }
}
