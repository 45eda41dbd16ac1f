//! `exhibit devices` and the live-source rule on real loop devices made by the tests: sizes,
//! sector sizes, transport, the read-only flag, partitions with their mount points and the
//! partition table, checked against `blockdev` and `sfdisk`; `acquire` and `rescue` of a
//! device with an ext4 mounted read-write (refused, or with `--allow-live` recorded) and
//! read-only (warned and recorded); a writable loop device over a source, shown as its holder
//! and refused. Only devices these tests made are asserted on.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn blockdev(flag: &str, dev: &Path) -> u64 {
    tool_stdout(Command::new("blockdev").arg(flag).arg(dev))
        .trim()
        .parse()
        .unwrap()
}

fn name_of(dev: &Path) -> String {
    dev.file_name().unwrap().to_string_lossy().into_owned()
}

/// `exhibit devices --json [extra]`, parsed.
fn devices_json(extra: &[&str]) -> serde_json::Value {
    let out = run_ok(&[&["devices", "--json"][..], extra].concat());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("devices --json is JSON");
    assert_eq!(v["version"], 1);
    v
}

fn entry<'a>(v: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
}

#[test]
fn devices_shows_the_loop_devices_a_test_made() {
    let test = "devices_shows_the_loop_devices_a_test_made";
    if skip_without_loop(test) {
        return;
    }
    if !have("sfdisk") || !have("mkfs.ext4") || !have("blockdev") {
        eprintln!("SKIPPED {test}: needs sfdisk, mkfs.ext4 and blockdev");
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let out = run_exit(2, &["devices", s(d)]);
    assert!(
        stderr(&out).contains("is not a block device"),
        "{}",
        stderr(&out)
    );
    // A GPT disk of two partitions; the first holds an ext4 mounted read-write.
    let disk = d.join("gpt.img");
    std::fs::write(&disk, vec![0u8; 32 << 20]).unwrap();
    assert!(sfdisk(
        &disk,
        b"label: gpt\nstart=2048, size=24576, name=evidence\nstart=28672, size=20480\n"
    ));
    let gpt = LoopDevice::attach(&disk, 512, false, true);
    let p1 = PathBuf::from(format!("{}p1", gpt.path.display()));
    let partitions = p1.exists();
    let mnt = if partitions {
        assert!(mkfs_ext4(&p1));
        Some(Mount::new(&p1, &d.join("mnt")))
    } else {
        eprintln!("{test}: this kernel made no partition nodes; partition mounts not tested");
        None
    };
    // A read-only device of 4096-byte sectors.
    let small = make_source(d, "4k.raw", 3 << 20, 7);
    let ro = LoopDevice::attach(&small, 4096, true, false);

    // Named, so that no other test's device is opened (a faulty device counts its reads).
    let v = devices_json(&[gpt.as_str(), ro.as_str()]);
    assert_eq!(v["devices"].as_array().unwrap().len(), 2, "{v}");
    let g = entry(&v, &name_of(&gpt.path)).expect("the GPT loop device is listed");
    assert_eq!(g["path"], s(&gpt.path));
    assert_eq!(g["transport"], "loop");
    assert_eq!(g["size_bytes"], blockdev("--getsize64", &gpt.path));
    assert_eq!(g["size_sectors"], (32u64 << 20) / 512);
    assert_eq!(g["logical_sector_size"], blockdev("--getss", &gpt.path));
    assert_eq!(g["physical_sector_size"], blockdev("--getpbsz", &gpt.path));
    assert_eq!(g["read_only"], false);
    assert_eq!(
        g["loop_backing_file"],
        s(&std::fs::canonicalize(&disk).unwrap())
    );
    assert_eq!(g["system_root"], false);
    // The table from exhibit's own parser, as sfdisk wrote it.
    let table = &g["partition_table"];
    assert_eq!(table["scheme"], "gpt", "{g}");
    let starts: Vec<u64> = table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["start"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [2048, 28672]);
    assert_eq!(table["partitions"][0]["name"], "evidence");
    if let Some(mnt) = &mnt {
        let parts = g["partitions"].as_array().unwrap();
        assert_eq!(parts.len(), 2, "{g}");
        assert_eq!(parts[0]["name"], format!("{}p1", name_of(&gpt.path)));
        assert_eq!(parts[0]["start_512"], 2048);
        assert_eq!(parts[0]["size_bytes"], 24576 * 512);
        let m = &parts[0]["mounts"][0];
        assert_eq!(m["mount_point"], s(&mnt.dir));
        assert_eq!(m["fs_type"], "ext4");
        assert_eq!(m["read_only"], false);
        assert_eq!(parts[1]["mounts"].as_array().unwrap().len(), 0);
    }

    let r = entry(&v, &name_of(&ro.path)).expect("the read-only loop device is listed");
    assert_eq!(r["read_only"], true);
    assert_eq!(blockdev("--getro", &ro.path), 1);
    assert_eq!(r["logical_sector_size"], 4096);
    assert_eq!(r["size_bytes"], 3u64 << 20);
    assert_eq!(r["size_sectors"], (3u64 << 20) / 4096);
    assert_eq!(r["partition_table"], serde_json::Value::Null);
    assert_eq!(r["partition_table_error"], serde_json::Value::Null);

    // Loop devices only with --all (here without opening any device).
    let plain = devices_json(&["--no-partition-tables"]);
    assert!(entry(&plain, &name_of(&gpt.path)).is_none());
    let all = devices_json(&["--all", "--no-partition-tables"]);
    let listed = entry(&all, &name_of(&gpt.path)).expect("listed with --all");
    assert_eq!(listed["partition_table"], serde_json::Value::Null);
    assert_eq!(listed["size_bytes"], g["size_bytes"]);
    // A partition names its disk.
    if partitions {
        let by_part = devices_json(&[s(&p1)]);
        assert_eq!(by_part["devices"][0]["name"], name_of(&gpt.path).as_str());
    }
    // The table on a terminal names the device, its transport and the mount point.
    let out = run_ok(&["devices", gpt.as_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{} ", gpt.as_str())))
        .unwrap_or_else(|| panic!("no row for {}:\n{text}", gpt.as_str()));
    assert!(row.contains("loop"), "{row}");
    if let Some(mnt) = &mnt {
        assert!(
            text.contains(&format!("rw {} (ext4)", mnt.dir.display())),
            "{text}"
        );
    }
    assert!(text.contains("GPT partition table"), "{text}");
    assert!(text.contains("\"evidence\""), "{text}");
    drop(mnt);
}

/// A loop device over a new ext4 file system of 16 MiB, and a mount of it (declared after
/// the device, so dropped first).
fn ext4_device(d: &Path, name: &str) -> Option<LoopDevice> {
    let file = d.join(name);
    std::fs::write(&file, vec![0u8; 16 << 20]).unwrap();
    mkfs_ext4(&file).then(|| LoopDevice::attach(&file, 512, false, false))
}

/// Runs `args` and asserts the refusal: exit 2, one line naming `mount_point`, and nothing
/// written beside BASE.
fn assert_live_refused(args: &[&str], base: &Path, mount_point: &Path) {
    let out = run_exit(2, args);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is live"), "{err}");
    assert!(
        err.contains(&format!("mounted read-write at {}", mount_point.display())),
        "{err}"
    );
    assert!(err.contains("--allow-live"), "{err}");
    let dir = base.parent().unwrap();
    let stem = base.file_name().unwrap().to_string_lossy().into_owned();
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&stem))
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "written: {left:?}");
}

