//! NTFS through the `ntfs` crate (a read-only parser of the MFT, attributes and B-tree
//! indexes). Names are the Win32/POSIX ones (the DOS 8.3 aliases in the index are left out,
//! as Windows shows them), sizes and times come from each file's own record (the copies in
//! the directory index may be stale), the number is the MFT record's. Named `$DATA` streams
//! (alternate data streams) are entries of their own beside their file, `file.txt:stream`
//! (no NTFS name holds ':', so these cannot collide with a file's name), with the file's
//! number and time; reparse points (junctions, symbolic links) are listed, not followed.

use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsFileAttributeFlags, NtfsFileNamespace};
use ntfs::{Ntfs, NtfsAttributeType, NtfsFile, NtfsReadSeek, NtfsTime};

use super::{check_count, Entry, FileSystem, FsPath, Kind, Time, Volume};
use crate::error::{Error, Result};

const NAME: &str = "NTFS";
/// The root directory's MFT record.
const ROOT_RECORD: u64 = 5;

/// An NTFS file system.
pub struct NtfsFs {
    ntfs: Ntfs,
    volume: Volume,
}

/// Streams one file may list (beyond this the record is taken as damaged).
const MAX_STREAMS: usize = 4096;

/// `path` without a `:stream` on its last name, and the stream's name ("" for the data).
fn split_stream(path: &FsPath) -> (Vec<Vec<u8>>, String) {
    let mut base = path.to_vec();
    if let Some(last) = base.last_mut() {
        if let Some(at) = last.iter().position(|&b| b == b':') {
            let stream = String::from_utf8_lossy(&last[at + 1..]).into_owned();
            last.truncate(at);
            return (base, stream);
        }
    }
    (base, String::new())
}

/// None for 0, which is "never set" (mkntfs leaves the system files' times so).
fn time(t: NtfsTime) -> Option<Time> {
    const TICKS: u64 = 10_000_000;
    const EPOCH_1601: i64 = 11_644_473_600;
    let n = t.nt_timestamp();
    (n != 0).then(|| Time {
        secs: (n / TICKS) as i64 - EPOCH_1601,
        nanos: ((n % TICKS) * 100) as u32,
    })
}

impl NtfsFs {
    /// Reads the boot sector, the MFT's own record and the $UpCase table (for name lookups).
    pub fn open(mut volume: Volume) -> Result<NtfsFs> {
        let mut ntfs = Ntfs::new(&mut volume).map_err(|e| volume.error(NAME, &[], e))?;
        ntfs.read_upcase_table(&mut volume)
            .map_err(|e| volume.error(NAME, &[], e))?;
        Ok(NtfsFs { ntfs, volume })
    }

    /// The file `path` names.
    fn file<'n>(ntfs: &'n Ntfs, volume: &mut Volume, path: &FsPath) -> Result<NtfsFile<'n>> {
        let mut file = ntfs
            .root_directory(volume)
            .map_err(|e| volume.error(NAME, &[], e))?;
        for (i, c) in path.iter().enumerate() {
            let here = &path[..i + 1];
            if !file.is_directory() {
                return Err(volume.not_found(here));
            }
            let name = String::from_utf8_lossy(c);
            let index = file
                .directory_index(volume)
                .map_err(|e| volume.error(NAME, here, e))?;
            let mut finder = index.finder();
            let next = match NtfsFileNameIndex::find(&mut finder, ntfs, volume, &name) {
                None => return Err(volume.not_found(here)),
                Some(found) => found
                    .and_then(|entry| entry.to_file(ntfs, volume))
                    .map_err(|e| volume.error(NAME, here, e))?,
            };
            file = next;
        }
        Ok(file)
    }

    /// The names of `file`'s named `$DATA` streams, each once (an attribute list may hold
    /// one stream in several pieces).
    fn streams(volume: &mut Volume, file: &NtfsFile<'_>, at: &FsPath) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        let mut attrs = file.attributes();
        while let Some(item) = attrs.next(volume) {
            let item = item.map_err(|e| volume.error(NAME, at, e))?;
            let a = item.to_attribute().map_err(|e| volume.error(NAME, at, e))?;
            if a.ty().ok() != Some(NtfsAttributeType::Data) {
                continue;
            }
            let name = a
                .name()
                .map_err(|e| volume.error(NAME, at, e))?
                .to_string_lossy();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
                if names.len() > MAX_STREAMS {
                    return Err(volume.error(
                        NAME,
                        at,
                        format!("more than {MAX_STREAMS} data streams (damaged)"),
                    ));
                }
            }
        }
        Ok(names)
    }

    /// The entry of `file`'s stream `stream` ("" for its data), called `name`.
    fn stream_entry(
        volume: &mut Volume,
        file: &NtfsFile<'_>,
        name: Vec<u8>,
        stream: &str,
        at: &FsPath,
    ) -> Result<Entry> {
        if stream.is_empty() {
            return Self::entry(volume, file, name, at);
        }
        let info = file.info().map_err(|e| volume.error(NAME, at, e))?;
        let size = match file.data(volume, stream) {
            None => return Err(volume.not_found(at)),
            Some(item) => item
                .and_then(|item| item.to_attribute().map(|a| a.value_length()))
                .map_err(|e| volume.error(NAME, at, e))?,
        };
        Ok(Entry {
            name,
            kind: Kind::File,
            size,
            modified: time(info.modification_time()),
            id: Some(file.file_record_number()),
        })
    }

    /// Kind, size, time and number of `file`, called `name`.
    fn entry(
        volume: &mut Volume,
        file: &NtfsFile<'_>,
        name: Vec<u8>,
        at: &FsPath,
    ) -> Result<Entry> {
        let info = file.info().map_err(|e| volume.error(NAME, at, e))?;
        let reparse = info
            .file_attributes()
            .contains(NtfsFileAttributeFlags::REPARSE_POINT);
        let kind = if reparse {
            Kind::Special
        } else if file.is_directory() {
            Kind::Dir
        } else {
            Kind::File
        };
        let size = if kind == Kind::Dir {
            0
        } else {
            match file.data(volume, "") {
                None => 0,
                Some(item) => item
                    .and_then(|item| item.to_attribute().map(|a| a.value_length()))
                    .map_err(|e| volume.error(NAME, at, e))?,
            }
        };
        Ok(Entry {
            name,
            kind,
            size,
            modified: time(info.modification_time()),
            id: Some(file.file_record_number()),
        })
    }
}

