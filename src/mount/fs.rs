//! The FUSE side of a mount: a root directory with the image's files, all read-only, every
//! read answered from the image reader. Each open file is watched for a sequential reader
//! ([`Stream`]); while one reads on, the chunks ahead of it are decoded on the decode-ahead
//! pool into the image's chunk cache.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner, MountOption,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, Request,
};

use super::{MountOptions, MountedFile, Notice};
use crate::error::{Error, Result};
use crate::image::ahead::{self, DecodeAhead, Stream};
use crate::image::Image;

/// Nothing changes while mounted: the kernel may keep names and attributes.
const TTL: Duration = Duration::from_secs(3600);
const ROOT: u64 = 1;
/// Inode of the first file; `info.yaml` comes last.
const FIRST: u64 = 2;

/// Chunk numbers waiting for the decode-ahead pool, per byte of window: room for a few
/// streams at once (only numbers wait; decoded chunks live in the cache).
const QUEUED_WINDOWS: u64 = 4;

/// Decoding ahead of sequential readers of an E01.
struct Readahead {
    pool: DecodeAhead,
    /// Bytes decoded ahead of each stream (a whole number of chunks).
    window: u64,
    chunk_size: u64,
    /// Each open file's stream, by file handle.
    streams: Mutex<HashMap<u64, Stream>>,
}

impl Readahead {
    fn start(image: &Arc<Image>, opts: &MountOptions) -> Result<Option<Readahead>> {
        let chunk_size = image.cached_chunk_size();
        let window = ahead::window(opts.cache_bytes, chunk_size);
        if window == 0 {
            return Ok(None);
        }
        let limit = usize::try_from(QUEUED_WINDOWS * window / chunk_size).unwrap_or(usize::MAX);
        let decoder = Arc::clone(image);
        let pool = DecodeAhead::new(crate::image::workers(opts.threads), limit, move |c| {
            decoder.decode_ahead(c)
        })
        .map_err(|e| Error::Internal(format!("cannot start the decode-ahead threads: {e}")))?;
        Ok(Some(Readahead {
            pool,
            window,
            chunk_size,
            streams: Mutex::new(HashMap::new()),
        }))
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Stream>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a read of `len` bytes at `offset` of `file` through handle `fh`, and asks the
    /// pool for what the stream wants decoded (and forgets what it no longer wants).
    fn note(&self, fh: u64, file: &MountedFile, offset: u64, len: u64) {
        let next = match self.streams().get_mut(&fh) {
            Some(s) => s.read(offset, len, file.size, self.window),
            None => return,
        };
        let media = |r: std::ops::Range<u64>| {
            ahead::chunks_of(
                file.media_offset + r.start..file.media_offset + r.end,
                self.chunk_size,
            )
        };
        if let Some(r) = next.cancel {
            self.pool.cancel(media(r));
        }
        if let Some(r) = next.decode {
            self.pool.request(media(r));
        }
    }
}

pub(super) struct ImageFs {
    image: Arc<Image>,
    /// Media files (`disk.raw`, `pN.raw`), then `info.yaml` as the last inode.
    files: Vec<MountedFile>,
    info_yaml: Arc<[u8]>,
    mtime: SystemTime,
    uid: u32,
    gid: u32,
    notice: Box<Notice<'static>>,
    readahead: Option<Readahead>,
    next_fh: AtomicU64,
}

impl ImageFs {
    pub(super) fn new(
        image: Image,
        mut files: Vec<MountedFile>,
        info_yaml: Vec<u8>,
        mtime: SystemTime,
        notice: Box<Notice<'static>>,
        opts: &MountOptions,
    ) -> Result<Self> {
        files.push(MountedFile {
            name: "info.yaml".into(),
            media_offset: 0,
            size: info_yaml.len() as u64,
        });
        let (uid, gid) = crate::sys::ids();
        let image = Arc::new(image);
        let readahead = Readahead::start(&image, opts)?;
        Ok(ImageFs {
            image,
            files,
            info_yaml: Arc::from(info_yaml),
            mtime,
            uid,
            gid,
            notice,
            readahead,
            next_fh: AtomicU64::new(1),
        })
    }

