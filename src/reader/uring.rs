//! The io_uring engine: `queue_depth` O_DIRECT reads in flight into registered pool buffers,
//! handed on in source order.
//!
//! A block whose read fails with a media error is not narrowed at once: the engine stops
//! submitting, lets every read in flight complete, and only then re-reads the failed block
//! piece by piece, so that no neighbouring request can be merged with the narrowing reads and
//! fail with them (FAULTY-DEVICE-NOTES: the block layer merges adjacent in-flight reads).

// The kernel writes into pool buffers by address while they are in flight: one of the three
// modules allowed `unsafe` (lib.rs), each block with its SAFETY note.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use io_uring::{opcode, types, IoUring};

use crate::block::Block;
use crate::buffer::{BufferPool, PooledBuf};
use crate::error::{Error, Result};
use crate::reader::liveness::{explain_failure, Liveness};
use crate::reader::recover::recover_range;
use crate::reader::{is_media_error, round_up, ReaderOptions};
use crate::source::Source;

/// How long a wait for a completion lasts before the source is checked (see `reap`): long
/// next to any healthy read, short next to a job that would otherwise hang for ever.
const STALL_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

struct InFlight {
    buf: PooledBuf,
    offset: u64,
    /// Bytes this block must hold.
    want: usize,
    /// Bytes read so far (a short read is continued).
    got: usize,
}

impl InFlight {
    /// The finished read, successful or failed with a media `errno`.
    fn completed(self, failed: Option<i32>) -> Completed {
        Completed {
            buf: self.buf,
            offset: self.offset,
            len: self.want,
            failed,
        }
    }
}

struct Completed {
    buf: PooledBuf,
    offset: u64,
    len: usize,
    /// Media errno if the read failed.
    failed: Option<i32>,
}

pub(super) struct UringReader<'a> {
    ring: IoUring,
    source: &'a Source,
    pool: &'a BufferPool,
    opts: &'a ReaderOptions,
    fixed_buffers: bool,
    inflight: BTreeMap<u64, InFlight>,
    /// Whether the source still answers (narrowing only: a rescue's stream leaves failures
    /// to its own passes).
    alive: Liveness,
}

