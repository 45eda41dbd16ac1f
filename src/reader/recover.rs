//! Narrowing a failed read down to the sectors that really fail.
//!
//! A failed large read only says "somewhere in here": the block layer merges adjacent
//! requests, and a merged request fails as a whole. So a failed block is re-read with
//! nothing else in flight, halving the range until the halves read, and a single sector is
//! only called unreadable after it failed alone `1 + retries` times. Good neighbours are
//! never lost, and a sector that reads on a retry is good data, not zero.

use std::io;

use crate::buffer::AlignedBuf;
use crate::error::{Error, Result};
use crate::map::BadRun;
use crate::reader::liveness::{explain_failure, Liveness};
use crate::reader::{is_media_error, round_up};
use crate::source::Source;

/// Something that reads bytes at an offset, like `pread`. [`Source`] is one; tests use fakes.
pub trait ReadAt {
    /// Reads into `buf` at `offset`; may return fewer bytes.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// Where errors are reported from.
    fn describe(&self) -> std::path::PathBuf;
    /// Why the source is no longer there (asked after a failed read), or `None` while it is.
    fn gone(&self) -> Option<String> {
        None
    }
}

impl ReadAt for Source {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Source::read_at(self, buf, offset)
    }
    fn size(&self) -> u64 {
        Source::size(self)
    }
    fn describe(&self) -> std::path::PathBuf {
        self.path().to_path_buf()
    }
    fn gone(&self) -> Option<String> {
        Source::gone(self)
    }
}

/// Outcome of one exact read.
pub(crate) enum ReadOutcome {
    /// All wanted bytes read.
    Read,
    /// A media error: the range holds at least one unreadable sector.
    Unreadable(i32),
}

/// Reads exactly `want` bytes at `offset` into `buf` (which may be longer, for whole-sector
/// requests), continuing after short reads. A media error is an outcome; anything else (the
/// device vanished, the source shrank) is an error.
pub(crate) fn read_exact_at(
    src: &dyn ReadAt,
    buf: &mut [u8],
    offset: u64,
    want: usize,
    sector: usize,
) -> Result<ReadOutcome> {
    read_counted(src, buf, offset, want, sector, &mut |_| {}).map(|r| r.outcome)
}

/// What [`read_counted`] read.
pub(crate) struct ExactRead {
    /// Read, or the media error that stopped it.
    pub outcome: ReadOutcome,
    /// Bytes at the start of `buf` that were read: `want`, or the whole sectors read before
    /// the media error (the failed read started at `offset + got`).
    pub got: usize,
}

/// [`read_exact_at`], calling `on_read(at)` before each read it issues (a rescue counts them)
/// and saying how far it got before a media error. A short answer keeps its whole sectors and
/// reads on from there, so every request stays sector-aligned (O_DIRECT needs that; a
/// FUSE-backed file answers short).
pub(crate) fn read_counted<S: ReadAt + ?Sized>(
    src: &S,
    buf: &mut [u8],
    offset: u64,
    want: usize,
    sector: usize,
    on_read: &mut dyn FnMut(u64),
) -> Result<ExactRead> {
    let mut got = 0usize;
    let mut stalls = 0;
    while got < want {
        let at = offset + got as u64;
        let ask = round_up(want - got, sector).min(buf.len() - got);
        on_read(at);
        match src.read_at(&mut buf[got..got + ask], at) {
            Ok(0) => {
                let e = Error::Read {
                    path: src.describe(),
                    offset: at,
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the source ended early (did it shrink or go away?)",
                    ),
                };
                return Err(explain_failure(src, at, e));
            }
            Ok(n) => {
                let n = n.min(want - got);
                let take = if got + n >= want {
                    n
                } else {
                    n / sector * sector
                };
                if take == 0 {
                    stalls += 1;
                    if stalls > 3 {
                        return Err(Error::Read {
                            path: src.describe(),
                            offset: at,
                            source: io::Error::other("the source keeps answering short"),
                        });
                    }
                }
                got += take;
            }
            Err(e) => match e.raw_os_error() {
                Some(errno) if is_media_error(errno) => {
                    return Ok(ExactRead {
                        outcome: ReadOutcome::Unreadable(errno),
                        got,
                    })
                }
                _ => {
                    let e = Error::Read {
                        path: src.describe(),
                        offset: at,
                        source: e,
                    };
                    return Err(explain_failure(src, at, e));
                }
            },
        }
    }
    Ok(ExactRead {
        outcome: ReadOutcome::Read,
        got,
    })
}

