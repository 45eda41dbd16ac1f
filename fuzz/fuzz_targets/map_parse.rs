//! Arbitrary text as a GNU ddrescue mapfile through `SectorMap::parse` (what rescue resumes
//! from and verify reads): it may refuse, never panic, overflow or allocate beyond the
//! input; a map it accepts must write out and parse back to the same map, and its queries
//! must stay inside the map.
#![no_main]

use std::path::Path;

use exhibit::map::{BlockState, SectorMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(map) = SectorMap::parse(text, Path::new("fuzz.map")) else {
        return;
    };
    let again = SectorMap::parse(&map.to_mapfile(&[]), Path::new("fuzz.map"))
        .expect("a map we wrote parses");
    assert_eq!(again.blocks(), map.blocks());
    let size = map.size();
    for state in [BlockState::Finished, BlockState::BadSector, BlockState::NonTried] {
        assert!(map.bytes_in(state) <= size);
        let _ = map.next_in(state, size / 2);
    }
    let _ = map.state_at(size.saturating_sub(1));
});
