//! The `pread` engine: one block at a time. Slower than io_uring on fast devices (one read in
//! flight), but it needs nothing from the kernel beyond `pread`.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::block::Block;
use crate::buffer::BufferPool;
use crate::error::{Error, Result};
use crate::reader::liveness::Liveness;
use crate::reader::recover::{read_exact_at, recover_range, ReadOutcome};
use crate::reader::{block_len, ReaderOptions};
use crate::source::Source;

pub(super) fn read_all(
    source: &Source,
    opts: &ReaderOptions,
    pool: &BufferPool,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(Block) -> Result<()>,
) -> Result<u64> {
    let size = source.size();
    let sector = source.logical_sector_size() as usize;
    let mut offset = 0u64;
    let mut index = 0u64;
    let mut alive = Liveness::new(opts.give_up);
    while offset < size {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted("a signal"));
        }
        let len = block_len(size, offset, opts.block_size);
        let mut buf = pool.take();
        let unreadable = match read_exact_at(source, &mut buf, offset, len, sector)? {
            ReadOutcome::Read => {
                alive.read_ok();
                Vec::new()
            }
            ReadOutcome::Unreadable(_) => {
                alive.read_failed(source, offset, len as u64)?;
                recover_range(
                    source,
                    &mut buf[..len],
                    offset,
                    len,
                    sector,
                    opts.retries,
                    &mut alive,
                )?
            }
        };
        emit(Block::new(index, offset, buf, len, unreadable))?;
        offset += len as u64;
        index += 1;
    }
    Ok(offset)
}
