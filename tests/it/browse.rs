//! `exhibit ls` and `exhibit extract` on real file systems made in the test (ext4 in an MBR
//! partition, FAT16 in a GPT partition, FAT12 and NTFS on the whole media), raw and E01 (our
//! own acquire): The Sleuth Kit (`fls`, `icat`) is the oracle for names and contents, and the
//! extracted files' SHA-256 equal the originals'. Then bad input (unknown file system,
//! missing path, no such partition, an existing output), a damaged E01 chunk under one file,
//! and a FAT that lies (a directory whose cluster chain loops, one that contains itself, a
//! size larger than the volume): each ends in bounded time with an error naming the path.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// A tree with nested directories, a link, a name with a space and a non-ASCII letter, a
/// name with a terminal escape, and a file whose time is known.
fn ext4_tree(root: &Path) -> Vec<u8> {
    let big = random(300_000, 7);
    write_tree(
        root,
        &[
            ("a.txt", b"hello\n"),
            ("sub/big.bin", &big),
            ("sub/deep/er/c.txt", b"deep"),
            ("caf\u{e9} and space.txt", b"unicode"),
            ("esc\x1b[31mred", b"escape"),
        ],
    );
    std::os::unix::fs::symlink("../a.txt", root.join("sub/link")).unwrap();
    Command::new("touch")
        .args(["-d", "2020-01-02 03:04:05 UTC"])
        .arg(root.join("a.txt"))
        .exits(0);
    // The link's own time (-h), unlike its target's.
    Command::new("touch")
        .args(["-h", "-d", "2021-03-04 05:06:07 UTC"])
        .arg(root.join("sub/link"))
        .exits(0);
    big
}

/// `istat`'s "File Modified:" line of `inode` (in UTC), TSK's reading of the inode's mtime.
fn istat_modified(image: &Path, offset: u64, inode: &str) -> String {
    let out = Command::new("istat")
        .args(["-z", "UTC", "-o", &offset.to_string()])
        .arg(image)
        .arg(inode)
        .exits(0);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("File Modified:")
                .map(|t| t.trim().to_string())
        })
        .expect("istat shows a modification time")
}

/// An MBR disk whose partition 1 is ext4 made from [`ext4_tree`]; `None` (skipped) without
/// the tools.
fn ext4_disk(dir: &Path) -> Option<(PathBuf, Vec<u8>)> {
    if !have_all(&["mkfs.ext4", "sfdisk", "fls", "icat"]) {
        return None;
    }
    let tree = dir.join("tree");
    let big = ext4_tree(&tree);
    let part = dir.join("part.ext4");
    ext4_image(&tree, &part, 8);
    let disk = dir.join("disk.raw");
    disk_with(&part, &disk, 12, "dos", "83");
    Some((disk, big))
}

