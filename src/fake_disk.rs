//! A test fake, not part of exhibit's interface: an in-memory disk whose chosen sectors fail.
//!
//! It lives in the library so that every test uses one fault model: the unit tests read it
//! through [`ReadAt`] (the reader's narrowing, rescue's phases), and the integration tests
//! serve the same disk as a real block device (`tests/it/support/faulty.rs` puts it behind
//! FUSE and a loop device). A fault covers a byte range and fails every read that touches it,
//! or only the first N such reads; reads are counted per sector and logged, so a test can
//! assert which areas were read and how often.

#![doc(hidden)]

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::reader::recover::ReadAt;

/// Seed of [`FakeDisk::new`]'s content.
pub const DEFAULT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Deterministic mixed content: random-looking bytes, zero runs, text, and a marker with the
/// sector number every 512 bytes, so a shifted, lost or zero-filled sector shows.
pub fn pattern(size: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let text = b"The quick brown fox jumps over the lazy dog. ";
    while v.len() < size {
        let sector = v.len() / 512;
        let mut s = format!("<sector {sector}>").into_bytes();
        match (sector / 7) % 3 {
            0 => {
                while s.len() < 512 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    s.extend_from_slice(&x.to_le_bytes());
                }
            }
            1 => s.resize(512, 0),
            _ => {
                while s.len() < 512 {
                    s.extend_from_slice(text);
                }
            }
        }
        s.truncate(512);
        v.extend_from_slice(&s);
    }
    v.truncate(size);
    v
}

/// How one faulty range behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Every read touching it fails with this errno.
    Always(i32),
    /// The first `n` reads touching it fail with this errno; later ones succeed.
    FirstN(u32, i32),
    /// Reads touching it succeed after this delay.
    Slow(Duration),
}

/// One read as the disk saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes, as answered (cut at the end of the disk and by short reads).
    pub len: u64,
    /// Whether the read failed.
    pub failed: bool,
}

impl ReadRecord {
    /// True if the read covers any byte of `start..start+len`.
    pub fn touches(&self, start: u64, len: u64) -> bool {
        self.offset < start + len && start < self.offset + self.len
    }
}

struct FaultEntry {
    range: Range<u64>,
    fault: Fault,
    /// Failures so far, for [`Fault::FirstN`].
    failures: u32,
}

/// An in-memory disk with chosen faulty ranges; see the module docs.
pub struct FakeDisk {
    /// The bytes the disk holds.
    pub data: Vec<u8>,
    /// Sector size in bytes: the unit of [`FakeDisk::bad`], [`FakeDisk::reads_of`] and
    /// [`FakeDisk::expected`].
    pub ss: u64,
    /// Answer at most this many bytes per read (a FUSE-backed file does that).
    pub short: Option<usize>,
    /// After this many reads, set the flag (as a signal handler would: "stop now").
    pub interrupt_after: Option<(u64, &'static AtomicBool)>,
    /// Reads so far.
    pub total: AtomicU64,
    /// Panic on a read whose offset or length is not a multiple of the sector size (what
    /// O_DIRECT refuses); on unless [`FakeDisk::any_alignment`].
    aligned: bool,
    /// Sorted by start, so that of several failing faults in one read the last one's errno
    /// is reported, in the order of the disk.
    faults: Mutex<Vec<FaultEntry>>,
    /// Reads per sector.
    reads: Mutex<Vec<u32>>,
    log: Mutex<Vec<ReadRecord>>,
    logging: AtomicBool,
    /// Nanoseconds every read takes.
    read_delay: AtomicU64,
    /// Nanoseconds a failing read takes at least (a dying disk spends seconds on each).
    fail_delay: AtomicU64,
}

impl FakeDisk {
    /// A disk of `size` bytes of [`pattern`] content with sectors of `ss` bytes.
    pub fn new(size: usize, ss: u64) -> Self {
        FakeDisk::with_data(pattern(size, DEFAULT_SEED), ss)
    }

    /// A disk holding `data`.
    pub fn with_data(data: Vec<u8>, ss: u64) -> Self {
        let sectors = (data.len() as u64).div_ceil(ss) as usize;
        FakeDisk {
            data,
            ss,
            short: None,
            interrupt_after: None,
            total: AtomicU64::new(0),
            aligned: true,
            faults: Mutex::new(Vec::new()),
            reads: Mutex::new(vec![0; sectors]),
            log: Mutex::new(Vec::new()),
            logging: AtomicBool::new(true),
            read_delay: AtomicU64::new(0),
            fail_delay: AtomicU64::new(0),
        }
    }

    /// Content made by `byte(offset)`, so that misplaced data shows.
    pub fn filled(mut self, byte: impl Fn(usize) -> u8) -> Self {
        for (i, b) in self.data.iter_mut().enumerate() {
            *b = byte(i);
        }
        self
    }

    /// Sector `sector` fails with `errno`: always (`times` `None`) or the first `times` reads
    /// that touch it.
    pub fn bad(self, sector: u64, times: Option<u32>, errno: i32) -> Self {
        let fault = match times {
            None => Fault::Always(errno),
            Some(n) => Fault::FirstN(n, errno),
        };
        self.fault(sector, 1, fault)
    }

