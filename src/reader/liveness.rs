//! Telling a vanished source from bad sectors, for the acquire reader's narrowing and for
//! rescue's passes alike.
//!
//! A hot-unplugged disk, or a loop device whose FUSE connection was aborted, fails every read
//! with EIO, exactly like a bad sector. Treated as bad sectors, such a source is narrowed
//! down to single sectors with retries (a few MB/s, days for a large disk) and the job ends
//! "complete-with-unreadable-sectors" over zeros that were never on the disk. So after a failed
//! read the source is checked (its sysfs node, its size, a loop device's backing file: see
//! [`ReadAt::gone`]), and a settable bound ([`GiveUp`], like GNU ddrescue's limits) ends a
//! run in which nothing reads any more even though the device still looks present. Either
//! ends the job with [`Error::SourceStopped`]; the caller then leaves everything from the
//! start of the failing stretch unread (`?` in the map) so that a rescue or a re-run reads it
//! again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::reader::recover::ReadAt;

/// When a source that still looks present is given up on. Zero in a field means never.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GiveUp {
    /// Bytes newly found unreadable with no good read between them (`--give-up-after`).
    /// Default [`DEFAULT_GIVE_UP_BYTES`].
    pub after_bytes: u64,
    /// Seconds without a good read (`--give-up-time`). Default 0: never.
    pub after_seconds: u64,
}

/// 64 MiB of newly unreadable sectors in a row with no sector between them reading. Real
/// bad areas are far smaller (scratches and weak heads leave good sectors every few hundred
/// KiB; the faulty-device tests use at most a few hundred KiB in a row), while a source that
/// answers nothing reaches it in seconds through loop and FUSE; on a real disk that is dead
/// but still present, each failed read costs seconds, so the bound is about a day of
/// single-sector reads, not weeks.
pub const DEFAULT_GIVE_UP_BYTES: u64 = 64 << 20;

impl Default for GiveUp {
    fn default() -> Self {
        GiveUp {
            after_bytes: DEFAULT_GIVE_UP_BYTES,
            after_seconds: 0,
        }
    }
}

/// How often a failing source is looked at again (sysfs, an ioctl, a stat: cheap next to a
/// failed read, but a bad area can fail thousands of reads a second through loop).
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The state of one run: when the last read succeeded and what failed since.
#[derive(Debug)]
pub struct Liveness {
    bound: GiveUp,
    last_good: Instant,
    /// Bytes newly called unreadable since the last good read.
    unreadable: u64,
    /// Lowest offset that failed since the last good read: where a given-up run's unread rest
    /// starts.
    from: Option<u64>,
    /// Highest end of a range that failed since the last good read.
    to: u64,
    last_check: Option<Instant>,
}

impl Liveness {
    /// A run starting now.
    pub fn new(bound: GiveUp) -> Self {
        Liveness {
            bound,
            last_good: Instant::now(),
            unreadable: 0,
            from: None,
            to: 0,
            last_check: None,
        }
    }

    /// A read succeeded: the source is alive, the failing stretch (if any) has ended.
    pub fn read_ok(&mut self) {
        self.last_good = Instant::now();
        self.unreadable = 0;
        self.from = None;
        self.to = 0;
        self.last_check = None;
    }

    /// What failed since the last good read, as `start..end`: what a caller that gives up
    /// leaves unread.
    pub fn failing_span(&self) -> Option<std::ops::Range<u64>> {
        self.from.map(|f| f..self.to.max(f))
    }

    fn note(&mut self, at: u64, len: u64) {
        self.from = Some(self.from.map_or(at, |f| f.min(at)));
        self.to = self.to.max(at + len);
    }

