//! The sector map: which byte ranges of the source were read, which could not be, and (in
//! rescue) which are still to do. Stored as a GNU ddrescue mapfile, so `ddrescuelog` and the
//! ddrescue viewers read ours, and a rescue can resume from theirs.
//!
//! Format (ddrescue manual, "Mapfile structure"): `#` comment lines; one status line
//! `current_pos current_status [current_pass]`; then one line per block
//! `pos size status`, positions and sizes in bytes (we write `0x` hex, we read any base).

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// State of a byte range, with ddrescue's status characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockState {
    /// `?`: not read yet.
    NonTried,
    /// `*`: a read here failed; its edges are not trimmed yet.
    NonTrimmed,
    /// `/`: trimmed; the inside still to be read sector by sector.
    NonScraped,
    /// `-`: a sector that failed alone; filled with zeros in the image.
    BadSector,
    /// `+`: read and in the image.
    Finished,
}

impl BlockState {
    /// ddrescue's character for this state.
    pub fn symbol(self) -> char {
        match self {
            BlockState::NonTried => '?',
            BlockState::NonTrimmed => '*',
            BlockState::NonScraped => '/',
            BlockState::BadSector => '-',
            BlockState::Finished => '+',
        }
    }

    /// The state for a ddrescue character.
    pub fn from_symbol(c: char) -> Option<Self> {
        Some(match c {
            '?' => BlockState::NonTried,
            '*' => BlockState::NonTrimmed,
            '/' => BlockState::NonScraped,
            '-' => BlockState::BadSector,
            '+' => BlockState::Finished,
            _ => return None,
        })
    }
}

/// One unreadable run of the source as the record keeps it: where, why, and how hard we tried.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BadRun {
    /// Byte offset of the first unreadable byte (a sector boundary).
    pub offset: u64,
    /// Length in bytes (whole sectors, except a final partial sector of a file).
    pub length: u64,
    /// The errno of the last failed read (EIO = 5, ENODATA = 61, …).
    pub errno: i32,
    /// How many reads of each sector in the run failed.
    pub attempts: u32,
}

/// A contiguous range with one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapBlock {
    /// First byte.
    pub pos: u64,
    /// Length in bytes (never 0).
    pub size: u64,
    /// Its state.
    pub state: BlockState,
}

impl MapBlock {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.pos + self.size
    }
}

/// The whole map of a source of `size` bytes: consecutive blocks covering `0..size`, adjacent
/// blocks always in different states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorMap {
    size: u64,
    blocks: Vec<MapBlock>,
    /// ddrescue's `current_pos`: where the job was.
    pub current_pos: u64,
    /// ddrescue's `current_status` character (`?` copying, `*` trimming, `/` scraping,
    /// `-` retrying, `+` finished).
    pub current_status: char,
    /// ddrescue's `current_pass` (1-based).
    pub current_pass: u32,
}

impl SectorMap {
    /// A map of `size` bytes, all in `state`.
    pub fn new(size: u64, state: BlockState) -> Self {
        let blocks = if size == 0 {
            Vec::new()
        } else {
            vec![MapBlock {
                pos: 0,
                size,
                state,
            }]
        };
        SectorMap {
            size,
            blocks,
            current_pos: 0,
            current_status: '?',
            current_pass: 1,
        }
    }