#[test]
fn a_source_mounted_read_write_is_refused_unless_allow_live() {
    let test = "a_source_mounted_read_write_is_refused_unless_allow_live";
    if skip_without_loop(test) {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let Some(dev) = ext4_device(d, "rw.img") else {
        eprintln!("SKIPPED {test}: mkfs.ext4 unavailable");
        return;
    };
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mnt = Mount::new(&dev.path, &d.join("mnt"));
    for job in ["acquire", "rescue"] {
        let base = out_dir.join(job);
        assert_live_refused(
            &[job, dev.as_str(), "-o", s(&base), "--quiet"],
            &base,
            &mnt.dir,
        );
    }
    // With --allow-live: imaged, warned on stderr and recorded.
    for job in ["acquire", "rescue"] {
        let base = out_dir.join(format!("{job}-live"));
        let out = run_ok(&[job, dev.as_str(), "-o", s(&base), "--quiet", "--allow-live"]);
        let err = stderr(&out);
        assert!(err.contains("warning"), "{err}");
        assert!(
            err.contains(&format!("read-write at {}", mnt.dir.display())),
            "{err}"
        );
        let rec = record(&base);
        let live = &rec["source"]["live_use"];
        assert_eq!(
            live["allowed_by"].as_str(),
            Some("--allow-live"),
            "{live:?}"
        );
        assert_eq!(live["mounts"][0]["mount_point"].as_str(), Some(s(&mnt.dir)));
        assert_eq!(live["mounts"][0]["read_only"].as_bool(), Some(false));
        assert_eq!(
            live["mounts"][0]["device"].as_str(),
            Some(name_of(&dev.path).as_str())
        );
    }
    drop(mnt);
    // Unmounted: not live, nothing recorded.
    let base = out_dir.join("quiet");
    let out = run_ok(&["acquire", dev.as_str(), "-o", s(&base), "--quiet"]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(record(&base)["source"].get("live_use").is_none());
}

#[test]
fn a_source_mounted_read_only_is_imaged_warned_and_recorded() {
    let test = "a_source_mounted_read_only_is_imaged_warned_and_recorded";
    if skip_without_loop(test) {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let Some(dev) = ext4_device(d, "ro.img") else {
        eprintln!("SKIPPED {test}: mkfs.ext4 unavailable");
        return;
    };
    let mnt = Mount::with_options(&dev.path, &d.join("mnt"), None, "ro,noload");
    for job in ["acquire", "rescue"] {
        let base = d.join(job);
        let out = run_ok(&[job, dev.as_str(), "-o", s(&base), "--quiet"]);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("mounted read-only at {}", mnt.dir.display())),
            "{err}"
        );
        assert!(err.contains("nothing writes to it"), "{err}");
        let live = &record(&base)["source"]["live_use"];
        assert_eq!(
            live["allowed_by"].as_str(),
            Some("read-only mounts"),
            "{live:?}"
        );
        assert_eq!(live["mounts"][0]["read_only"].as_bool(), Some(true));
        assert_eq!(live["mounts"][0]["fs_type"].as_str(), Some("ext4"));
    }
    drop(mnt);
}

#[test]
fn a_disk_whose_partition_is_mounted_read_write_is_refused() {
    let test = "a_disk_whose_partition_is_mounted_read_write_is_refused";
    if skip_without_loop(test) {
        return;
    }
    if !have("sfdisk") || !have("mkfs.ext4") {
        eprintln!("SKIPPED {test}: needs sfdisk and mkfs.ext4");
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let disk = d.join("disk.img");
    std::fs::write(&disk, vec![0u8; 24 << 20]).unwrap();
    assert!(sfdisk(&disk, b"label: dos\nstart=2048, type=83\n"));
    let dev = LoopDevice::attach(&disk, 512, false, true);
    let p1 = PathBuf::from(format!("{}p1", dev.path.display()));
    if !p1.exists() {
        eprintln!("SKIPPED {test}: no partition nodes on loop devices here");
        return;
    }
    assert!(mkfs_ext4(&p1));
    let mnt = Mount::new(&p1, &d.join("mnt"));
    let base = d.join("img");
    assert_live_refused(&["acquire", dev.as_str(), "-o", s(&base)], &base, &mnt.dir);
    let out = run_exit(2, &["acquire", dev.as_str(), "-o", s(&base)]);
    assert!(stderr(&out).contains(&format!("{}p1 is mounted", name_of(&dev.path))));
    // The partition itself, too.
    assert_live_refused(&["rescue", s(&p1), "-o", s(&base)], &base, &mnt.dir);
    drop(mnt);
}

/// A loop device in use as swap; swapped off on drop (before the device is detached).
struct Swap {
    device: PathBuf,
}

impl Drop for Swap {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.device).status();
    }
}

