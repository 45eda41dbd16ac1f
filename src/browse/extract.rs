//! `exhibit extract IMAGE pN:/PATH… -o DIR`: files and whole directories copied out of the
//! image's file systems into `DIR/pN/PATH`, with their modification times (links' too), and
//! `DIR/extract.yaml`: the image and its stored hashes, and each path with its size and
//! SHA-256 (or why it was skipped or failed).
//!
//! `DIR` is new or empty; nothing in it is overwritten (files are created `O_EXCL|O_NOFOLLOW`,
//! directories with `mkdir`), and only directories this run created are descended into, so a
//! name in the image can never lead a write outside `DIR`: names with `/` or NUL, `.`, `..`
//! are refused; links are made as links, never followed. A file whose data cannot be read
//! (a damaged E01 chunk, a corrupt file system) is left out and named with the reason; the
//! others are still extracted (exit 1).

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use sha2::Digest;

use super::{open_fs, open_image, parse_target, Opened, Place};
use crate::error::{Error, Result};
use crate::fs::{path_text, Entry, FsPath, Kind, Time};

/// Directories deeper than this are not descended into (a loop, or hostile nesting).
pub const MAX_DEPTH: usize = 256;
/// Entries one extraction handles at most.
pub const MAX_ITEMS: usize = 1 << 22;
/// The record's name in `DIR`.
pub const RECORD_NAME: &str = "extract.yaml";

/// What to extract.
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    /// Any file of the image.
    pub image: PathBuf,
    /// `pN:/PATH` each.
    pub targets: Vec<OsString>,
    /// The output directory (new, or empty).
    pub output: PathBuf,
    /// Decoded E01 chunks kept, in bytes.
    pub cache_bytes: usize,
    /// argv, for the record.
    pub command_line: Vec<String>,
}

/// One extracted (or skipped) path.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    /// `p1:/etc/passwd`.
    pub path: String,
    /// Where it went, relative to `DIR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// file, dir, symlink, special.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Bytes.
    pub size: u64,
    /// Modification time in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Inode or MFT number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// SHA-256 of the data (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A link's target (made as a link, not followed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why it was not extracted, when that is by policy (a device, a FIFO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why it could not be extracted (damage, a refused name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The image as the record names it.
#[derive(Clone, Debug, Serialize)]
pub struct ImageDoc {
    /// The path given.
    pub path: String,
    /// raw, split raw, E01.
    pub format: String,
    /// The image's files.
    pub files: Vec<String>,
    /// Media bytes.
    pub media_size: u64,
    /// Hashes stored in the image, its record and hash logs (what `exhibit info` shows).
    pub stored_hashes: Vec<crate::image::describe::StoredHash>,
}

/// Totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Files written.
    pub files: u64,
    /// Directories made.
    pub directories: u64,
    /// Links made.
    pub links: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Left out by policy.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
}

/// `DIR/extract.yaml`.
#[derive(Clone, Debug, Serialize)]
pub struct ExtractRecord {
    /// `exhibit-extract/1`.
    pub schema: &'static str,
    /// exhibit's version and git revision.
    pub tool: String,
    /// argv.
    pub command_line: Vec<String>,
    /// UTC.
    pub started: String,
    /// UTC.
    pub finished: String,
    /// False when the run stopped early (see `stopped`).
    pub complete: bool,
    /// Why it stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The image.
    pub image: ImageDoc,
    /// The file systems read.
    pub volumes: Vec<Place>,
    /// Totals.
    pub totals: Totals,
    /// Every path, in the order extracted.
    pub items: Vec<Item>,
}

/// What the run did.
#[derive(Clone, Debug)]
pub struct ExtractReport {
    /// `DIR/extract.yaml`.
    pub record: PathBuf,
    /// Totals.
    pub totals: Totals,
    /// One line per failed path.
    pub failures: Vec<String>,
}

impl ExtractReport {
    /// 0 everything asked for was extracted (specials skipped by policy count as done);
    /// 1 some path failed.
    pub fn exit_code(&self) -> i32 {
        if self.failures.is_empty() {
            crate::audit::exit::COMPLETE
        } else {
            crate::audit::exit::FINDINGS
        }
    }
}

