//! ext4 layouts `ext4-view` refuses, read around by exhibit: `inline_data` (small files and
//! directories stored in the inode, up to 60 bytes in `i_block` and the rest in the
//! `system.data` attribute) and `meta_bg` (group descriptors spread over the groups, here
//! with 1 KiB blocks and 1024-block groups, so most descriptors are far from block 2). The
//! Sleuth Kit (`fls`, `icat`) is the oracle for every inode number and every file's bytes;
//! `debugfs` shows that the inline layout is really there.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// A link target too long for i_block and the inode's inline space: stored in a block.
fn long_target() -> String {
    format!(
        "..{}",
        (1..=40)
            .map(|i| format!("/segment{i:02}"))
            .collect::<String>()
    )
}

fn tree(root: &Path) {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("tiny.txt".into(), b"tiny\n".to_vec()),
        // More than i_block's 60 bytes: the rest is in system.data.
        ("hundred.bin".into(), random(100, 5)),
        ("small/a.txt".into(), b"in an inline directory".to_vec()),
        ("small/deeper/y".into(), b"y".to_vec()),
        ("big.bin".into(), random(300_000, 6)),
        // In blocks under inline directories, which ext4-view cannot reach: read by exhibit
        // through their extents (one block; more than one 1 MiB chunk).
        ("blocks/under.bin".into(), random(5000, 7)),
        ("blocks2/large.bin".into(), random(1_600_000, 8)),
    ];
    // A directory with many entries is stored in blocks, its small files still inline.
    for i in 0..40 {
        files.push((format!("many/file{i:02}"), format!("{i}").into_bytes()));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    write_tree(root, &refs);
    std::os::unix::fs::symlink("../tiny.txt", root.join("small/ln")).unwrap();
    // A target too long for i_block, in a block of its own, under an inline directory.
    std::fs::create_dir(root.join("blocks3")).unwrap();
    std::os::unix::fs::symlink(long_target(), root.join("blocks3/long")).unwrap();
    // Holes under an inline directory: zeros, as icat gives them.
    std::fs::create_dir(root.join("blocks4")).unwrap();
    let sparse = std::fs::File::create(root.join("blocks4/sparse.bin")).unwrap();
    sparse.set_len(3 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, &random(8192, 9), 1 << 20).unwrap();
}

fn mkfs(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let t = dir.join("tree");
    if !t.exists() {
        tree(&t);
    }
    let img = dir.join(name);
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .args(args)
        .arg("-d")
        .arg(&t)
        .arg(&img)
        .exits(0);
    img
}

/// Every entry `fls` sees is listed by `ls --json` with TSK's inode number; every regular
/// file is extracted with `icat`'s bytes and SHA-256.
fn reads_as_tsk(img: &Path, out: &Path) {
    let entries = fls(img, None);
    assert!(entries.len() > 40, "{}", entries.len());
    for e in &entries {
        let (parent, name) = match e.path.rsplit_once('/') {
            Some((p, n)) => (format!("/{p}"), n),
            None => ("/".to_string(), e.path.as_str()),
        };
        let out = exhibit()
            .arg("ls")
            .arg(img)
            .arg(&parent)
            .arg("--json")
            .exits(0);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mine = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{e:?} not listed"));
        assert_eq!(
            mine["id"].as_u64().map(|n| n.to_string()),
            Some(e.inode.clone()),
            "{e:?}"
        );
    }
    exhibit()
        .arg("extract")
        .arg(img)
        .arg("/")
        .arg("-o")
        .arg(out)
        .exits(0);
    let rec = extract_record(out);
    let mut files = 0;
    for e in entries.iter().filter(|e| e.kind == 'r') {
        let dest = out.join("disk").join(&e.path);
        let want = icat(img, None, &e.inode);
        assert!(std::fs::read(&dest).unwrap() == want, "{e:?} differs");
        let item = record_item(&rec, &format!("disk:/{}", e.path));
        assert_eq!(item["sha256"].as_str().unwrap(), sha256_hex(&want));
        assert_eq!(item["id"].as_u64().unwrap().to_string(), e.inode);
        files += 1;
    }
    assert!(files > 40, "{files}");
    assert_eq!(
        std::fs::read_link(out.join("disk/small/ln")).unwrap(),
        Path::new("../tiny.txt")
    );
    assert_eq!(
        std::fs::read_link(out.join("disk/blocks3/long")).unwrap(),
        Path::new(&long_target())
    );
}

#[test]
fn inline_data_files_and_directories_read_as_tsk_reads_them() {
    if !have_all(&["mkfs.ext4", "debugfs", "fls", "icat"]) {
        return;
    }
    let dir = tempdir();
    let img = mkfs(dir.path(), "inline.ext4", &["-O", "inline_data"]);
    // The layout is what the test is about: debugfs shows small/ and tiny.txt inline.
    for p in [
        "/small",
        "/blocks",
        "/blocks2",
        "/blocks3",
        "/blocks4",
        "/tiny.txt",
        "/hundred.bin",
        "/small/deeper",
    ] {
        let out = Command::new("debugfs")
            .args(["-R", &format!("stat {p}")])
            .arg(&img)
            .exits(0);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Size of inline data"), "{p}: {text}");
    }
    // A file in blocks under an inline directory really is in blocks (not inline).
    for p in ["/blocks2/large.bin", "/blocks3/long", "/blocks4/sparse.bin"] {
        let out = Command::new("debugfs")
            .args(["-R", &format!("stat {p}")])
            .arg(&img)
            .exits(0);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("EXTENTS"), "{p}: {text}");
    }
    reads_as_tsk(&img, &dir.path().join("out"));
}

#[test]
fn meta_bg_descriptors_give_tsk_s_inode_numbers_and_bytes() {
    if !have_all(&["mkfs.ext4", "dumpe2fs", "fls", "icat"]) {
        return;
    }
    let dir = tempdir();
    let args = [
        "-b",
        "1024",
        "-g",
        "1024",
        "-N",
        "4096",
        "-O",
        "meta_bg,^resize_inode",
    ];
    let img = mkfs(dir.path(), "meta.ext4", &args);
    let out = Command::new("dumpe2fs").arg("-h").arg(&img).exits(0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("meta_bg"));
    reads_as_tsk(&img, &dir.path().join("out"));
}