impl<'a> UringReader<'a> {
    /// Why reads are not into registered buffers, if they are not.
    pub(super) fn note(&self) -> Option<&'static str> {
        (!self.fixed_buffers).then_some(
            "registering buffers with io_uring was refused (memlock limit?); plain io_uring reads",
        )
    }

    pub(super) fn new(
        source: &'a Source,
        opts: &'a ReaderOptions,
        pool: &'a BufferPool,
    ) -> io::Result<Self> {
        let entries = (opts.queue_depth as u32).next_power_of_two().max(2);
        let ring = IoUring::builder().build(entries)?;
        ring.submitter()
            .register_files(&[source.file().as_raw_fd()])?;
        let iovecs: Vec<libc::iovec> = pool
            .addresses()
            .iter()
            .map(|&(addr, len)| libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: len,
            })
            .collect();
        // SAFETY: the pool's buffers live as long as the pool, which outlives this reader
        // (borrowed for 'a); registration is undone when the ring is dropped.
        let fixed_buffers = unsafe { ring.submitter().register_buffers(&iovecs) }.is_ok();
        Ok(UringReader {
            ring,
            source,
            pool,
            opts,
            fixed_buffers,
            inflight: BTreeMap::new(),
            alive: Liveness::new(opts.give_up),
        })
    }

    fn submit_read(&mut self, index: u64, mut io: InFlight) -> Result<()> {
        let sector = self.source.logical_sector_size() as usize;
        let ask = round_up(io.want - io.got, sector).min(io.buf.len() - io.got) as u32;
        let buf_index = io.buf.index() as u16;
        // SAFETY: a read is resubmitted only while short, so got < want <= the buffer's
        // length: the pointer stays inside the buffer (`ask` above relies on it too).
        let ptr = unsafe { io.buf.as_mut_ptr().add(io.got) };
        let offset = io.offset + io.got as u64;
        let entry = if self.fixed_buffers {
            opcode::ReadFixed::new(types::Fixed(0), ptr, ask, buf_index)
                .offset(offset)
                .build()
        } else {
            opcode::Read::new(types::Fixed(0), ptr, ask)
                .offset(offset)
                .build()
        }
        .user_data(index);
        // SAFETY: the buffer is owned by `self.inflight` until its completion is reaped, and
        // the reader never returns or drops it before every submitted read has completed
        // (see `drain` and Drop).
        unsafe {
            if self.ring.submission().push(&entry).is_err() {
                self.ring.submit().map_err(|e| self.read_error(offset, e))?;
                self.ring
                    .submission()
                    .push(&entry)
                    .map_err(|_| Error::Internal("io_uring submission queue full".into()))?;
            }
        }
        self.inflight.insert(index, io);
        Ok(())
    }

    fn read_error(&self, offset: u64, source: io::Error) -> Error {
        Error::Read {
            path: self.source.path().to_path_buf(),
            offset,
            source,
        }
    }

    /// Submits what is queued and waits for `want` completions; returns the completions.
    ///
    /// The wait is in slices of [`STALL_CHECK`]: a read that has not completed by then may
    /// belong to a source that vanished under it (io_uring reads of a file on an aborted FUSE
    /// connection never complete), so the source is checked, and a vanished one is abandoned:
    /// the buffers of the reads in flight are leaked, never reused, since the kernel might
    /// still write into them.
    fn reap(&mut self, want: usize) -> Result<Vec<(u64, i32)>> {
        let ts = types::Timespec::new()
            .sec(STALL_CHECK.as_secs())
            .nsec(STALL_CHECK.subsec_nanos());
        loop {
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(want, &args) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // A kernel without timed waits (before 5.11): wait without a bound.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    match self.ring.submit_and_wait(want) {
                        Ok(_) => break,
                        Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                        Err(e) => return Err(self.read_error(0, e)),
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {
                    if self.ring.completion().is_empty() && !self.inflight.is_empty() {
                        if let Some(why) = self.source.gone() {
                            let at = self.inflight.values().map(|io| io.offset).min();
                            self.abandon();
                            return Err(Error::SourceStopped {
                                path: self.source.path().to_path_buf(),
                                offset: at.unwrap_or(0),
                                why: format!(
                                    "{why} (the source vanished; its reads never completed)"
                                ),
                            });
                        }
                        continue;
                    }
                    break;
                }
                Err(e) => return Err(self.read_error(0, e)),
            }
        }
        Ok(self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect())
    }

    /// Gives up on the reads in flight without waiting: their buffers are leaked, never
    /// returned to the pool, so nothing else can see what the kernel may still write there.
    fn abandon(&mut self) {
        for (_, io) in std::mem::take(&mut self.inflight) {
            std::mem::forget(io.buf);
        }
    }

    /// Waits for every read in flight, discarding results. Called on every early exit so no
    /// buffer goes back to the pool while the kernel may still write into it.
    fn drain(&mut self) {
        while !self.inflight.is_empty() {
            match self.reap(1) {
                Ok(done) => {
                    for (index, _) in done {
                        self.inflight.remove(&index);
                    }
                }
                Err(_) => {
                    // The ring itself failed, or the source vanished; nothing more can
                    // complete. Leak the buffers rather than hand out memory the kernel might
                    // still write.
                    self.abandon();
                }
            }
        }
    }

    /// A pool buffer for the next read, or `None` to submit no more for now. When `idle`
    /// (nothing in flight, nothing waiting to be handed on) the consumers hold every buffer
    /// and will give one back: wait for it.
    fn next_buffer(&self, idle: bool) -> Option<PooledBuf> {
        match self.pool.try_take() {
            Some(b) => Some(b),
            None if idle => Some(self.pool.take()),
            None => None,
        }
    }

    /// Waits for at least one read to complete and files every completion in `done` by its
    /// index: short reads are continued, interrupted ones resubmitted. Returns whether a read
    /// failed with a media error (it is in `done`, marked failed); any other error ends the run.
    fn complete_some(&mut self, done: &mut BTreeMap<u64, Completed>) -> Result<bool> {
        let mut media_error = false;
        for (index, res) in self.reap(1)? {
            let Some(mut io) = self.inflight.remove(&index) else {
                return Err(Error::Internal(format!("unknown completion {index}")));
            };
            if res == -libc::EAGAIN || res == -libc::EINTR {
                self.submit_read(index, io)?;
            } else if res < 0 {
                let errno = -res;
                if !is_media_error(errno) {
                    let at = io.offset + io.got as u64;
                    drop(io);
                    let e = self.read_error(at, io::Error::from_raw_os_error(errno));
                    return Err(explain_failure(self.source, at, e));
                }
                media_error = true;
                done.insert(index, io.completed(Some(errno)));
            } else if res == 0 && io.got < io.want {
                let at = io.offset + io.got as u64;
                drop(io);
                let e = self.read_error(
                    at,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the source ended early (did it shrink or go away?)",
                    ),
                );
                return Err(explain_failure(self.source, at, e));
            } else {
                io.got += res as usize;
                if io.got < io.want {
                    self.submit_read(index, io)?;
                } else {
                    done.insert(index, io.completed(None));
                }
            }
        }
        Ok(media_error)
    }

    /// Reads the whole source in order, narrowing every failed block to the sectors that
    /// really fail (see the module doc), and hands on every block.
    pub(super) fn run(
        &mut self,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<u64> {
        let size = self.source.size();
        let result = self.read_range(0, size, OnFailure::Narrow, stop, emit);
        self.drain();
        result.map(|_| size)
    }

    /// The one submit/reap loop: `start..end` in blocks on the `block_size` grid,
    /// `queue_depth` in flight, handed on in order. What a failed block does is `on_failure`.
    fn read_range(
        &mut self,
        start: u64,
        end: u64,
        on_failure: OnFailure,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd> {
        let bs = self.opts.block_size as u64;
        let sector = self.source.logical_sector_size() as usize;
        let mut next_offset = start;
        let mut next_submit = 0u64;
        let mut next_emit = 0u64;
        let mut done: BTreeMap<u64, Completed> = BTreeMap::new();
        let mut first_failure: Option<(u64, u64, i32)> = None;
        let mut also_failed = Vec::new();
        // OnFailure::Stop: after a failure nothing more is submitted.
        let mut halted = false;
        // OnFailure::Narrow: while the next block to hand on has failed, submit nothing more;
        // it is narrowed only when no other read is in flight.
        let mut stalled = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(Error::Interrupted("a signal"));
            }
            while !halted
                && !stalled
                && next_offset < end
                && self.inflight.len() < self.opts.queue_depth
            {
                let Some(buf) = self.next_buffer(self.inflight.is_empty() && done.is_empty())
                else {
                    break;
                };
                let block_end = ((next_offset / bs + 1) * bs).min(end);
                let want = (block_end - next_offset) as usize;
                self.submit_read(
                    next_submit,
                    InFlight {
                        buf,
                        offset: next_offset,
                        want,
                        got: 0,
                    },
                )?;
                next_submit += 1;
                next_offset = block_end;
            }
            if self.inflight.is_empty() && done.is_empty() {
                break;
            }
            // A source that stopped is reported where the unread rest begins: the first
            // block not handed on, not the read that noticed.
            let emitted_end = done
                .values()
                .map(|c| c.offset)
                .chain(self.inflight.values().map(|io| io.offset))
                .min()
                .unwrap_or(next_offset);
            if !self.inflight.is_empty()
                && self
                    .complete_some(&mut done)
                    .map_err(|e| unread_from(e, emitted_end))?
                && on_failure == OnFailure::Stop
            {
                halted = true;
            }
            stalled = false;
            while let Some(mut c) = done.remove(&next_emit) {
                match (c.failed, on_failure) {
                    (None, _) => {
                        self.alive.read_ok();
                        emit(Block::new(next_emit, c.offset, c.buf, c.len, vec![]))?
                    }
                    (Some(_), OnFailure::Narrow) => {
                        if !self.inflight.is_empty() {
                            done.insert(next_emit, c);
                            stalled = true;
                            break;
                        }
                        self.alive
                            .read_failed(self.source, c.offset, c.len as u64)?;
                        let unreadable = recover_range(
                            self.source,
                            &mut c.buf[..c.len],
                            c.offset,
                            c.len,
                            sector,
                            self.opts.retries,
                            &mut self.alive,
                        )?;
                        emit(Block::new(next_emit, c.offset, c.buf, c.len, unreadable))?;
                    }
                    (Some(errno), OnFailure::Stop) => match first_failure {
                        None => first_failure = Some((c.offset, c.len as u64, errno)),
                        Some(_) => also_failed.push((c.offset, c.len as u64)),
                    },
                }
                next_emit += 1;
            }
        }
        Ok(match first_failure {
            None => StreamEnd::Done,
            Some((offset, len, errno)) => StreamEnd::Failed {
                offset,
                len,
                errno,
                also_failed,
            },
        })
    }
}

