//! FAT12/16/32 through `fatfs`, over a volume whose writes fail: fatfs is a read-write
//! library, and what it would update on its own (the dirty flag on unmount, an access date)
//! never reaches the image. Long names are shown when present, else the 8.3 name. FAT has no
//! inode numbers and stores local times without a zone: they are shown as written.

use std::io::Read;

use fatfs::{DirEntry, FileSystem as Fat, FsOptions};

use super::{check_count, Entry, FileSystem, FsPath, Kind, Time, Volume};
use crate::error::{Error, Result};

/// A FAT file system.
pub struct FatFs {
    fs: Fat<Volume>,
    volume: Volume,
    name: &'static str,
}

fn time(t: fatfs::DateTime) -> Option<Time> {
    let d = chrono::NaiveDate::from_ymd_opt(
        i32::from(t.date.year),
        u32::from(t.date.month),
        u32::from(t.date.day),
    )?;
    let dt = d.and_hms_milli_opt(
        u32::from(t.time.hour),
        u32::from(t.time.min),
        u32::from(t.time.sec),
        u32::from(t.time.millis),
    )?;
    let u = dt.and_utc();
    Some(Time {
        secs: u.timestamp(),
        nanos: u.timestamp_subsec_nanos(),
    })
}

fn entry(e: &DirEntry<'_, Volume>) -> Entry {
    Entry {
        name: e.file_name().into_bytes(),
        kind: if e.is_dir() { Kind::Dir } else { Kind::File },
        size: if e.is_dir() { 0 } else { e.len() },
        modified: time(e.modified()),
        id: None,
    }
}

/// Whether directory entry `e` is the one called `name`: its long name, else (as DOS
/// would) its long or short name without regard to ASCII case.
fn is_named(e: &DirEntry<'_, Volume>, name: &[u8]) -> bool {
    let long = e.file_name();
    long.as_bytes() == name
        || long.as_bytes().eq_ignore_ascii_case(name)
        || e.short_file_name().as_bytes().eq_ignore_ascii_case(name)
}

/// What a path resolves to.
enum Place<'a> {
    Root,
    Entry(DirEntry<'a, Volume>),
}

impl FatFs {
    /// Reads the boot sector (and FAT32's FSInfo sector).
    pub fn open(volume: Volume) -> Result<FatFs> {
        let fs =
            Fat::new(volume.clone(), FsOptions::new()).map_err(|e| volume.error("FAT", &[], e))?;
        let name = match fs.fat_type() {
            fatfs::FatType::Fat12 => "FAT12",
            fatfs::FatType::Fat16 => "FAT16",
            fatfs::FatType::Fat32 => "FAT32",
        };
        Ok(FatFs { fs, volume, name })
    }

    fn dir_entries<'a>(
        volume: &Volume,
        name: &str,
        dir: &fatfs::Dir<'a, Volume>,
        path: &FsPath,
    ) -> Result<Vec<DirEntry<'a, Volume>>> {
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|e| volume.error(name, path, e))?;
            let n = e.file_name();
            if n == "." || n == ".." {
                continue;
            }
            out.push(e);
            check_count(volume, name, path, out.len())?;
        }
        Ok(out)
    }

    fn find<'a>(
        fs: &'a Fat<Volume>,
        volume: &Volume,
        name: &str,
        path: &FsPath,
    ) -> Result<Place<'a>> {
        let mut here = Place::Root;
        for (i, c) in path.iter().enumerate() {
            let dir = match &here {
                Place::Root => fs.root_dir(),
                Place::Entry(e) if e.is_dir() => e.to_dir(),
                Place::Entry(_) => return Err(volume.not_found(path)),
            };
            let found = Self::dir_entries(volume, name, &dir, &path[..i])?
                .into_iter()
                .find(|e| is_named(e, c));
            match found {
                Some(e) => here = Place::Entry(e),
                None => return Err(volume.not_found(path)),
            }
        }
        Ok(here)
    }
}

impl FileSystem for FatFs {
    fn name(&self) -> &'static str {
        self.name
    }

    fn id_label(&self) -> &'static str {
        ""
    }

    fn stat(&mut self, path: &FsPath) -> Result<Entry> {
        self.volume.begin(0);
        Ok(match Self::find(&self.fs, &self.volume, self.name, path)? {
            Place::Root => Entry {
                name: Vec::new(),
                kind: Kind::Dir,
                size: 0,
                modified: None,
                id: None,
            },
            Place::Entry(e) => {
                let mut en = entry(&e);
                // The name asked for may differ in case; keep the stored one.
                if en.name.is_empty() {
                    en.name = path.last().cloned().unwrap_or_default();
                }
                en
            }
        })
    }

    fn list(&mut self, path: &FsPath) -> Result<Vec<Entry>> {
        self.volume.begin(0);
        let dir = match Self::find(&self.fs, &self.volume, self.name, path)? {
            Place::Root => self.fs.root_dir(),
            Place::Entry(e) if e.is_dir() => e.to_dir(),
            Place::Entry(_) => return Err(self.volume.error(self.name, path, "not a directory")),
        };
        Ok(Self::dir_entries(&self.volume, self.name, &dir, path)?
            .iter()
            .map(entry)
            .collect())
    }

    fn read(&mut self, path: &FsPath, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        self.volume.begin(0);
        let e = match Self::find(&self.fs, &self.volume, self.name, path)? {
            Place::Entry(e) if e.is_file() => e,
            _ => return Err(self.volume.error(self.name, path, "not a file")),
        };
        self.volume.begin(e.len());
        let mut file = e.to_file();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|err| self.volume.error(self.name, path, err))?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            out(&buf[..n])?;
        }
    }

    fn read_link(&mut self, path: &FsPath) -> Result<Vec<u8>> {
        Err(Error::InvalidOption(format!(
            "{}: FAT has no symbolic links",
            super::path_text(path)
        )))
    }
}
