//! The refusals a restore makes before it writes anything, beside those of the target opener
//! (mounted, held, too small: [`crate::sink::target::open_restore_target`]): the same target
//! named twice (also by two names of one device, or a partition and its disk), a target that
//! holds the image or the running system's root file system, and the device the image was
//! acquired from (unless `--force`). A loop device target changes only its backing file, so a
//! loop device over a file beside the image is a fine target (the tests' loop devices are).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::device::{MountTable, Sysfs};
use crate::error::{Error, Result};
use crate::source::Identity;

/// How a target is known: a device by its number, an existing file by device and inode, a
/// new file by its resolved directory and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Key {
    Device(u64),
    File(u64, u64),
    New(PathBuf),
}

impl Key {
    pub(super) fn of(path: &Path) -> Result<Key> {
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_block_device() => Ok(Key::Device(m.rdev())),
            Ok(m) => Ok(Key::File(m.dev(), m.ino())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
                let name = path.file_name().ok_or_else(|| {
                    Error::InvalidOption(format!("{}: not a file name", path.display()))
                })?;
                Ok(Key::New(dir.join(name)))
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// True when writing one changes the other: the same device or file, overlapping
    /// devices (a disk and its partition), two loop devices over one file, or a loop device
    /// and its backing file.
    fn collides(&self, other: &Key, sysfs: &Sysfs) -> bool {
        match (self, other) {
            (Key::Device(a), Key::Device(b)) => {
                let backing = |d: u64| sysfs.loop_backing_file(d);
                a == b
                    || sysfs.overlap(*a, *b)
                    || backing(*a).is_some_and(|f| backing(*b).as_ref() == Some(&f))
            }
            (Key::Device(d), Key::File(dev, ino)) | (Key::File(dev, ino), Key::Device(d)) => {
                sysfs.loops_reading(&[*d], (*dev, *ino)).is_some()
            }
            (a, b) => a == b,
        }
    }
}

/// Refuses a target named twice, and a record that is one of the targets.
pub(super) fn refuse_twice(targets: &[PathBuf], record: &Path) -> Result<Vec<Key>> {
    let sysfs = Sysfs::system();
    let keys = targets
        .iter()
        .map(|t| Key::of(t))
        .collect::<Result<Vec<_>>>()?;
    for (i, a) in keys.iter().enumerate() {
        if let Some(j) = keys[..i].iter().position(|b| a.collides(b, &sysfs)) {
            return Err(Error::Refused(format!(
                "--to {} and --to {} are the same target (one device or file, or overlapping \
                 devices): each target may be given once",
                targets[j].display(),
                targets[i].display()
            )));
        }
    }
    let rec = Key::of(record)?;
    if let Some(i) = keys.iter().position(|k| k.collides(&rec, &sysfs)) {
        return Err(Error::Refused(format!(
            "--record {} is the target {}",
            record.display(),
            targets[i].display()
        )));
    }
    Ok(keys)
}

/// The devices a write to device `dev` changes: itself and what it is built of (the slaves
/// of dm and md). A loop device's write changes only its backing file, not the device that
/// file lives on: that is [`backing_id`].
fn written_by(sysfs: &Sysfs, dev: u64) -> Vec<u64> {
    let mut seen = vec![dev];
    let mut i = 0;
    while i < seen.len() && seen.len() < 256 {
        if let Some(node) = sysfs.node(seen[i]) {
            for slave in crate::device::sysfs::entries(&node.join("slaves")) {
                if let Some(d) = sysfs.dev_of(&slave) {
                    if !seen.contains(&d) {
                        seen.push(d);
                    }
                }
            }
        }
        i += 1;
    }
    seen
}

/// (st_dev, st_ino) of the file behind loop device `dev`, if it is one.
fn backing_id(sysfs: &Sysfs, dev: u64) -> Option<(u64, u64)> {
    let f = sysfs.loop_backing_file(dev)?;
    let m = std::fs::metadata(f).ok()?;
    Some((m.dev(), m.ino()))
}

/// Refuses a target whose writing would change one of `inputs` (the image's files and side
/// files): that file itself; a device the file's bytes live on (its file system's device and
/// everything that is stacked under it, a partition of the disk, the disk of a partition);
/// the file behind a loop device that holds the file's file system, or a loop device over the
/// file itself.
pub(super) fn refuse_on_image(target: &Path, key: &Key, inputs: &[PathBuf]) -> Result<()> {
    let sysfs = Sysfs::system();
    for input in inputs {
        let Ok(m) = std::fs::metadata(input) else {
            continue;
        };
        let refuse = |why: String| {
            Err(Error::Refused(format!(
                "{}: {why}: {} is a file of the image being restored",
                target.display(),
                input.display()
            )))
        };
        let id = (m.dev(), m.ino());
        // Where the input's bytes are: a device image is the device; a file lives on its
        // file system's device.
        let home = if m.file_type().is_block_device() {
            Some(m.rdev())
        } else {
            sysfs.block_device_of_filesystem(m.dev())
        };
        let holds = home.map(|h| sysfs.expand(&[h])).unwrap_or_default();
        let file_behind = |file: (u64, u64)| {
            home.and_then(|h| sysfs.loops_reading(&[h], file))
                .map(|l| sysfs.name(l))
        };
        match key {
            Key::File(dev, ino) if (*dev, *ino) == id => {
                return refuse("it is that file (or another name of it)".into())
            }
            Key::File(dev, ino) => {
                if let Some(l) = file_behind((*dev, *ino)) {
                    return refuse(format!(
                        "it is the file behind {l}, which holds the image's file system"
                    ));
                }
            }
            Key::Device(t) => {
                for w in written_by(&sysfs, *t) {
                    if let Some(h) = holds.iter().find(|&&h| sysfs.overlap(w, h)) {
                        return refuse(format!(
                            "the image's bytes live on {} (writing {} changes it)",
                            sysfs.name(*h),
                            sysfs.name(w)
                        ));
                    }
                }
                if let Some(b) = backing_id(&sysfs, *t) {
                    if b == id {
                        return refuse("it is a loop device over that file".into());
                    }
                    if let Some(l) = file_behind(b) {
                        return refuse(format!(
                            "its backing file is behind {l}, which holds the image's file system"
                        ));
                    }
                }
            }
            Key::New(_) => {}
        }
    }
    Ok(())
}

/// Refuses a device target that holds the running system's root file system (or lies below
/// it: LVM, md, a loop device's backing file).
pub(super) fn refuse_root(target: &Path, key: &Key) -> Result<()> {
    let Key::Device(dev) = key else {
        return Ok(());
    };
    let sysfs = Sysfs::system();
    let table = MountTable::read();
    let roots = crate::device::list::root_devices(&sysfs, &table);
    if let Some(r) = roots.iter().find(|&&r| sysfs.overlap(r, *dev)) {
        return Err(Error::Refused(format!(
            "{} holds the running system's root file system (on {}): it is never a target",
            target.display(),
            sysfs.name(*r)
        )));
    }
    Ok(())
}

/// What in `target`'s identity says it is the device `acquired` describes (the record's or
/// the E01's identity of the acquired media): the same serial (and model, where both say),
/// the same WWID, or a loop device over the same file.
pub(super) fn same_device(target: &Identity, acquired: &Identity) -> Option<String> {
    let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(x), Some(y)) => !x.trim().is_empty() && x.trim() == y.trim(),
        _ => false,
    };
    let models_agree =
        target.model.is_none() || acquired.model.is_none() || same(&target.model, &acquired.model);
    if same(&target.serial, &acquired.serial) && models_agree {
        return Some(format!(
            "serial {}",
            acquired.serial.as_deref().unwrap_or_default().trim()
        ));
    }
    if same(&target.wwid, &acquired.wwid) {
        return Some(format!(
            "WWID {}",
            acquired.wwid.as_deref().unwrap_or_default()
        ));
    }
    if same(&target.loop_backing_file, &acquired.loop_backing_file) {
        return Some(format!(
            "a loop device over {}",
            acquired.loop_backing_file.as_deref().unwrap_or_default()
        ));
    }
    None
}

