//! Hostile tables built byte by byte: a looping extended chain, a forged entry count, a
//! partition past the end. (Tables made by sfdisk are compared in tests/it/partition.rs.)

use super::*;

fn entry(sector: &mut [u8], slot: usize, kind: u8, first: u32, sectors: u32) {
    let e = &mut sector[446 + 16 * slot..446 + 16 * (slot + 1)];
    e[4] = kind;
    e[8..12].copy_from_slice(&first.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
}

fn sign(sector: &mut [u8]) {
    sector[510] = 0x55;
    sector[511] = 0xAA;
}

fn table(disk: &[u8]) -> Option<PartitionTable> {
    let read = |offset: u64, buf: &mut [u8]| -> Result<()> {
        let at = offset as usize;
        buf.copy_from_slice(&disk[at..at + buf.len()]);
        Ok(())
    };
    super::read(&read, disk.len() as u64, 512).unwrap()
}

#[test]
fn no_signature_is_no_table() {
    assert_eq!(table(&vec![0u8; 64 * 512]), None);
    assert_eq!(table(&[0u8; 100]), None);
}

#[test]
fn a_looping_extended_chain_ends_with_a_problem() {
    let mut disk = vec![0u8; 1024 * 512];
    entry(&mut disk[..512], 0, 0x83, 64, 100);
    entry(&mut disk[..512], 1, 0x05, 200, 800);
    sign(&mut disk[..512]);
    // The EBR at 200 holds one logical partition and links back to itself.
    let ebr = &mut disk[200 * 512..201 * 512];
    entry(ebr, 0, 0x83, 10, 20);
    entry(ebr, 1, 0x05, 0, 800);
    sign(ebr);
    let t = table(&disk).unwrap();
    assert_eq!(t.scheme, Scheme::Mbr);
    let numbers: Vec<u32> = t.partitions.iter().map(|p| p.number).collect();
    assert_eq!(numbers, vec![1, 2, 5]);
    assert_eq!(t.partitions[2].start, 210);
    assert_eq!(t.partitions[2].offset, 210 * 512);
    assert!(
        t.problems.iter().any(|p| p.contains("loops back")),
        "{:?}",
        t.problems
    );
}

#[test]
fn a_partition_past_the_end_is_listed_and_reported() {
    let mut disk = vec![0u8; 100 * 512];
    entry(&mut disk[..512], 0, 0x07, 50, 1_000_000);
    sign(&mut disk[..512]);
    let t = table(&disk).unwrap();
    assert_eq!(t.partitions.len(), 1);
    assert_eq!(
        t.partitions[0].byte_range(disk.len() as u64),
        50 * 512..100 * 512
    );
    assert!(t.problems[0].contains("past the end"), "{:?}", t.problems);
}

#[test]
fn a_protective_mbr_with_a_forged_gpt_is_bounded() {
    let mut disk = vec![0u8; 64 * 512];
    entry(&mut disk[..512], 0, 0xEE, 1, 63);
    sign(&mut disk[..512]);
    // A header whose CRC holds but that claims 4 billion entries.
    let h = &mut disk[512..1024];
    h[0..8].copy_from_slice(b"EFI PART");
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&1u64.to_le_bytes());
    h[32..40].copy_from_slice(&63u64.to_le_bytes());
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    let crc = gpt_crc(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    let t = table(&disk).unwrap();
    assert_eq!(t.scheme, Scheme::Gpt);
    assert!(t.partitions.is_empty());
    assert!(
        t.problems.iter().any(|p| p.contains("4294967295 entries")),
        "{:?}",
        t.problems
    );
}

fn gpt_crc(header: &[u8]) -> u32 {
    // The same CRC-32 as gpt.rs (checked there against the standard check value).
    let mut c = !0u32;
    for &b in header {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}
