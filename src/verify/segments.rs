//! Which split raw segment is missing or short. A missing or short segment before the last
//! shifts every later byte, so placing damage by the files as they are would name the intact
//! segments after it. Verify by the record reads the record's sizes (the gap as zeros) and
//! places damage by them; given a segment, the record beside it names the segment that lost
//! bytes, damage is placed up to the first short segment only, and a gap in the numbering
//! is said even without a record.

use std::path::Path;

use super::plan::Plan;
use super::{Check, ImageFormat, Topic, Verdict};
use crate::audit::AuditRecord;
use crate::image::references::file_name;
use crate::sink::raw::split_name;

/// When `plan` is a split raw image whose first segment the record beside it lists, fails
/// each listed segment that is missing or short, by name. The pass still reads the files as
/// they are (given one segment, verify reads what is there); [`first_short`] keeps the damage
/// lines from blaming the intact segments after a short one.
pub(super) fn recorded_checks(plan: &Plan, record: &AuditRecord, checks: &mut Vec<Check>) {
    if plan.format != ImageFormat::SplitRaw || plan.recorded_sizes.is_some() {
        return;
    }
    let Some(first) = plan.files.first() else {
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
    let place = &plan.place;
    let dir = first.parent().unwrap_or(Path::new(""));
    for (i, o) in listed.iter().enumerate() {
        let p = dir.join(o.path.file_name().unwrap_or(o.path.as_os_str()));
        let later = if i + 1 < listed.len() {
            ": every later byte is read out of place or not at all"
        } else {
            ""
        };
        match place.metadata(&p) {
            Err(_) => checks.push(Check::new(
                Verdict::Fail,
                Topic::Output,
                format!(
                    "{} is missing (the record lists it with {} bytes){later}",
                    file_name(&p),
                    o.size
                ),
            )),
            Ok(m) if m.len < o.size => checks.push(Check::new(
                Verdict::Fail,
                Topic::Output,
                format!(
                    "{} is {} bytes, the record says {}: it is short{later}",
                    file_name(&p),
                    m.len,
                    o.size
                ),
            )),
            Ok(_) => {}
        }
    }
}

/// The first segment before the last that is shorter than the first segment (split segments
/// are all as large as the first but the last): every media byte after it is shifted, so a
/// damaged range past it is not in the segments that hold it now.
pub(super) fn first_short(sizes: &[u64]) -> Option<usize> {
    let nominal = *sizes.first()?;
    sizes
        .iter()
        .take(sizes.len().saturating_sub(1))
        .position(|&s| s < nominal)
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
        .filter(|p| plan.place.exists(p))
        .take(3)
        .map(|p| file_name(&p))
        .collect();
    let missing = file_name(&split_name(Path::new(base), n + 1));
    let said = checks
        .iter()
        .any(|c| c.message.starts_with(&format!("{missing} is missing")));
    if !later.is_empty() && !said {
        checks.push(Check::new(
            Verdict::Fail,
            Topic::Output,
            format!(
                "{} is missing: the set stops at {} but {} exist{}; only the segments before the gap are read",
                missing,
                file_name(last),
                later.join(", "),
                if later.len() == 1 { "s" } else { "" }
            ),
        ));
    }
}
