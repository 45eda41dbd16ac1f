//! The inode numbers of a directory's entries, which `ext4-view` reads but does not expose:
//! the directory's own records (linear, which also covers hash-tree directories, whose index
//! nodes are records of inode 0) found through its extent tree or block map, or stored in the
//! inode itself (`inline_data`: the 60 bytes of `i_block` and the `system.data` attribute).
//! Group descriptors are found in `meta_bg` layouts too ([`Geometry::descriptor_at`], which
//! also serves `ext4-view` the descriptors where it looks for them). Inodes stored inline,
//! which `ext4-view` does not read, are read here ([`Inode`]). What this cannot read (a
//! damaged tree) leaves the numbers out instead of failing the listing. Every count and
//! offset is checked against the volume, depth and block counts are bounded.

use std::collections::HashMap;

use super::{FsPath, Volume};

const ROOT: u32 = 2;
const EXTENTS_FL: u32 = 0x8_0000;
const INLINE_DATA_FL: u32 = 0x1000_0000;
/// The superblock's incompatible features that `ext4-view` refuses but exhibit reads around:
/// descriptors placed by `meta_bg`, and inline data.
pub const INCOMPAT_META_BG: u32 = 0x10;
pub const INCOMPAT_INLINE_DATA: u32 = 0x8000;
const INCOMPAT_64BIT: u32 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const COMPAT_SPARSE_SUPER2: u32 = 0x200;
/// The bytes of `i_block`, which hold the first bytes of inline data.
const I_BLOCK: usize = 60;
/// Blocks of one directory read at most (the read budget bounds the bytes as well).
const MAX_DIR_BLOCKS: u64 = 1 << 18;
const MAX_EXTENT_DEPTH: u32 = 5;
/// Extents of one file, at most: a file fragmented further is refused rather than listed in
/// unbounded memory (each is 24 bytes here; ext4 itself keeps files far below this).
const MAX_RUNS: usize = 1 << 20;

/// A stretch of a file's data: `len` blocks from logical block `logical`, stored from
/// physical block `physical`, or `None` for an extent allocated but not yet written (zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First logical block.
    pub logical: u64,
    /// First physical block, if written.
    pub physical: Option<u64>,
    /// Blocks.
    pub len: u64,
}

/// Where a superblock puts its group descriptors.
pub struct Geometry {
    /// Block size.
    pub bs: u64,
    /// Bytes of one descriptor.
    pub desc_size: u64,
    first_data_block: u64,
    blocks_per_group: u64,
    /// Descriptor blocks placed as without `meta_bg`.
    first_meta_bg: u64,
    meta_bg: bool,
    sparse: bool,
    sparse2: Option<[u64; 2]>,
}

impl Geometry {
    /// From the superblock's 1024 bytes.
    pub fn of(sb: &[u8]) -> Option<Geometry> {
        let log = u32le(sb, 24)?;
        if log > 6 {
            return None;
        }
        let bs = 1024u64 << log;
        let incompat = u32le(sb, 96)? as u32;
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let sparse2 = (u32le(sb, 92)? as u32 & COMPAT_SPARSE_SUPER2 != 0)
            .then(|| Some([u32le(sb, 0x24C)?, u32le(sb, 0x250)?]))
            .flatten();
        let g = Geometry {
            bs,
            desc_size: if is64 { u16le(sb, 254)?.max(32) } else { 32 },
            first_data_block: u32le(sb, 20)?,
            blocks_per_group: u32le(sb, 32)?,
            first_meta_bg: u32le(sb, 0x104)?,
            meta_bg: incompat & INCOMPAT_META_BG != 0,
            sparse: u32le(sb, 100)? as u32 & RO_COMPAT_SPARSE_SUPER != 0,
            sparse2,
        };
        (g.blocks_per_group > 0 && g.desc_size <= bs).then_some(g)
    }