    /// Size of the mapped source in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> &[MapBlock] {
        &self.blocks
    }

    /// Sets `pos..pos+len` (clipped to the map) to `state`, merging with equal neighbours.
    ///
    /// Costs a binary search plus one splice of the few blocks the range touches, so a
    /// rescue can call it after every read even when the map has many thousands of blocks.
    pub fn set(&mut self, pos: u64, len: u64, state: BlockState) {
        let end = pos.saturating_add(len).min(self.size);
        if pos >= end {
            return;
        }
        // Blocks first..last (exclusive) overlap the range; extend by one on each side so
        // that equal neighbours merge.
        let first = self.index_at(pos);
        let mut last = first;
        while last < self.blocks.len() && self.blocks[last].pos < end {
            last += 1;
        }
        let lo = first.saturating_sub(1);
        let hi = (last + 1).min(self.blocks.len());
        let mut pieces: Vec<MapBlock> = Vec::with_capacity(hi - lo + 2);
        for b in &self.blocks[lo..hi] {
            if b.end() <= pos || b.pos >= end {
                pieces.push(*b);
                continue;
            }
            if b.pos < pos {
                pieces.push(MapBlock {
                    pos: b.pos,
                    size: pos - b.pos,
                    state: b.state,
                });
            }
            if b.end() > end {
                // Placeholder order: the new range goes in before this tail below.
                pieces.push(MapBlock {
                    pos: end,
                    size: b.end() - end,
                    state: b.state,
                });
            }
        }
        let at = pieces.partition_point(|b| b.pos < pos);
        pieces.insert(
            at,
            MapBlock {
                pos,
                size: end - pos,
                state,
            },
        );
        self.blocks.splice(lo..hi, merge(pieces));
    }

    /// Index of the block containing `pos` (or `blocks.len()` past the end).
    fn index_at(&self, pos: u64) -> usize {
        self.blocks.partition_point(|b| b.end() <= pos)
    }

    /// The state of the byte at `pos`, or `None` past the end.
    pub fn state_at(&self, pos: u64) -> Option<BlockState> {
        self.blocks.get(self.index_at(pos)).map(|b| b.state)
    }

    /// The first range in `state` at or after `pos` (clipped to start at `pos`).
    pub fn next_in(&self, state: BlockState, pos: u64) -> Option<MapBlock> {
        self.blocks[self.index_at(pos)..]
            .iter()
            .find(|b| b.state == state)
            .map(|b| {
                let start = b.pos.max(pos);
                MapBlock {
                    pos: start,
                    size: b.end() - start,
                    state,
                }
            })
    }

    /// Where the run of bytes from `pos` that are all in one of `states` ends (`pos` itself
    /// if the byte at `pos` is in none of them).
    pub fn run_end(&self, pos: u64, states: &[BlockState]) -> u64 {
        let mut end = pos;
        for b in &self.blocks[self.index_at(pos)..] {
            if !states.contains(&b.state) {
                break;
            }
            end = b.end();
        }
        end.max(pos)
    }

    /// Makes every byte of `start..end` that is not finished untried again: after a source
    /// stopped responding, what its dead stretch marked bad says nothing about the disk.
    pub fn reset_unfinished(&mut self, start: u64, end: u64) {
        let end = end.min(self.size);
        let unfinished: Vec<(u64, u64)> = self
            .blocks
            .iter()
            .filter(|b| b.state != BlockState::Finished && b.state != BlockState::NonTried)
            .filter(|b| b.pos < end && b.end() > start)
            .map(|b| (b.pos.max(start), b.end().min(end)))
            .collect();
        for (from, to) in unfinished {
            self.set(from, to - from, BlockState::NonTried);
        }
    }

    /// True if any byte is in one of `states`.
    pub fn any_in(&self, states: &[BlockState]) -> bool {
        self.blocks.iter().any(|b| states.contains(&b.state))
    }

    /// Total bytes in `state`.
    pub fn bytes_in(&self, state: BlockState) -> u64 {
        self.blocks
            .iter()
            .filter(|b| b.state == state)
            .map(|b| b.size)
            .sum()
    }

    /// The blocks in `state`, in order.
    pub fn blocks_in(&self, state: BlockState) -> impl Iterator<Item = &MapBlock> {
        self.blocks.iter().filter(move |b| b.state == state)
    }

    /// The mapfile text. `header` lines are written as comments first.
    pub fn to_mapfile(&self, header: &[String]) -> String {
        let mut s = String::new();
        for line in header {
            let _ = writeln!(s, "# {line}");
        }
        let _ = writeln!(s, "# current_pos  current_status  current_pass");
        let _ = writeln!(
            s,
            "0x{:08X}     {}               {}",
            self.current_pos, self.current_status, self.current_pass
        );
        let _ = writeln!(s, "#      pos        size  status");
        for b in &self.blocks {
            let _ = writeln!(s, "0x{:08X}  0x{:08X}  {}", b.pos, b.size, b.state.symbol());
        }
        s
    }

    /// Parses mapfile text (ours or GNU ddrescue's). `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |line: usize, what: &str| Error::Format {
            path: path.to_path_buf(),
            message: format!("line {line}: {what}"),
        };
        let mut status: Option<(u64, char, u32)> = None;
        let mut blocks = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if status.is_none() {
                if fields.len() < 2 {
                    return Err(bad(i + 1, "expected 'current_pos current_status'"));
                }
                let pos = parse_number(fields[0]).ok_or_else(|| bad(i + 1, "bad current_pos"))?;
                let st = fields[1].chars().next().unwrap_or('?');
                let pass = fields
                    .get(2)
                    .and_then(|f| parse_number(f))
                    .map(|p| p as u32)
                    .unwrap_or(1);
                status = Some((pos, st, pass));
                continue;
            }
            if fields.len() < 3 {
                return Err(bad(i + 1, "expected 'pos size status'"));
            }
            let pos = parse_number(fields[0]).ok_or_else(|| bad(i + 1, "bad pos"))?;
            let size = parse_number(fields[1]).ok_or_else(|| bad(i + 1, "bad size"))?;
            let state = fields[2]
                .chars()
                .next()
                .and_then(BlockState::from_symbol)
                .ok_or_else(|| bad(i + 1, "bad status character"))?;
            // A forged size must not wrap the map's end (every later offset is pos + size).
            if pos.checked_add(size).is_none() {
                return Err(bad(i + 1, "block ends past 2^64 bytes"));
            }
            let expected = blocks.last().map(MapBlock::end).unwrap_or(0);
            if pos != expected {
                return Err(bad(
                    i + 1,
                    &format!("block starts at {pos}, expected {expected}"),
                ));
            }
            if size > 0 {
                blocks.push(MapBlock { pos, size, state });
            }
        }
        let (current_pos, current_status, current_pass) =
            status.ok_or_else(|| bad(0, "no status line"))?;
        let size = blocks.last().map(MapBlock::end).unwrap_or(0);
        Ok(SectorMap {
            size,
            blocks: merge(blocks),
            current_pos,
            current_status,
            current_pass,
        })
    }
}