/// `e`, with a [`Error::SourceStopped`] moved back to `at` if it lies beyond.
fn unread_from(e: Error, at: u64) -> Error {
    match e {
        Error::SourceStopped { path, offset, why } => Error::SourceStopped {
            path,
            offset: offset.min(at),
            why,
        },
        e => e,
    }
}

/// What the one loop does with a block whose read failed with a media error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnFailure {
    /// Wait for the reads in flight, then narrow it to the failing sectors (acquire).
    Narrow,
    /// Submit nothing more, hand on what read, and report it (a rescue's copy pass).
    Stop,
}

impl Drop for UringReader<'_> {
    fn drop(&mut self) {
        self.drain();
    }
}

/// How a [`UringReader::stream`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every block of the range was read and handed on.
    Done,
    /// The block at `offset` (`len` bytes) failed with media error `errno`. Reads that were in
    /// flight with it have completed; those that read are handed on, those that failed too
    /// are in `also_failed` (they may only have shared a merged request with the first).
    Failed {
        /// Start of the first failed block.
        offset: u64,
        /// Its length.
        len: u64,
        /// The media errno.
        errno: i32,
        /// Other blocks whose reads failed, as (offset, len).
        also_failed: Vec<(u64, u64)>,
    },
}

impl UringReader<'_> {
    pub(super) fn block_size(&self) -> u64 {
        self.opts.block_size as u64
    }

    /// Reads `start..end` in blocks on the `block_size` grid, `queue_depth` in flight, and
    /// hands on every block that reads, in increasing order of offset. Unlike [`Self::run`]
    /// it narrows nothing: the first media error stops submitting and ends the stream, and
    /// the caller decides what to do about the failed block (a rescue's copy pass).
    pub(crate) fn stream(
        &mut self,
        start: u64,
        end: u64,
        stop: &AtomicBool,
        emit: &mut dyn FnMut(Block) -> Result<()>,
    ) -> Result<StreamEnd> {
        let result = self.read_range(start, end, OnFailure::Stop, stop, emit);
        self.drain();
        result
    }
}