    /// Whether group `g` begins with a superblock backup (as e2fsprogs decides it).
    fn has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if let Some(b) = self.sparse2 {
            return b.contains(&g);
        }
        if g == 1 || !self.sparse {
            return true;
        }
        if g.is_multiple_of(2) {
            return false;
        }
        [3u64, 5, 7].iter().any(|&r| {
            let mut p = r;
            while p < g {
                p = p.saturating_mul(r);
            }
            p == g
        })
    }

    /// Byte offset of descriptor `index`: after the superblock, or with `meta_bg` in the
    /// first block (after any superblock backup) of the first group of its meta group.
    pub fn descriptor_at(&self, index: u64) -> Option<u64> {
        let per_block = self.bs / self.desc_size;
        let (block, within) = (index / per_block, (index % per_block) * self.desc_size);
        let at_block = if !self.meta_bg || block < self.first_meta_bg {
            self.first_data_block.checked_add(1)?.checked_add(block)?
        } else {
            let group = block.checked_mul(per_block)?;
            let first = self
                .first_data_block
                .checked_add(group.checked_mul(self.blocks_per_group)?)?;
            first.checked_add(u64::from(self.has_super(group)))?
        };
        at_block.checked_mul(self.bs)?.checked_add(within)
    }
}

struct Layout {
    bs: u64,
    inodes: u32,
    ipg: u32,
    inode_size: u64,
    geometry: Geometry,
    is64: bool,
}

/// One inode as stored.
pub struct Inode(Vec<u8>);

impl Inode {
    /// The `S_IFMT` bits.
    pub fn file_type(&self) -> u16 {
        u16le(&self.0, 0).unwrap_or(0) as u16 & 0xF000
    }

    /// Bytes of data.
    pub fn size(&self) -> u64 {
        u32le(&self.0, 4).unwrap_or(0) | (u32le(&self.0, 108).unwrap_or(0) << 32)
    }

    fn flags(&self) -> u32 {
        u32le(&self.0, 32).unwrap_or(0) as u32
    }

    /// The 60 bytes of `i_block` (a short link's target).
    pub fn i_block(&self) -> &[u8] {
        self.0.get(40..40 + I_BLOCK).unwrap_or(&[])
    }

    /// Whether the data is stored in the inode (`inline_data`).
    pub fn is_inline(&self) -> bool {
        self.flags() & INLINE_DATA_FL != 0
    }

    /// Modification time: seconds (with the epoch bits of the extra field) and nanoseconds.
    pub fn modified(&self) -> (i64, u32) {
        let secs = i64::from(u32le(&self.0, 16).unwrap_or(0) as u32 as i32);
        let extra_isize = u16le(&self.0, 128).unwrap_or(0);
        match u32le(&self.0, 0x84) {
            Some(x) if extra_isize >= 0x88 - 128 => {
                (secs + (((x & 3) as i64) << 32), (x >> 2) as u32)
            }
            _ => (secs, 0),
        }
    }

    /// The value of the in-inode extended attribute `system.data` (index 7, name "data").
    fn system_data(&self) -> Option<&[u8]> {
        let extra = u16le(&self.0, 128)? as usize;
        let base = 128usize.checked_add(extra)?;
        if u32le(&self.0, base)? != 0xEA02_0000 {
            return None;
        }
        let first = base + 4;
        let mut at = first;
        while u32le(&self.0, at)? != 0 {
            let name_len = *self.0.get(at)? as usize;
            let index = *self.0.get(at + 1)?;
            let value_offs = u16le(&self.0, at + 2)? as usize;
            let value_size = u32le(&self.0, at + 8)? as usize;
            let name = self.0.get(at + 16..at + 16 + name_len)?;
            if index == 7 && name == b"data" {
                let v = first.checked_add(value_offs)?;
                return self.0.get(v..v.checked_add(value_size)?);
            }
            at += (16 + name_len).div_ceil(4) * 4;
        }
        None
    }

    /// Inline data: `i_block`, then `system.data`; `None` when it ends before the size.
    pub fn inline_data(&self) -> Option<Vec<u8>> {
        let mut d = self.0.get(40..40 + I_BLOCK)?.to_vec();
        if let Some(more) = self.system_data() {
            d.extend_from_slice(more);
        }
        let size = usize::try_from(self.size()).ok()?;
        (size <= d.len()).then(|| {
            d.truncate(size);
            d
        })
    }
}