    /// A read of `len` bytes at `at` failed with a media error: is the source still there,
    /// and has it been too long since a read succeeded?
    pub fn read_failed<S: ReadAt + ?Sized>(&mut self, src: &S, at: u64, len: u64) -> Result<()> {
        self.note(at, len);
        if self.last_check.is_none_or(|t| t.elapsed() >= CHECK_EVERY) {
            self.last_check = Some(Instant::now());
            if let Some(why) = src.gone() {
                return Err(self.stopped(src.describe(), format!("{why} (the source vanished)")));
            }
        }
        let secs = self.bound.after_seconds;
        if secs > 0 && self.last_good.elapsed() >= Duration::from_secs(secs) {
            return Err(self.stopped(
                src.describe(),
                format!("no good read for {secs} s (--give-up-time {secs}; 0 never gives up)"),
            ));
        }
        Ok(())
    }

    /// `len` bytes at `at`, not known to be bad before, were called unreadable (or, in a
    /// rescue's copy pass, failed as a block): stop once too many have in a row.
    pub fn found_unreadable<S: ReadAt + ?Sized>(
        &mut self,
        src: &S,
        at: u64,
        len: u64,
    ) -> Result<()> {
        self.note(at, len);
        self.unreadable += len;
        let limit = self.bound.after_bytes;
        if limit > 0 && self.unreadable >= limit {
            return Err(self.stopped(
                src.describe(),
                format!(
                    "no good read across {} bytes in a row (--give-up-after {}; 0 never gives up)",
                    self.unreadable,
                    size_name(limit)
                ),
            ));
        }
        Ok(())
    }

    fn stopped(&self, path: PathBuf, why: String) -> Error {
        Error::SourceStopped {
            path,
            offset: self.from.unwrap_or(0),
            why,
        }
    }
}

/// A read at `at` failed with something other than a media error (ENODEV, ENOTCONN, an end of
/// file before the source's size): when the source has vanished, that is what the examiner
/// needs to hear, as [`Error::SourceStopped`]; else `error` as it is.
pub fn explain_failure<S: ReadAt + ?Sized>(src: &S, at: u64, error: Error) -> Error {
    match src.gone() {
        Some(why) => Error::SourceStopped {
            path: src.describe(),
            offset: at,
            why: format!("{why} (the source vanished; the read said: {error})"),
        },
        None => error,
    }
}

/// `64M` for whole MiB, else bytes: as the flag is written.
fn size_name(n: u64) -> String {
    if n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_disk::FakeDisk;

    #[test]
    fn a_good_read_ends_the_streak() {
        let disk = FakeDisk::new(1 << 20, 512);
        let bound = GiveUp {
            after_bytes: 4096,
            after_seconds: 0,
        };
        let mut l = Liveness::new(bound);
        for i in 0..7 {
            l.found_unreadable(&disk, i * 512, 512).unwrap();
        }
        l.read_ok();
        assert_eq!(l.failing_span(), None);
        for i in 0..7 {
            l.found_unreadable(&disk, 8192 + i * 512, 512).unwrap();
        }
        assert_eq!(l.failing_span(), Some(8192..8192 + 7 * 512));
        let e = l.found_unreadable(&disk, 8192 + 7 * 512, 512).unwrap_err();
        match &e {
            Error::SourceStopped { offset, why, .. } => {
                assert_eq!(*offset, 8192);
                assert!(why.contains("4096 bytes in a row"), "{why}");
            }
            other => panic!("{other}"),
        }
        assert!(e
            .to_string()
            .starts_with("source stopped responding at byte 8192: "));
    }

    #[test]
    fn the_time_bound_counts_from_the_last_good_read() {
        let disk = FakeDisk::new(1 << 20, 512);
        let mut l = Liveness::new(GiveUp {
            after_bytes: 0,
            after_seconds: 1,
        });
        l.read_failed(&disk, 512, 512).unwrap();
        l.last_good -= Duration::from_secs(2);
        let e = l.read_failed(&disk, 1024, 512).unwrap_err();
        assert!(e.to_string().contains("no good read for 1 s"), "{e}");
        // Zero means never.
        let mut never = Liveness::new(GiveUp {
            after_bytes: 0,
            after_seconds: 0,
        });
        never.last_good -= Duration::from_secs(1000);
        for i in 0..10_000 {
            never.found_unreadable(&disk, i * 512, 512).unwrap();
            never.read_failed(&disk, i * 512, 512).unwrap();
        }
    }
}
