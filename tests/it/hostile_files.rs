//! A hostile world around the outputs (issue 15): names planted where exhibit writes, a
//! source that is one of the files a run writes, an output that would land inside the
//! source file through its loop device, two runs on one BASE, a target that fills up. What an
//! examiner checks each time: the evidence's SHA-256 is unchanged, the exit code, one line on
//! stderr, and nothing left behind that looks like an output.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::*;

fn sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// Every name in `dir` with what it is: a link's target or a file's SHA-256.
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let p = e.path();
            let what = match std::fs::symlink_metadata(&p).unwrap() {
                m if m.file_type().is_symlink() => {
                    format!("-> {}", std::fs::read_link(&p).unwrap().display())
                }
                m if m.is_file() => sha(&p),
                _ => "other".into(),
            };
            (e.file_name().to_string_lossy().into_owned(), what)
        })
        .collect();
    v.sort();
    v
}

/// Temporary files exhibit left in `dir` (its names end in `.tmp-` and 16 hex digits).
fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

/// Runs exhibit with `args`: exit 2, one line on stderr containing `why`, and not one name
/// or byte in `dir` changed. Returns stderr.
fn refused(args: &[&str], dir: &Path, why: &str) -> String {
    let before = listing(dir);
    let out = run_exit(2, args);
    let err = stderr(&out);
    assert!(err.contains(why), "{args:?}: expected '{why}' in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert_eq!(listing(dir), before, "{args:?} changed files");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_source_named_like_a_temporary_file_is_read_and_left_as_it_was() {
    // Earlier versions wrote BASE.map.tmp, BASE.yaml.tmp, …: such a source was renamed over
    // the map (exit 0, "complete", the evidence gone).
    let dir = tempdir();
    let d = dir.path();
    for (i, ext) in ["map.tmp", "yaml.tmp", "crc64.tmp", "sha256.tmp"]
        .iter()
        .enumerate()
    {
        for job in ["acquire", "rescue"] {
            let base = d.join(format!("{job}{i}"));
            let src = make_source(d, &format!("{job}{i}.{ext}"), 300_000, i as u64);
            let before = sha(&src);
            run_ok(&[job, s(&src), "-o", s(&base), "--quiet"]);
            assert_eq!(sha(&src), before, "{job} changed the evidence {ext}");
            assert_eq!(sha(&with_ext(&base, "raw")), before, "{job}: image");
            assert!(!with_ext(&base, "lock").exists(), "{job}: the lock stayed");
        }
    }
    assert!(temporary_files(d).is_empty(), "{:?}", temporary_files(d));
}

#[test]
fn symlinks_planted_at_temporary_names_are_never_followed() {
    let dir = tempdir();
    let d = dir.path();
    let victim = d.join("victim");
    std::fs::write(&victim, b"a bystander's file").unwrap();
    let src = make_source(d, "src", 300_000, 3);
    for job in ["acquire", "rescue"] {
        let base = d.join(job);
        for ext in ["yaml", "map", "crc64", "md5", "sha1", "sha256"] {
            symlink(&victim, with_ext(&base, &format!("{ext}.tmp"))).unwrap();
        }
        run_ok(&[job, s(&src), "-o", s(&base), "--quiet"]);
        // Again over the outputs of the first run: every side file is replaced.
        run_ok(&[job, s(&src), "-o", s(&base), "--quiet", "--overwrite"]);
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"a bystander's file",
            "{job}"
        );
        for ext in ["yaml", "map", "md5", "sha256"] {
            let planted = with_ext(&base, &format!("{ext}.tmp"));
            assert_eq!(std::fs::read_link(&planted).unwrap(), victim, "{job} {ext}");
        }
        assert_eq!(sha(&with_ext(&base, "raw")), sha(&src), "{job}: image");
        hash_logs_check(&base, &["sha256"]);
    }
    assert!(temporary_files(d).is_empty(), "{:?}", temporary_files(d));
}

