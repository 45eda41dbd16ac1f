use super::*;

#[test]
fn magic_numbers_name_what_is_there() {
    let mut head = vec![0u8; HEAD_BYTES as usize];
    assert!(matches!(identify(&head), Found::Other(s) if s.contains("zeros")));
    head[0..4].copy_from_slice(b"XFSB");
    assert!(matches!(identify(&head), Found::Other(s) if s.contains("XFS") && s.contains("XFSB")));
    head[0..4].fill(0);
    head[1080..1082].copy_from_slice(&[0x53, 0xEF]);
    assert_eq!(identify(&head), Found::Ext4);
    head[1080..1082].fill(0);
    head[3..11].copy_from_slice(b"NTFS    ");
    assert_eq!(identify(&head), Found::Ntfs);
    head[3..11].copy_from_slice(b"EXFAT   ");
    assert!(matches!(identify(&head), Found::Other(s) if s.contains("exFAT")));
    head[3..11].copy_from_slice(b"mkfs.fat");
    head[510..512].copy_from_slice(&[0x55, 0xAA]);
    head[54..62].copy_from_slice(b"FAT16   ");
    assert_eq!(identify(&head), Found::Fat);
    // Short input never panics.
    assert!(matches!(identify(&[1, 2, 3]), Found::Other(_)));
}

#[test]
fn times_convert_both_ways_of_the_epoch() {
    let t = Time {
        secs: 1_764_624_363,
        nanos: 0,
    };
    assert_eq!(t.rfc3339(), "2025-12-01T21:26:03Z");
    assert!(Time { secs: -1, nanos: 5 }.system_time().is_some());
    assert_eq!(path_text(&[]), "/");
    assert_eq!(
        path_text(&[b"a".to_vec(), b"caf\xe9".to_vec()]),
        "/a/caf\\xe9"
    );
}
