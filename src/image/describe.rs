//! What an image holds, without reading its media: format, segments, media size, sector
//! size, case metadata, stored hashes, acquisition errors, E01 geometry and header fields, the
//! partition table and the audit record's summary. A part, not a job: `exhibit info` prints
//! it, `mount` serves it as `info.yaml`, `extract` names the image by it. Results are data
//! ([`ImageInfo`], also serialised as JSON by the CLI); the library never prints.
//!
//! For E01 the structural checker walks every section (cheap: descriptors and tables only),
//! so container problems found on the way are listed too; `exhibit verify` reads the chunks.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::references::{base_of, file_name, normal_hex, parse_log, side_file};
use super::{Image, ImageFormat, Place};
use crate::audit::AuditRecord;
use crate::case::CaseMetadata;
use crate::error::{Error, Result};
use crate::hash::{to_hex, HashAlgorithm};

/// One file of the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// Path.
    #[serde(serialize_with = "crate::text::path::serialize")]
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
}

/// A hash stored somewhere (in the image, the record or a hash log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredHash {
    /// Algorithm.
    pub algorithm: HashAlgorithm,
    /// Lower-case hex.
    pub hex: String,
    /// Where it is stored.
    pub source: String,
}

/// A run of sectors that could not be read at acquisition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorRun {
    /// First sector.
    pub first_sector: u64,
    /// Sectors.
    pub sector_count: u64,
    /// Where this comes from (`error2`, the record).
    pub source: String,
}

/// E01 details from the volume and header sections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct E01Details {
    /// Sectors per chunk.
    pub sectors_per_chunk: u32,
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Chunk count in the volume section.
    pub volume_chunk_count: u32,
    /// Chunks found through the tables.
    pub chunks_in_tables: u64,
    /// Compression level byte (0 none, 1 fast, 2 best).
    pub compression_level: u8,
    /// Media type byte (0 removable, 1 fixed, 3 optical, …).
    pub media_type: u8,
    /// Media flags byte (bit 0 image, bit 1 physical device, …).
    pub media_flags: u8,
    /// Error granularity in sectors.
    pub error_granularity: u32,
    /// Segment set GUID, hex.
    pub guid: String,
    /// Header fields (`header2` when present, else `header`), in stored order.
    pub header_fields: Vec<(String, String)>,
    /// Container problems seen while walking the sections (chunks are not read).
    pub problems: Vec<String>,
}

/// The audit record in brief.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordSummary {
    /// The record's path.
    #[serde(serialize_with = "crate::text::path::serialize")]
    pub path: PathBuf,
    /// Tool and version that wrote it.
    pub tool: String,
    /// Start, UTC.
    pub started_utc: String,
    /// End, UTC.
    pub finished_utc: Option<String>,
    /// Outcome status.
    pub status: String,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// The source path.
    #[serde(serialize_with = "crate::text::path::serialize")]
    pub source: PathBuf,
    /// Disk, partition or file (lower case).
    pub source_kind: String,
    /// Model and serial of the source, if known.
    pub source_model: Option<String>,
    /// Serial number.
    pub source_serial: Option<String>,
    /// Host name.
    pub host: String,
    /// Unreadable sectors.
    pub unreadable_sectors: u64,
    /// Outputs listed.
    pub outputs: Vec<FileInfo>,
    /// MB/s of the acquisition.
    pub megabytes_per_second: Option<f64>,
}

/// Everything `info` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageInfo {
    /// The path given.
    #[serde(serialize_with = "crate::text::path::serialize")]
    pub path: PathBuf,
    /// The image format (for a record: of its first image output).
    pub format: Option<ImageFormat>,
    /// The image's files, segments in order.
    pub files: Vec<FileInfo>,
    /// Media size in bytes.
    pub media_size: Option<u64>,
    /// Bytes per sector.
    pub sector_size: Option<u32>,
    /// Case metadata (E01 headers, else the record).
    pub case: CaseMetadata,
    /// Every stored hash found.
    pub stored_hashes: Vec<StoredHash>,
    /// Unreadable runs recorded at acquisition.
    pub acquisition_errors: Vec<ErrorRun>,
    /// E01 details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e01: Option<E01Details>,
    /// The record's summary, if a record was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSummary>,
    /// The partition table on the media (exhibit's own reader), if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<crate::partition::PartitionTable>,
}