fn interrupted() -> Error {
    Error::Interrupted("a signal (SIGINT or SIGTERM)")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Refuses a `DIR` that exists and is not an empty directory (or is a link).
fn check_output(dir: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(dir, e)),
        Ok(m) if m.file_type().is_symlink() => Err(Error::Refused(format!(
            "{}: is a symbolic link; exhibit does not write through it",
            dir.display()
        ))),
        Ok(m) if !m.is_dir() => Err(Error::Refused(format!(
            "{} exists and is not a directory",
            dir.display()
        ))),
        Ok(_) => {
            let mut it = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            if it.next().is_some() {
                return Err(Error::Refused(format!(
                    "{} exists and is not empty; extract into a new or empty directory",
                    dir.display()
                )));
            }
            Ok(true)
        }
    }
}

/// A name from the image that may become one path component in `DIR`.
fn safe_name(name: &[u8]) -> std::result::Result<&OsStr, String> {
    if name.is_empty() || name == b"." || name == b".." {
        return Err("its name would leave its directory".into());
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err("its name holds '/' or NUL, which would leave its directory".into());
    }
    if name.len() > 255 {
        return Err("its name is longer than 255 bytes".into());
    }
    Ok(OsStr::from_bytes(name))
}

struct Run<'a> {
    out_dir: &'a Path,
    stop: &'a AtomicBool,
    made: HashSet<PathBuf>,
    items: Vec<Item>,
    totals: Totals,
    failures: Vec<String>,
    /// Directories made, with their times, set once their contents are in.
    dir_times: Vec<(PathBuf, Time)>,
}

fn rel(out_dir: &Path, p: &Path) -> String {
    crate::text::path_text(p.strip_prefix(out_dir).unwrap_or(p)).into_owned()
}

