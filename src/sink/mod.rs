//! Outputs fed from the one read: raw images, split segments, a target device, E01.
//! Every job that writes an image writes it through [`ImageFile`] (O_DIRECT with a buffered
//! fallback) and opens a target device through [`open_target`] (exclusive, with its refusals).
//!
//! A sink runs on its own thread and sees every [`Block`] in order. When the data is done the
//! job joins it and calls [`Sink::finish`] with what only the whole pass knows (the media
//! hashes, the unreadable runs), so that formats which store hashes (E01) can close.

use std::path::PathBuf;
use std::sync::Arc;

use crate::block::Block;
use crate::error::Result;
use crate::hash::MediaHashes;
use crate::map::BadRun;

pub mod e01;
pub mod image_file;
pub mod lane_feed;
pub mod object;
pub mod raw;
pub mod stale;
pub mod stream;
pub mod target;
pub mod writer_pool;

pub use e01::E01Settings;
pub use image_file::ImageFile;
pub use target::open_target;

/// What the whole pass learned, handed to every sink when the data is done.
#[derive(Clone, Debug)]
pub struct MediaSummary {
    /// Bytes of media written (the source size).
    pub media_size: u64,
    /// Logical sector size of the source.
    pub sector_size: u32,
    /// The media hashes that were computed.
    pub hashes: MediaHashes,
    /// Unreadable runs, zero-filled in every output, in order.
    pub unreadable: Vec<BadRun>,
}

/// A file an output wrote, for the record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputFile {
    /// Path as given (relative or absolute).
    #[serde(with = "crate::text::path")]
    pub path: PathBuf,
    /// Size in bytes when finished.
    pub size: u64,
    /// What it is: `raw`, `raw-segment`, `device`, `e01-segment`, ….
    pub kind: String,
}

/// One output format's writer.
pub trait Sink: Send {
    /// Short name for messages and the record (`raw`, `e01`).
    fn name(&self) -> &'static str;

    /// Takes the next block; blocks arrive in order, without gaps. A sink that hands work to
    /// other threads keeps a clone of the `Arc` rather than copying the bytes.
    fn write_block(&mut self, block: &Arc<Block>) -> Result<()>;

    /// Closes the output after the last block: writes trailers, syncs to disk, and lists the
    /// files written. Only after this returns may the record say "complete".
    fn finish(self: Box<Self>, summary: &MediaSummary) -> Result<Vec<OutputFile>>;

    /// Stops after a failure or interruption: leaves what was written recognisably
    /// incomplete, and lists it.
    fn abandon(self: Box<Self>) -> Vec<OutputFile>;
}
