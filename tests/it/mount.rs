//! `exhibit mount` as an examiner uses it: the media and each partition as files, byte for
//! byte; The Sleuth Kit reading a partition file; EIO for exactly a damaged chunk, said on
//! stderr; refusals; and the mount always gone afterwards (unmounted by a signal or by
//! `umount` from outside).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

pub(crate) fn is_mounted(dir: &Path) -> bool {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap_or("")))
}

/// A running `exhibit mount`; on drop (also when a test fails) it is stopped and the mount
/// point unmounted if it is still mounted.
pub(crate) struct Mounted {
    pub(crate) child: Option<Child>,
    pub(crate) dir: PathBuf,
    stderr: PathBuf,
}

impl Mounted {
    pub(crate) fn start(image: &Path, dir: &Path) -> Mounted {
        Self::start_with(image, dir, &[])
    }

    pub(crate) fn start_with(image: &Path, dir: &Path, extra: &[&str]) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let stderr = dir.with_extension("stderr");
        let child = exhibit()
            .arg("mount")
            .args(extra)
            .arg(image)
            .arg(dir)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let m = Mounted {
            child: Some(child),
            dir: dir.to_path_buf(),
            stderr,
        };
        let until = Instant::now() + Duration::from_secs(20);
        while !m.dir.join("disk.raw").exists() {
            assert!(Instant::now() < until, "not mounted: {}", m.stderr_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub(crate) fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the process to end by itself; its exit code.
    fn wait(&mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > until {
                let _ = child.kill();
                panic!("exhibit mount did not end: {}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn terminate(&mut self) -> i32 {
        if let Some(c) = &self.child {
            send_signal(c, libc::SIGTERM);
        }
        self.wait()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if is_mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

pub(crate) fn e01_of_sample(dir: &Path) -> PathBuf {
    segmented_e01_of_sample(&dir.join("ev"))
}

#[test]
fn the_media_and_each_partition_are_files_byte_for_byte() {
    require_faulty_device!();
    let dir = tempdir();
    let first = e01_of_sample(dir.path());
    let source = std::fs::read(sample()).unwrap();
    // Any segment's name finds the set.
    let mut m = Mounted::start(
        &with_ext(&dir.path().join("ev"), "E02"),
        &dir.path().join("mnt"),
    );
    let mnt = m.dir.clone();

    assert_eq!(
        coreutils_sum("sha256sum", &mnt.join("disk.raw")),
        coreutils_sum("sha256sum", &sample())
    );
    let p1 = std::fs::read(mnt.join("p1.raw")).unwrap();
    assert!(p1 == source[2048 * 512..8192 * 512]);
    let p2 = std::fs::read(mnt.join("p2.raw")).unwrap();
    assert!(p2 == source[8192 * 512..11264 * 512]);
    let mut names: Vec<String> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["disk.raw", "info.yaml", "p1.raw", "p2.raw"]);

    // Nothing can be written.
    assert!(std::fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("disk.raw"))
        .is_err());

    // info.yaml: the partition table and the E01's stored hash.
    let info: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(mnt.join("info.yaml")).unwrap()).unwrap();
    let parts = info["image"]["partitions"]["partitions"]
        .as_sequence()
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["start"].as_u64(), Some(2048));
    assert_eq!(parts[1]["type_id"].as_str(), Some("0x01"));
    let md5 = coreutils_sum("md5sum", &sample());
    assert!(
        serde_yaml::to_string(&info["image"]["stored_hashes"])
            .unwrap()
            .contains(&md5),
        "{info:?}"
    );

    // The Sleuth Kit reads the ext4 partition file as it reads the disk at its offset.
    if have("fls") {
        let from_mount = tool_stdout(Command::new("fls").arg("-r").arg(mnt.join("p1.raw")));
        let from_disk = tool_stdout(Command::new("fls").args(["-r", "-o", "2048"]).arg(sample()));
        assert_eq!(from_mount, from_disk);
        assert!(from_mount.contains("README.txt"));
    }

    assert_eq!(m.terminate(), 0, "{}", m.stderr_text());
    assert!(!is_mounted(&mnt));
    assert!(first.exists());
}

/// Offset and stored length of chunk `n` of an E01 (from our container reader).
pub(crate) fn chunk_place(first: &Path, n: u64) -> (PathBuf, u64, u64) {
    let p = exhibit::ewf::E01Image::open(first)
        .unwrap()
        .chunk_place(n)
        .unwrap();
    (p.segment, p.offset, p.stored_size)
}

#[test]
fn a_damaged_chunk_is_eio_for_exactly_its_bytes_and_said_on_stderr() {
    require_faulty_device!();
    let dir = tempdir();
    let base = dir.path().join("d");
    acquire(&sample(), &base, &["--format", "e01"], 0);
    let first = with_ext(&base, "E01");
    let chunk = 40u64; // inside the ext4 partition: real data
    let (segment, offset, stored) = chunk_place(&first, chunk);
    flip(&segment, offset + stored / 2);
    let source = std::fs::read(sample()).unwrap();
    let cs = 32768u64;

    let mut m = Mounted::start(&first, &dir.path().join("mnt"));
    let mut f = std::fs::File::open(m.dir.join("disk.raw")).unwrap();
    // A read that starts before the chunk returns the good bytes up to it.
    let start = chunk * cs - 1000;
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut buf = vec![0u8; 5000];
    let n = f.read(&mut buf).unwrap();
    assert_eq!(n, 1000);
    assert!(buf[..n] == source[start as usize..(chunk * cs) as usize]);
    // The next read starts in it: EIO.
    let err = f.read(&mut buf).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    // The chunk after it reads.
    f.seek(SeekFrom::Start((chunk + 1) * cs)).unwrap();
    f.read_exact(&mut buf).unwrap();
    assert!(buf[..] == source[((chunk + 1) * cs) as usize..][..5000]);
    drop(f);
    assert_eq!(m.terminate(), 0);
    let said = m.stderr_text();
    assert!(
        said.contains("EIO") && said.contains(&format!("chunk {chunk}")),
        "{said}"
    );
}

#[test]
fn an_unmount_from_outside_ends_the_mount() {
    require_faulty_device!();
    let dir = tempdir();
    let mut m = Mounted::start(&sample(), &dir.path().join("mnt"));
    assert!(Command::new("umount")
        .arg(&m.dir)
        .status()
        .unwrap()
        .success());
    assert_eq!(m.wait(), 0, "{}", m.stderr_text());
    assert!(!is_mounted(&m.dir));
}

#[test]
fn a_busy_or_missing_mount_point_and_a_missing_image_are_refused() {
    let dir = tempdir();
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let s = sample();
    let sample = s.to_str().unwrap();
    for (image, point, why) in [
        (sample, busy.to_str().unwrap(), "not empty"),
        (
            sample,
            dir.path().join("nowhere").to_str().unwrap(),
            "No such file",
        ),
        (
            "/nonexistent/x.E01",
            dir.path().to_str().unwrap(),
            "No such file",
        ),
    ] {
        let out = run_exit(2, &["mount", image, point]);
        let err = stderr(&out);
        assert!(err.contains(why), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(std::fs::read(busy.join("notes.txt")).unwrap(), b"mine");
    assert!(!is_mounted(&busy));
}

/// Reads `disk` at random offsets from several threads at once; every read must give the
/// source's bytes.
fn parallel_random_reads(disk: &Path, source: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            s.spawn(move || {
                let f = std::fs::File::open(disk).unwrap();
                let mut seed = 0x1234_5678 + t;
                for _ in 0..200 {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let offset = (seed >> 20) % source.len() as u64;
                    let len = (1 + (seed >> 40) % 100_000) as usize;
                    let mut buf = vec![0u8; len];
                    let n = f.read_at(&mut buf, offset).unwrap();
                    assert!(n > 0);
                    assert!(
                        buf[..n] == source[offset as usize..offset as usize + n],
                        "bytes at {offset}"
                    );
                }
            });
        }
    });
}

#[test]
fn ewfacquire_sets_and_split_raw_mount_and_serve_parallel_readers() {
    require_faulty_device!();
    let dir = tempdir();
    let source = std::fs::read(sample()).unwrap();
    let mut images = Vec::new();
    if let Some(first) = ewfacquire(&sample(), &dir.path().join("lib"), "fast", None) {
        images.push(first);
    }
    // A split raw image, mounted by its second segment's name.
    let base = dir.path().join("split");
    acquire(&sample(), &base, &["--split", "1M"], 0);
    images.push(with_ext(&base, "002"));
    for (i, image) in images.iter().enumerate() {
        let mut m = Mounted::start(image, &dir.path().join(format!("mnt{i}")));
        let disk = m.dir.join("disk.raw");
        assert_eq!(
            coreutils_sum("sha256sum", &disk),
            coreutils_sum("sha256sum", &sample()),
            "{}",
            image.display()
        );
        parallel_random_reads(&disk, &source);
        let p2 = std::fs::read(m.dir.join("p2.raw")).unwrap();
        assert!(p2 == source[8192 * 512..11264 * 512]);
        assert_eq!(m.terminate(), 0, "{}", m.stderr_text());
        assert!(!is_mounted(&m.dir));
    }
}

#[test]
fn a_set_with_a_missing_segment_is_refused() {
    let dir = tempdir();
    e01_of_sample(dir.path());
    std::fs::remove_file(with_ext(&dir.path().join("ev"), "E02")).unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let out = run_exit(
        2,
        &[
            "mount",
            with_ext(&dir.path().join("ev"), "E01").to_str().unwrap(),
            mnt.to_str().unwrap(),
        ],
    );
    let err = stderr(&out);
    assert!(err.contains("missing") && err.contains("E02"), "{err}");
    assert!(!is_mounted(&mnt));
}

#[test]
fn a_sequential_reader_gets_every_byte_and_eio_for_a_damaged_chunk_decoded_ahead() {
    require_faulty_device!();
    let dir = tempdir();
    let base = dir.path().join("d");
    acquire(&sample(), &base, &["--format", "e01"], 0);
    let first = with_ext(&base, "E01");
    let source = std::fs::read(sample()).unwrap();
    let cs = 32768u64;

    // Whole sequential reads, with the default cache (the window reaches the end of this
    // small disk) and with a cache so small that the window is two chunks.
    for (i, extra) in [&[][..], &["--cache-size", "256K"][..]].iter().enumerate() {
        let mut m = Mounted::start_with(&first, &dir.path().join(format!("whole{i}")), extra);
        assert_eq!(
            coreutils_sum("sha256sum", &m.dir.join("disk.raw")),
            coreutils_sum("sha256sum", &sample())
        );
        let p1 = std::fs::read(m.dir.join("p1.raw")).unwrap();
        assert!(p1 == source[2048 * 512..8192 * 512]);
        assert_eq!(m.terminate(), 0, "{}", m.stderr_text());
    }

    // Chunk 40 damaged: a reader going through the disk in order has it decoded ahead (and
    // failing) long before it gets there.
    let chunk = 40u64;
    let (segment, offset, stored) = chunk_place(&first, chunk);
    flip(&segment, offset + stored / 2);
    let mut m = Mounted::start(&first, &dir.path().join("mnt"));
    let mut f = std::fs::File::open(m.dir.join("disk.raw")).unwrap();
    let (bad_start, bad_end) = (chunk * cs, (chunk + 1) * cs);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 20_000]; // not a multiple of the chunk: reads straddle chunks
    let mut failures = Vec::new();
    loop {
        let at = f.stream_position().unwrap();
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert!(
                    at + n as u64 <= bad_start || at >= bad_end,
                    "bytes {at}..{} of a damaged chunk were returned",
                    at + n as u64
                );
                assert!(buf[..n] == source[at as usize..at as usize + n], "at {at}");
                got.extend_from_slice(&buf[..n]);
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO));
                failures.push(at);
                // Past the damage, in 4 KiB steps: every step inside it fails too.
                f.seek(SeekFrom::Start(at + 4096)).unwrap();
                got.extend_from_slice(&source[at as usize..(at + 4096) as usize]);
            }
        }
    }
    assert_eq!(got.len(), source.len());
    assert_eq!(
        failures.first(),
        Some(&bad_start),
        "the good bytes before it came first"
    );
    assert!(failures.iter().all(|&a| (bad_start..bad_end).contains(&a)));
    assert_eq!(failures.len() as u64, cs / 4096, "{failures:?}");
    drop(f);
    assert_eq!(m.terminate(), 0);
    let said = m.stderr_text();
    assert!(said.contains(&format!("chunk {chunk}")), "{said}");
}
