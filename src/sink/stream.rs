//! A sink that writes the media, in order, to any byte stream: standard output for
//! `exhibit cat` (pipes into `sha256sum`, `ssh`, `udp-sender`), later a network peer.

use std::io::Write;
use std::sync::Arc;

use super::{MediaSummary, OutputFile, Sink};
use crate::block::Block;
use crate::error::{Error, Result};

/// Writes every block to `out`.
pub struct StreamSink<W: Write + Send> {
    out: W,
    name: String,
    written: u64,
}

impl<W: Write + Send> StreamSink<W> {
    /// A sink writing to `out`, called `name` in messages (`standard output`).
    pub fn new(out: W, name: impl Into<String>) -> Self {
        StreamSink {
            out,
            name: name.into(),
            written: 0,
        }
    }
}

impl<W: Write + Send> Sink for StreamSink<W> {
    fn name(&self) -> &'static str {
        "stream"
    }

    fn write_block(&mut self, block: &Arc<Block>) -> Result<()> {
        self.out.write_all(block.data()).map_err(|e| Error::Write {
            path: self.name.clone().into(),
            offset: self.written,
            source: e,
        })?;
        self.written += block.len() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>, _summary: &MediaSummary) -> Result<Vec<OutputFile>> {
        self.out.flush().map_err(|e| Error::Write {
            path: self.name.clone().into(),
            offset: self.written,
            source: e,
        })?;
        Ok(Vec::new())
    }

    fn abandon(mut self: Box<Self>) -> Vec<OutputFile> {
        let _ = self.out.flush();
        Vec::new()
    }
}
