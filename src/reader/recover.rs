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
                return Err(Error::Read {
                    path: src.describe(),
                    offset: at,
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the source ended early (did it shrink or go away?)",
                    ),
                })
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
                    return Err(Error::Read {
                        path: src.describe(),
                        offset: at,
                        source: e,
                    })
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
/// and returns the unreadable runs, which are left as zeros in `out`.
pub fn recover_range(
    src: &dyn ReadAt,
    out: &mut [u8],
    offset: u64,
    len: usize,
    sector: usize,
    retries: u32,
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
                ReadOutcome::Read => out[start..start + want].copy_from_slice(&scratch[..want]),
                ReadOutcome::Unreadable(_) => push_halves(&mut todo, first, count),
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
                    out[start..start + want].copy_from_slice(&scratch[..want]);
                    recovered = true;
                    break;
                }
                ReadOutcome::Unreadable(errno) => {
                    last_errno = errno;
                    failures += 1;
                }
            }
        }
        if recovered {
            continue;
        }
        out[start..start + want].fill(0);
        let run_offset = offset + start as u64;
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
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// An in-memory source whose chosen sectors fail: always, or the first N reads.
    pub struct FaultySource {
        pub data: Vec<u8>,
        pub sector: usize,
        /// sector → failures left (u32::MAX = always)
        pub faults: RefCell<HashMap<u64, u32>>,
        pub errno: i32,
        pub reads: RefCell<u64>,
    }

    impl FaultySource {
        pub fn new(len: usize, sector: usize) -> Self {
            let data = (0..len).map(|i| (i * 7 + i / 511) as u8 | 1).collect();
            FaultySource {
                data,
                sector,
                faults: RefCell::new(HashMap::new()),
                errno: libc::EIO,
                reads: RefCell::new(0),
            }
        }
        pub fn fail(&self, sector: u64, times: u32) {
            self.faults.borrow_mut().insert(sector, times);
        }
    }

    impl ReadAt for FaultySource {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            *self.reads.borrow_mut() += 1;
            let end = (offset as usize + buf.len()).min(self.data.len());
            let first = offset / self.sector as u64;
            let last = (end as u64).div_ceil(self.sector as u64);
            let mut fail = false;
            for s in first..last {
                if let Some(left) = self.faults.borrow_mut().get_mut(&s) {
                    if *left > 0 {
                        fail = true;
                        if *left != u32::MAX {
                            *left -= 1;
                        }
                    }
                }
            }
            if fail {
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            let n = end.saturating_sub(offset as usize);
            buf[..n].copy_from_slice(&self.data[offset as usize..end]);
            Ok(n)
        }
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn describe(&self) -> std::path::PathBuf {
            "fake".into()
        }
    }

    fn expected(src: &FaultySource, bad_sectors: &[u64]) -> Vec<u8> {
        let mut v = src.data.clone();
        for &s in bad_sectors {
            let a = s as usize * src.sector;
            let b = (a + src.sector).min(v.len());
            v[a..b].fill(0);
        }
        v
    }

    #[test]
    fn finds_exactly_the_bad_sectors() {
        let src = FaultySource::new(64 * 512, 512);
        for s in [0, 17, 18, 19, 63] {
            src.fail(s, u32::MAX);
        }
        let mut out = vec![0xAAu8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 2).unwrap();
        assert_eq!(out, expected(&src, &[0, 17, 18, 19, 63]));
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
        let src = FaultySource::new(16 * 512, 512);
        // Fails the bisection reads that cover it and its first solo read, then reads.
        src.fail(5, 5);
        let mut out = vec![0u8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 3).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(out, src.data);
    }

    #[test]
    fn too_few_retries_leave_it_bad() {
        let src = FaultySource::new(16 * 512, 512);
        src.fail(5, 20);
        let mut out = vec![0u8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 1).unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].attempts, 2);
    }

    #[test]
    fn partial_last_sector_and_enodata() {
        let mut src = FaultySource::new(10 * 512 + 100, 512);
        src.errno = libc::ENODATA;
        src.fail(10, u32::MAX);
        let mut out = vec![0u8; src.data.len()];
        let bad = recover_range(&src, &mut out, 0, src.data.len(), 512, 0).unwrap();
        assert_eq!(
            bad,
            vec![BadRun {
                offset: 5120,
                length: 100,
                errno: libc::ENODATA,
                attempts: 1
            }]
        );
        assert_eq!(out, expected(&src, &[10]));
    }
}
