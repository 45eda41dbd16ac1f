//! A sink that hands every block, by reference, to a thread hashing several streams in
//! lockstep ([`crate::md5_lanes::hash_in_lockstep`]): each pass of several passes at once
//! (the read-back of every restored target) feeds one lane, so their MD5s share one core
//! instead of taking one each.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use super::{MediaSummary, OutputFile, Sink};
use crate::block::Block;
use crate::error::{Error, Result};

/// Blocks this far ahead of the slowest lane wait in the channel (besides the one the
/// hashing thread is in): enough to ride out one slow read, few enough to stay in the pool.
pub const LANE_DEPTH: usize = 2;

/// One pass's lane.
pub struct LaneFeed {
    lane: SyncSender<Arc<Block>>,
}

impl LaneFeed {
    /// A feed into `lane` (the stream ends when the sink is finished, abandoned or dropped).
    pub fn new(lane: SyncSender<Arc<Block>>) -> LaneFeed {
        LaneFeed { lane }
    }
}

impl Sink for LaneFeed {
    fn name(&self) -> &'static str {
        "md5-lane"
    }

    fn write_block(&mut self, block: &Arc<Block>) -> Result<()> {
        self.lane
            .send(block.clone())
            .map_err(|_| Error::Internal("the lockstep MD5 thread ended early".into()))
    }

    fn finish(self: Box<Self>, _: &MediaSummary) -> Result<Vec<OutputFile>> {
        Ok(Vec::new())
    }

    fn abandon(self: Box<Self>) -> Vec<OutputFile> {
        Vec::new()
    }
}