fn file_info(place: &Place, p: &Path) -> FileInfo {
    FileInfo {
        path: p.to_path_buf(),
        size: place.metadata(p).map(|m| m.len).unwrap_or(0),
    }
}

/// Describes `path` (`BASE.E01`, `BASE.raw`, `BASE.001` or `BASE.yaml`) and its side files.
pub fn describe(path: &Path) -> Result<ImageInfo> {
    describe_in(&Place::of(path, None)?, path)
}

/// [`describe`] for an image in `place`.
pub fn describe_in(place: &Place, path: &Path) -> Result<ImageInfo> {
    let meta = place.metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::InvalidOption(format!(
            "{} is a directory; give BASE.E01, BASE.raw, BASE.001 or BASE.yaml",
            path.display()
        )));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let base = base_of(path);
    let mut out = ImageInfo {
        path: path.to_path_buf(),
        format: None,
        files: Vec::new(),
        media_size: None,
        sector_size: None,
        case: CaseMetadata::default(),
        stored_hashes: Vec::new(),
        acquisition_errors: Vec::new(),
        e01: None,
        record: None,
        partitions: None,
    };
    let record_path = if ext == "yaml" || ext == "yml" {
        Some(path.to_path_buf())
    } else {
        Some(side_file(&base, "yaml")).filter(|p| place.exists(p))
    };
    let image = if record_path.as_deref() == Some(path) {
        None
    } else {
        Some(Image::open_in(place, path)?)
    };
    // A few sectors of the media; a table that cannot be read is simply not shown (verify
    // is where damage is reported).
    out.partitions = image
        .as_ref()
        .and_then(|i| crate::partition::of_image(i).ok().flatten());
    if let Some(Image::E01(media)) = &image {
        let img = media.structure();
        out.format = Some(ImageFormat::E01);
        out.files = img
            .segment_paths()
            .iter()
            .map(|p| file_info(place, p))
            .collect();
        out.media_size = img.media_size();
        out.sector_size = img.bytes_per_sector();
        out.case = img.case_metadata();
        let name = file_name(path);
        if let Some(m) = img.stored_md5() {
            out.stored_hashes.push(StoredHash {
                algorithm: HashAlgorithm::Md5,
                hex: to_hex(&m),
                source: name.clone(),
            });
        }
        if let Some(s) = img.stored_sha1() {
            out.stored_hashes.push(StoredHash {
                algorithm: HashAlgorithm::Sha1,
                hex: to_hex(&s),
                source: name.clone(),
            });
        }
        out.acquisition_errors = img
            .error2()
            .iter()
            .map(|e| ErrorRun {
                first_sector: e.first_sector.into(),
                sector_count: e.sector_count.into(),
                source: format!("{name} error2"),
            })
            .collect();
        if let Some(v) = img.volume() {
            out.e01 = Some(E01Details {
                sectors_per_chunk: v.sectors_per_chunk,
                chunk_size: v.chunk_size(),
                volume_chunk_count: v.chunk_count,
                chunks_in_tables: img.chunk_count(),
                compression_level: v.compression_level,
                media_type: v.media_type,
                media_flags: v.media_flags,
                error_granularity: v.error_granularity,
                guid: to_hex(&v.guid),
                header_fields: img
                    .header_fields()
                    .map(|h| h.fields.clone())
                    .unwrap_or_default(),
                problems: img.problems().iter().map(|p| p.to_string()).collect(),
            });
        } else {
            out.e01 = Some(E01Details {
                sectors_per_chunk: 0,
                chunk_size: 0,
                volume_chunk_count: 0,
                chunks_in_tables: img.chunk_count(),
                compression_level: 0,
                media_type: 0,
                media_flags: 0,
                error_granularity: 0,
                guid: String::new(),
                header_fields: Vec::new(),
                problems: img.problems().iter().map(|p| p.to_string()).collect(),
            });
        }
    } else if let Some(raw) = &image {
        out.format = Some(raw.format());
        out.files = raw.files().iter().map(|p| file_info(place, p)).collect();
        out.media_size = Some(raw.media_size());
    }

    if let Some(rp) = &record_path {
        let record = place.read_record(rp)?;
        apply_record(&mut out, &record, rp);
    }
    for alg in HashAlgorithm::ALL {
        let log = side_file(&base, alg.name());
        let text = place.read_small_text(&log, crate::small_file::HASH_LOG_LIMIT);
        if let Ok(text) = text {
            for e in parse_log(alg, &text).0 {
                out.stored_hashes.push(StoredHash {
                    algorithm: alg,
                    hex: e.hex,
                    source: format!("{} (for '{}')", file_name(&log), e.name),
                });
            }
        }
    }
    Ok(out)
}

