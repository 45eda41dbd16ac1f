//! Which split raw segment is missing or short. The pass reads the segments that exist; a
//! missing or short segment before the last shifts every later byte, so the piece list would
//! name the intact segments after it. With the record's segment list and sizes the pass reads
//! the gap as zeros and names exactly the segment that lost bytes; without a record a gap in
//! the names is at least said.

use std::path::Path;

use super::plan::Plan;
use super::refs::file_name;
use super::{Check, ImageFormat, Topic, Verdict};
use crate::audit::AuditRecord;
use crate::sink::raw::split_name;

/// When `plan` is a split raw image whose first segment the record beside it lists, reads the
/// record's segments at their recorded sizes, and fails each one that is missing or short.
pub(super) fn use_recorded(plan: &mut Plan, record: &AuditRecord, checks: &mut Vec<Check>) {
    if plan.format != ImageFormat::SplitRaw || plan.recorded_sizes.is_some() {
        return;
    }
    let Some(first) = plan.files.first().cloned() else {
        return;
    };
    let listed: Vec<_> = record
        .outputs
        .iter()
        .filter(|o| o.kind == "raw-segment")
        .collect();
    if listed.first().and_then(|o| o.path.file_name()) != first.file_name() {
        return;
    }
    let dir = first.parent().unwrap_or(Path::new(""));
    let mut files = Vec::with_capacity(listed.len());
    for o in &listed {
        let p = dir.join(o.path.file_name().unwrap_or(o.path.as_os_str()));
        match std::fs::metadata(&p) {
            Err(_) => checks.push(Check::new(
                Verdict::Fail,
                Topic::Output,
                format!(
                    "{} is missing: the record lists it with {} bytes; its media reads as zeros",
                    file_name(&p),
                    o.size
                ),
            )),
            Ok(m) if m.len() < o.size => checks.push(Check::new(
                Verdict::Fail,
                Topic::Output,
                format!(
                    "{} is {} bytes, the record says {}: it is short",
                    file_name(&p),
                    m.len(),
                    o.size
                ),
            )),
            Ok(_) => {}
        }
        files.push(p);
    }
    plan.recorded_sizes = Some(listed.iter().map(|o| o.size).collect());
    plan.files = files;
}

/// Without a record: fails a split set whose numbering has a gap (`BASE.002` missing while
/// `BASE.003` exists), since the pass stops at the gap.
pub(super) fn gap(plan: &Plan, checks: &mut Vec<Check>) {
    if plan.format != ImageFormat::SplitRaw || plan.recorded_sizes.is_some() {
        return;
    }
    let Some(last) = plan.files.last() else {
        return;
    };
    let Some(base) = last
        .to_str()
        .and_then(|s| s.rsplit_once('.'))
        .map(|(b, _)| b)
    else {
        return;
    };
    let n = plan.files.len() as u64;
    let later: Vec<String> = (n + 2..n + 100)
        .map(|k| split_name(Path::new(base), k))
        .filter(|p| p.exists())
        .take(3)
        .map(|p| file_name(&p))
        .collect();
    if !later.is_empty() {
        checks.push(Check::new(
            Verdict::Fail,
            Topic::Output,
            format!(
                "{} is missing: the set stops at {} but {} exist{}; only the segments before the gap are read",
                file_name(&split_name(Path::new(base), n + 1)),
                file_name(last),
                later.join(", "),
                if later.len() == 1 { "s" } else { "" }
            ),
        ));
    }
}
