//! E01 verification on top of the structural checker ([`crate::ewf::E01Image`]): every
//! container problem and every damaged chunk becomes a failed [`Check`] with its place (segment,
//! section, file offset, chunk number, media byte range); the media is decoded once and fed to
//! the hash threads; the stored `hash`/`digest` become references.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::stream::{self, PassResult};
use super::{Check, Topic, Verdict, VerifyOptions};
use crate::error::Result;
use crate::ewf::Problem;
use crate::hash::HashAlgorithm;
use crate::image::references::{self, file_name, Reference};
use crate::image::E01Media;
use crate::progress::Progress;

/// What the E01 part of a verification found.
pub(super) struct E01Verify {
    pub segments: Vec<PathBuf>,
    pub checks: Vec<Check>,
    pub refs: Vec<Reference>,
    pub pass: PassResult<()>,
}

fn problem_check(p: &Problem) -> Check {
    let topic = if p.chunk.is_some() {
        Topic::Chunk
    } else {
        Topic::Container
    };
    let mut c = Check::new(Verdict::Fail, topic, p.to_string());
    if let Some(r) = &p.media_range {
        c = c.range(r.start, r.end);
    }
    c
}

/// Sorted, merged `[start, end)` sector spans of (first, count) runs, cut at sector 2^32
/// (what `error2`'s 32-bit fields can hold; the record keeps the rest).
fn spans(runs: &[(u64, u64)]) -> Vec<(u64, u64)> {
    const LIMIT: u64 = 1 << 32;
    let mut v: Vec<(u64, u64)> = runs
        .iter()
        .filter(|r| r.1 > 0 && r.0 < LIMIT)
        .map(|&(s, n)| (s, s.saturating_add(n).min(LIMIT)))
        .collect();
    v.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in v {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// `error2` against the record's unreadable runs: the container and the record must name the
/// same sectors.
fn compare_error2(name: &str, stored: &[(u64, u64)], recorded: &[(u64, u64)]) -> Check {
    let (a, b) = (spans(stored), spans(recorded));
    let count = |v: &[(u64, u64)]| v.iter().map(|r| r.1 - r.0).sum::<u64>();
    if a == b {
        return Check::new(
            Verdict::Pass,
            Topic::AcquisitionErrors,
            format!(
                "{name} error2 lists the same {} unreadable sectors as the record",
                count(&a)
            ),
        );
    }
    let first_diff = a
        .iter()
        .zip(b.iter())
        .find(|(x, y)| x != y)
        .map(|(x, y)| {
            format!(
                "; first difference: error2 {}..{}, record {}..{}",
                x.0, x.1, y.0, y.1
            )
        })
        .unwrap_or_default();
    Check::new(
        Verdict::Fail,
        Topic::AcquisitionErrors,
        format!(
            "{name} error2 lists {} unreadable sectors in {} runs, the record {} in {} runs{first_diff}",
            count(&a),
            a.len(),
            count(&b),
            b.len()
        ),
    )
}

/// One check per run of consecutive chunks with the same fault in the same segment (a
/// truncated or missing segment would otherwise make thousands of identical lines).
fn merge_chunk_problems(problems: &[Problem]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < problems.len() {
        let first = &problems[i];
        let mut j = i + 1;
        while j < problems.len() {
            let (prev, next) = (&problems[j - 1], &problems[j]);
            let follows = match (prev.chunk, next.chunk, &prev.media_range, &next.media_range) {
                (Some(a), Some(b), Some(ra), Some(rb)) => b == a + 1 && rb.start == ra.end,
                _ => false,
            };
            if !(follows && next.message == first.message && next.segment == first.segment) {
                break;
            }
            j += 1;
        }
        if j - i == 1 {
            out.push(problem_check(first));
        } else {
            let last = &problems[j - 1];
            let (start, end) = match (&first.media_range, &last.media_range) {
                (Some(a), Some(b)) => (a.start, b.end),
                _ => (0, 0),
            };
            let mut msg = format!("{}", first.segment.display());
            if let Some(s) = &first.section {
                msg.push_str(&format!(" section {s}"));
            }
            if let Some(o) = first.offset {
                msg.push_str(&format!(" from byte {o}"));
            }
            msg.push_str(&format!(
                " chunks {}..={} ({} chunks, media bytes {start}..{end}): {}",
                first.chunk.unwrap_or(0),
                last.chunk.unwrap_or(0),
                j - i,
                first.message
            ));
            out.push(Check::new(Verdict::Fail, Topic::Chunk, msg).range(start, end));
        }
        i = j;
    }
    out
}

#[allow(clippy::too_many_arguments)]
pub(super) fn verify_e01(
    place: &crate::image::Place,
    first: &Path,
    algorithms: &[HashAlgorithm],
    piece_size: Option<u32>,
    opts: &VerifyOptions,
    add_to_total: bool,
    recorded_unreadable: Option<&[(u64, u64)]>,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<E01Verify> {
    let media = E01Media::open_in(place, first, crate::image::DEFAULT_CACHE_BYTES)?;
    let img = media.structure();
    if add_to_total {
        // No record said how large the media is: the volume section does.
        let s = progress.snapshot();
        progress.set_total(s.total + img.media_size().unwrap_or(0));
    }
    let segments = img.segment_paths();
    let mut checks: Vec<Check> = img.problems().iter().map(problem_check).collect();
    let structural = checks.len();
    let name = file_name(first);

    let refs = references::stored_in_e01(img, &name);

    if let (Some(v), false) = (img.volume(), img.error2().is_empty()) {
        let bps = u64::from(v.bytes_per_sector);
        let sectors: u64 = img.error2().iter().map(|e| u64::from(e.sector_count)).sum();
        checks.push(Check::new(
            Verdict::Note,
            Topic::AcquisitionErrors,
            format!(
                "{name} records {sectors} unreadable sectors in {} runs (error2), filled with zeros at acquisition",
                img.error2().len()
            ),
        ));
        for e in img.error2().iter().take(1000) {
            let s = u64::from(e.first_sector);
            let n = u64::from(e.sector_count);
            checks.push(
                Check::new(
                    Verdict::Note,
                    Topic::AcquisitionErrors,
                    format!("error2: sectors {s}..{} unreadable at acquisition", s + n),
                )
                .range(s * bps, (s + n) * bps),
            );
        }
    }

    let workers = crate::image::workers(opts.workers);
    let (block_len, blocks) = media.pass_buffers(workers);
    if let (Some(recorded), Some(_)) = (recorded_unreadable, img.volume()) {
        let stored: Vec<(u64, u64)> = img
            .error2()
            .iter()
            .map(|e| (u64::from(e.first_sector), u64::from(e.sector_count)))
            .collect();
        checks.push(compare_error2(&name, &stored, recorded));
    }

    let mut chunk_problems = Vec::new();
    let pass = stream::run_sized(
        algorithms,
        piece_size,
        block_len,
        blocks,
        progress,
        stop,
        |feed| {
            chunk_problems = media.stream(feed, workers)?;
            Ok(())
        },
    )?;
    let damaged = chunk_problems.len();
    checks.extend(merge_chunk_problems(&chunk_problems));
    if structural == 0 {
        checks.push(Check::new(
            Verdict::Pass,
            Topic::Container,
            format!(
                "{name}: {} segment{}, every section descriptor, table and the chain check out",
                segments.len(),
                if segments.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    if damaged == 0 && img.volume().is_some() {
        checks.push(Check::new(
            Verdict::Pass,
            Topic::Chunk,
            format!(
                "{name}: all {} chunks decode and match their checksums",
                img.chunk_count()
            ),
        ));
    }
    Ok(E01Verify {
        segments,
        checks,
        refs,
        pass,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(chunk: u64, msg: &str) -> Problem {
        Problem {
            segment: PathBuf::from("x.E02"),
            section: Some("sectors".into()),
            offset: Some(100 + chunk),
            chunk: Some(chunk),
            media_range: Some(chunk * 10..chunk * 10 + 10),
            message: msg.into(),
        }
    }

    #[test]
    fn error2_and_record_runs_compare_merged() {
        let ok = compare_error2("x", &[(10, 4), (14, 2)], &[(10, 6)]);
        assert_eq!(ok.verdict, Verdict::Pass);
        assert!(ok.message.contains("same 6 unreadable sectors"));
        let bad = compare_error2("x", &[(10, 4)], &[(10, 4), (100, 1)]);
        assert_eq!(bad.verdict, Verdict::Fail);
        // Sectors error2 cannot address are only in the record.
        let high = compare_error2("x", &[], &[(1 << 32, 8)]);
        assert_eq!(high.verdict, Verdict::Pass);
    }

    #[test]
    fn runs_of_the_same_fault_become_one_line() {
        let probs = vec![p(1, "a"), p(2, "a"), p(3, "a"), p(4, "b"), p(6, "b")];
        let c = merge_chunk_problems(&probs);
        assert_eq!(c.len(), 3);
        assert!(c[0]
            .message
            .contains("chunks 1..=3 (3 chunks, media bytes 10..40): a"));
        assert_eq!(
            c[0].media_range,
            Some(super::super::ByteRange { start: 10, end: 40 })
        );
        assert!(c[1].message.contains("chunk 4 (media bytes 40..50): b"));
        assert!(c[2].message.contains("chunk 6"));
    }
}