    /// Sectors `first..first+count` behave as `fault`.
    pub fn fault(self, first: u64, count: u64, fault: Fault) -> Self {
        let ss = self.ss;
        self.fault_bytes(first * ss, count * ss, fault)
    }

    /// A byte range (any alignment) behaves as `fault`; it replaces an earlier fault of
    /// exactly that range.
    pub fn fault_bytes(self, offset: u64, len: u64, fault: Fault) -> Self {
        {
            let mut faults = self.faults.lock().unwrap();
            let range = offset..offset + len;
            faults.retain(|f| f.range != range);
            let at = faults.partition_point(|f| f.range.start <= offset);
            faults.insert(
                at,
                FaultEntry {
                    range,
                    fault,
                    failures: 0,
                },
            );
        }
        self
    }

    /// Accepts reads at any offset and of any length (a FUSE server gets what the kernel
    /// sends).
    pub fn any_alignment(mut self) -> Self {
        self.aligned = false;
        self
    }

    /// Sector size as the readers ask for it.
    pub fn sector_size(&self) -> u32 {
        self.ss as u32
    }

    /// Reads so far that touched `sector`.
    pub fn reads_of(&self, sector: u64) -> u32 {
        self.reads
            .lock()
            .unwrap()
            .get(sector as usize)
            .copied()
            .unwrap_or(0)
    }

    /// The reads logged so far.
    pub fn read_log(&self) -> Vec<ReadRecord> {
        self.log.lock().unwrap().clone()
    }

    /// Reads logged so far that touch `start..start+len`.
    pub fn reads_touching(&self, start: u64, len: u64) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.touches(start, len))
            .count()
    }

    /// Empties the log and the read counts, and re-arms "first N times" faults.
    pub fn reset(&self) {
        self.log.lock().unwrap().clear();
        self.reads.lock().unwrap().fill(0);
        self.total.store(0, Ordering::SeqCst);
        for f in self.faults.lock().unwrap().iter_mut() {
            f.failures = 0;
        }
    }

    /// Turns the read log on (the default) or off.
    pub fn set_logging(&self, on: bool) {
        self.logging.store(on, Ordering::SeqCst);
    }

    /// Every read takes this long (to make a run slow enough to stop in the middle).
    pub fn set_read_delay(&self, d: Duration) {
        self.read_delay.store(d.as_nanos() as u64, Ordering::SeqCst);
    }

    /// A failing read takes at least this long.
    pub fn set_fail_delay(&self, d: Duration) {
        self.fail_delay.store(d.as_nanos() as u64, Ordering::SeqCst);
    }

    /// The image a correct copy makes: the data with the `bad` sectors zeroed.
    pub fn expected(&self, bad: &[u64]) -> Vec<u8> {
        let mut v = self.data.clone();
        for &s in bad {
            let a = (s * self.ss) as usize;
            let b = (a + self.ss as usize).min(v.len());
            v[a..b].fill(0);
        }
        v
    }

    /// Serves a read of `len` bytes at `offset` without copying: the bytes, or the errno.
    pub fn read_slice(&self, offset: u64, len: usize) -> Result<&[u8], i32> {
        self.serve(offset, len).map(|r| &self.data[r])
    }

    fn serve(&self, offset: u64, len: usize) -> Result<Range<usize>, i32> {
        if self.aligned {
            assert_eq!(offset % self.ss, 0, "misaligned offset");
            assert_eq!(len as u64 % self.ss, 0, "misaligned length");
        }
        let n = self.total.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((limit, flag)) = self.interrupt_after {
            if n >= limit {
                flag.store(true, Ordering::SeqCst);
            }
        }
        let size = self.data.len() as u64;
        let start = offset.min(size);
        let mut end = (offset + len as u64).min(size);
        if let Some(short) = self.short {
            end = end.min(start + short as u64);
        }
        let mut failed = None;
        let mut delay = Duration::from_nanos(self.read_delay.load(Ordering::SeqCst));
        if start < end {
            let mut reads = self.reads.lock().unwrap();
            for s in start / self.ss..end.div_ceil(self.ss) {
                reads[s as usize] += 1;
            }
            for f in self.faults.lock().unwrap().iter_mut() {
                if f.range.start >= end || start >= f.range.end {
                    continue;
                }
                match f.fault {
                    Fault::Always(errno) => failed = Some(errno),
                    Fault::FirstN(n, errno) => {
                        if f.failures < n {
                            f.failures += 1;
                            failed = Some(errno);
                        }
                    }
                    Fault::Slow(d) => delay = delay.max(d),
                }
            }
        }
        if self.logging.load(Ordering::SeqCst) {
            self.log.lock().unwrap().push(ReadRecord {
                offset: start,
                len: end - start,
                failed: failed.is_some(),
            });
        }
        if failed.is_some() {
            delay = delay.max(Duration::from_nanos(self.fail_delay.load(Ordering::SeqCst)));
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        match failed {
            Some(errno) => Err(errno),
            None => Ok(start as usize..end as usize),
        }
    }
}

impl ReadAt for FakeDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let got = self
            .read_slice(offset, buf.len())
            .map_err(io::Error::from_raw_os_error)?;
        buf[..got.len()].copy_from_slice(got);
        Ok(got.len())
    }
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn describe(&self) -> PathBuf {
        PathBuf::from("fake")
    }
}