impl Run<'_> {
    fn item(&self, label: &str, path: &FsPath, e: &Entry, out: Option<&Path>) -> Item {
        Item {
            path: format!("{label}:{}", path_text(path)),
            output: out.map(|p| rel(self.out_dir, p)),
            kind: e.kind,
            size: e.size,
            modified: e.modified.map(|t| t.rfc3339()),
            id: e.id,
            sha256: None,
            target: None,
            skipped: None,
            error: None,
        }
    }

    fn fail(&mut self, mut item: Item, why: String) {
        self.failures
            .push(format!("{}: {}", item.path, crate::text::printable(&why)));
        item.error = Some(why);
        self.totals.failed += 1;
        self.items.push(item);
    }

    /// Makes `dir` (under `DIR`) and every parent this run has not made yet; a parent that
    /// exists but was not made by this run is refused.
    fn make_dirs(&mut self, dir: &Path) -> std::result::Result<(), String> {
        if dir == self.out_dir || self.made.contains(dir) {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.make_dirs(parent)?;
        }
        std::fs::create_dir(dir).map_err(|e| format!("{}: {e}", rel(self.out_dir, dir)))?;
        self.made.insert(dir.to_path_buf());
        Ok(())
    }

    /// Extracts `path` (what `e` describes) of `o` to `dest`, a directory's contents too.
    fn extract(
        &mut self,
        o: &mut Opened,
        path: Vec<Vec<u8>>,
        e: Entry,
        dest: PathBuf,
    ) -> Result<()> {
        let mut stack = vec![(path, e, dest, 0usize, Vec::<u64>::new())];
        while let Some((path, e, dest, depth, ancestors)) = stack.pop() {
            if self.stop.load(Ordering::Relaxed) {
                return Err(interrupted());
            }
            if self.items.len() >= MAX_ITEMS {
                let item = self.item(&o.label, &path, &e, None);
                self.fail(
                    item,
                    format!("more than {MAX_ITEMS} entries in one extraction"),
                );
                break;
            }
            let mut item = self.item(&o.label, &path, &e, Some(&dest));
            match e.kind {
                Kind::Dir => {
                    if depth > MAX_DEPTH {
                        self.fail(item, format!("nested deeper than {MAX_DEPTH} directories"));
                        continue;
                    }
                    if e.id.is_some_and(|id| ancestors.contains(&id)) {
                        self.fail(item, "the directory contains itself (a loop)".into());
                        continue;
                    }
                    let children = match o.fs.list(&path) {
                        Ok(c) => c,
                        Err(err) => {
                            self.fail(item, err.to_string());
                            continue;
                        }
                    };
                    if let Err(why) = self.make_dirs(&dest) {
                        self.fail(item, why);
                        continue;
                    }
                    if let Some(t) = e.modified {
                        self.dir_times.push((dest.clone(), t));
                    }
                    self.totals.directories += 1;
                    self.items.push(item);
                    let mut anc = ancestors.clone();
                    anc.extend(e.id);
                    // Reversed onto the stack: extracted in name order.
                    let mut children = children;
                    children.sort_by(|a, b| b.name.cmp(&a.name));
                    for c in children {
                        let mut cp = path.clone();
                        cp.push(c.name.clone());
                        match safe_name(&c.name) {
                            Ok(n) => {
                                let cd = dest.join(n);
                                stack.push((cp, c, cd, depth + 1, anc.clone()));
                            }
                            Err(why) => {
                                let it = self.item(&o.label, &cp, &c, None);
                                self.fail(it, why);
                            }
                        }
                    }
                }
                Kind::File => self.file(o, &path, &e, &dest, item)?,
                Kind::Symlink => {
                    let made =
                        o.fs.read_link(&path)
                            .map_err(|err| err.to_string())
                            .and_then(|t| {
                                item.target = Some(crate::fs::name_text(&t));
                                let parent = dest.parent().unwrap_or(self.out_dir).to_path_buf();
                                self.make_dirs(&parent)?;
                                std::os::unix::fs::symlink(OsStr::from_bytes(&t), &dest)
                                    .map_err(|err| format!("{}: {err}", rel(self.out_dir, &dest)))
                            });
                    match made {
                        Ok(()) => {
                            if let Some(t) = e.modified {
                                // The link's own time; its target is never touched.
                                let _ = crate::sys::set_modified_nofollow(&dest, t.secs, t.nanos);
                            }
                            self.totals.links += 1;
                            self.items.push(item);
                        }
                        Err(why) => self.fail(item, why),
                    }
                }
                Kind::Special => {
                    item.output = None;
                    item.skipped =
                        Some("a device, FIFO, socket or reparse point: not extracted".into());
                    self.totals.skipped += 1;
                    self.items.push(item);
                }
            }
        }
        Ok(())
    }

    /// One file: data from the image into a new file, hashed on the way; its time set.
    /// An output that cannot be written stops the run (`Err`); damage in the image fails
    /// only this file.
    fn file(
        &mut self,
        o: &mut Opened,
        path: &FsPath,
        e: &Entry,
        dest: &Path,
        mut item: Item,
    ) -> Result<()> {
        if e.size > o.place.bytes {
            let why = format!(
                "it claims {} bytes, more than its partition holds ({}): damaged, or sparse",
                e.size, o.place.bytes
            );
            self.fail(item, why);
            return Ok(());
        }
        let parent = dest.parent().unwrap_or(self.out_dir).to_path_buf();
        if let Err(why) = self.make_dirs(&parent) {
            self.fail(item, why);
            return Ok(());
        }
        if std::fs::symlink_metadata(dest).is_ok() {
            let why = format!(
                "{} exists already: two names in the image (or two targets) lead to it",
                rel(self.out_dir, dest)
            );
            self.fail(item, why);
            return Ok(());
        }
        let mut file = match crate::exclusive::open_output(dest, false, false, false) {
            Ok(f) => f,
            Err(err) => {
                self.fail(item, err.to_string());
                return Ok(());
            }
        };
        let mut sha = sha2::Sha256::new();
        let mut write_error = None;
        let stop = self.stop;
        let read = o.fs.read(path, &mut |chunk: &[u8]| {
            if stop.load(Ordering::Relaxed) {
                return Err(interrupted());
            }
            sha.update(chunk);
            file.write_all(chunk).map_err(|err| {
                let e = Error::Write {
                    path: dest.to_path_buf(),
                    offset: 0,
                    source: err,
                };
                write_error = Some(e.to_string());
                e
            })
        });
        if stop.load(Ordering::Relaxed) {
            drop(file);
            let _ = std::fs::remove_file(dest);
            return Err(interrupted());
        }
        if let Some(why) = write_error {
            let _ = std::fs::remove_file(dest);
            self.fail(item, why.clone());
            return Err(Error::Refused(format!(
                "stopped: {}",
                crate::text::printable(&why)
            )));
        }
        let outcome = match read {
            Ok(n) if n == e.size => Ok(n),
            Ok(n) => Err(format!(
                "{n} of its {} bytes could be read: the file system is damaged",
                e.size
            )),
            Err(err) => Err(err.to_string()),
        };
        match outcome {
            Ok(n) => {
                if let Some(t) = e.modified.and_then(|t| t.system_time()) {
                    let _ = file.set_modified(t);
                }
                if let Err(err) = file.sync_all() {
                    return Err(Error::Write {
                        path: dest.to_path_buf(),
                        offset: n,
                        source: err,
                    });
                }
                item.sha256 = Some(crate::hash::to_hex(&sha.finalize()));
                self.totals.files += 1;
                self.totals.bytes += n;
                self.items.push(item);
            }
            Err(why) => {
                drop(file);
                let _ = std::fs::remove_file(dest);
                item.output = None;
                self.fail(item, why);
            }
        }
        Ok(())
    }

    /// Sets the directories' times, deepest first, once nothing more is written into them.
    fn set_dir_times(&mut self) {
        for (dir, t) in self.dir_times.drain(..).rev() {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(&dir);
            if let (Ok(f), Some(t)) = (f, t.system_time()) {
                let _ = f.set_modified(t);
            }
        }
    }
}

