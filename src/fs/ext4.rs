//! ext2/3/4 through `ext4-view`: it forbids unsafe code, checks every number it reads
//! (block and inode indices, extent trees, directory records, checksums) and bounds symlink
//! resolution, so a corrupt image is an error from it, not a panic. Inode numbers, which it
//! does not expose, come from [`super::ext4_inodes`].

use ext4_view::{Ext4, Ext4Error, Ext4Read, FileType, Metadata};

use super::{check_count, Entry, FileSystem, FsPath, Kind, Time, Volume};
use crate::error::{Error, Result};

const NAME: &str = "ext4";

/// ext4-view's reader: a volume, at offsets.
struct Reader(Volume);

impl Ext4Read for Reader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0.read_exact_at(start_byte, dst).map_err(Box::from)
    }
}

/// An ext2/3/4 file system.
pub struct Ext4Fs {
    fs: Ext4,
    volume: Volume,
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

impl Ext4Fs {
    /// Loads the superblock, group descriptors and journal.
    pub fn open(volume: Volume) -> Result<Ext4Fs> {
        let fs =
            Ext4::load(Box::new(Reader(volume.clone()))).map_err(|e| volume.error(NAME, &[], e))?;
        Ok(Ext4Fs { fs, volume })
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
        let p = path_bytes(path);
        let target = self
            .fs
            .read_link(p.as_slice())
            .map_err(|e| self.fail(path, e))?;
        Ok(target.as_ref().to_vec())
    }
}
