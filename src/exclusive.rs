//! The files exhibit makes beside its outputs for its own use, made so that nothing else is
//! ever opened, truncated or followed through them:
//!
//! - [`TempFile`]: created `O_CREAT|O_EXCL|O_NOFOLLOW` under an unpredictable name in the
//!   directory of the file it will replace (`disk.yaml.tmp-3f9c04d1a2b7e658`), so a file or a
//!   symbolic link planted at a name someone could guess is never written, and a source that
//!   carries a name an older exhibit used (`disk.map.tmp`) is never renamed over; removed
//!   unless it was renamed into place;
//! - [`write_atomically`]: how every side file (record, map, piece list, hash logs) is
//!   replaced: written to a [`TempFile`], synced, renamed over the old one, directory synced;
//! - [`BaseLock`]: `BASE.lock`, locked (`flock`) for the whole of one run on `BASE`, so that a
//!   second run on the same `BASE` is refused at once, naming the first by its pid; it also
//!   holds the room reserved for the run's last map and record until they are written, and is
//!   removed when the run ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A file created for this run alone, removed on drop unless [`TempFile::persist`]ed.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    path: PathBuf,
    kept: bool,
}

/// Names tried before giving up: each is new and random, so a clash means someone is
/// creating names in this directory on purpose.
const NAME_TRIES: u32 = 16;

/// 64 unpredictable bits: std's `RandomState` keys come from the OS's random source, and
/// the counter makes two calls in one process differ.
fn unpredictable() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// A new temporary name for `dest` in its directory: `NAME.tmp-` and 16 hex digits.
fn temp_name(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the whole name under NAME_MAX (255 bytes) whatever the destination's length.
    let mut stem: String = name.chars().take(160).collect();
    if stem.is_empty() {
        stem = "exhibit".into();
    }
    dest.with_file_name(format!("{stem}.tmp-{:016x}", unpredictable()))
}

/// Opens `path` as a new file: `O_CREAT|O_EXCL|O_NOFOLLOW`, read and write.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

