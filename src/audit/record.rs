//! The one record builder: every job starts its record here from the source, its options,
//! the case and the command line, adds what it learned, and ends it with an [`Outcome`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Local, SecondsFormat, Utc};
use serde::Serialize;

use super::{
    errno_name, AuditRecord, HostInfo, Outcome, SourceInfo, Times, ToolInfo, UnreadableInfo,
    UnreadableRun, SCHEMA,
};
use crate::case::CaseMetadata;
use crate::error::Result;
use crate::map::BadRun;
use crate::source::Source;

/// Which job a record describes: its noun in the record's words, and whether a run that
/// stopped resumes from its map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `exhibit acquire`: one pass; a stopped run starts again.
    Acquisition,
    /// `exhibit rescue`: resumes from `BASE.map`.
    Rescue,
    /// `exhibit convert`: one pass over an image; a stopped run starts again.
    Conversion,
    /// `exhibit restore`: an image written onto targets and read back; a stopped run starts
    /// again.
    Restore,
}

impl JobKind {
    fn noun(self) -> &'static str {
        match self {
            JobKind::Acquisition => "acquisition",
            JobKind::Rescue => "rescue",
            JobKind::Conversion => "conversion",
            JobKind::Restore => "restore",
        }
    }

    /// True when running the same command again continues a stopped run.
    pub fn resumable(self) -> bool {
        self == JobKind::Rescue
    }
}

/// When a job started: the wall clock for the record, the monotonic clock for its duration.
#[derive(Clone, Copy, Debug)]
pub struct Started {
    /// UTC start.
    pub utc: DateTime<Utc>,
    /// The same moment, for durations.
    pub clock: Instant,
}

impl Started {
    /// Now.
    pub fn now() -> Self {
        Started {
            utc: Utc::now(),
            clock: Instant::now(),
        }
    }
}

/// A record being built, and where it is written.
#[derive(Debug)]
pub struct RecordBuilder {
    record: AuditRecord,
    path: PathBuf,
    kind: JobKind,
    started: Started,
}

impl RecordBuilder {
    /// The record of a job that starts now on `source`: status `running`, to be written to
    /// `path` (`BASE.yaml`). `options` are recorded as they serialize, defaults included.
    pub fn start(
        kind: JobKind,
        source: &Source,
        options: &impl Serialize,
        case: &CaseMetadata,
        command_line: &[String],
        started: Started,
        path: PathBuf,
    ) -> Self {
        let source = SourceInfo {
            path: source.path().to_path_buf(),
            kind: source.kind(),
            size: source.size(),
            logical_sector_size: source.logical_sector_size(),
            physical_sector_size: source.physical_sector_size(),
            identity: source.identity().clone(),
            kernel_read_only: source.kernel_read_only(),
            live_use: None,
            drive: None,
        };
        Self::start_from(kind, source, options, case, command_line, started, path)
    }

    /// [`Self::start`] for a job whose source is described by `source` (an image, not a
    /// device the job opened).
    pub fn start_from(
        kind: JobKind,
        source: SourceInfo,
        options: &impl Serialize,
        case: &CaseMetadata,
        command_line: &[String],
        started: Started,
        path: PathBuf,
    ) -> Self {
        let record = AuditRecord {
            schema: SCHEMA.into(),
            tool: ToolInfo::current(),
            command_line: command_line.to_vec(),
            options: serde_yaml::to_value(options).unwrap_or(serde_yaml::Value::Null),
            host: HostInfo::current(),
            case: case.clone(),
            times: Times {
                started_utc: started.utc.to_rfc3339_opts(SecondsFormat::Millis, true),
                finished_utc: None,
                host_utc_offset: Local::now().format("%:z").to_string(),
                duration_seconds: None,
            },
            source,
            partitions: None,
            partitions_error: None,
            reader: None,
            outputs: Vec::new(),
            hashes: None,
            unreadable: UnreadableInfo::default(),
            unreadable_not_in_e01: None,
            pieces: None,
            throughput: None,
            runs: Vec::new(),
            converted_from: None,
            restore: None,
            outcome: Outcome::Running.info(kind.noun(), kind.resumable()),
        };
        RecordBuilder {
            record,
            path,
            kind,
            started,
        }
    }

    /// The record so far.
    pub fn record(&self) -> &AuditRecord {
        &self.record
    }

    /// The record, to add what the job learned (reader, outputs, hashes, …).
    pub fn record_mut(&mut self) -> &mut AuditRecord {
        &mut self.record
    }

    /// `BASE.yaml`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seconds since the job started.
    pub fn elapsed(&self) -> f64 {
        self.started.clock.elapsed().as_secs_f64()
    }

    /// The unreadable runs, in `sector`-byte sectors, with the map that lists them.
    pub fn set_unreadable(&mut self, runs: &[BadRun], sector: u64, map: PathBuf) {
        self.record.unreadable = UnreadableInfo::from_runs(runs, sector, Some(map));
    }

    /// The source's partition table, or why it could not be read (recorded, never fatal).
    pub fn note_partitions(&mut self, found: Result<Option<crate::partition::PartitionTable>>) {
        let (table, error) = match found {
            Ok(table) => (table, None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.record.partitions = Some(table);
        self.record.partitions_error = error;
    }

    /// Writes the record as it stands (atomically).
    pub fn write(&self) -> Result<()> {
        self.record.write(&self.path)
    }

    /// Ends the record with `outcome` (end time, duration, status, exit code, reason) and
    /// writes it.
    pub fn finish(&mut self, outcome: &Outcome) -> Result<()> {
        let ended = Utc::now();
        let seconds = self.elapsed();
        let times = &mut self.record.times;
        times.finished_utc = Some(ended.to_rfc3339_opts(SecondsFormat::Millis, true));
        times.duration_seconds = Some(seconds);
        self.record.outcome = outcome.info(self.kind.noun(), self.kind.resumable());
        self.write()
    }

    /// The record, and where it was written.
    pub fn into_parts(self) -> (AuditRecord, PathBuf) {
        (self.record, self.path)
    }
}

impl UnreadableInfo {
    /// The record's list of `runs`, in `sector`-byte sectors, with the map that lists them.
    pub fn from_runs(runs: &[BadRun], sector: u64, map: Option<PathBuf>) -> Self {
        UnreadableInfo {
            sectors: runs.iter().map(|r| r.length.div_ceil(sector)).sum(),
            bytes: runs.iter().map(|r| r.length).sum(),
            map,
            runs: runs
                .iter()
                .map(|r| UnreadableRun {
                    first_sector: r.offset / sector,
                    sector_count: r.length.div_ceil(sector),
                    offset: r.offset,
                    length: r.length,
                    errno: r.errno,
                    error: errno_name(r.errno),
                    attempts: r.attempts,
                })
                .collect(),
        }
    }
}