    fn file(&self, ino: INodeNo) -> Option<&MountedFile> {
        let i = u64::from(ino).checked_sub(FIRST)?;
        self.files.get(usize::try_from(i).ok()?)
    }

    fn is_info(&self, ino: INodeNo) -> bool {
        u64::from(ino) == FIRST + self.files.len() as u64 - 1
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, size, perm, nlink) = if ino == ROOT {
            (FileType::Directory, 0, 0o555, 2)
        } else {
            (
                FileType::RegularFile,
                self.file(INodeNo(ino))?.size,
                0o444,
                1,
            )
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.mtime,
            mtime: self.mtime,
            ctime: self.mtime,
            crtime: self.mtime,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        })
    }

    /// `len` bytes of `file` at `offset`: all of them, the good ones before a damaged
    /// chunk, or the error when the read starts in one.
    fn read_media(&self, file: &MountedFile, offset: u64, len: usize) -> Result<Vec<u8>> {
        let at = file.media_offset + offset;
        let mut buf = vec![0u8; len];
        match self.image.read_at(&mut buf, at) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(Error::Damaged { range, .. }) if range.start > at => {
                // The good chunks before it are in the cache now: no second decode.
                let good = (range.start - at) as usize;
                self.image.read_at(&mut buf[..good], at)?;
                buf.truncate(good);
                Ok(buf)
            }
            Err(e) => Err(e),
        }
    }
}

impl Filesystem for ImageFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (u64::from(parent) == ROOT)
            .then(|| self.files.iter().position(|f| OsStr::new(&f.name) == name))
            .flatten();
        match found.and_then(|i| self.attr(FIRST + i as u64)) {
            Some(a) => reply.entry(&TTL, &a, fuser::Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(u64::from(ino)) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if self.file(ino).is_none() {
            reply.error(if u64::from(ino) == ROOT {
                Errno::EISDIR
            } else {
                Errno::ENOENT
            });
            return;
        }
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            reply.error(Errno::EROFS);
            return;
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        if let Some(ra) = &self.readahead {
            ra.streams().insert(fh, Stream::default());
        }
        // Direct I/O: a short read reaches the reader as a short read, never as zeros.
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let (Some(ra), Some(file)) = (&self.readahead, self.file(ino)) {
            let left = ra.streams().remove(&u64::from(fh));
            if let Some(r) = left.and_then(|s| s.outstanding()) {
                let media = file.media_offset + r.start..file.media_offset + r.end;
                ra.pool.cancel(ahead::chunks_of(media, ra.chunk_size));
            }
        }
        reply.ok();
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(file) = self.file(ino) else {
            reply.error(Errno::ENOENT);
            return;
        };
        if offset >= file.size {
            reply.data(&[]);
            return;
        }
        let len = (file.size - offset).min(u64::from(size)) as usize;
        if self.is_info(ino) {
            reply.data(&self.info_yaml[offset as usize..offset as usize + len]);
            return;
        }
        if let Some(ra) = &self.readahead {
            // Before this read's own decode, so the pool works beside it.
            ra.note(u64::from(fh), file, offset, len as u64);
        }
        match self.read_media(file, offset, len) {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => {
                (self.notice)(&format!(
                    "EIO: {} bytes {offset}..{}: {e}",
                    file.name,
                    offset + len as u64
                ));
                reply.error(Errno::EIO);
            }
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if u64::from(ino) != ROOT {
            reply.error(Errno::ENOTDIR);
            return;
        }
        let mut entries = vec![
            (ROOT, FileType::Directory, ".".to_string()),
            (ROOT, FileType::Directory, "..".to_string()),
        ];
        for (i, f) in self.files.iter().enumerate() {
            entries.push((FIRST + i as u64, FileType::RegularFile, f.name.clone()));
        }
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// Mounts `fs` on `opts.mountpoint` with one thread per core (or `opts.threads`).
pub(super) fn spawn(fs: ImageFs, opts: &MountOptions) -> Result<fuser::BackgroundSession> {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoExec,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::FSName(format!("exhibit:{}", opts.image.display())),
        MountOption::Subtype("exhibit".into()),
    ];
    if opts.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(crate::image::workers(opts.threads));
    config.clone_fd = true;
    fuser::spawn_mount(fs, &opts.mountpoint, &config).map_err(|e| Error::io(&opts.mountpoint, e))
}
