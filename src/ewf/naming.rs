//! Segment file names: `BASE.E01 … BASE.E99`, then `.EAA … .EZZ`, `.FAA … .ZZZ` (14 971
//! names in all; nothing beyond `.ZZZ` is standard, so we stop there).

use std::path::{Path, PathBuf};

/// The last segment number that has a standard name.
pub const MAX_SEGMENTS: u32 = 99 + 22 * 26 * 26;

/// Extension (without the dot) of 1-based segment `n`, upper case; `None` past `.ZZZ`.
pub fn extension(n: u32) -> Option<String> {
    match n {
        0 => None,
        1..=99 => Some(format!("E{n:02}")),
        _ if n <= MAX_SEGMENTS => {
            let i = n - 100;
            let a = (b'E' + (i / 676) as u8) as char;
            let b = (b'A' + ((i / 26) % 26) as u8) as char;
            let c = (b'A' + (i % 26) as u8) as char;
            Some(format!("{a}{b}{c}"))
        }
        _ => None,
    }
}

/// Path of segment `n` for an output base: `BASE` + `.E01` (the base keeps any dots it has).
pub fn segment_path(base: &Path, n: u32) -> Option<PathBuf> {
    let ext = extension(n)?;
    let mut s = base.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    Some(PathBuf::from(s))
}

/// For an existing first segment (`x.E01` or `x.e01`), the base and whether names are lower
/// case; `None` when the path does not end in `.E01`.
pub fn base_of_first_segment(first: &Path) -> Option<(PathBuf, bool)> {
    let s = first.to_str()?;
    let (base, ext) = s.rsplit_once('.')?;
    match ext {
        "E01" => Some((PathBuf::from(base), false)),
        "e01" => Some((PathBuf::from(base), true)),
        _ => None,
    }
}

/// Path of segment `n` next to an existing set, in the set's letter case.
pub fn sibling_path(base: &Path, lower: bool, n: u32) -> Option<PathBuf> {
    if !lower {
        return segment_path(base, n);
    }
    let mut s = base.as_os_str().to_os_string();
    s.push(".");
    s.push(extension(n)?.to_ascii_lowercase());
    Some(PathBuf::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(extension(1).unwrap(), "E01");
        assert_eq!(extension(99).unwrap(), "E99");
        assert_eq!(extension(100).unwrap(), "EAA");
        assert_eq!(extension(125).unwrap(), "EAZ");
        assert_eq!(extension(126).unwrap(), "EBA");
        assert_eq!(extension(775).unwrap(), "EZZ");
        assert_eq!(extension(776).unwrap(), "FAA");
        assert_eq!(extension(MAX_SEGMENTS).unwrap(), "ZZZ");
        assert_eq!(extension(MAX_SEGMENTS + 1), None);
        assert_eq!(
            segment_path(Path::new("/t/case.1"), 2).unwrap(),
            Path::new("/t/case.1.E02")
        );
        let (b, lower) = base_of_first_segment(Path::new("/t/x.e01")).unwrap();
        assert_eq!(sibling_path(&b, lower, 100).unwrap(), Path::new("/t/x.eaa"));
    }
}