fn merge(blocks: Vec<MapBlock>) -> Vec<MapBlock> {
    let mut out: Vec<MapBlock> = Vec::with_capacity(blocks.len());
    for b in blocks.into_iter().filter(|b| b.size > 0) {
        match out.last_mut() {
            Some(last) if last.state == b.state && last.end() == b.pos => last.size += b.size,
            _ => out.push(b),
        }
    }
    out
}

fn parse_number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// `runs` in order, cut to `media_size`, overlapping or touching runs merged (the first
/// one's errno and attempts kept): runs from several places (an acquisition's, a damaged
/// chunk's) as one list.
pub fn merge_runs(mut runs: Vec<BadRun>, media_size: u64) -> Vec<BadRun> {
    runs.retain(|r| r.offset < media_size && r.length > 0);
    for r in &mut runs {
        r.length = r.length.min(media_size - r.offset);
    }
    runs.sort_by_key(|r| r.offset);
    let mut out: Vec<BadRun> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(last) if r.offset <= last.offset + last.length => {
                let end = (r.offset + r.length).max(last.offset + last.length);
                last.length = end - last.offset;
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_splits_and_merges() {
        let mut m = SectorMap::new(10_000, BlockState::Finished);
        m.set(1024, 512, BlockState::BadSector);
        m.set(1536, 512, BlockState::BadSector);
        assert_eq!(m.blocks().len(), 3);
        assert_eq!(m.bytes_in(BlockState::BadSector), 1024);
        m.set(1024, 1024, BlockState::Finished);
        assert_eq!(m.blocks().len(), 1);
    }

    #[test]
    fn run_end_stops_at_the_first_other_state() {
        use BlockState::*;
        let mut m = SectorMap::new(10_000, NonTried);
        m.set(0, 1000, Finished);
        m.set(1000, 512, BadSector);
        m.set(1512, 488, Finished);
        m.set(4000, 100, Finished);
        let settled = [Finished, BadSector];
        assert_eq!(m.run_end(0, &settled), 2000);
        assert_eq!(m.run_end(1200, &settled), 2000);
        assert_eq!(m.run_end(2000, &settled), 2000);
        assert_eq!(m.run_end(4000, &settled), 4100);
        assert_eq!(m.run_end(10_000, &settled), 10_000);
    }

    #[test]
    fn set_matches_a_byte_model() {
        // Random ranges against a per-sector model: the fast splice must equal the simple truth.
        let states = [
            BlockState::NonTried,
            BlockState::NonTrimmed,
            BlockState::NonScraped,
            BlockState::BadSector,
            BlockState::Finished,
        ];
        let n = 300u64;
        let mut m = SectorMap::new(n * 512 + 100, BlockState::NonTried);
        let mut model = vec![BlockState::NonTried; n as usize + 1];
        let mut x: u64 = 12345;
        for _ in 0..3000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = (x >> 33) % (n + 1);
            let l = (x >> 20) % 17 + 1;
            let st = states[((x >> 8) % 5) as usize];
            m.set(a * 512, l * 512, st);
            for s in a..(a + l).min(n + 1) {
                model[s as usize] = st;
            }
            for (i, want) in model.iter().enumerate() {
                assert_eq!(m.state_at(i as u64 * 512), Some(*want));
            }
            for w in m.blocks().windows(2) {
                assert_eq!(w[0].end(), w[1].pos);
                assert_ne!(w[0].state, w[1].state);
            }
            assert_eq!(m.blocks().last().unwrap().end(), m.size());
        }
        let bad = m.next_in(BlockState::BadSector, 0);
        if let Some(b) = bad {
            assert_eq!(m.state_at(b.pos), Some(BlockState::BadSector));
        }
    }

    #[test]
    fn mapfile_round_trips() {
        let mut m = SectorMap::new(1 << 20, BlockState::Finished);
        m.set(0, 512, BlockState::BadSector);
        m.set(4096, 8192, BlockState::NonTried);
        m.current_status = '+';
        let text = m.to_mapfile(&["Mapfile. Created by exhibit".into()]);
        let back = SectorMap::parse(&text, Path::new("x.map")).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn reads_a_gnu_ddrescue_mapfile() {
        let text = "# Mapfile. Created by GNU ddrescue version 1.27\n# current_pos  current_status  current_pass\n0x00010000     +               1\n#      pos        size  status\n0x00000000  0x00000200  -\n0x00000200  0x0000FE00  +\n";
        let m = SectorMap::parse(text, Path::new("d.map")).unwrap();
        assert_eq!(m.size(), 0x10000);
        assert_eq!(m.bytes_in(BlockState::BadSector), 512);
    }

    fn bad(offset: u64, length: u64) -> BadRun {
        BadRun {
            offset,
            length,
            errno: libc::EIO,
            attempts: 1,
        }
    }

    #[test]
    fn runs_are_sorted_merged_and_cut_at_the_media_end() {
        let got = merge_runs(
            vec![
                bad(4096, 512),
                bad(0, 1024),
                bad(512, 1024),
                bad(9000, 5000),
            ],
            10_000,
        );
        assert_eq!(
            got.iter().map(|r| (r.offset, r.length)).collect::<Vec<_>>(),
            vec![(0, 1536), (4096, 512), (9000, 1000)]
        );
        assert!(merge_runs(vec![bad(10_000, 512)], 10_000).is_empty());
    }
}