impl FileSystem for NtfsFs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn id_label(&self) -> &'static str {
        "MFT"
    }

    fn stat(&mut self, path: &FsPath) -> Result<Entry> {
        self.volume.begin(0);
        let (base, stream) = split_stream(path);
        let file = Self::file(&self.ntfs, &mut self.volume, &base)?;
        let name = path.last().cloned().unwrap_or_default();
        Self::stream_entry(&mut self.volume, &file, name, &stream, path)
    }

    fn list(&mut self, path: &FsPath) -> Result<Vec<Entry>> {
        self.volume.begin(0);
        let volume = &mut self.volume;
        let dir = Self::file(&self.ntfs, volume, path)?;
        if !dir.is_directory() {
            return Err(volume.error(NAME, path, "not a directory"));
        }
        let index = dir
            .directory_index(volume)
            .map_err(|e| volume.error(NAME, path, e))?;
        let mut entries = index.entries();
        let mut out = Vec::new();
        while let Some(e) = entries.next(volume) {
            let e = e.map_err(|e| volume.error(NAME, path, e))?;
            let Some(key) = e.key() else { continue };
            let key = key.map_err(|e| volume.error(NAME, path, e))?;
            if key.namespace() == NtfsFileNamespace::Dos {
                continue;
            }
            let name = key.name().to_string_lossy().into_bytes();
            let record = e.file_reference().file_record_number();
            if name == b"." || (record == ROOT_RECORD && !path.is_empty()) {
                continue;
            }
            let mut at = path.to_vec();
            at.push(name.clone());
            let file = e
                .to_file(&self.ntfs, volume)
                .map_err(|err| volume.error(NAME, &at, err))?;
            for stream in Self::streams(volume, &file, &at)? {
                let mut n = name.clone();
                n.push(b':');
                n.extend_from_slice(stream.as_bytes());
                out.push(Self::stream_entry(volume, &file, n, &stream, &at)?);
                check_count(volume, NAME, path, out.len())?;
            }
            out.push(Self::entry(volume, &file, name, &at)?);
            check_count(volume, NAME, path, out.len())?;
        }
        Ok(out)
    }

    fn read(&mut self, path: &FsPath, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        self.volume.begin(0);
        let volume = &mut self.volume;
        let (base, stream) = split_stream(path);
        let file = Self::file(&self.ntfs, volume, &base)?;
        if file.is_directory() && stream.is_empty() {
            return Err(volume.error(NAME, path, "not a file"));
        }
        let Some(item) = file.data(volume, &stream) else {
            if stream.is_empty() {
                return Ok(0);
            }
            return Err(volume.not_found(path));
        };
        let item = item.map_err(|e| volume.error(NAME, path, e))?;
        let attribute = item
            .to_attribute()
            .map_err(|e| volume.error(NAME, path, e))?;
        let mut value = attribute
            .value(volume)
            .map_err(|e| volume.error(NAME, path, e))?;
        volume.begin(value.len());
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = value
                .read(volume, &mut buf)
                .map_err(|e| volume.error(NAME, path, e))?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            out(&buf[..n])?;
        }
    }

    fn read_link(&mut self, path: &FsPath) -> Result<Vec<u8>> {
        Err(Error::InvalidOption(format!(
            "{}: NTFS reparse points are not read",
            super::path_text(path)
        )))
    }
}