#[test]
fn a_source_that_is_a_file_the_run_writes_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    let src = make_source(d, "src", 300_000, 9);
    let base = d.join("img");
    let b = s(&base);
    let same = "is the source itself";

    // The source named as an output, under another name (hard link), or linked at a
    // segment name an --overwrite would replace or remove.
    let map = make_source(d, "img.map", 300_000, 1);
    refused(&["acquire", s(&map), "-o", b, "--overwrite"], d, same);
    std::fs::remove_file(&map).unwrap();
    std::fs::hard_link(&src, with_ext(&base, "sha256")).unwrap();
    refused(&["acquire", s(&src), "-o", b, "--overwrite"], d, same);
    let err = refused(&["rescue", s(&src), "-o", b, "--overwrite"], d, same);
    assert!(err.contains("img.sha256"), "{err}");
    std::fs::remove_file(with_ext(&base, "sha256")).unwrap();
    symlink(&src, with_ext(&base, "E02")).unwrap();
    let e01 = ["--format", "e01", "--overwrite"];
    refused(
        &[&["acquire", s(&src), "-o", b][..], &e01].concat(),
        d,
        same,
    );
    refused(&[&["rescue", s(&src), "-o", b][..], &e01].concat(), d, same);
    std::fs::remove_file(with_ext(&base, "E02")).unwrap();
    symlink(&src, with_ext(&base, "007")).unwrap();
    refused(
        &[
            "acquire",
            s(&src),
            "-o",
            b,
            "--split",
            "100K",
            "--overwrite",
        ],
        d,
        same,
    );
    std::fs::remove_file(with_ext(&base, "007")).unwrap();

    // Rescue with --overwrite removes the old hash logs and record: never the source's name.
    for ext in ["sha1", "yaml", "lock"] {
        let named = make_source(d, &format!("img.{ext}"), 300_000, 2);
        let before = sha(&named);
        refused(&["rescue", s(&named), "-o", b, "--overwrite"], d, same);
        refused(&["acquire", s(&named), "-o", b, "--overwrite"], d, same);
        assert_eq!(sha(&named), before);
        std::fs::remove_file(&named).unwrap();
    }
    // A source that merely shares the base's stem is nobody's output.
    let img = make_source(d, "img.img", 300_000, 4);
    run_ok(&["acquire", s(&img), "-o", b, "--quiet"]);
    assert_eq!(sha(&with_ext(&base, "raw")), sha(&img));
}

/// A 24 MiB file holding an ext4 (eager inode tables: nothing writes it in the background),
/// optionally inside partition 1 of a DOS label.
fn ext4_file(path: &Path, partitioned: bool) -> bool {
    std::fs::write(path, vec![0u8; 24 << 20]).unwrap();
    if partitioned && !sfdisk(path, b"label: dos\nstart=2048, type=83\n") {
        return false;
    }
    if partitioned {
        return true;
    }
    mkfs_ext4(path)
}

fn sync() {
    let _ = Command::new("sync").status();
}