impl TempFile {
    /// A new empty file in `dest`'s directory, to become `dest` later.
    pub fn beside(dest: &Path) -> Result<TempFile> {
        let mut last = None;
        for _ in 0..NAME_TRIES {
            let path = temp_name(dest);
            match create_new(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        file,
                        path,
                        kept: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((path, e)),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        let (path, e) = last.expect("at least one try");
        Err(Error::io(path, e))
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames it over `dest` (which is replaced, never followed if it is a symbolic link).
    pub fn persist(mut self, dest: &Path) -> Result<()> {
        std::fs::rename(&self.path, dest).map_err(|e| Error::io(dest, e))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` through a [`TempFile`] in the same directory, synced and renamed
/// over the target, so a reader sees the old or the new file, never half of one. On failure
/// the temporary file is removed and `path` is as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // A side file of an `s3://` set is one PutObject, which is atomic by itself.
    if let Some(written) = crate::s3::store::put_if_object(path, bytes) {
        return written;
    }
    let tmp = TempFile::beside(path)?;
    let mut f = tmp.file();
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Room reserved for a run's last record and map (and hash logs), beyond its piece list: a
/// record of about four thousand unreadable runs with its map.
pub const SIDE_FILE_ROOM: u64 = 1 << 20;

/// The first line of every lock file: how a stale lock of ours is told from someone's file.
const LOCK_MAGIC: &str = "exhibit lock file:";

/// Longest lock-file text read back (what another run wrote: its pid and start).
const LOCK_TEXT_MAX: u64 = 4096;

/// `BASE.lock`, held for one run on `BASE`: `flock(LOCK_EX|LOCK_NB)` on a file opened
/// `O_NOFOLLOW`, naming this run (pid, job, start), followed by the reserved room. Dropping
/// it removes the file (while still locked, so no other run can take the old inode for a
/// live lock), which releases the lock.
#[derive(Debug)]
pub struct BaseLock {
    file: File,
    path: PathBuf,
    /// Bytes of text before the reserved room.
    text_len: u64,
}

impl BaseLock {
    /// Locks `lock_path` for a `job` (`acquisition`, `rescue`) and reserves `room` bytes in
    /// it. Refuses when another run holds it (naming that run), when it is not a regular
    /// file of its own (a link, a device, a file with other names) or holds something other
    /// than an exhibit lock, and when the filesystem has no `room` left.
    pub fn acquire(lock_path: &Path, job: &str, room: u64) -> Result<BaseLock> {
        let refuse = |why: String| Error::Refused(format!("{}: {why}", lock_path.display()));
        // A lock file removed by the run that held it, between our open and our flock, is
        // a lock on nothing: open again.
        for _ in 0..NAME_TRIES {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(lock_path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => {
                        refuse("is a symbolic link; exhibit does not follow it".into())
                    }
                    _ => Error::io(lock_path, e),
                })?;
            let meta = file.metadata().map_err(|e| Error::io(lock_path, e))?;
            if !meta.file_type().is_file() {
                return Err(refuse("is not a regular file".into()));
            }
            if meta.nlink() != 1 {
                return Err(refuse(format!(
                    "has {} names (hard links); a lock file of exhibit has one",
                    meta.nlink()
                )));
            }
            if !crate::sys::try_lock_exclusive(&file).map_err(|e| Error::io(lock_path, e))? {
                return Err(Error::Refused(format!(
                    "{} is in use by another exhibit run ({}; lock {})",
                    base_of(lock_path).display(),
                    holder(&file),
                    lock_path.display()
                )));
            }
            let same = std::fs::symlink_metadata(lock_path)
                .is_ok_and(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()));
            if !same {
                continue;
            }
            let text = lock_text(&file);
            if !(text.is_empty() || text.starts_with(LOCK_MAGIC)) {
                return Err(refuse(
                    "exists and is not an exhibit lock file; move it away".into(),
                ));
            }
            // Ours from here on: stale (its run ended without removing it) or new.
            let mut lock = BaseLock {
                file,
                path: lock_path.to_path_buf(),
                text_len: 0,
            };
            lock.write_text(job)?;
            lock.reserve(room)?;
            return Ok(lock);
        }
        Err(refuse("keeps being replaced by someone else".into()))
    }

    fn write_text(&mut self, job: &str) -> Result<()> {
        let text = format!(
            "{LOCK_MAGIC} a run writes {}.* (removed when it ends)\npid: {}\njob: {job}\nstarted: {}\n",
            base_of(&self.path).display(),
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        use std::os::unix::fs::FileExt;
        let io = |e| Error::io(&self.path, e);
        self.file.set_len(0).map_err(io)?;
        self.file.write_all_at(text.as_bytes(), 0).map_err(io)?;
        self.text_len = text.len() as u64;
        Ok(())
    }

    /// Allocates `room` bytes after the text: blocks that the end of the run gives back, so
    /// its last map and record find room even when the image filled the filesystem.
    fn reserve(&self, room: u64) -> Result<()> {
        if room == 0 {
            return Ok(());
        }
        match crate::sys::allocate(&self.file, self.text_len, room) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => self.reserve_by_writing(room),
            Err(e) => Err(self.no_room(room, e)),
        }
    }

    /// Where the filesystem cannot allocate, zeros written take the blocks instead.
    fn reserve_by_writing(&self, room: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let zeros = vec![0u8; 64 << 10];
        let mut at = self.text_len;
        let end = self.text_len + room;
        while at < end {
            let n = (end - at).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| self.no_room(room, e))?;
            at += n as u64;
        }
        self.file.sync_data().map_err(|e| self.no_room(room, e))
    }

    fn no_room(&self, room: u64, e: io::Error) -> Error {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            Error::Refused(format!(
                "no room for the record and the map beside {}: {room} bytes could not be \
                 reserved ({e})",
                base_of(&self.path).display()
            ))
        } else {
            Error::io(&self.path, e)
        }
    }

    /// Gives the reserved room back to the filesystem, for the run's last writes.
    pub fn release_room(&self) {
        let _ = self.file.set_len(self.text_len);
    }

    /// `BASE.lock`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BaseLock {
    fn drop(&mut self) {
        // Only the inode we locked: a file someone put there since is not ours to remove.
        let ours = match (std::fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        };
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `BASE` of `BASE.lock`.
fn base_of(lock_path: &Path) -> PathBuf {
    lock_path.with_extension("")
}

/// The text at the start of a lock file, up to the first NUL (the reserved room).
fn lock_text(file: &File) -> String {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; LOCK_TEXT_MAX as usize];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    let end = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Who holds a lock, from its text: `pid 1234, acquisition started 2026-…`. Only printable
/// characters are kept: the file may be anyone's, and this goes to a terminal.
fn holder(file: &File) -> String {
    let text = lock_text(file);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.chars()
                    .filter(|c| c.is_ascii_graphic() || *c == ' ')
                    .take(64)
                    .collect::<String>()
                    .trim()
                    .to_string()
            })
            .filter(|v| !v.is_empty())
    };
    match field("pid:") {
        Some(pid) => {
            let mut s = format!("pid {pid}");
            if let Some(job) = field("job:") {
                s.push_str(&format!(", {job}"));
            }
            if let Some(started) = field("started:") {
                s.push_str(&format!(" started {started}"));
            }
            s
        }
        None => "its pid is not written yet".into(),
    }
}

