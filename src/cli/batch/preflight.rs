//! What is refused before any job of a batch starts: whatever `exhibit acquire` itself would
//! refuse before touching anything ([`AcquireOptions::plan`] on each opened source), two jobs
//! reading one source (by device number or by device and inode, so also under two names),
//! two jobs writing one file (by the directory's device and inode and the name; a clone
//! target by its device number), and a job writing onto another job's source (the same
//! refusal acquire makes for its own source: [`Source::refuse_outputs`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use exhibit::source::Source;
use exhibit::text::printable_path as p;

use super::jobs::Job;

/// What the batch keeps of each job's check: the source's logical sector size (unreadable
/// bytes are counted in its sectors).
pub struct Checked {
    /// Logical sector size of the source.
    pub sector_size: u32,
}

/// Where a path writes: one device, or one name in one directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Place {
    Device(u64),
    Name { dir: (u64, u64), name: OsString },
}

fn place(path: &Path) -> Option<Place> {
    if let Ok(m) = std::fs::metadata(path) {
        if m.file_type().is_block_device() {
            return Some(Place::Device(m.rdev()));
        }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let d = std::fs::metadata(dir).ok()?;
    Some(Place::Name {
        dir: (d.dev(), d.ino()),
        name: path.file_name()?.to_os_string(),
    })
}

/// Every refusal, or one line naming the jobs; `jobs_file` is not an output either.
pub fn check(jobs_file: &Path, jobs: &[Job]) -> Result<Vec<Checked>, String> {
    let mut opened: Vec<(Source, Vec<PathBuf>)> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let o = &job.options;
        let named = |e: exhibit::Error| format!("job {} ({}): {e}", job.number, p(&o.source));
        let source = Source::open(&o.source, o.reader.direct).map_err(named)?;
        let guarded = o
            .plan(&source)
            .and_then(|set| set.guarded())
            .map_err(named)?;
        opened.push((source, guarded));
    }

    let mut sources: HashMap<(bool, u64, u64), usize> = HashMap::new();
    for (i, (source, _)) in opened.iter().enumerate() {
        let id = match source.device_number() {
            Some(rdev) => (true, rdev, 0),
            None => (false, source.file_id().0, source.file_id().1),
        };
        if let Some(&first) = sources.get(&id) {
            return Err(format!(
                "job {} and job {} read the same source ({} and {}): one drive, one job",
                jobs[first].number,
                jobs[i].number,
                p(&jobs[first].options.source),
                p(&jobs[i].options.source)
            ));
        }
        sources.insert(id, i);
    }

    // Objects have no directory identity: two jobs on one s3:// BASE are found by name.
    let mut bases: HashMap<String, usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let base = job.options.base.to_string_lossy().into_owned();
        if !exhibit::s3::is_s3(&base) {
            continue;
        }
        if let Some(&other) = bases.get(&base) {
            return Err(format!(
                "job {} and job {} both write {}: outputs overlap",
                jobs[other].number,
                job.number,
                exhibit::text::printable(&base)
            ));
        }
        bases.insert(base, i);
    }

    let mut places: HashMap<Place, usize> = HashMap::new();
    let jobs_file = place(jobs_file);
    for (i, (_, guarded)) in opened.iter().enumerate() {
        for path in guarded {
            let Some(at) = place(path) else { continue };
            if Some(&at) == jobs_file.as_ref() {
                return Err(format!(
                    "job {} would write {}, the jobs file itself",
                    jobs[i].number,
                    p(path)
                ));
            }
            match places.get(&at) {
                Some(&other) if other != i => {
                    return Err(format!(
                        "job {} and job {} both write {}: outputs overlap",
                        jobs[other].number,
                        jobs[i].number,
                        p(path)
                    ));
                }
                _ => {
                    places.insert(at, i);
                }
            }
        }
    }

    for (i, (_, guarded)) in opened.iter().enumerate() {
        for (j, (other, _)) in opened.iter().enumerate() {
            if i != j {
                other.refuse_outputs(guarded).map_err(|e| {
                    format!(
                        "job {}'s outputs against job {}'s source {}: {e}",
                        jobs[i].number,
                        jobs[j].number,
                        p(other.path())
                    )
                })?;
            }
        }
    }
    Ok(opened
        .iter()
        .map(|(s, _)| Checked {
            sector_size: s.logical_sector_size(),
        })
        .collect())
}
