//! ext2/3/4 through `ext4-view`: it forbids unsafe code, checks every number it reads
//! (block and inode indices, extent trees, directory records, checksums) and bounds symlink
//! resolution, so a corrupt image is an error from it, not a panic. Inode numbers, which it
//! does not expose, come from [`super::ext4_inodes`].
//!
//! Two features it refuses are read around: `meta_bg` (group descriptors spread over the
//! groups), by serving it each descriptor from where `meta_bg` put it, and `inline_data`
//! (small files and directories stored in the inode), by reading every path that passes
//! through an inline inode in [`super::ext4_inodes`] and never through `ext4-view`, which
//! would take the inode's bytes for block numbers. It sees a superblock without those two
//! bits (checksum recomputed); nothing is written.

use ext4_view::{Ext4, Ext4Error, Ext4Read, FileType, Metadata};

use super::ext4_inodes::{Geometry, Inode, INCOMPAT_INLINE_DATA, INCOMPAT_META_BG};
use super::{check_count, Entry, FileSystem, FsPath, Kind, Time, Volume};
use crate::error::{Error, Result};

const NAME: &str = "ext4";

const SB_AT: u64 = 1024;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// ext4-view's reader: a volume, at offsets, with the superblock it is shown and, for
/// `meta_bg`, the descriptors moved to where it looks for them.
struct Reader {
    volume: Volume,
    superblock: Option<Vec<u8>>,
    meta_bg: Option<MetaBg>,
}

/// Where ext4-view reads descriptor `i` (one read of `desc_size` at `base + i * desc_size`,
/// as its `block_group.rs` does) and where it is.
struct MetaBg {
    geometry: Geometry,
    base: u64,
    groups: u64,
}

/// CRC-32C as ext4 stores it (the register, without the final inversion).
fn ext4_crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

impl Reader {
    fn new(volume: Volume) -> (Reader, u32) {
        let mut sb = vec![0u8; 1024];
        let mut r = Reader {
            volume,
            superblock: None,
            meta_bg: None,
        };
        if r.volume.read_exact_at(SB_AT, &mut sb).is_err() {
            return (r, 0); // ext4-view reports it
        }
        let le = |at: usize| u32::from_le_bytes(sb[at..at + 4].try_into().expect("4 bytes"));
        let incompat = le(96);
        let around = incompat & (INCOMPAT_META_BG | INCOMPAT_INLINE_DATA);
        if around == 0 {
            return (r, 0);
        }
        if incompat & INCOMPAT_META_BG != 0 {
            if let Some(g) = Geometry::of(&sb) {
                // The high half of the block count exists only with 64bit.
                let hi = if incompat & 0x80 != 0 {
                    u64::from(le(0x150)) << 32
                } else {
                    0
                };
                let blocks = u64::from(le(4)) | hi;
                let per_group = u64::from(le(32)).max(1);
                r.meta_bg = Some(MetaBg {
                    base: if g.bs == 1024 { 2 * 1024 } else { g.bs },
                    groups: blocks.saturating_sub(u64::from(le(20))).div_ceil(per_group),
                    geometry: g,
                });
            }
        }
        let csum = le(100) & RO_COMPAT_METADATA_CSUM != 0;
        sb[96..100].copy_from_slice(&(incompat & !around).to_le_bytes());
        if csum {
            let c = ext4_crc32c(&sb[..0x3FC]);
            sb[0x3FC..].copy_from_slice(&c.to_le_bytes());
        }
        r.superblock = Some(sb);
        (r, around)
    }

    /// Where descriptor read `start..start+len` really is, when it is one.
    fn moved(&self, start: u64, len: usize) -> Option<u64> {
        let m = self.meta_bg.as_ref()?;
        let d = m.geometry.desc_size;
        let off = start.checked_sub(m.base)?;
        if len as u64 != d || off % d != 0 || off / d >= m.groups {
            return None;
        }
        m.geometry.descriptor_at(off / d)
    }
}

