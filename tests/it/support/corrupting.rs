//! A real block device that silently corrupts what is written to it: [`CorruptingDevice`].
//!
//! One writable file served by FUSE in the test process behind a loop device (the same
//! [`FuseLoop`] as the faulty read device, so it is torn down the same safe way): every write
//! lands, except that the byte at a chosen offset is flipped whenever a write covers it. Reads
//! answer what was stored, so only a read-back that compares finds the damage (a restore's).
//! [`CorruptingDevice::failing_writes_at`] makes the same device refuse (EIO, nothing stored)
//! every write that covers the chosen offset instead: a target that dies in the middle.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuser::{
    Errno, FileAttr, FileHandle, Filesystem, FopenFlags, INodeNo, LockOwner, OpenFlags, ReplyAttr,
    ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::faulty::{one_file_attr, one_file_readdir, FuseLoop, FILE_NAME};

const TTL: Duration = Duration::from_secs(3600);

struct CorruptingFs {
    data: Arc<Mutex<Vec<u8>>>,
    flip_at: u64,
    /// Instead of flipping: fail every write that covers `flip_at`.
    fail: bool,
    uid: u32,
    gid: u32,
}

impl CorruptingFs {
    fn attr(&self, ino: u64) -> FileAttr {
        let len = self.data.lock().unwrap().len() as u64;
        one_file_attr(ino, len, true, self.uid, self.gid)
    }
}

impl Filesystem for CorruptingFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if u64::from(parent) == 1 && name == FILE_NAME {
            reply.entry(&TTL, &self.attr(2), fuser::Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match u64::from(ino) {
            1 | 2 => reply.attr(&TTL, &self.attr(u64::from(ino))),
            _ => reply.error(Errno::ENOENT),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // The disk's size is fixed; times are not kept.
        reply.attr(&TTL, &self.attr(u64::from(ino)));
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if u64::from(ino) != 2 {
            reply.error(Errno::EISDIR);
            return;
        }
        // Direct I/O: every read and write reaches us.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let data = self.data.lock().unwrap();
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        reply.data(&data[start..end]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        bytes: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut data = self.data.lock().unwrap();
        let start = offset as usize;
        if start >= data.len() {
            reply.error(Errno::ENOSPC);
            return;
        }
        let n = bytes.len().min(data.len() - start);
        if self.fail && (offset..offset + n as u64).contains(&self.flip_at) {
            reply.error(Errno::EIO);
            return;
        }
        data[start..start + n].copy_from_slice(&bytes[..n]);
        if (offset..offset + n as u64).contains(&self.flip_at) {
            data[self.flip_at as usize] ^= 0x01;
        }
        reply.written(n as u32);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        one_file_readdir(ino, offset, reply);
    }
}

/// A writable block device (`/dev/loopN`) of `size` bytes of `fill` that flips one bit of the
/// byte at `flip_at` whenever a write covers it.
pub struct CorruptingDevice {
    /// The loop device.
    pub device: std::path::PathBuf,
    data: Arc<Mutex<Vec<u8>>>,
    _served: FuseLoop,
}

impl CorruptingDevice {
    /// Serves and attaches it (call [`super::skip_reason`] first).
    pub fn new(size: usize, fill: u8, flip_at: u64, sector_size: u32) -> CorruptingDevice {
        Self::serve(size, fill, flip_at, false, sector_size)
    }

    /// As [`CorruptingDevice::new`], but a write that covers `fail_at` fails with EIO and
    /// stores nothing.
    pub fn failing_writes_at(size: usize, fill: u8, fail_at: u64, sector: u32) -> Self {
        Self::serve(size, fill, fail_at, true, sector)
    }

    fn serve(size: usize, fill: u8, flip_at: u64, fail: bool, sector_size: u32) -> Self {
        let data = Arc::new(Mutex::new(vec![fill; size]));
        let fs = CorruptingFs {
            data: Arc::clone(&data),
            flip_at,
            fail,
            // SAFETY: no preconditions.
            uid: unsafe { libc::getuid() },
            // SAFETY: no preconditions.
            gid: unsafe { libc::getgid() },
        };
        let served = FuseLoop::serve(fs, sector_size, false)
            .unwrap_or_else(|e| panic!("corrupting device: {e}"));
        CorruptingDevice {
            device: served.device.clone(),
            data,
            _served: served,
        }
    }

    /// What the device holds now.
    pub fn contents(&self) -> Vec<u8> {
        self.data.lock().unwrap().clone()
    }
}