fn ls_json(image: &Path, target: &str) -> serde_json::Value {
    let out = exhibit()
        .arg("ls")
        .arg(image)
        .arg(target)
        .arg("--json")
        .exits(0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every regular file and link TSK sees in the partition at `offset` is extracted under
/// `out` (`out/LABEL/PATH`), equal to `icat`'s bytes, with that SHA-256 in the record.
fn extracted_like_tsk(image: &Path, offset: Option<u64>, out: &Path, label: &str, under: &str) {
    let rec = extract_record(out);
    let mut files = 0;
    for e in fls(image, offset) {
        if e.stream || !e.path.starts_with(under.trim_start_matches('/')) {
            continue;
        }
        let dest = out.join(label).join(&e.path);
        match e.kind {
            'r' => {
                let want = icat(image, offset, &e.inode);
                assert!(
                    std::fs::read(&dest).unwrap() == want,
                    "{} differs from icat",
                    dest.display()
                );
                let item = record_item(&rec, &format!("{label}:/{}", e.path));
                assert_eq!(item["sha256"].as_str().unwrap(), sha256_hex(&want), "{e:?}");
                assert_eq!(item["size"].as_u64().unwrap(), want.len() as u64);
                files += 1;
            }
            'd' => assert!(dest.is_dir(), "{}", dest.display()),
            'l' => assert!(dest.symlink_metadata().unwrap().file_type().is_symlink()),
            _ => {}
        }
    }
    assert!(files > 0, "no file compared");
}

#[test]
fn ext4_in_a_partition_lists_and_extracts_as_tsk_reads_it_raw_and_e01() {
    let dir = tempdir();
    let Some((disk, big)) = ext4_disk(dir.path()) else {
        return;
    };
    // The root's names are TSK's.
    let listing = ls_json(&disk, "p1:/");
    assert_eq!(listing["volume"]["file_system"], "ext4");
    assert_eq!(listing["volume"]["offset"], PART_START * 512);
    let mut ours = ls_json_names(&serde_json::to_vec(&listing).unwrap());
    let mut tsk: Vec<String> = fls(&disk, Some(PART_START))
        .into_iter()
        .filter(|e| !e.path.contains('/'))
        .map(|e| e.path)
        .collect();
    ours.sort();
    tsk.sort();
    tsk.dedup();
    assert_eq!(ours, tsk);
    // The inode numbers are TSK's.
    assert_eq!(listing["id_label"], "inode");
    for e in fls(&disk, Some(PART_START))
        .iter()
        .filter(|e| !e.path.contains('/'))
    {
        let mine = listing["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == e.path.as_str())
            .unwrap();
        assert_eq!(
            mine["id"].as_u64().map(|n| n.to_string()),
            Some(e.inode.clone()),
            "{e:?}"
        );
    }
    // Without pN: the first file system is found; the link shows its target.
    let sub = ls_json(&disk, "/sub");
    let link = sub["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "link")
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "../a.txt");
    // Names are escaped on a terminal, exact in JSON.
    let text = exhibit().arg("ls").arg(&disk).exits(0).stdout;
    assert!(!text.contains(&0x1b), "a raw escape reached the terminal");
    assert!(String::from_utf8_lossy(&text).contains("esc\\x1b[31mred"));

    // Our own E01 of the disk reads the same and extracts what TSK reads.
    let base = dir.path().join("ev");
    acquire(&disk, &base, &["--format", "e01"], 0);
    let e01 = with_ext(&base, "E01");
    assert_eq!(ls_json(&e01, "p1:/sub")["entries"], sub["entries"]);
    let out = dir.path().join("out");
    exhibit()
        .arg("extract")
        .arg(&e01)
        .arg("p1:/")
        .arg("-o")
        .arg(&out)
        .exits(0);
    extracted_like_tsk(&disk, Some(PART_START), &out, "p1", "");
    assert!(std::fs::read(out.join("p1/sub/big.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read_link(out.join("p1/sub/link")).unwrap(),
        Path::new("../a.txt")
    );
    // Times kept: 2020-01-02T03:04:05Z.
    let m = std::fs::metadata(out.join("p1/a.txt")).unwrap();
    assert_eq!(m.mtime(), 1_577_934_245);
    // The link's own time too (2021-03-04T05:06:07Z, as istat reads its inode), set on the
    // link, not through it onto a.txt.
    let link_inode = fls(&disk, Some(PART_START))
        .into_iter()
        .find(|e| e.path == "sub/link")
        .unwrap()
        .inode;
    assert!(
        istat_modified(&disk, PART_START, &link_inode).starts_with("2021-03-04 05:06:07"),
        "{}",
        istat_modified(&disk, PART_START, &link_inode)
    );
    let lm = std::fs::symlink_metadata(out.join("p1/sub/link")).unwrap();
    assert!(lm.file_type().is_symlink());
    assert_eq!(lm.mtime(), 1_614_834_367);
    let rec = extract_record(&out);
    assert_eq!(rec["image"]["format"], "E01");
    assert_eq!(rec["complete"], true);
    let stored = rec["image"]["stored_hashes"].as_sequence().unwrap();
    assert!(stored.iter().any(|h| h["algorithm"] == "md5"), "{stored:?}");
    assert_eq!(
        record_item(&rec, "p1:/a.txt")["modified"],
        "2020-01-02T03:04:05Z"
    );
}

#[test]
fn fat16_in_gpt_and_fat12_on_the_whole_media_read_as_tsk_reads_them() {
    if !have_all(&["mkfs.vfat", "mmd", "mcopy", "sfdisk", "fls", "icat"]) {
        return;
    }
    let dir = tempdir();
    let src = dir.path().join("src");
    let files = write_tree(
        &src,
        &[
            ("long name.txt", b"a long name"),
            ("big.bin", &random(200_000, 3)),
            ("x.c", b"int main;"),
        ],
    );
    let fat = dir.path().join("fat16");
    fat_image(&fat, 16, 16, &[]);
    mmd(&fat, "/Docs");
    mmd(&fat, "/Docs/Inner Dir");
    mcopy(&fat, &files[0], "/Docs/Long Name File.txt");
    mcopy(&fat, &files[1], "/Docs/Inner Dir/big.bin");
    mcopy(&fat, &files[2], "/X.C");
    let disk = dir.path().join("gpt.raw");
    disk_with(
        &fat,
        &disk,
        20,
        "gpt",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
    );
    let l = ls_json(&disk, "p1:/Docs");
    assert_eq!(l["volume"]["file_system"], "FAT16");
    let mut ours = ls_json_names(&serde_json::to_vec(&l).unwrap());
    let mut tsk: Vec<String> = fls(&disk, Some(PART_START))
        .into_iter()
        .filter_map(|e| e.path.strip_prefix("Docs/").map(str::to_string))
        .filter(|p| !p.contains('/'))
        .collect();
    ours.sort();
    tsk.sort();
    assert_eq!(ours, tsk);
    let out = dir.path().join("out");
    exhibit()
        .arg("extract")
        .arg(&disk)
        .args(["p1:/Docs", "p1:/X.C"])
        .arg("-o")
        .arg(&out)
        .exits(0);
    extracted_like_tsk(&disk, Some(PART_START), &out, "p1", "Docs");
    assert!(
        std::fs::read(out.join("p1/Docs/Inner Dir/big.bin")).unwrap()
            == std::fs::read(&files[1]).unwrap()
    );
    assert_eq!(std::fs::read(out.join("p1/X.C")).unwrap(), b"int main;");

    // FAT12 with no partition table: the whole media.
    let small = dir.path().join("floppy.img");
    fat_image(&small, 2, 12, &[]);
    mcopy(&small, &files[2], "/x.c");
    let l = ls_json(&small, "/");
    assert_eq!(l["volume"]["file_system"], "FAT12");
    assert_eq!(l["volume"]["label"], "disk");
    assert_eq!(ls_json_names(&serde_json::to_vec(&l).unwrap()), ["x.c"]);
}

/// NTFS made by mkntfs on a file and filled by ntfscp (no mount).
fn ntfs_volume(dir: &Path) -> Option<(PathBuf, Vec<PathBuf>)> {
    if !have_all(&["mkntfs", "ntfscp", "fls", "icat"]) {
        return None;
    }
    let src = dir.join("src");
    let files = write_tree(
        &src,
        &[
            ("a.txt", b"hello ntfs"),
            ("big.bin", &random(500_000, 11)),
            ("name with space.txt", b"spaced"),
        ],
    );
    let img = dir.join("ntfs.img");
    ntfs_image(&img, 8);
    ntfscp(&img, &files[0], "/a.txt");
    ntfscp(&img, &files[1], "/big.bin");
    ntfscp(&img, &files[2], "/name with space.txt");
    Some((img, files))
}

#[test]
fn ntfs_lists_mft_numbers_and_extracts_as_tsk_reads_it() {
    let dir = tempdir();
    let Some((img, files)) = ntfs_volume(dir.path()) else {
        return;
    };
    let l = ls_json(&img, "/");
    assert_eq!(l["volume"]["file_system"], "NTFS");
    assert_eq!(l["id_label"], "MFT");
    let tsk: Vec<FlsEntry> = fls(&img, None)
        .into_iter()
        .filter(|e| !e.path.contains('/'))
        .collect();
    // Named data streams too (attribute type 128 in TSK's MFT-TYPE-ID), as `name:stream`:
    // exhibit lists them beside their file. Named indexes ($Secure:$SDH) are the file.
    let mut theirs: Vec<String> = tsk
        .iter()
        .map(|e| match e.inode.split('-').nth(1) {
            Some("128") if e.stream => e.full.clone(),
            _ => e.path.clone(),
        })
        .collect();
    theirs.sort();
    theirs.dedup();
    let entries = l["entries"].as_array().unwrap();
    let mut ours: Vec<String> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap().into())
        .collect();
    ours.sort();
    assert_eq!(ours, theirs);
    // The MFT number is TSK's inode (its first part: 64-128-2).
    for e in &tsk {
        let mine = entries
            .iter()
            .find(|x| x["name"] == e.path.as_str())
            .unwrap();
        let mft: u64 = e.inode.split('-').next().unwrap().parse().unwrap();
        assert_eq!(mine["id"].as_u64(), Some(mft), "{e:?}");
    }
    let out = dir.path().join("out");
    exhibit()
        .arg("extract")
        .arg(&img)
        .args(["/a.txt", "/big.bin", "/name with space.txt"])
        .arg("-o")
        .arg(&out)
        .exits(0);
    for (f, name) in files
        .iter()
        .zip(["a.txt", "big.bin", "name with space.txt"])
    {
        let got = std::fs::read(out.join("disk").join(name)).unwrap();
        assert!(got == std::fs::read(f).unwrap(), "{name}");
        let inode = &tsk
            .iter()
            .find(|e| e.path == name && !e.stream)
            .unwrap()
            .inode;
        assert!(got == icat(&img, None, inode), "{name} differs from icat");
        let rec = extract_record(&out);
        assert_eq!(
            record_item(&rec, &format!("disk:/{name}"))["sha256"]
                .as_str()
                .unwrap(),
            sha256_hex(&got)
        );
    }
}

#[test]
fn ntfs_directories_made_through_an_ntfs3g_mount_extract_whole() {
    // ntfscp cannot make directories; ntfs-3g's FUSE mount can (root and /dev/fuse).
    require_faulty_device!();
    let dir = tempdir();
    let Some((img, files)) = ntfs_volume(dir.path()) else {
        return;
    };
    if !have("ntfs-3g") {
        return;
    }
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    Command::new("ntfs-3g").arg(&img).arg(&mnt).exits(0);
    {
        let m = Mount { dir: mnt.clone() };
        std::fs::create_dir_all(m.dir.join("Users/ann/Docs")).unwrap();
        std::fs::copy(&files[1], m.dir.join("Users/ann/Docs/big.bin")).unwrap();
        std::fs::write(m.dir.join("Users/ann/note.txt"), b"note").unwrap();
    }
    // ntfs-3g's daemon writes the volume out after the unmount: read it only once it is gone.
    wait_for_ntfs3g(&img);
    let out = dir.path().join("out");
    exhibit()
        .arg("extract")
        .arg(&img)
        .arg("/Users")
        .arg("-o")
        .arg(&out)
        .exits(0);
    extracted_like_tsk(&img, None, &out, "disk", "Users");
    assert!(
        std::fs::read(out.join("disk/Users/ann/Docs/big.bin")).unwrap()
            == std::fs::read(&files[1]).unwrap()
    );
}

fn fails(args: &[&std::ffi::OsStr], needles: &[&str]) -> String {
    let out = exhibit().args(args).exits(2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    err
}

#[test]
fn bad_input_is_one_line_and_exit_2_and_nothing_is_written() {
    let dir = tempdir();
    let Some((disk, _)) = ext4_disk(dir.path()) else {
        return;
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let d = disk.as_os_str();
    let out = dir.path().join("out");
    let o = out.as_os_str();
    fails(
        &[&os("ls"), d, &os("p1:/nope")],
        &["p1:/nope", "No such file"],
    );
    fails(
        &[&os("extract"), d, &os("p1:/nope"), &os("-o"), o],
        &["No such file"],
    );
    assert!(!out.exists(), "a failed extract made its output");
    fails(
        &[&os("ls"), d, &os("p7:/")],
        &["p7", "no such partition", "p1"],
    );
    fails(&[&os("ls"), d, &os("p1:etc")], &["absolute"]);

    // An output that exists and is not empty, or is a file: refused, left as it was.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), b"keep").unwrap();
    fails(
        &[&os("extract"), d, &os("p1:/a.txt"), &os("-o"), o],
        &["not empty"],
    );
    assert_eq!(std::fs::read(out.join("keep")).unwrap(), b"keep");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    fails(
        &[
            &os("extract"),
            d,
            &os("p1:/a.txt"),
            &os("-o"),
            file.as_os_str(),
        ],
        &["not a directory"],
    );
    // An empty directory is taken.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    exhibit()
        .arg("extract")
        .arg(&disk)
        .arg("p1:/a.txt")
        .arg("-o")
        .arg(&empty)
        .exits(0);
    assert_eq!(std::fs::read(empty.join("p1/a.txt")).unwrap(), b"hello\n");

    // A partition whose file system exhibit does not read: named by its magic.
    let xfs = dir.path().join("xfs");
    let mut head = vec![0u8; 1 << 20];
    head[..4].copy_from_slice(b"XFSB");
    std::fs::write(&xfs, &head).unwrap();
    let xdisk = dir.path().join("xfs.raw");
    disk_with(&xfs, &xdisk, 4, "dos", "83");
    fails(
        &[&os("ls"), xdisk.as_os_str(), &os("p1:/")],
        &["XFS", "XFSB"],
    );
    fails(
        &[&os("ls"), xdisk.as_os_str()],
        &["no partition holds a file system", "XFS"],
    );
    // No table, no file system: zeros; and pN: where there is no table.
    let zeros = dir.path().join("zeros.raw");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    fails(&[&os("ls"), zeros.as_os_str()], &["zeros"]);
    fails(
        &[&os("ls"), zeros.as_os_str(), &os("p1:/")],
        &["no partition table"],
    );
}

/// The media offset of `needle` in `hay` (a file's data on the disk).
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("data not on the disk")
}

#[test]
fn a_damaged_e01_chunk_fails_only_the_file_it_holds_and_names_it() {
    let dir = tempdir();
    let Some((disk, big)) = ext4_disk(dir.path()) else {
        return;
    };
    let base = dir.path().join("ev");
    acquire(&disk, &base, &["--format", "e01"], 0);
    let e01 = with_ext(&base, "E01");
    let at = find(&std::fs::read(&disk).unwrap(), &big[..4096]) + 100_000;
    let chunk = at as u64 / 32768;
    let p = exhibit::ewf::E01Image::open(&e01)
        .unwrap()
        .chunk_place(chunk)
        .unwrap();
    flip(&p.segment, p.offset + p.stored_size / 2);
    let out = dir.path().join("out");
    let o = exhibit()
        .arg("extract")
        .arg(&e01)
        .arg("p1:/")
        .arg("-o")
        .arg(&out)
        .exits(1);
    let err = stderr(&o);
    assert!(
        err.contains("p1:/sub/big.bin") && err.contains("cannot be read"),
        "{err}"
    );
    assert!(
        !out.join("p1/sub/big.bin").exists(),
        "a damaged file was left"
    );
    assert_eq!(
        std::fs::read(out.join("p1/sub/deep/er/c.txt")).unwrap(),
        b"deep"
    );
    let rec = extract_record(&out);
    let item = record_item(&rec, "p1:/sub/big.bin");
    assert!(
        item["error"].as_str().unwrap().contains("/sub/big.bin"),
        "{item:?}"
    );
    assert!(item["sha256"].is_null());
    assert_eq!(rec["totals"]["failed"], 1);
}

/// A little-endian u16/u32 at `at`.
fn le16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

/// The 32-byte root directory entry of FAT16 image `b` whose 8.3 name is `name`.
fn root_entry(b: &[u8], name: &[u8; 11]) -> usize {
    let (reserved, fats, spf, roots) = (le16(b, 14), b[16] as usize, le16(b, 22), le16(b, 17));
    let root = (reserved + fats * spf) * 512;
    (0..roots)
        .map(|i| root + i * 32)
        .find(|&e| &b[e..e + 11] == name)
        .expect("entry")
}

#[test]
fn a_lying_fat_ends_in_bounded_time_with_errors_naming_the_paths() {
    if !have_all(&["mkfs.vfat", "mmd", "mcopy"]) {
        return;
    }
    let dir = tempdir();
    let img = dir.path().join("lies.img");
    // One-sector clusters: a directory's first cluster holds 16 entries.
    fat_image(&img, 16, 16, &["-s", "1"]);
    let one = dir.path().join("one");
    std::fs::write(&one, b"1").unwrap();
    mmd(&img, "/LOOP");
    for i in 0..14 {
        mcopy(&img, &one, &format!("/LOOP/F{i}.TXT"));
    }
    mmd(&img, "/NEST");
    mmd(&img, "/NEST/SELF");
    mcopy(&img, &one, "/HUGE.BIN");
    mcopy(&img, &one, "/OK.TXT");
    let mut b = std::fs::read(&img).unwrap();
    let (reserved, fats, spf) = (le16(&b, 14), b[16] as usize, le16(&b, 22));
    // LOOP's full first cluster is followed by itself, forever.
    let lp = root_entry(&b, b"LOOP       ");
    let c = le16(&b, lp + 26);
    for f in 0..fats {
        let fat = (reserved + f * spf) * 512;
        b[fat + 2 * c..fat + 2 * c + 2].copy_from_slice(&(c as u16).to_le_bytes());
    }
    // NEST/SELF is NEST itself.
    let nest = le16(&b, root_entry(&b, b"NEST       ") + 26);
    let data = (reserved + fats * spf) * 512 + le16(&b, 17) * 32;
    let nest_at = data + (nest - 2) * 512;
    let self_at = (nest_at..nest_at + 512)
        .step_by(32)
        .find(|&e| &b[e..e + 11] == b"SELF       ")
        .unwrap();
    b[self_at + 26..self_at + 28].copy_from_slice(&(nest as u16).to_le_bytes());
    // HUGE.BIN says it holds nearly 4 GiB.
    let huge = root_entry(&b, b"HUGE    BIN");
    b[huge + 28..huge + 32].copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
    std::fs::write(&img, &b).unwrap();

    let clock = Instant::now();
    let o = exhibit().arg("ls").arg(&img).arg("/LOOP").exits(2);
    assert!(stderr(&o).contains("/LOOP"), "{}", stderr(&o));
    let out = dir.path().join("out");
    let o = exhibit()
        .arg("extract")
        .arg(&img)
        .arg("/")
        .arg("-o")
        .arg(&out)
        .exits(1);
    assert!(
        clock.elapsed() < Duration::from_secs(60),
        "{:?}",
        clock.elapsed()
    );
    let err = stderr(&o);
    assert!(err.contains("disk:/LOOP"), "{err}");
    assert!(
        err.contains("disk:/HUGE.BIN") && err.contains("claims"),
        "{err}"
    );
    assert!(err.contains("nested deeper than"), "{err}");
    assert_eq!(std::fs::read(out.join("disk/OK.TXT")).unwrap(), b"1");
    assert!(!out.join("disk/HUGE.BIN").exists());
    let rec = extract_record(&out);
    assert!(record_item(&rec, "disk:/HUGE.BIN")["error"].is_string());
}