impl Ext4Read for Reader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let at = self.moved(start_byte, dst.len()).unwrap_or(start_byte);
        self.volume
            .read_exact_at(at, dst)
            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)?;
        if let Some(sb) = &self.superblock {
            let end = start_byte.saturating_add(dst.len() as u64);
            let (lo, hi) = (start_byte.max(SB_AT), end.min(SB_AT + 1024));
            if lo < hi {
                let (d, s) = ((lo - start_byte) as usize, (lo - SB_AT) as usize);
                let n = (hi - lo) as usize;
                dst[d..d + n].copy_from_slice(&sb[s..s + n]);
            }
        }
        Ok(())
    }
}

/// An ext2/3/4 file system.
pub struct Ext4Fs {
    fs: Ext4,
    volume: Volume,
    /// The `inline_data` feature is on: paths are checked for inline inodes first.
    inline: bool,
}

/// What a path names, read without `ext4-view` because it passes through an inline inode.
struct Stored {
    ino: u32,
    inode: Inode,
    /// The path's last inode is inline (its data is in the inode).
    inline: bool,
}

fn path_bytes(path: &FsPath) -> Vec<u8> {
    if path.is_empty() {
        return b"/".to_vec();
    }
    let mut p = Vec::new();
    for c in path {
        p.push(b'/');
        p.extend_from_slice(c);
    }
    p
}

fn kind(t: FileType) -> Kind {
    if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else if t.is_regular_file() {
        Kind::File
    } else {
        Kind::Special
    }
}

fn entry(name: Vec<u8>, m: &Metadata) -> Entry {
    let t = m.modified();
    Entry {
        name,
        kind: kind(m.file_type()),
        size: m.len(),
        modified: Some(Time {
            secs: t.seconds(),
            nanos: t.nanoseconds(),
        }),
        id: None,
    }
}

const S_IFDIR: u16 = 0x4000;

/// An entry from an inode read by exhibit itself.
fn stored_entry(name: Vec<u8>, ino: u32, inode: &Inode) -> Entry {
    let (secs, nanos) = inode.modified();
    Entry {
        name,
        kind: match inode.file_type() {
            S_IFDIR => Kind::Dir,
            0xA000 => Kind::Symlink,
            0x8000 => Kind::File,
            _ => Kind::Special,
        },
        size: inode.size(),
        modified: Some(Time { secs, nanos }),
        id: Some(u64::from(ino)),
    }
}

impl Ext4Fs {
    /// Loads the superblock, group descriptors and journal.
    pub fn open(volume: Volume) -> Result<Ext4Fs> {
        let (reader, around) = Reader::new(volume.clone());
        let fs = Ext4::load(Box::new(reader)).map_err(|e| volume.error(NAME, &[], e))?;
        Ok(Ext4Fs {
            fs,
            volume,
            inline: around & INCOMPAT_INLINE_DATA != 0,
        })
    }

    /// `path` read by exhibit itself, when it passes through an inline inode; `None` when
    /// `ext4-view` reads it (no inline inode on the way, or the feature is off).
    fn stored(&self, path: &FsPath) -> Result<Option<Stored>> {
        if !self.inline {
            return Ok(None);
        }
        let v = &self.volume;
        let unreadable = || {
            v.error(
                NAME,
                path,
                "its inodes or directories cannot be read (a damaged file system with inline data)",
            )
        };
        let mut ino = 2u32;
        let mut inode = super::ext4_inodes::inode(v, ino).ok_or_else(unreadable)?;
        let mut through_inline = inode.is_inline();
        for c in path {
            if inode.file_type() != S_IFDIR {
                return Err(v.not_found(path));
            }
            let records = super::ext4_inodes::records(v, ino).ok_or_else(unreadable)?;
            ino = records
                .into_iter()
                .find(|(n, _)| n == c)
                .map(|(_, i)| i)
                .ok_or_else(|| v.not_found(path))?;
            inode = super::ext4_inodes::inode(v, ino).ok_or_else(unreadable)?;
            through_inline |= inode.is_inline();
        }
        Ok(through_inline.then(|| Stored {
            ino,
            inline: inode.is_inline(),
            inode,
        }))
    }