/// Extracts `opts.targets` into `opts.output`; `stop` (a signal) ends the run between two
/// chunks, with the record saying so and the file in progress removed.
pub fn extract(opts: &ExtractOptions, stop: &AtomicBool) -> Result<ExtractReport> {
    let started = now();
    if opts.targets.is_empty() {
        return Err(Error::InvalidOption(
            "give at least one pN:/PATH to extract".into(),
        ));
    }
    let existed = check_output(&opts.output)?;
    let targets = opts
        .targets
        .iter()
        .map(|t| parse_target(t))
        .collect::<Result<Vec<_>>>()?;
    let image = open_image(&opts.image, opts.cache_bytes)?;
    // Each file system once, and every path looked up before anything is written.
    let mut volumes: BTreeMap<Option<u32>, Opened> = BTreeMap::new();
    let mut todo = Vec::new();
    for t in targets {
        let o = match volumes.entry(t.partition) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(open_fs(&image, t.partition)?)
            }
        };
        let e = o.fs.stat(&t.path)?;
        todo.push((t, e));
    }
    if !existed {
        std::fs::create_dir(&opts.output).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Refused(format!(
                "the directory that would hold {} does not exist",
                opts.output.display()
            )),
            _ => Error::io(&opts.output, e),
        })?;
    }
    let mut run = Run {
        out_dir: &opts.output,
        stop,
        made: HashSet::new(),
        items: Vec::new(),
        totals: Totals::default(),
        failures: Vec::new(),
        dir_times: Vec::new(),
    };
    let mut stopped = None;
    for (t, e) in todo {
        let o = volumes.get_mut(&t.partition).expect("opened above");
        let mut dest = opts.output.join(&o.label);
        for c in &t.path {
            // Parsed from the command line: no '/' and no '..' in a component.
            dest.push(OsStr::from_bytes(c));
        }
        if let Err(err) = run.extract(o, t.path, e, dest) {
            stopped = Some(err);
            break;
        }
    }
    run.set_dir_times();
    let info = crate::image::describe::describe(&opts.image).ok();
    let record = ExtractRecord {
        schema: "exhibit-extract/1",
        tool: format!(
            "{} {} ({})",
            crate::TOOL_NAME,
            crate::VERSION,
            crate::GIT_REVISION
        ),
        command_line: opts.command_line.clone(),
        started,
        finished: now(),
        complete: stopped.is_none(),
        stopped: stopped.as_ref().map(|e| e.to_string()),
        image: ImageDoc {
            path: crate::text::path_text(&opts.image).into_owned(),
            format: image.format().name().to_string(),
            files: image
                .files()
                .iter()
                .map(|p| crate::text::path_text(p).into_owned())
                .collect(),
            media_size: image.media_size(),
            stored_hashes: info.map(|i| i.stored_hashes).unwrap_or_default(),
        },
        volumes: volumes.values().map(|o| o.place.clone()).collect(),
        totals: run.totals.clone(),
        items: std::mem::take(&mut run.items),
    };
    let path = opts.output.join(RECORD_NAME);
    let text = crate::audit::yaml::to_string(&record)
        .map_err(|e| Error::Internal(format!("extract.yaml: {e}")))?;
    // Through a new file: a name in the image cannot have become extract.yaml (files go
    // under DIR/pN/), and nothing else is replaced.
    let mut f = crate::exclusive::open_output(&path, false, false, false)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::Write {
            path: path.clone(),
            offset: 0,
            source: e,
        })?;
    if let Some(e) = stopped {
        return Err(e);
    }
    Ok(ExtractReport {
        record: path,
        totals: run.totals,
        failures: run.failures,
    })
}
