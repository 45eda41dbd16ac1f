//! The evidence source: opened read-only, measured (size, sector sizes), identified (vendor,
//! model, serial, firmware from sysfs, through the shared [`crate::device`] part), and guarded
//! (an output that lives on it is refused; a live source is refused by
//! [`crate::device::live::guard`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use crate::device::Identity;
use crate::device::Sysfs;
use crate::error::{Error, Result};
use crate::sys;

/// What kind of thing the source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A whole block device (disk, loop device, …).
    Disk,
    /// A partition of a block device.
    Partition,
    /// A regular file (an image).
    File,
}

/// An opened source.
pub struct Source {
    path: PathBuf,
    file: File,
    kind: SourceKind,
    size: u64,
    logical_sector_size: u32,
    physical_sector_size: u32,
    direct: bool,
    direct_note: Option<String>,
    identity: Identity,
    /// For a block device its device number; for a file (st_dev, st_ino) identify it.
    device: Option<u64>,
    file_id: (u64, u64),
}

impl Source {
    /// Opens `path` read-only. With `direct`, O_DIRECT is tried first and the plain page
    /// cache used where the filesystem refuses it (the reason is kept for the record).
    pub fn open(path: &Path, direct: bool) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            return Err(Error::Refused(format!(
                "{} is a directory; the source must be a block device, a partition or an image file",
                path.display()
            )));
        }
        if !ft.is_block_device() && !ft.is_file() {
            return Err(Error::Refused(format!(
                "{} is neither a block device nor a regular file",
                path.display()
            )));
        }
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .custom_flags(flags | libc::O_CLOEXEC | libc::O_NOATIME)
                .open(path)
                .or_else(|e| {
                    // O_NOATIME needs ownership; drop it rather than fail.
                    if e.raw_os_error() == Some(libc::EPERM) {
                        OpenOptions::new()
                            .read(true)
                            .custom_flags(flags | libc::O_CLOEXEC)
                            .open(path)
                    } else {
                        Err(e)
                    }
                })
        };
        let (file, direct, direct_note) = if direct {
            match open(libc::O_DIRECT) {
                Ok(f) => (f, true, None),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    let f = open(0).map_err(|e| Error::io(path, e))?;
                    (
                        f,
                        false,
                        Some(
                            "the filesystem does not support O_DIRECT; read through the page cache"
                                .into(),
                        ),
                    )
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        } else {
            (
                open(0).map_err(|e| Error::io(path, e))?,
                false,
                Some("O_DIRECT not requested".into()),
            )
        };

        if ft.is_block_device() {
            let size = sys::block_device_size(&file).map_err(|e| Error::io(path, e))?;
            let logical = sys::logical_sector_size(&file).map_err(|e| Error::io(path, e))?;
            let physical = sys::physical_sector_size(&file).unwrap_or(logical);
            let rdev = meta.rdev();
            let identity = Sysfs::system().identity(rdev);
            let kind = if identity.parent_disk.is_some() {
                SourceKind::Partition
            } else {
                SourceKind::Disk
            };
            Ok(Source {
                path: path.to_path_buf(),
                file,
                kind,
                size,
                logical_sector_size: logical.max(512),
                physical_sector_size: physical.max(logical),
                direct,
                direct_note,
                identity,
                device: Some(rdev),
                file_id: (meta.dev(), meta.ino()),
            })
        } else {
            Ok(Source {
                path: path.to_path_buf(),
                file,
                kind: SourceKind::File,
                size: meta.len(),
                logical_sector_size: 512,
                physical_sector_size: 512,
                direct,
                direct_note,
                identity: Identity::default(),
                device: None,
                file_id: (meta.dev(), meta.ino()),
            })
        }
    }

    /// The same source read only up to `size` bytes (a restore's read-back of a target that
    /// is larger than the media it received); never larger than it is.
    pub fn limited(mut self, size: u64) -> Source {
        self.size = self.size.min(size);
        self
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The open file (read-only).
    pub fn file(&self) -> &File {
        &self.file
    }
    /// Disk, partition or file.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }
    /// Size in bytes, fixed at open: exactly this many bytes are acquired.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Logical sector size: the unit of reads and of unreadable runs (512 for files).
    pub fn logical_sector_size(&self) -> u32 {
        self.logical_sector_size
    }
    /// Physical sector size.
    pub fn physical_sector_size(&self) -> u32 {
        self.physical_sector_size
    }
    /// Whether reads bypass the page cache (O_DIRECT).
    pub fn is_direct(&self) -> bool {
        self.direct
    }
    /// Why O_DIRECT is not in use, if it is not.
    pub fn direct_note(&self) -> Option<&str> {
        self.direct_note.as_deref()
    }
    /// What sysfs says about the device.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    /// The device number of a block-device source; `None` for a file.
    pub fn device_number(&self) -> Option<u64> {
        self.device
    }
    /// (st_dev, st_ino) of the path opened: for a file, which file it is.
    pub fn file_id(&self) -> (u64, u64) {
        self.file_id
    }

    /// Positioned read; may return fewer bytes than asked (at the end, or from a FUSE file).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Why the source is no longer there, or `None` while it is; asked after a failed read
    /// (see `reader::liveness`), because a vanished device fails reads with EIO just as a
    /// bad sector does. A block device is gone when its sysfs node is, when BLKGETSIZE64 on
    /// the open descriptor fails or no longer gives the size it had at open (an unplugged
    /// disk reports 0), or, for a loop device, when its backing file cannot be reached any
    /// more (an aborted FUSE connection: ENOTCONN). A file is gone when `fstat` on it fails
    /// or its size changed.
    pub fn gone(&self) -> Option<String> {
        let name = self.path.display();
        let sysfs = Sysfs::system();
        let Some(rdev) = self.device else {
            // fstat alone can be answered from a cache (FUSE); statfs reaches the filesystem.
            if let Err(e) = sys::filesystem_answers(&self.file) {
                return Some(format!("{name} cannot be reached: {e}"));
            }
            return match self.file.metadata() {
                Err(e) => Some(format!("{name} cannot be reached: {e}")),
                Ok(m) if m.len() != self.size => Some(format!(
                    "{name} is now {} bytes, {} at open",
                    m.len(),
                    self.size
                )),
                Ok(_) => None,
            };
        };
        if !sysfs.present(rdev) {
            return Some(format!(
                "{name} ({}) is gone from /sys/dev/block (unplugged?)",
                self.identity.kernel_name.as_deref().unwrap_or("?")
            ));
        }
        match sys::block_device_size(&self.file) {
            Err(e) => return Some(format!("{name}: BLKGETSIZE64 fails: {e}")),
            Ok(n) if n != self.size => {
                return Some(format!("{name} is now {n} bytes, {} at open", self.size))
            }
            Ok(_) => {}
        }
        if let Some(backing) = &self.identity.loop_backing_file {
            // (A partition's backing file is its disk's; sysfs names it on the disk only.)
            match sysfs
                .loop_backing_file(rdev)
                .filter(|_| self.kind == SourceKind::Disk)
            {
                None if self.kind == SourceKind::Disk => {
                    return Some(format!("{name} no longer has a backing file"))
                }
                Some(now) if &now != backing => {
                    return Some(format!("{name} is now backed by {now}, {backing} at open"))
                }
                _ => {}
            }
            // A deleted backing file (ENOENT) still serves the loop device; one that cannot be
            // reached is a dead connection or device under it.
            // (statfs, not stat: FUSE answers a stat from its attribute cache.)
            let reached = sys::filesystem_at_answers(Path::new(backing))
                .and_then(|()| std::fs::metadata(backing));
            if let Err(e) = reached {
                let unreachable = matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTCONN | libc::EIO | libc::ENODEV | libc::ENXIO | libc::ESTALE)
                );
                if unreachable {
                    return Some(format!(
                        "{name}: its backing file {backing} cannot be reached: {e}"
                    ));
                }
            }
        }
        None
    }

    /// What the drive holding the source says about itself and its hidden areas (for a
    /// partition, its disk), through read-only commands only; `None` for a file.
    pub fn drive(&self) -> Option<crate::device::DriveReport> {
        let rdev = self.device?;
        let transport = self
            .identity
            .transport
            .unwrap_or(crate::device::Transport::Unknown);
        if self.kind == SourceKind::Disk {
            return Some(crate::device::hidden::probe(
                &self.file,
                &self.path.to_string_lossy(),
                transport,
            ));
        }
        let sysfs = Sysfs::system();
        let disk = sysfs.disk_of(rdev).0;
        let name = sysfs.name(disk);
        Some(crate::device::hidden::probe_node(
            Path::new(&crate::device::list::dev_path(&name)),
            disk,
            transport,
        ))
    }

    /// Whether the kernel's read-only flag is set on the source device (`blockdev --getro`);
    /// `None` for a file.
    pub fn kernel_read_only(&self) -> Option<bool> {
        self.device?;
        sys::block_device_read_only(&self.file).ok()
    }

    /// Sets the kernel's read-only flag on the source device (BLKROSET, as `blockdev
    /// --setro`), so that nothing on this machine (an automounter, a journal replay) can write
    /// to it through this device node. It stays set after exhibit exits; `blockdev --setrw`
    /// clears it. Not a substitute for a hardware write blocker: other paths to the disk
    /// (partitions opened earlier, other nodes) are not covered.
    pub fn set_kernel_read_only(&self) -> Result<()> {
        if self.device.is_none() {
            return Err(Error::InvalidOption(format!(
                "--set-readonly: {} is a file, not a block device",
                self.path.display()
            )));
        }
        sys::set_block_device_read_only(&self.file, true).map_err(|e| Error::io(&self.path, e))
    }

    /// Refuses every path in `outputs` (all a run will create, replace, write or remove)
    /// that [`Source::refuse_output_on_source`] refuses; called before anything is written.
    pub fn refuse_outputs(&self, outputs: &[PathBuf]) -> Result<()> {
        outputs
            .iter()
            .try_for_each(|p| self.refuse_output_on_source(p))
    }

    /// Refuses an output path that is the source (by device and inode, so also through a
    /// hard or symbolic link), a file the source device reads from (the backing file of a
    /// loop device below it), or whose filesystem lives on the source: on the source device
    /// (or one of its partitions, or a device stacked on them), or for a file source on a loop
    /// device backed by that file (or stacked on one), where the output would land inside the
    /// evidence file.
    pub fn refuse_output_on_source(&self, output: &Path) -> Result<()> {
        let refuse = |why: String| Err(Error::Refused(format!("{}: {why}", output.display())));
        let sysfs = Sysfs::system();
        // An existing output: the very same file or device?
        if let Ok(meta) = std::fs::metadata(output) {
            let id = (meta.dev(), meta.ino());
            if id == self.file_id {
                return refuse("is the source itself".into());
            }
            if let Some(dev) = self.device {
                if let Some(loop_dev) = sysfs.loops_reading(&[dev], id) {
                    return refuse(format!(
                        "is the backing file of {}, which the source reads from",
                        sysfs.name(loop_dev)
                    ));
                }
            }
            if meta.file_type().is_block_device() {
                let target = meta.rdev();
                // Where the source's bytes live: its device, or for a file its filesystem's.
                let source_dev = self
                    .device
                    .or_else(|| sysfs.block_device_of_filesystem(self.file_id.0));
                if let Some(sdev) = source_dev {
                    // Writing the target changes it and every device below it; the source's
                    // bytes live on it and every device below it. Either may not contain the
                    // other.
                    let target_hits_source = sysfs
                        .expand(&[target])
                        .into_iter()
                        .find(|&t| sysfs.overlap(t, sdev));
                    let source_on_target = sysfs
                        .expand(&[sdev])
                        .into_iter()
                        .find(|&s| sysfs.overlap(s, target));
                    if let Some((a, b)) = target_hits_source
                        .map(|t| (t, sdev))
                        .or(source_on_target.map(|s| (target, s)))
                    {
                        return refuse(format!(
                            "the target device overlaps the source ({} and {})",
                            sysfs.name(a),
                            sysfs.name(b)
                        ));
                    }
                }
                return Ok(());
            }
        }
        // The devices through which the source's bytes can be written: the source device, or
        // every loop device backed by the source file.
        let source_devs = match self.device {
            Some(dev) => vec![dev],
            None => sysfs.loops_backed_by(self.file_id),
        };
        if source_devs.is_empty() {
            return Ok(());
        }
        // A file output: where does its filesystem live?
        let dir = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        // Writing a file changes the devices below its filesystem, not those the source is
        // stacked on: a loop-device source backed by a file on this same filesystem is safe.
        for fdev in sysfs.expand(&[meta.dev()]) {
            for &sdev in &source_devs {
                if !sysfs.overlap(sdev, fdev) {
                    continue;
                }
                return refuse(match self.device {
                    Some(_) => format!(
                        "its filesystem lives on the source device ({} on {})",
                        sysfs.name(fdev),
                        sysfs.name(sdev)
                    ),
                    None if fdev == sdev => format!(
                        "its filesystem lives inside the source file (on {}, whose backing file \
                         is the source)",
                        sysfs.name(sdev)
                    ),
                    None => format!(
                        "its filesystem lives inside the source file (on {}, stacked on {}, \
                         whose backing file is the source)",
                        sysfs.name(fdev),
                        sysfs.name(sdev)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Size in bytes of an open block device.
pub(crate) fn block_device_size(f: &File) -> io::Result<u64> {
    sys::block_device_size(f)
}