    fn fail(&self, path: &FsPath, e: Ext4Error) -> Error {
        match e {
            Ext4Error::NotFound => self.volume.not_found(path),
            e => self.volume.error(NAME, path, e),
        }
    }
}

impl FileSystem for Ext4Fs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn id_label(&self) -> &'static str {
        "inode"
    }

    fn stat(&mut self, path: &FsPath) -> Result<Entry> {
        self.volume.begin(0);
        if let Some(st) = self.stored(path)? {
            let name = path.last().cloned().unwrap_or_default();
            return Ok(stored_entry(name, st.ino, &st.inode));
        }
        let p = path_bytes(path);
        let m = self
            .fs
            .symlink_metadata(p.as_slice())
            .map_err(|e| self.fail(path, e))?;
        let mut e = entry(path.last().cloned().unwrap_or_default(), &m);
        e.id = match path.split_last() {
            None => super::ext4_inodes::of_dir(&self.volume, path).map(|(ino, _)| ino),
            Some((last, parent)) => super::ext4_inodes::of_dir(&self.volume, parent)
                .and_then(|(_, ids)| ids.get(last).copied()),
        }
        .map(u64::from);
        Ok(e)
    }

    fn list(&mut self, path: &FsPath) -> Result<Vec<Entry>> {
        self.volume.begin(0);
        if let Some(st) = self.stored(path)? {
            return self.list_stored(path, &st);
        }
        let p = path_bytes(path);
        let ids = super::ext4_inodes::of_dir(&self.volume, path).map(|(_, ids)| ids);
        let mut out = Vec::new();
        let dir = self
            .fs
            .read_dir(p.as_slice())
            .map_err(|e| self.fail(path, e))?;
        for e in dir {
            let e = e.map_err(|e| self.fail(path, e))?;
            let name = e.file_name().as_ref().to_vec();
            if name == b"." || name == b".." {
                continue;
            }
            let m = e.metadata().map_err(|err| {
                let mut child = path.to_vec();
                child.push(name.clone());
                self.fail(&child, err)
            })?;
            let id = ids
                .as_ref()
                .and_then(|i| i.get(&name))
                .map(|&n| u64::from(n));
            out.push(Entry {
                id,
                ..entry(name, &m)
            });
            check_count(&self.volume, NAME, path, out.len())?;
        }
        Ok(out)
    }

    fn read(&mut self, path: &FsPath, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        self.volume.begin(0);
        if let Some(st) = self.stored(path)? {
            if !st.inline {
                return self.read_runs(path, &st, out);
            }
            let data = self.inline_data(path, &st)?;
            out(&data)?;
            return Ok(data.len() as u64);
        }
        let p = path_bytes(path);
        let mut file = self.fs.open(p.as_slice()).map_err(|e| self.fail(path, e))?;
        self.volume.begin(file.metadata().len());
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = file.read_bytes(&mut buf).map_err(|e| self.fail(path, e))?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            out(&buf[..n])?;
        }
    }

    fn read_link(&mut self, path: &FsPath) -> Result<Vec<u8>> {
        self.volume.begin(0);
        if let Some(st) = self.stored(path)? {
            // A short target is kept in i_block (as ext4-view reads it), a longer one inline.
            if !st.inline && st.inode.size() <= 59 {
                let size = st.inode.size() as usize;
                return Ok(st.inode.i_block()[..size].to_vec());
            }
            if !st.inline {
                // A long target in a block of its own (at most one block: bounded).
                if st.inode.size() > 4096 {
                    return Err(self
                        .volume
                        .error(NAME, path, "a link target over 4096 bytes"));
                }
                let mut target = Vec::new();
                self.read_runs(path, &st, &mut |b: &[u8]| {
                    target.extend_from_slice(b);
                    Ok(())
                })?;
                return Ok(target);
            }
            return self.inline_data(path, &st);
        }
        let p = path_bytes(path);
        let target = self
            .fs
            .read_link(p.as_slice())
            .map_err(|e| self.fail(path, e))?;
        Ok(target.as_ref().to_vec())
    }
}