/// Re-reads the `len` bytes at `offset` (whose whole read failed) into `out`, range by range,
/// and returns the unreadable runs, which are left as zeros in `out`. Every read is told to
/// `alive`, which ends the narrowing with [`Error::SourceStopped`] when the source vanished
/// or nothing reads any more.
pub fn recover_range(
    src: &dyn ReadAt,
    out: &mut [u8],
    offset: u64,
    len: usize,
    sector: usize,
    retries: u32,
    alive: &mut Liveness,
) -> Result<Vec<BadRun>> {
    let sectors = len.div_ceil(sector);
    let mut scratch = AlignedBuf::new(round_up(len, sector).max(sector));
    let mut bad: Vec<BadRun> = Vec::new();
    // Work list of (first sector, count), relative to `offset`; the whole range already
    // failed, so start with its halves. Popped in ascending order.
    let mut todo: Vec<(usize, usize)> = Vec::new();
    push_halves(&mut todo, 0, sectors);
    while let Some((first, count)) = todo.pop() {
        let start = first * sector;
        let want = (count * sector).min(len - start);
        if count > 1 {
            match read_exact_at(
                src,
                &mut scratch[..count * sector],
                offset + start as u64,
                want,
                sector,
            )? {
                ReadOutcome::Read => {
                    alive.read_ok();
                    out[start..start + want].copy_from_slice(&scratch[..want])
                }
                ReadOutcome::Unreadable(_) => {
                    alive.read_failed(src, offset + start as u64, want as u64)?;
                    push_halves(&mut todo, first, count)
                }
            }
            continue;
        }
        let mut last_errno = 0;
        let mut failures = 0u32;
        let mut recovered = false;
        for _ in 0..=retries {
            match read_exact_at(
                src,
                &mut scratch[..sector],
                offset + start as u64,
                want,
                sector,
            )? {
                ReadOutcome::Read => {
                    alive.read_ok();
                    out[start..start + want].copy_from_slice(&scratch[..want]);
                    recovered = true;
                    break;
                }
                ReadOutcome::Unreadable(errno) => {
                    alive.read_failed(src, offset + start as u64, want as u64)?;
                    last_errno = errno;
                    failures += 1;
                }
            }
        }
        if recovered {
            continue;
        }
        let run_offset = offset + start as u64;
        alive.found_unreadable(src, run_offset, want as u64)?;
        out[start..start + want].fill(0);
        match bad.last_mut() {
            Some(prev)
                if prev.offset + prev.length == run_offset
                    && prev.errno == last_errno
                    && prev.attempts == failures =>
            {
                prev.length += want as u64
            }
            _ => bad.push(BadRun {
                offset: run_offset,
                length: want as u64,
                errno: last_errno,
                attempts: failures,
            }),
        }
    }
    Ok(bad)
}

fn push_halves(todo: &mut Vec<(usize, usize)>, first: usize, count: usize) {
    if count <= 1 {
        todo.push((first, count));
        return;
    }
    let half = count / 2;
    // Second half first, so that the first half is popped (read) first.
    todo.push((first + half, count - half));
    todo.push((first, half));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_disk::FakeDisk;
    use crate::reader::liveness::GiveUp;

    fn alive() -> Liveness {
        Liveness::new(GiveUp::default())
    }

    #[test]
    fn finds_exactly_the_bad_sectors() {
        let mut src = FakeDisk::new(64 * 512, 512);
        for s in [0, 17, 18, 19, 63] {
            src = src.bad(s, None, libc::EIO);
        }
        let mut out = vec![0xAAu8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 2, &mut alive()).unwrap();
        assert_eq!(out, src.expected(&[0, 17, 18, 19, 63]));
        let runs: Vec<(u64, u64, u32)> = bad
            .iter()
            .map(|r| (r.offset, r.length, r.attempts))
            .collect();
        assert_eq!(
            runs,
            vec![(0, 512, 3), (17 * 512, 3 * 512, 3), (63 * 512, 512, 3)]
        );
    }

    #[test]
    fn a_sector_that_reads_on_a_retry_is_data() {
        // Fails the bisection reads that cover it and its first solo read, then reads.
        let src = FakeDisk::new(16 * 512, 512).bad(5, Some(5), libc::EIO);
        let mut out = vec![0u8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 3, &mut alive()).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(out, src.data);
    }

    #[test]
    fn too_few_retries_leave_it_bad() {
        let src = FakeDisk::new(16 * 512, 512).bad(5, Some(20), libc::EIO);
        let mut out = vec![0u8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 1, &mut alive()).unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].attempts, 2);
    }

    #[test]
    fn a_stretch_that_never_reads_stops_at_the_bound() {
        // 64 bad sectors in a row; a bound of 16 sectors gives up at the stretch's start.
        let mut src = FakeDisk::new(256 * 512, 512);
        for s in 100..164 {
            src = src.bad(s, None, libc::EIO);
        }
        let mut alive = Liveness::new(GiveUp {
            after_bytes: 16 * 512,
            after_seconds: 0,
        });
        let mut out = vec![0u8; 128 * 512];
        let e = recover_range(&src, &mut out, 64 * 512, 128 * 512, 512, 0, &mut alive).unwrap_err();
        match e {
            Error::SourceStopped { offset, .. } => assert_eq!(offset, 100 * 512),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn partial_last_sector_and_enodata() {
        let src = FakeDisk::new(10 * 512 + 100, 512).bad(10, None, libc::ENODATA);
        let mut out = vec![0u8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 0, &mut alive()).unwrap();
        assert_eq!(
            bad,
            vec![BadRun {
                offset: 5120,
                length: 100,
                errno: libc::ENODATA,
                attempts: 1
            }]
        );
        assert_eq!(out, src.expected(&[10]));
    }
}
