//! The tables of an E01 set: each `table` (or its `table2` copy) turned into chunk places,
//! checked for order and bounds, and the counts of the volume checked against them.

use std::path::Path;

use super::*;

impl E01Image {
    /// Turns a table (or its table2, when the table is damaged and the copy is not) into
    /// chunk locations, checking order and bounds.
    pub(super) fn commit_table(
        &mut self,
        seg: usize,
        path: &Path,
        p: PendingTable,
        table2: Option<format::Table>,
        probs: &mut Vec<Problem>,
    ) {
        let ok = |t: &format::Table| t.header_ok && t.entries_ok;
        if let Some(t) = &p.table {
            if !t.header_ok {
                probs.push(problem(
                    path,
                    Some("table"),
                    Some(p.offset),
                    "table header Adler-32 mismatch".into(),
                ));
            }
            if !t.entries_ok {
                probs.push(problem(
                    path,
                    Some("table"),
                    Some(p.offset),
                    "table entries Adler-32 mismatch".into(),
                ));
            }
        }
        let chosen = match (p.table, table2) {
            (Some(t), _) if ok(&t) => t,
            (_, Some(t2)) if ok(&t2) => {
                probs.push(problem(
                    path,
                    Some("table"),
                    Some(p.offset),
                    "damaged table: chunks located with table2".into(),
                ));
                t2
            }
            (Some(t), _) => t,
            (None, Some(t2)) => t2,
            (None, None) => return,
        };
        let Some((data_start, data_end)) = p.sectors else {
            probs.push(problem(
                path,
                Some("table"),
                Some(p.offset),
                "table without a sectors section before it".into(),
            ));
            return;
        };
        if data_end != p.offset {
            probs.push(problem(
                path,
                Some("table"),
                Some(p.offset),
                "table does not directly follow its sectors section".into(),
            ));
        }
        let first_chunk = self.chunks.len() as u64;
        let mut prev: Option<u64> = None;
        // Every chunk takes at least one byte of its sectors section: entries past that are
        // forged (a 16 MiB table of 4 M entries over a few bytes of data), and not kept.
        let room = usize::try_from(data_end.saturating_sub(data_start)).unwrap_or(usize::MAX);
        if chosen.entries.len() > room {
            probs.push(problem(
                path,
                Some("table"),
                Some(p.offset),
                format!(
                    "table lists {} chunks but its sectors section holds only {room} bytes; \
                     the entries past {room} are not used",
                    chosen.entries.len()
                ),
            ));
        }
        let entries = &chosen.entries[..chosen.entries.len().min(room)];
        // Problems with single entries: the first few one by one, the rest in one line.
        let mut listed = 0usize;
        let mut more: Option<(u64, u64, usize)> = None; // first chunk, last chunk, count
        let abs: Vec<u64> = entries
            .iter()
            .map(|e| {
                chosen
                    .base_offset
                    .saturating_add(u64::from(e & !COMPRESSED_FLAG))
            })
            .collect();
        for (k, e) in entries.iter().enumerate() {
            let a = abs[k];
            let end = abs.get(k + 1).copied().unwrap_or(p.offset);
            let chunk = first_chunk + k as u64;
            let mut bad = None;
            if a < data_start || a >= data_end {
                bad = Some(format!(
                    "chunk offset {a} outside its sectors section {data_start}..{data_end}"
                ));
            } else if prev.is_some_and(|q| a <= q) || end <= a {
                bad = Some(format!(
                    "chunk offset {a} out of order (table entries must increase)"
                ));
            }
            if let Some(m) = bad {
                if listed < MAX_ENTRY_PROBLEMS {
                    listed += 1;
                    probs.push(Problem {
                        segment: path.to_path_buf(),
                        section: Some("table".into()),
                        offset: Some(p.offset),
                        chunk: Some(chunk),
                        media_range: None,
                        message: m,
                    });
                } else {
                    let m = more.get_or_insert((chunk, chunk, 0));
                    m.1 = chunk;
                    m.2 += 1;
                }
            }
            prev = Some(a);
            self.chunks.push(ChunkLoc {
                segment: seg,
                offset: a,
                size: end.saturating_sub(a),
                compressed: e & COMPRESSED_FLAG != 0,
            });
        }
        if let Some((a, b, n)) = more {
            probs.push(Problem {
                segment: path.to_path_buf(),
                section: Some("table".into()),
                offset: Some(p.offset),
                chunk: Some(a),
                media_range: None,
                message: format!(
                    "and {n} more entries of this table out of place or out of order \
                     (chunks {a}..={b})"
                ),
            });
        }
    }

    pub(super) fn check_counts(&mut self) {
        let first = self.segments[0].path.clone();
        let Some(v) = &self.volume else {
            self.problems.push(problem(
                &first,
                Some("volume"),
                None,
                "no volume section: media geometry unknown".into(),
            ));
            return;
        };
        let mut p = Vec::new();
        let cs = v.chunk_size();
        if v.bytes_per_sector == 0 || v.sectors_per_chunk == 0 || cs > MAX_CHUNK {
            p.push(format!(
                "implausible geometry: {} sectors per chunk × {} bytes per sector",
                v.sectors_per_chunk, v.bytes_per_sector
            ));
        } else {
            let needed = v.media_size().div_ceil(cs);
            if needed != u64::from(v.chunk_count) {
                p.push(format!(
                    "volume chunk count {} but {} sectors need {needed} chunks",
                    v.chunk_count, v.sector_count
                ));
            }
            if needed != self.chunks.len() as u64 {
                p.push(format!(
                    "tables list {} chunks, the media needs {needed}",
                    self.chunks.len()
                ));
            }
        }
        for m in p {
            self.problems.push(problem(&first, Some("volume"), None, m));
        }
    }
}