/// Refuses, unless `force`, a device target that is the device the image was acquired from.
pub(super) fn refuse_acquired_from(
    target: &Path,
    key: &Key,
    acquired: &Identity,
    force: bool,
) -> Result<()> {
    let Key::Device(dev) = key else {
        return Ok(());
    };
    if force {
        return Ok(());
    }
    let id = Sysfs::system().identity(*dev);
    match same_device(&id, acquired) {
        Some(why) => Err(Error::Refused(format!(
            "{} is the device this image was acquired from ({why}); writing it destroys the \
             evidence (use --force if that is really meant)",
            target.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acquired_device_is_known_by_serial_wwid_or_backing_file() {
        let id = |serial: Option<&str>, model: Option<&str>| Identity {
            serial: serial.map(str::to_string),
            model: model.map(str::to_string),
            ..Identity::default()
        };
        let a = id(Some(" S3Z9NB0K "), Some("Samsung SSD"));
        assert!(same_device(&id(Some("S3Z9NB0K"), Some("Samsung SSD")), &a).is_some());
        assert!(same_device(&id(Some("S3Z9NB0K"), None), &a).is_some());
        assert!(same_device(&id(Some("S3Z9NB0K"), Some("Other")), &a).is_none());
        assert!(same_device(&id(Some("OTHER"), Some("Samsung SSD")), &a).is_none());
        assert!(same_device(&id(None, None), &id(None, None)).is_none());
        assert!(same_device(&id(Some(""), None), &id(Some(""), None)).is_none());
        let lo = |f: &str| Identity {
            loop_backing_file: Some(f.into()),
            ..Identity::default()
        };
        assert!(same_device(&lo("/t/disk.img"), &lo("/t/disk.img")).is_some());
        assert!(same_device(&lo("/t/disk.img"), &lo("/t/other.img")).is_none());
        let w = Identity {
            wwid: Some("naa.5000".into()),
            ..Identity::default()
        };
        assert!(same_device(&w, &w).is_some());
    }

    #[test]
    fn the_device_of_the_running_root_is_refused() {
        // Only the check runs: nothing is opened for writing.
        let Some(root) = MountTable::read().root().and_then(|m| m.block_device()) else {
            eprintln!("SKIPPED: the root file system is not on a block device here");
            return;
        };
        let e = refuse_root(Path::new("/dev/root-disk"), &Key::Device(root))
            .expect_err("the root's device is refused");
        assert!(e.to_string().contains("root file system"), "{e}");
        // A device that is not below the root is not.
        let sysfs = Sysfs::system();
        let other = sysfs
            .disks()
            .into_iter()
            .filter_map(|d| sysfs.dev_of(&d))
            .find(|&d| {
                !crate::device::list::root_devices(&sysfs, &MountTable::read())
                    .iter()
                    .any(|&r| sysfs.overlap(r, d))
            });
        if let Some(dev) = other {
            refuse_root(Path::new("/dev/other"), &Key::Device(dev)).unwrap();
        }
        refuse_root(Path::new("f"), &Key::File(1, 2)).unwrap();
    }

    #[test]
    fn a_new_file_is_known_by_its_resolved_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = Key::of(&dir.path().join("t.raw")).unwrap();
        let b = Key::of(&dir.path().join(".").join("t.raw")).unwrap();
        assert_eq!(a, b);
        std::fs::write(dir.path().join("x"), b"x").unwrap();
        std::fs::hard_link(dir.path().join("x"), dir.path().join("y")).unwrap();
        let sysfs = Sysfs::system();
        let x = Key::of(&dir.path().join("x")).unwrap();
        let y = Key::of(&dir.path().join("y")).unwrap();
        assert!(x.collides(&y, &sysfs));
        assert!(!x.collides(&a, &sysfs));
    }
}
