//! Disk images with real file systems, made without mounting: ext4 (`mkfs.ext4 -d`), FAT
//! (`mkfs.vfat` + mtools), NTFS (`mkntfs` + `ntfscp`), placed in a partition made by `sfdisk`.
//! And The Sleuth Kit as the oracle for what is in them (`fls`, `icat`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::Exits;
use super::tools::{have, sfdisk};

/// The first sector of the one partition the helpers make.
pub const PART_START: u64 = 2048;

/// Whether every tool in `tools` is installed (saying which is not).
pub fn have_all(tools: &[&str]) -> bool {
    tools.iter().all(|t| have(t))
}

/// A disk image `disk` of `disk_mib` MiB with one partition (`label` dos or gpt, `kind` its
/// sfdisk type) at [`PART_START`], holding the file system image `fs`.
pub fn disk_with(fs: &Path, disk: &Path, disk_mib: u64, label: &str, kind: &str) {
    let fs_len = std::fs::metadata(fs).unwrap().len();
    let f = std::fs::File::create(disk).unwrap();
    f.set_len(disk_mib << 20).unwrap();
    drop(f);
    let script = format!(
        "label: {label}\nstart={PART_START}, size={}, type={kind}\n",
        fs_len / 512
    );
    assert!(sfdisk(disk, script.as_bytes()), "sfdisk failed");
    Command::new("dd")
        .arg(format!("if={}", fs.display()))
        .arg(format!("of={}", disk.display()))
        .args([
            "bs=1M",
            "oflag=seek_bytes",
            "conv=notrunc,sparse",
            "status=none",
        ])
        .arg(format!("seek={}", PART_START * 512))
        .exits(0);
}

/// `mkfs.ext4 -d tree` on a new file of `mib` MiB.
pub fn ext4_image(tree: &Path, image: &Path, mib: u64) {
    std::fs::File::create(image)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(tree)
        .arg(image)
        .exits(0);
}

/// `mkfs.vfat -F bits` on a new file of `mib` MiB (`-s 1`: one-sector clusters if `small`).
pub fn fat_image(image: &Path, mib: u64, bits: u32, extra: &[&str]) {
    std::fs::File::create(image)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    Command::new("mkfs.vfat")
        .arg("-F")
        .arg(bits.to_string())
        .args(extra)
        .arg(image)
        .exits(0);
}

/// `mmd -i image ::dir`.
pub fn mmd(image: &Path, dir: &str) {
    Command::new("mmd")
        .arg("-i")
        .arg(image)
        .arg(format!("::{dir}"))
        .exits(0);
}

/// `mcopy -m -i image file ::dest` (`-m`: keep the modification time).
pub fn mcopy(image: &Path, file: &Path, dest: &str) {
    Command::new("mcopy")
        .args(["-m", "-i"])
        .arg(image)
        .arg(file)
        .arg(format!("::{dest}"))
        .exits(0);
}

/// `mkntfs -F -f` on a new file of `mib` MiB.
pub fn ntfs_image(image: &Path, mib: u64) {
    std::fs::File::create(image)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    Command::new("mkntfs")
        .args(["-F", "-f", "-q"])
        .arg(image)
        .exits(0);
}

/// `ntfscp -f -t image file dest` (no mount: libntfs-3g on the file).
pub fn ntfscp(image: &Path, file: &Path, dest: &str) {
    Command::new("ntfscp")
        .args(["-f", "-q", "-t"])
        .arg(image)
        .arg(file)
        .arg(dest)
        .exits(0);
}

/// One line of `fls -r -p`: (inode, type letter, path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlsEntry {
    pub inode: String,
    pub kind: char,
    /// The path (for a named NTFS stream, of the file that holds it).
    pub path: String,
    /// A named stream (`name:stream`), not the file's data.
    pub stream: bool,
    /// The name as fls prints it, `name:stream` for a stream.
    pub full: String,
}

/// `fls -r -p [-o OFFSET] image`: every allocated name, without TSK's virtual entries
/// (`$OrphanFiles`, FAT's `$MBR`, `$FAT1`…); TSK's `^` for a control character is the
/// character again.
pub fn fls(image: &Path, offset: Option<u64>) -> Vec<FlsEntry> {
    let mut cmd = Command::new("fls");
    cmd.args(["-r", "-p", "-u"]);
    if let Some(o) = offset {
        cmd.args(["-o", &o.to_string()]);
    }
    let out = cmd.arg(image).exits(0);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (head, path) = l.split_once(":\t")?;
            let mut parts = head.split_whitespace();
            let kind = parts.next()?.chars().last()?;
            let inode = parts.next()?.to_string();
            let virt = path.starts_with("$OrphanFiles")
                || matches!(path, "$MBR" | "$FAT1" | "$FAT2")
                || head.starts_with("v/v")
                || head.starts_with("V/V");
            let stream = path.contains(':');
            let full = path.replace('^', "\u{1b}");
            let path = path
                .split(':')
                .next()
                .unwrap_or_default()
                .replace('^', "\u{1b}");
            (!virt).then_some(FlsEntry {
                inode,
                kind,
                path,
                stream,
                full,
            })
        })
        .collect()
}

/// `icat [-o OFFSET] image inode`: a file's data as TSK reads it.
pub fn icat(image: &Path, offset: Option<u64>, inode: &str) -> Vec<u8> {
    let mut cmd = Command::new("icat");
    if let Some(o) = offset {
        cmd.args(["-o", &o.to_string()]);
    }
    cmd.arg(image).arg(inode).exits(0).stdout
}

/// `DIR/extract.yaml`, read back.
pub fn extract_record(dir: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(dir.join("extract.yaml")).unwrap()).unwrap()
}

/// The record's item for `path` (`p1:/a/b`).
pub fn record_item<'a>(rec: &'a serde_yaml::Value, path: &str) -> &'a serde_yaml::Value {
    rec["items"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("{path} is not in extract.yaml"))
}

/// The names `exhibit ls --json` gives.
pub fn ls_json_names(stdout: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// A file tree for the tests: `(relative path, contents)`.
pub fn write_tree(root: &Path, files: &[(&str, &[u8])]) -> Vec<PathBuf> {
    files
        .iter()
        .map(|(rel, data)| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
            p
        })
        .collect()
}

/// Waits until no ntfs-3g daemon serves `source` any more (it writes after the unmount).
pub fn wait_for_ntfs3g(source: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Command::new("pgrep")
        .arg("-f")
        .arg(format!("ntfs-3g .*{}", source.display()))
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "ntfs-3g did not end after its unmount"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