/// (name, inode) of each record in `block` (directory records, `rec_len` chained).
fn parse_records(block: &[u8], out: &mut Vec<(Vec<u8>, u32)>) -> Option<()> {
    let mut at = 0usize;
    while at + 8 <= block.len() {
        let child = u32le(block, at)? as u32;
        let rec_len = u16le(block, at + 4)? as usize;
        let name_len = block[at + 6] as usize;
        if rec_len < 8 || at + rec_len > block.len() {
            break;
        }
        if child != 0 && name_len > 0 && 8 + name_len <= rec_len {
            out.push((block[at + 8..at + 8 + name_len].to_vec(), child));
        }
        at += rec_len;
    }
    Some(())
}

fn u16le(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}
fn u32le(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

fn read(v: &Volume, offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    v.read_exact_at(offset, &mut buf).ok()?;
    Some(buf)
}

impl Layout {
    fn of(v: &Volume) -> Option<Layout> {
        let sb = read(v, 1024, 1024)?;
        let geometry = Geometry::of(&sb)?;
        let bs = geometry.bs;
        let incompat = u32le(&sb, 96)? as u32;
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let rev = u32le(&sb, 76)?;
        let inode_size = if rev == 0 { 128 } else { u16le(&sb, 88)? };
        let ipg = u32le(&sb, 40)? as u32;
        if ipg == 0 || inode_size < 128 || inode_size > bs {
            return None;
        }
        Some(Layout {
            bs,
            inodes: u32le(&sb, 0)? as u32,
            ipg,
            inode_size,
            geometry,
            is64,
        })
    }

    fn inode(&self, v: &Volume, ino: u32) -> Option<Vec<u8>> {
        if ino == 0 || ino > self.inodes {
            return None;
        }
        let (group, index) = (
            u64::from((ino - 1) / self.ipg),
            u64::from((ino - 1) % self.ipg),
        );
        let desc_size = self.geometry.desc_size;
        let gd = read(v, self.geometry.descriptor_at(group)?, desc_size)?;
        let mut table = u32le(&gd, 8)?;
        if self.is64 && desc_size >= 64 {
            table |= u32le(&gd, 0x28)? << 32;
        }
        let at = table
            .checked_mul(self.bs)?
            .checked_add(index.checked_mul(self.inode_size)?)?;
        read(v, at, self.inode_size)
    }

    /// The physical blocks of the first `n` logical blocks (holes left out).
    fn blocks(&self, v: &Volume, inode: &[u8], n: u64) -> Option<Vec<u64>> {
        let flags = u32le(inode, 32)? as u32;
        if flags & INLINE_DATA_FL != 0 {
            return None;
        }
        let iblock = inode.get(40..100)?;
        let mut out = Vec::new();
        if flags & EXTENTS_FL != 0 {
            // Written extents only: one not yet written reads as zeros, holes have no block.
            for run in self.runs(v, inode)? {
                let Some(physical) = run.physical else {
                    continue;
                };
                for k in 0..run.len {
                    if run.logical + k >= n || out.len() as u64 >= n {
                        break;
                    }
                    out.push(physical.checked_add(k)?);
                }
            }
        } else {
            for (i, level) in (0..15usize).map(|i| (i, i.saturating_sub(11))) {
                let b = u32le(iblock, i * 4)?;
                self.mapped(v, b, level as u32, n, &mut out)?;
                if out.len() as u64 >= n {
                    break;
                }
            }
        }
        out.truncate(n as usize);
        Some(out)
    }

    /// The data runs of an extent-mapped inode, in logical order (the gaps between them are
    /// holes); `None` for a block-mapped inode or a damaged or overlapping tree.
    fn runs(&self, v: &Volume, inode: &[u8]) -> Option<Vec<Run>> {
        let flags = u32le(inode, 32)? as u32;
        if flags & EXTENTS_FL == 0 || flags & INLINE_DATA_FL != 0 {
            return None;
        }
        let mut out = Vec::new();
        self.extent_runs(v, inode.get(40..100)?, 0, &mut out)?;
        out.sort_by_key(|r| r.logical);
        let ordered = out
            .windows(2)
            .all(|w| w[0].logical + w[0].len <= w[1].logical);
        ordered.then_some(out)
    }

    fn extent_runs(&self, v: &Volume, node: &[u8], depth: u32, out: &mut Vec<Run>) -> Option<()> {
        if u16le(node, 0)? != 0xF30A || depth > MAX_EXTENT_DEPTH {
            return None;
        }
        let entries = u16le(node, 2)?;
        let level = u16le(node, 6)?;
        for i in 0..entries as usize {
            let e = node.get(12 + i * 12..24 + i * 12)?;
            if level == 0 {
                let (logical, len) = (u32le(e, 0)?, u16le(e, 4)?);
                // A length above 32768 marks an extent allocated but not written yet.
                let (len, written) = if len > 32768 {
                    (len - 32768, false)
                } else {
                    (len, true)
                };
                let start = (u16le(e, 6)? << 32) | u32le(e, 8)?;
                if out.len() >= MAX_RUNS {
                    return None;
                }
                out.push(Run {
                    logical,
                    physical: written.then_some(start),
                    len,
                });
            } else {
                let child = (u16le(e, 8)? << 32) | u32le(e, 4)?;
                let block = read(v, child.checked_mul(self.bs)?, self.bs)?;
                self.extent_runs(v, &block, depth + 1, out)?;
            }
        }
        Some(())
    }

    /// Block `b` holding data (`level` 0) or pointers `level` deep.
    fn mapped(&self, v: &Volume, b: u64, level: u32, n: u64, out: &mut Vec<u64>) -> Option<()> {
        if b == 0 || out.len() as u64 >= n {
            return Some(());
        }
        if level == 0 {
            out.push(b);
            return Some(());
        }
        let block = read(v, b.checked_mul(self.bs)?, self.bs)?;
        for i in 0..(self.bs / 4) as usize {
            self.mapped(v, u32le(&block, i * 4)?, level - 1, n, out)?;
            if out.len() as u64 >= n {
                break;
            }
        }
        Some(())
    }

    /// (name, inode) of every record of directory inode `ino`.
    fn records(&self, v: &Volume, ino: u32) -> Option<Vec<(Vec<u8>, u32)>> {
        let raw = self.inode(v, ino)?;
        let inode = Inode(raw);
        let mut out = Vec::new();
        if inode.is_inline() {
            // The parent's number, then records in the rest of i_block, then in system.data.
            parse_records(inode.0.get(44..40 + I_BLOCK)?, &mut out)?;
            if let Some(more) = inode.system_data() {
                parse_records(more, &mut out)?;
            }
            return Some(out);
        }
        let n = inode.size().div_ceil(self.bs).min(MAX_DIR_BLOCKS);
        for b in self.blocks(v, &inode.0, n)? {
            let block = read(v, b.checked_mul(self.bs)?, self.bs)?;
            parse_records(&block, &mut out)?;
        }
        Some(out)
    }
}

/// The inode number of each entry of directory `path` (and the directory's own), when they
/// can be read.
pub fn of_dir(v: &Volume, path: &FsPath) -> Option<(u32, HashMap<Vec<u8>, u32>)> {
    let l = Layout::of(v)?;
    let ino = l.walk(v, path)?.pop()?;
    Some((ino, l.records(v, ino)?.into_iter().collect()))
}

impl Layout {
    /// The inode numbers of the root and of each component of `path`.
    fn walk(&self, v: &Volume, path: &FsPath) -> Option<Vec<u32>> {
        let mut chain = vec![ROOT];
        for c in path {
            let ino = self
                .records(v, *chain.last()?)?
                .into_iter()
                .find(|(name, _)| name == c)
                .map(|(_, i)| i)?;
            chain.push(ino);
        }
        Some(chain)
    }
}

/// Inode `ino` as stored.
pub fn inode(v: &Volume, ino: u32) -> Option<Inode> {
    Layout::of(v)?.inode(v, ino).map(Inode)
}

/// The block size and the data runs of inode `ino`, when it is mapped by extents (see
/// [`Run`]).
pub fn runs(v: &Volume, ino: u32) -> Option<(u64, Vec<Run>)> {
    let l = Layout::of(v)?;
    let runs = l.runs(v, &l.inode(v, ino)?)?;
    Some((l.bs, runs))
}

/// (name, inode) of every record of directory inode `ino`.
pub fn records(v: &Volume, ino: u32) -> Option<Vec<(Vec<u8>, u32)>> {
    Layout::of(v)?.records(v, ino)
}