#[test]
fn an_output_inside_the_source_file_through_its_loop_device_is_refused() {
    let test = "an_output_inside_the_source_file_through_its_loop_device_is_refused";
    if skip_without_loop(test) {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let x = d.join("X");
    if !ext4_file(&x, false) || !have("sfdisk") {
        eprintln!("SKIPPED {test}: mkfs.ext4 or sfdisk unavailable");
        return;
    }
    // Source = file X; X is the backing file of /dev/loopN; the output directory is on the
    // filesystem mounted from /dev/loopN: the output would be written into X.
    {
        let dev = LoopDevice::attach(&x, 512, false, false);
        let mnt = Mount::with_options(&dev.path, &d.join("mnt"), None, "noatime");
        sync();
        let before = sha(&x);
        let out = mnt.dir.join("out");
        for job in ["acquire", "rescue"] {
            let err = refused(
                &[job, s(&x), "-o", s(&out)],
                &mnt.dir,
                "its filesystem lives inside the source file",
            );
            assert!(
                err.contains(&format!(
                    "on {}",
                    dev.path.file_name().unwrap().to_string_lossy()
                )),
                "{err}"
            );
        }
        sync();
        assert_eq!(sha(&x), before, "the evidence file changed");
    }
    // Stacked on it: the filesystem is on a partition of /dev/loopN.
    let y = d.join("Y");
    assert!(ext4_file(&y, true));
    let dev = LoopDevice::attach(&y, 512, false, true);
    let part = PathBuf::from(format!("{}p1", dev.path.display()));
    assert!(mkfs_ext4(&part), "mkfs.ext4 {}", part.display());
    let mnt = Mount::with_options(&part, &d.join("mnt-p1"), None, "noatime");
    sync();
    let before = sha(&y);
    refused(
        &["acquire", s(&y), "-o", s(&mnt.dir.join("out"))],
        &mnt.dir,
        "stacked on",
    );
    sync();
    assert_eq!(sha(&y), before, "the evidence file changed");
    drop(mnt);
    drop(dev);

    // Stacked on it: a device-mapper device on /dev/loopN holds the filesystem.
    let z = d.join("Z");
    std::fs::write(&z, vec![0u8; 24 << 20]).unwrap();
    let dev = LoopDevice::attach(&z, 512, false, false);
    if let Some(dm) = DmLinear::new(&dev.path, 24 << 20) {
        assert!(mkfs_ext4(&dm.path), "mkfs.ext4 {}", dm.path.display());
        let mnt = Mount::with_options(&dm.path, &d.join("mnt-dm"), None, "noatime");
        sync();
        let before = sha(&z);
        let err = refused(
            &["rescue", s(&z), "-o", s(&mnt.dir.join("out"))],
            &mnt.dir,
            "stacked on",
        );
        assert!(err.contains("dm-"), "{err}");
        sync();
        assert_eq!(sha(&z), before, "the evidence file changed");
    } else {
        eprintln!("{test}: no device-mapper here; the dm case is not tested");
    }
    drop(dev);

    // The loop device as the source and the file behind it as an output.
    let backing = make_source(d, "lb.raw", 1 << 20, 6);
    let dev = LoopDevice::attach(&backing, 512, true, false);
    refused(
        &[
            "acquire",
            dev.as_str(),
            "-o",
            s(&d.join("lb")),
            "--overwrite",
        ],
        d,
        "is the backing file of loop",
    );
}

/// A device-mapper device mapping all of `device` linearly; removed on drop (after whatever
/// was mounted on it: declare it before the mount).
struct DmLinear {
    name: String,
    path: PathBuf,
}

impl DmLinear {
    fn new(device: &Path, size: u64) -> Option<DmLinear> {
        let name = format!("exhibit-test-{}", std::process::id());
        let table = format!("0 {} linear {} 0", size / 512, device.display());
        let ok = Command::new("dmsetup")
            .args(["create", &name, "--table", &table])
            .output()
            .is_ok_and(|o| o.status.success());
        let path = PathBuf::from(format!("/dev/mapper/{name}"));
        let dm = DmLinear { name, path };
        // udev may be absent: the node is then made by hand from the device number.
        if ok && !dm.path.exists() {
            let _ = Command::new("dmsetup").args(["mknodes", &dm.name]).output();
        }
        (ok && dm.path.exists()).then_some(dm)
    }
}

impl Drop for DmLinear {
    fn drop(&mut self) {
        let _ = Command::new("dmsetup")
            .args(["remove", "--retry", &self.name])
            .output();
    }
}

/// Waits until `child` holds the lock `lock` (its pid is in it); panics if it ended first.
fn wait_for_lock(child: &mut Child, lock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = format!("pid: {}", child.id());
    while !std::fs::read(lock).is_ok_and(|t| String::from_utf8_lossy(&t).contains(&pid)) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        assert!(
            Instant::now() < deadline,
            "no lock {} after 30 s",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A sparse source of `size` bytes with marked data at its start, middle and end.
fn big_source(dir: &Path, size: u64) -> PathBuf {
    use std::os::unix::fs::FileExt;
    let p = dir.join("big");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(size).unwrap();
    for (i, at) in [0, size / 2, size - (1 << 20)].into_iter().enumerate() {
        f.write_all_at(&pattern(1 << 20, i as u64), at).unwrap();
    }
    p
}

/// The first run, slowed by small reads, holds BASE; every second run on it (acquire or
/// rescue, with --overwrite or not) is refused at once naming the first's pid, and the first
/// completes with an image equal to its source.
fn second_runs_refused(first_args: &[&str]) {
    let dir = tempdir();
    let d = dir.path();
    let src = big_source(d, 256 << 20);
    let base = d.join("img");
    let other = make_source(d, "other", 1 << 20, 8);
    let mut first = exhibit()
        .args(first_args)
        .arg(&src)
        .arg("-o")
        .arg(&base)
        .arg("--quiet")
        .spawn()
        .unwrap();
    let lock = with_ext(&base, "lock");
    wait_for_lock(&mut first, &lock);
    let pid = format!("pid {}", first.id());
    for (job, extra) in [
        ("acquire", "--overwrite"),
        ("acquire", "--quiet"),
        ("rescue", "--overwrite"),
        ("rescue", "--quiet"),
    ] {
        let started = Instant::now();
        let out = run_exit(2, &[job, s(&other), "-o", s(&base), extra]);
        let err = stderr(&out);
        assert!(err.contains("in use by another exhibit run"), "{err}");
        assert!(err.contains(&pid), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not refused at once"
        );
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended before the second runs were tried: the test proves nothing"
    );
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the first run");
    assert_eq!(sha(&with_ext(&base, "raw")), sha(&src), "the image");
    assert_eq!(
        record(&base)["outcome"]["status"].as_str(),
        Some("complete")
    );
    hash_logs_check(&base, &["md5", "sha256"]);
    assert!(!lock.exists(), "the lock is removed at the end");
    assert!(temporary_files(d).is_empty(), "{:?}", temporary_files(d));
}

#[test]
fn a_second_run_on_the_base_of_an_acquisition_is_refused() {
    second_runs_refused(&["acquire", "--io", "sync", "--block-size", "4K"]);
}

#[test]
fn a_second_run_on_the_base_of_a_rescue_is_refused() {
    second_runs_refused(&["rescue", "--careful", "--block-size", "1K"]);
}

#[test]
fn a_lock_file_that_is_not_ours_is_never_written() {
    let dir = tempdir();
    let d = dir.path();
    let src = make_source(d, "src", 300_000, 7);
    let base = d.join("img");
    let lock = with_ext(&base, "lock");
    let victim = d.join("victim");
    std::fs::write(&victim, b"a bystander's file").unwrap();
    for job in ["acquire", "rescue"] {
        let args = [job, s(&src), "-o", s(&base)];
        symlink(&victim, &lock).unwrap();
        refused(&args, d, "is a symbolic link");
        std::fs::remove_file(&lock).unwrap();
        std::fs::hard_link(&victim, &lock).unwrap();
        refused(&args, d, "hard links");
        std::fs::remove_file(&lock).unwrap();
        std::fs::write(&lock, b"someone's notes").unwrap();
        refused(&args, d, "not an exhibit lock file");
        std::fs::remove_file(&lock).unwrap();
    }
    // The lock of a run that was killed is taken over and removed at the end.
    std::fs::write(
        &lock,
        b"exhibit lock file: a run writes img.* (removed when it ends)\npid: 4000000\n",
    )
    .unwrap();
    acquire(&src, &base, &[], 0);
    assert!(!lock.exists());
    assert_eq!(std::fs::read(&victim).unwrap(), b"a bystander's file");
}

#[test]
fn a_full_target_ends_with_a_failed_record_and_no_temporary_files() {
    let test = "a_full_target_ends_with_a_failed_record_and_no_temporary_files";
    if !is_root() {
        eprintln!("SKIPPED {test}: mounting a tmpfs needs root");
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let src = make_source(d, "src", 16 << 20, 11);
    let before = sha(&src);
    let target = d.join("small");
    for (job, extra) in [
        ("acquire", &[][..]),
        ("acquire", &["--format", "e01", "--compression", "none"][..]),
        ("rescue", &[][..]),
    ] {
        let mnt = Mount::with_options(Path::new("tmpfs"), &target, Some("tmpfs"), "size=8M");
        let base = mnt.dir.join("img");
        let out = run_exit(
            2,
            &[&[job, s(&src), "-o", s(&base), "--quiet"][..], extra].concat(),
        );
        let err = stderr(&out);
        assert!(err.contains("No space left on device"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let rec = record(&base);
        assert_eq!(
            rec["outcome"]["status"].as_str(),
            Some("failed"),
            "{job} {extra:?}"
        );
        assert!(load_map(&with_ext(&base, "map")).size() > 0);
        assert!(
            temporary_files(&mnt.dir).is_empty(),
            "{:?}",
            temporary_files(&mnt.dir)
        );
        assert!(!with_ext(&base, "lock").exists(), "{job}: the lock stayed");
    }
    assert_eq!(sha(&src), before);

    // No inode left for the last record's temporary file: the record cannot be updated, and
    // stderr says so. Which count of inodes leaves none depends on the kernel; each must
    // either update the record or say that it could not.
    let mut unrecorded = 0;
    for inodes in 4..=7 {
        let options = format!("size=8M,nr_inodes={inodes}");
        let mnt = Mount::with_options(Path::new("tmpfs"), &target, Some("tmpfs"), &options);
        let base = mnt.dir.join("img");
        let out = run_exit(2, &["acquire", s(&src), "-o", s(&base), "--quiet"]);
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            temporary_files(&mnt.dir).is_empty(),
            "{:?}",
            temporary_files(&mnt.dir)
        );
        let status = std::fs::read_to_string(with_ext(&base, "yaml"))
            .ok()
            .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
            .and_then(|r| r["outcome"]["status"].as_str().map(str::to_string));
        match status.as_deref() {
            Some("failed") | None => {}
            Some("running") => {
                assert!(
                    err.contains("could not be updated") && err.contains("still says running"),
                    "a stale record and nothing said: {err}"
                );
                unrecorded += 1;
            }
            other => panic!("record status {other:?}: {err}"),
        }
    }
    assert!(unrecorded > 0, "no inode count left the record stale");
}

/// With `--overwrite`, an image output that is a symbolic link or a file with other names
/// (hard links) is refused: writing through it would change a bystander, perhaps evidence.
/// Raw, split, E01 and a rescue's image alike.
#[test]
fn overwrite_never_writes_through_a_link_at_an_image_name() {
    let dir = tempdir();
    let d = dir.path();
    let src = make_source(d, "src.bin", 1 << 20, 31);
    let bystander = d.join("bystander.dat");
    std::fs::write(&bystander, b"not an output").unwrap();
    let base = d.join("ev");
    for (name, args) in [
        ("ev.raw", vec!["acquire"]),
        ("ev.001", vec!["acquire", "--split", "512K"]),
        ("ev.E01", vec!["acquire", "--format", "e01"]),
        ("ev.raw", vec!["rescue"]),
    ] {
        for how in ["symlink", "hard link"] {
            let at = d.join(name);
            let _ = std::fs::remove_file(&at);
            if how == "symlink" {
                symlink(&bystander, &at).unwrap();
            } else {
                std::fs::hard_link(&bystander, &at).unwrap();
            }
            let mut argv = args.clone();
            argv.extend([s(&src), "-o", s(&base), "--overwrite", "--quiet"]);
            let why = if how == "symlink" {
                "symbolic link"
            } else {
                "hard links"
            };
            let out = run_exit(2, &argv);
            let err = stderr(&out);
            assert!(err.contains(why), "{argv:?} with a {how} at {name}: {err}");
            assert_eq!(
                std::fs::read(&bystander).unwrap(),
                b"not an output",
                "{argv:?}"
            );
            std::fs::remove_file(&at).unwrap();
        }
        for side in [
            "ev.yaml",
            "ev.map",
            "ev.crc64",
            "ev.md5",
            "ev.sha1",
            "ev.sha256",
            "ev.lock",
        ] {
            let _ = std::fs::remove_file(d.join(side));
        }
    }
}

/// A FIFO where a rescue's map goes is refused at once, not read forever.
#[test]
fn a_fifo_as_the_map_of_a_rescue_is_refused_not_read() {
    let dir = tempdir();
    let d = dir.path();
    let src = make_source(d, "src.bin", 1 << 20, 32);
    let base = d.join("r");
    let fifo = with_ext(&base, "map");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let out = exhibit()
        .args(["rescue", s(&src), "-o", s(&base), "--quiet"])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FIFO") || stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}