/// Bytes a file's data is handed on in.
const CHUNK: usize = 1 << 20;

/// Hands on zeros from file offset `at` to `end` (a hole, an unwritten extent); returns `end`.
fn zeros(out: &mut dyn FnMut(&[u8]) -> Result<()>, mut at: u64, end: u64) -> Result<u64> {
    static ZEROS: [u8; CHUNK] = [0; CHUNK];
    while at < end {
        let n = (end - at).min(CHUNK as u64) as usize;
        out(&ZEROS[..n])?;
        at += n as u64;
    }
    Ok(at.max(end))
}

impl Ext4Fs {
    fn list_stored(&self, path: &FsPath, st: &Stored) -> Result<Vec<Entry>> {
        let v = &self.volume;
        if st.inode.file_type() != S_IFDIR {
            return Err(v.error(NAME, path, "not a directory"));
        }
        let records = super::ext4_inodes::records(v, st.ino)
            .ok_or_else(|| v.error(NAME, path, "its records cannot be read (damaged)"))?;
        let mut out = Vec::new();
        for (name, ino) in records {
            if name == b"." || name == b".." {
                continue;
            }
            let inode = super::ext4_inodes::inode(v, ino).ok_or_else(|| {
                let mut child = path.to_vec();
                child.push(name.clone());
                v.error(
                    NAME,
                    &child,
                    format!("inode {ino} cannot be read (damaged)"),
                )
            })?;
            out.push(stored_entry(name, ino, &inode));
            check_count(v, NAME, path, out.len())?;
        }
        Ok(out)
    }

    /// A file in blocks under a directory stored inline, which `ext4-view` cannot reach: its
    /// extents, read here, with holes and unwritten extents as zeros, up to its size.
    fn read_runs(
        &self,
        path: &FsPath,
        st: &Stored,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let v = &self.volume;
        let size = st.inode.size();
        let (bs, runs) = super::ext4_inodes::runs(v, st.ino).ok_or_else(|| {
            v.error(
                NAME,
                path,
                "its data is in blocks mapped in a way exhibit's ext4 reader does not follow \
                 (not by extents, or a damaged extent tree), under a directory stored inline; \
                 not read",
            )
        })?;
        // Logical block numbers are 32 bits: a larger size is a forged inode, not a file (its
        // zeros past the last extent would otherwise be streamed without end).
        if size > (1u64 << 32).saturating_mul(bs) {
            return Err(v.error(
                NAME,
                path,
                format!("a size of {size} bytes, past ext4's limit (damaged)"),
            ));
        }
        v.begin(size);
        let mut buf = vec![0u8; CHUNK];
        let mut at = 0u64;
        for run in runs {
            let start = run.logical.saturating_mul(bs).min(size);
            let end = run
                .logical
                .saturating_add(run.len)
                .saturating_mul(bs)
                .min(size);
            at = zeros(out, at, start)?;
            let Some(physical) = run.physical else {
                at = zeros(out, at, end)?;
                continue;
            };
            let mut from = physical.checked_mul(bs).ok_or_else(|| {
                v.error(NAME, path, "an extent past the end of the volume (damaged)")
            })?;
            while at < end {
                let n = (end - at).min(CHUNK as u64) as usize;
                v.read_exact_at(from, &mut buf[..n])
                    .map_err(|e| v.error(NAME, path, e))?;
                out(&buf[..n])?;
                at += n as u64;
                from += n as u64;
            }
        }
        zeros(out, at, size)?;
        Ok(size)
    }

    /// The data of an inline inode.
    fn inline_data(&self, path: &FsPath, st: &Stored) -> Result<Vec<u8>> {
        if !st.inline {
            return Err(self
                .volume
                .error(NAME, path, "its data is in blocks, not inline"));
        }
        st.inode.inline_data().ok_or_else(|| {
            self.volume
                .error(NAME, path, "its inline data ends before its size (damaged)")
        })
    }
}
