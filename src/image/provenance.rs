//! What an image says about the acquisition that made it, beside its media: the case metadata,
//! the media's identity, the unreadable runs (zeros in the media) and when it was acquired,
//! from its E01 headers, volume and `error2` section and from the record beside it. What a job
//! that makes a new image from an old one (convert) carries over.

use super::references::{file_name, Claims};
use super::Image;
use crate::case::CaseMetadata;
use crate::map::BadRun;
use crate::source::{Identity, SourceKind};

/// What an image says about the acquisition that made it.
#[derive(Clone, Debug)]
pub struct Provenance {
    /// Case metadata: the E01 headers', else the record's.
    pub case: CaseMetadata,
    /// The media's identity (model, serial, removable): the record's, else the E01 headers'.
    pub identity: Identity,
    /// What the media was: the record's source kind, else the E01 media flags; `File` when
    /// nothing says.
    pub kind: SourceKind,
    /// The unreadable runs of the acquisition: the record's (with errno and attempts), else
    /// the E01 `error2` section's (EIO).
    pub unreadable: Vec<BadRun>,
    /// Where those runs come from (`disk.yaml`, `disk.E01 error2`).
    pub unreadable_from: Option<String>,
    /// When the media was acquired: the record's start, else the E01 `m` field.
    pub acquired_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What `image` says about its acquisition, with `claims` (the record beside it): the case
/// metadata (E01 headers, else the record), the media's identity, the unreadable runs (the
/// record's, which say why, else the E01 `error2` section) and when it was acquired.
pub fn of_image(image: &Image, claims: &Claims) -> Provenance {
    let record = claims.record.as_ref().map(|(_, r)| r);
    let mut c = Provenance {
        case: CaseMetadata::default(),
        identity: Identity::default(),
        kind: SourceKind::File,
        unreadable: Vec::new(),
        unreadable_from: None,
        acquired_at: None,
    };
    if let Some(r) = record {
        c.case = r.case.clone();
        c.identity = r.source.identity.clone();
        c.kind = r.source.kind;
        c.acquired_at = chrono::DateTime::parse_from_rfc3339(&r.times.started_utc)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc));
        if !r.unreadable.runs.is_empty() {
            c.unreadable = r
                .unreadable
                .runs
                .iter()
                .map(|u| BadRun {
                    offset: u.offset,
                    length: u.length,
                    errno: u.errno,
                    attempts: u.attempts,
                })
                .collect();
            c.unreadable_from = claims.record.as_ref().map(|(p, _)| file_name(p));
        }
    }
    if let Some(e) = image.e01() {
        let from_e01 = e.case_metadata();
        if from_e01 != CaseMetadata::default() {
            c.case = from_e01;
        }
        let header = |id: &str| {
            e.header_fields()
                .and_then(|h| h.get(id))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        c.identity.model = c.identity.model.take().or_else(|| header("md"));
        c.identity.serial = c.identity.serial.take().or_else(|| header("sn"));
        if c.acquired_at.is_none() {
            c.acquired_at = header("m")
                .and_then(|m| m.trim().parse::<i64>().ok())
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
        }
        if let Some(v) = e.volume() {
            if record.is_none() {
                // Media flags bit 1: a physical device; media type 0: removable.
                c.kind = if v.media_flags & 2 != 0 {
                    SourceKind::Disk
                } else {
                    SourceKind::File
                };
                c.identity.removable = Some(v.media_type == 0);
            }
            if c.unreadable.is_empty() && !e.error2().is_empty() {
                let bps = u64::from(v.bytes_per_sector);
                c.unreadable = e
                    .error2()
                    .iter()
                    .map(|x| BadRun {
                        offset: u64::from(x.first_sector) * bps,
                        length: u64::from(x.sector_count) * bps,
                        errno: libc::EIO,
                        attempts: 0,
                    })
                    .collect();
                c.unreadable_from = e
                    .segment_paths()
                    .first()
                    .map(|p| format!("{} error2", file_name(p)));
            }
        }
    }
    c
}