/// Opens an image output (raw file, split segment, E01 segment, a rescue's image) for
/// writing. Without `replace` it must not exist (`O_EXCL`); with it (`--overwrite`, or a
/// rescue resuming its own image) an existing file is opened, but never through a symbolic
/// link (`O_NOFOLLOW`) and never one with other names (hard links): writing there would change
/// a file that is not the output, perhaps evidence. `truncate` empties a replaced file.
pub fn open_output(path: &Path, replace: bool, truncate: bool, read: bool) -> Result<File> {
    if replace {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Refused(format!(
                    "{}: is a symbolic link; exhibit does not write through it (remove it or choose another -o)",
                    path.display()
                )))
            }
            Ok(m) if m.is_file() && m.nlink() > 1 => {
                return Err(Error::Refused(format!(
                    "{}: has {} names (hard links); replacing it would change the other names too",
                    path.display(),
                    m.nlink()
                )))
            }
            Ok(m) if !m.is_file() => {
                return Err(Error::Refused(format!(
                    "{}: exists and is not a regular file",
                    path.display()
                )))
            }
            _ => {}
        }
    }
    let mut oo = OpenOptions::new();
    oo.write(true)
        .read(read)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if replace {
        oo.create(true).truncate(truncate);
    } else {
        oo.create_new(true);
    }
    oo.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Error::Refused(format!(
            "{} already exists (use --overwrite to replace it)",
            path.display()
        )),
        _ if e.raw_os_error() == Some(libc::ELOOP) => Error::Refused(format!(
            "{}: is a symbolic link; exhibit does not write through it",
            path.display()
        )),
        _ => Error::io(path, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_atomically_replaces_a_link_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let dest = dir.path().join("disk.yaml");
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        write_atomically(&dest, b"record").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&dest).unwrap(), b"record");
        assert!(!std::fs::symlink_metadata(&dest)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(names(dir.path()), ["disk.yaml", "victim"]);
        // A failed write leaves the old file and no temporary one.
        let gone = dir.path().join("missing/disk.map");
        assert!(write_atomically(&gone, b"x").is_err());
        assert_eq!(names(dir.path()), ["disk.yaml", "victim"]);
    }

    #[test]
    fn temporary_names_differ_and_are_removed_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("disk.map");
        let a = TempFile::beside(&dest).unwrap();
        let b = TempFile::beside(&dest).unwrap();
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("disk.map.tmp-") && name.len() == 29,
            "{name}"
        );
        drop(a);
        b.persist(&dest).unwrap();
        assert_eq!(names(dir.path()), ["disk.map"]);
    }

    #[test]
    fn a_held_lock_refuses_a_second_run_and_is_removed_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.lock");
        let lock = BaseLock::acquire(&path, "acquisition", 1 << 20).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1 << 20);
        let err = BaseLock::acquire(&path, "rescue", 0)
            .unwrap_err()
            .to_string();
        let pid = format!("pid {}, acquisition", std::process::id());
        assert!(
            err.contains("in use by another exhibit run") && err.contains(&pid),
            "{err}"
        );
        lock.release_room();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(LOCK_MAGIC) && !text.contains('\0'),
            "{text:?}"
        );
        drop(lock);
        assert!(!path.exists());
        drop(BaseLock::acquire(&path, "rescue", 0).unwrap());
    }
}