fn apply_record(out: &mut ImageInfo, r: &AuditRecord, path: &Path) {
    let name = file_name(path);
    if out.case == CaseMetadata::default() {
        out.case = r.case.clone();
    }
    out.media_size = out.media_size.or(Some(r.source.size));
    if out.sector_size.is_none() {
        out.sector_size = Some(r.source.logical_sector_size);
    }
    if out.format.is_none() {
        // A record: describe its first image output.
        let kinds: Vec<&str> = r.outputs.iter().map(|o| o.kind.as_str()).collect();
        out.format = if kinds.iter().any(|k| k.starts_with("e01")) {
            Some(ImageFormat::E01)
        } else if kinds.contains(&"raw-segment") {
            Some(ImageFormat::SplitRaw)
        } else if kinds.contains(&"device") {
            Some(ImageFormat::Device)
        } else if kinds.contains(&"raw") {
            Some(ImageFormat::Raw)
        } else {
            None
        };
        out.media_size = Some(r.source.size);
        out.files = r
            .outputs
            .iter()
            .map(|o| FileInfo {
                path: o.path.clone(),
                size: o.size,
            })
            .collect();
    }
    if let Some(h) = &r.hashes {
        for (alg, v) in [
            (HashAlgorithm::Md5, &h.md5),
            (HashAlgorithm::Sha1, &h.sha1),
            (HashAlgorithm::Sha256, &h.sha256),
        ] {
            if let Some(v) = v {
                out.stored_hashes.push(StoredHash {
                    algorithm: alg,
                    hex: normal_hex(alg, v).unwrap_or_else(|| v.clone()),
                    source: name.clone(),
                });
            }
        }
    }
    if out.acquisition_errors.is_empty() {
        out.acquisition_errors = r
            .unreadable
            .runs
            .iter()
            .map(|u| ErrorRun {
                first_sector: u.first_sector,
                sector_count: u.sector_count,
                source: name.clone(),
            })
            .collect();
    }
    out.record = Some(RecordSummary {
        path: path.to_path_buf(),
        tool: format!(
            "{} {} ({})",
            r.tool.name, r.tool.version, r.tool.git_revision
        ),
        started_utc: r.times.started_utc.clone(),
        finished_utc: r.times.finished_utc.clone(),
        status: r.outcome.status.clone(),
        reason: r.outcome.reason.clone(),
        source: r.source.path.clone(),
        source_kind: format!("{:?}", r.source.kind).to_lowercase(),
        source_model: r.source.identity.model.clone(),
        source_serial: r.source.identity.serial.clone(),
        host: r.host.name.clone(),
        unreadable_sectors: r.unreadable.sectors,
        outputs: r
            .outputs
            .iter()
            .map(|o| FileInfo {
                path: o.path.clone(),
                size: o.size,
            })
            .collect(),
        megabytes_per_second: r.throughput.as_ref().map(|t| t.megabytes_per_second),
    });
}
