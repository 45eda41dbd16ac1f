//! The settings of the E01 output, shared by every job that writes one (acquire writes it from
//! the pass, rescue seals its finished image into it).

use crate::case::CaseMetadata;
use crate::ewf::{Compression, E01Options};
use crate::source::{Source, SourceKind};

/// E01 settings (used when the formats include E01).
#[derive(Clone, Debug, serde::Serialize)]
pub struct E01Settings {
    /// Chunk compression (default fast).
    #[serde(serialize_with = "serialize_compression")]
    pub compression: Compression,
    /// Largest segment file (default [`crate::ewf::DEFAULT_SEGMENT_SIZE`]).
    pub segment_size: u64,
}

impl Default for E01Settings {
    fn default() -> Self {
        E01Settings {
            compression: Compression::Fast,
            segment_size: crate::ewf::DEFAULT_SEGMENT_SIZE,
        }
    }
}

impl E01Settings {
    /// The E01 writer's options for `source`: its size, sector size, model and serial, the
    /// case metadata, and 32 KiB chunks (also on 4Kn media).
    pub fn options_for(&self, source: &Source, case: &CaseMetadata) -> E01Options {
        let identity = source.identity();
        let mut e = self.options(source.size(), source.logical_sector_size(), case);
        e.model = identity.model.clone();
        e.serial = identity.serial.clone();
        e.physical_device = source.kind() == SourceKind::Disk;
        e.removable = identity.removable.unwrap_or(false);
        e
    }
}

impl E01Settings {
    /// The E01 writer's options for media of `media_size` bytes in `sector_size`-byte sectors:
    /// these settings, the case metadata, and 32 KiB chunks (also on 4Kn media).
    pub fn options(&self, media_size: u64, sector_size: u32, case: &CaseMetadata) -> E01Options {
        let mut e = E01Options::new(media_size, sector_size);
        e.compression = self.compression;
        e.segment_size = self.segment_size;
        e.sectors_per_chunk = (32768 / sector_size).max(1);
        e.case = case.clone();
        e
    }
}

fn serialize_compression<S: serde::Serializer>(
    c: &Compression,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(match c {
        Compression::None => "none",
        Compression::Fast => "fast",
        Compression::Best => "best",
    })
}
