//! The image reader (`exhibit::image`) on images other writers made: E01 sets from libewf's
//! ewfacquire (its chunk layout, every compression level, several segments), read at random
//! offsets and opened by any segment's name, must give the source's bytes.

use exhibit::image::{Image, ImageFormat};

use crate::support::*;

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    *seed >> 17
}

fn random_reads_match(image: &Image, data: &[u8]) {
    let size = data.len() as u64;
    assert_eq!(image.media_size(), size);
    let mut seed = 11u64;
    for _ in 0..300 {
        let offset = lcg(&mut seed) % size;
        let mut buf = vec![0u8; 1 + (lcg(&mut seed) % 150_000) as usize];
        let n = image.read_at(&mut buf, offset).unwrap();
        assert_eq!(n, buf.len().min((size - offset) as usize));
        assert!(
            buf[..n] == data[offset as usize..offset as usize + n],
            "bytes at {offset}"
        );
    }
}

#[test]
fn ewfacquire_sets_read_at_any_offset() {
    let dir = tempdir();
    // Not a whole number of 32 KiB chunks: the last chunk is short.
    let data = mixed((3 << 20) + 3 * 512, 21);
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    for (name, c, seg) in [
        ("none", "none", None),
        ("best", "best", None),
        ("multi", "fast", Some("1MiB")),
    ] {
        let Some(first) = ewfacquire(&src, &dir.path().join(name), c, seg) else {
            return;
        };
        let image = Image::open(&first).unwrap();
        assert_eq!(image.format(), ImageFormat::E01);
        random_reads_match(&image, &data);
        if seg.is_some() {
            let second = exhibit::ewf::naming::segment_path(&dir.path().join(name), 2).unwrap();
            assert!(second.exists(), "{name} has several segments");
            let by_second = Image::open(&second).unwrap();
            assert_eq!(by_second.files(), image.files());
            random_reads_match(&by_second, &data);
        }
    }
}

#[test]
fn verify_takes_any_segment_of_a_set() {
    let dir = tempdir();
    let data = mixed(2 << 20, 22);
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let Some(first) = ewfacquire(&src, &dir.path().join("set"), "none", Some("1MiB")) else {
        return;
    };
    let second = exhibit::ewf::naming::segment_path(&dir.path().join("set"), 2).unwrap();
    assert!(second.exists());
    expect(&verify(&second, &[]), 0, &["VERIFIED", "md5 matches"]);
    assert!(first.exists());
}
