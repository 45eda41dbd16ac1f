//! The inode numbers of a directory's entries, which `ext4-view` reads but does not expose:
//! the directory's own records (linear, which also covers hash-tree directories, whose index
//! nodes are records of inode 0) found through its extent tree or block map. Only numbers come
//! from here, everything else from `ext4-view`; what this cannot read (inline-data or
//! `meta_bg` layouts, a damaged tree) leaves the numbers out instead of failing the listing.
//! Every count and offset is checked against the volume, depth and block counts are bounded.

use std::collections::HashMap;

use super::{FsPath, Volume};

const ROOT: u32 = 2;
const EXTENTS_FL: u32 = 0x8_0000;
const INLINE_DATA_FL: u32 = 0x1000_0000;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
/// Blocks of one directory read at most (the read budget bounds the bytes as well).
const MAX_DIR_BLOCKS: u64 = 1 << 18;
const MAX_EXTENT_DEPTH: u32 = 5;

struct Layout {
    bs: u64,
    inodes: u32,
    ipg: u32,
    inode_size: u64,
    desc_size: u64,
    gdt_block: u64,
    is64: bool,
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
        let log = u32le(&sb, 24)?;
        if log > 6 {
            return None;
        }
        let bs = 1024u64 << log;
        let incompat = u32le(&sb, 96)? as u32;
        if incompat & INCOMPAT_META_BG != 0 {
            return None;
        }
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let rev = u32le(&sb, 76)?;
        let inode_size = if rev == 0 { 128 } else { u16le(&sb, 88)? };
        let desc_size = if is64 { u16le(&sb, 254)?.max(32) } else { 32 };
        let ipg = u32le(&sb, 40)? as u32;
        if ipg == 0 || inode_size < 128 || inode_size > bs {
            return None;
        }
        Some(Layout {
            bs,
            inodes: u32le(&sb, 0)? as u32,
            ipg,
            inode_size,
            desc_size,
            gdt_block: u32le(&sb, 20)? + 1,
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
        let gd = read(
            v,
            self.gdt_block
                .checked_mul(self.bs)?
                .checked_add(group.checked_mul(self.desc_size)?)?,
            self.desc_size,
        )?;
        let mut table = u32le(&gd, 8)?;
        if self.is64 && self.desc_size >= 64 {
            table |= u32le(&gd, 0x28)? << 32;
        }
        let at = table
            .checked_mul(self.bs)?
            .checked_add(index.checked_mul(self.inode_size)?)?;
        read(v, at, self.inode_size.min(256))
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
            self.extents(v, iblock, n, 0, &mut out)?;
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

    fn extents(
        &self,
        v: &Volume,
        node: &[u8],
        n: u64,
        depth: u32,
        out: &mut Vec<u64>,
    ) -> Option<()> {
        if u16le(node, 0)? != 0xF30A || depth > MAX_EXTENT_DEPTH {
            return None;
        }
        let entries = u16le(node, 2)?;
        let level = u16le(node, 6)?;
        for i in 0..entries as usize {
            let e = node.get(12 + i * 12..24 + i * 12)?;
            if level == 0 {
                let (first, len) = (u32le(e, 0)?, u16le(e, 4)?);
                if len > 32768 || first >= n {
                    continue; // not yet written (reads as zeros), or past the end
                }
                let start = (u16le(e, 6)? << 32) | u32le(e, 8)?;
                for k in 0..len.min(n - first) {
                    out.push(start.checked_add(k)?);
                    if out.len() as u64 >= n {
                        return Some(());
                    }
                }
            } else {
                let child = (u16le(e, 8)? << 32) | u32le(e, 4)?;
                let block = read(v, child.checked_mul(self.bs)?, self.bs)?;
                self.extents(v, &block, n, depth + 1, out)?;
            }
            if out.len() as u64 >= n {
                break;
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
        let inode = self.inode(v, ino)?;
        let size = u32le(&inode, 4)? | (u32le(&inode, 108)? << 32);
        let n = size.div_ceil(self.bs).min(MAX_DIR_BLOCKS);
        let mut out = Vec::new();
        for b in self.blocks(v, &inode, n)? {
            let block = read(v, b.checked_mul(self.bs)?, self.bs)?;
            let mut at = 0usize;
            while at + 8 <= block.len() {
                let child = u32le(&block, at)? as u32;
                let rec_len = u16le(&block, at + 4)? as usize;
                let name_len = block[at + 6] as usize;
                if rec_len < 8 || at + rec_len > block.len() {
                    break;
                }
                if child != 0 && name_len > 0 && 8 + name_len <= rec_len {
                    out.push((block[at + 8..at + 8 + name_len].to_vec(), child));
                }
                at += rec_len;
            }
        }
        Some(out)
    }
}

/// The inode number of each entry of directory `path` (and the directory's own), when they
/// can be read.
pub fn of_dir(v: &Volume, path: &FsPath) -> Option<(u32, HashMap<Vec<u8>, u32>)> {
    let l = Layout::of(v)?;
    let mut ino = ROOT;
    for c in path {
        ino = l
            .records(v, ino)?
            .into_iter()
            .find(|(name, _)| name == c)
            .map(|(_, i)| i)?;
    }
    Some((ino, l.records(v, ino)?.into_iter().collect()))
}