#[test]
fn a_source_in_use_as_swap_is_refused() {
    let test = "a_source_in_use_as_swap_is_refused";
    if skip_without_loop(test) {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let file = d.join("swap.img");
    std::fs::write(&file, vec![0u8; 16 << 20]).unwrap();
    let made = Command::new("mkswap").arg(&file).output();
    if !made.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED {test}: mkswap unavailable");
        return;
    }
    let dev = LoopDevice::attach(&file, 512, false, false);
    let on = Command::new("swapon").arg(&dev.path).output();
    if !on.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED {test}: swapon refused here");
        return;
    }
    let swap = Swap {
        device: dev.path.clone(),
    };
    let base = d.join("img");
    let out = run_exit(2, &["acquire", dev.as_str(), "-o", s(&base)]);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{} is active swap", name_of(&dev.path))),
        "{err}"
    );
    assert!(!base.with_extension("yaml").exists());
    let v = devices_json(&[dev.as_str(), "--no-partition-tables"]);
    assert_eq!(v["devices"][0]["swap"], true);
    drop(swap);
}

/// The holders `devices --all --json` shows for the device named `name`.
fn holders_of(name: &str) -> Vec<serde_json::Value> {
    let v = devices_json(&["--all"]);
    let e = entry(&v, name).unwrap_or_else(|| panic!("{name} is listed"));
    e["holders"].as_array().unwrap().clone()
}

#[test]
fn a_source_under_a_writable_loop_device_is_refused() {
    let test = "a_source_under_a_writable_loop_device_is_refused";
    if skip_without_loop(test) {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let file = make_source(d, "under.raw", 1 << 20, 3);
    let under = LoopDevice::attach(&file, 512, false, false);
    let base = d.join("img");
    {
        // Read-only over it: nothing writes through it.
        let _ro = LoopDevice::attach(&under.path, 512, true, false);
        run_ok(&["acquire", under.as_str(), "-o", s(&base), "--quiet"]);
        assert!(holders_of(&name_of(&under.path)).is_empty());
    }
    let over = LoopDevice::attach(&under.path, 512, false, false);
    // `devices` shows it as what holds the source, as the refusal below names it.
    let holders = holders_of(&name_of(&under.path));
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(holders[0]["name"], name_of(&over.path).as_str());
    assert_eq!(holders[0]["kind"], "loop");
    let table = text(&run_ok(&["devices", "--all"]));
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{} ", under.as_str())))
        .unwrap_or_else(|| panic!("a row for {}: {table}", under.path.display()));
    assert!(
        row.contains(&format!("held by {} (loop", name_of(&over.path))),
        "{row}"
    );
    let base = d.join("img2");
    let out = run_exit(2, &["acquire", under.as_str(), "-o", s(&base)]);
    let err = stderr(&out);
    let want = format!(
        "{} is held by {} (loop)",
        name_of(&under.path),
        name_of(&over.path)
    );
    assert!(err.contains(&want), "{err}");
    assert!(!base.with_extension("yaml").exists());
}
