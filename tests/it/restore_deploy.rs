//! Deploying over a network with `exhibit restore -`: the media on standard input, proven
//! against `--expect-sha256`. Through a pipe from `exhibit cat`, and the udpcast recipe of
//! docs/restore.md: `udp-sender` in one network namespace, four `udp-receiver | exhibit
//! restore -` in four others, all on one bridge with only the namespaces' own addresses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const MEDIA: usize = 5 << 20;

fn read_record(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sh(command: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(command);
    c
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn a_stream_from_cat_is_restored_and_proven_or_refused() {
    let dir = tempdir();
    let d = dir.path();
    let data = mixed(MEDIA, 5);
    let src = d.join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let base = d.join("disk");
    acquire(&src, &base, &["--format", "e01"], 0);
    let sha = sha256_hex(&data);
    let exe = env!("CARGO_BIN_EXE_exhibit");
    let restore = |target: &Path, record: &Path, size: usize, hex: &str| {
        format!(
            "{exe} cat {} | {exe} restore - --to {} --size {size} --expect-sha256 {hex} \
             --record {} --quiet",
            q(&with_ext(&base, "E01")),
            q(target),
            q(record)
        )
    };
    let (t, r) = (d.join("t.raw"), d.join("r.yaml"));
    sh(&restore(&t, &r, MEDIA, &sha)).exits(0);
    assert_eq!(std::fs::read(&t).unwrap(), data);
    let rec = read_record(&r);
    assert_eq!(rec["outcome"]["status"], "complete");
    assert_eq!(rec["restore"]["image"], "-");
    assert_eq!(
        rec["restore"]["targets"][0]["read_back"]["verdict"],
        "matches"
    );
    assert_eq!(
        rec["restore"]["claimed_hashes"][0]["source"],
        "--expect-sha256"
    );

    let wrong = sha256_hex(b"not the media");
    let (t2, r2) = (d.join("t2.raw"), d.join("r2.yaml"));
    sh(&restore(&t2, &r2, MEDIA, &wrong)).exits(1);
    assert_eq!(
        read_record(&r2)["outcome"]["status"],
        "complete-with-findings"
    );

    // A stream shorter than --size fails (exit 2) and the record says the target was not
    // finished.
    let (t3, r3) = (d.join("t3.raw"), d.join("r3.yaml"));
    let out = sh(&restore(&t3, &r3, MEDIA + 4096, &sha)).exits(2);
    assert!(stderr(&out).contains("ended after"), "{}", stderr(&out));
    let rec3 = read_record(&r3);
    assert_eq!(rec3["outcome"]["status"], "failed");
    assert_eq!(rec3["restore"]["targets"][0]["status"], "not-finished");

    // Without --size or a hash there is nothing to prove against.
    let out = exhibit()
        .args(["restore", "-", "--to"])
        .arg(d.join("t4.raw"))
        .arg("--size")
        .arg(MEDIA.to_string())
        .stdin(Stdio::null())
        .exits(2);
    assert!(stderr(&out).contains("--expect-sha256"), "{}", stderr(&out));
    assert!(!d.join("t4.raw").exists());
}

/// Network namespaces made by a test, removed on drop (with their veth ends).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn in_ns(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip netns exec {ns} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Children (each the leader of its own process group: a pipeline) killed with their whole
/// group if the test ends before they do: a panic must not leave them running.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if c.try_wait().ok().flatten().is_none() {
                // SAFETY: kill has no memory preconditions; the group is our own child's.
                unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            }
            let _ = c.wait();
        }
    }
}

/// `ip netns exec NS sh -c COMMAND` in a process group of its own.
fn spawn_in(ns: &str, command: &str) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", command])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Waits for `child` at most until `deadline`; kills it past that.
fn wait_until(child: &mut Child, deadline: Instant, what: &str) -> i32 {
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            // The guard kills its process group.
            panic!("{what} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn udpcast_deploys_one_image_to_receivers_in_their_own_namespaces() {
    if !is_root() || !have("udp-sender") || !have("udp-receiver") {
        eprintln!("SKIPPED udpcast deploy: needs root, udp-sender and udp-receiver (udpcast)");
        return;
    }
    let tag = format!("exh{}", std::process::id() % 100_000);
    let bridge_ns = format!("{tag}-br");
    let names: Vec<String> = (0..5).map(|i| format!("{tag}-n{i}")).collect();
    let mut made = Namespaces(Vec::new());
    for ns in std::iter::once(&bridge_ns).chain(&names) {
        if !ip(&["netns", "add", ns]) {
            eprintln!("SKIPPED udpcast deploy: ip netns add failed");
            return;
        }
        made.0.push(ns.clone());
    }
    in_ns(&bridge_ns, &["ip", "link", "add", "br0", "type", "bridge"]);
    in_ns(
        &bridge_ns,
        &[
            "ip",
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ],
    );
    in_ns(&bridge_ns, &["ip", "link", "set", "br0", "up"]);
    for (i, ns) in names.iter().enumerate() {
        let (a, b) = (format!("{tag}a{i}"), format!("{tag}b{i}"));
        assert!(ip(&[
            "link", "add", &a, "netns", ns, "type", "veth", "peer", "name", &b, "netns", &bridge_ns
        ]));
        in_ns(
            &bridge_ns,
            &["ip", "link", "set", &b, "master", "br0", "up"],
        );
        let addr = format!("10.213.77.{}/24", i + 1);
        // `brd +`: udp-receiver says hello to the interface's broadcast address.
        in_ns(ns, &["ip", "addr", "add", &addr, "brd", "+", "dev", &a]);
        in_ns(ns, &["ip", "link", "set", &a, "up"]);
        in_ns(ns, &["ip", "link", "set", "lo", "up"]);
        in_ns(ns, &["ip", "route", "add", "224.0.0.0/4", "dev", &a]);
    }

    let dir = tempdir();
    let d = dir.path();
    let data = mixed(MEDIA, 9);
    let src = d.join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let base = d.join("disk");
    acquire(&src, &base, &["--format", "e01"], 0);
    let sha = sha256_hex(&data);
    let wrong = sha256_hex(b"another image");
    let exe = env!("CARGO_BIN_EXE_exhibit");
    let deadline = Instant::now() + Duration::from_secs(120);

    // Receivers 1–3 restore onto their own files, receiver 4 expects another hash.
    let mut children = Children(Vec::new());
    let mut receivers: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (i, ns) in names.iter().enumerate().skip(1) {
        let (target, record) = (d.join(format!("r{i}.raw")), d.join(format!("r{i}.yaml")));
        let expect = if i == 4 { &wrong } else { &sha };
        let cmd = format!(
            "udp-receiver --nokbd --interface {tag}a{i} 2>/dev/null | {exe} restore - --to {} \
             --size {MEDIA} --expect-sha256 {expect} --record {} --quiet",
            q(&target),
            q(&record)
        );
        children.0.push(spawn_in(ns, &cmd));
        receivers.push((target, record));
    }
    let send = format!(
        "{exe} cat {} 2>/dev/null | udp-sender --nokbd --interface {tag}a0 --min-receivers 4 \
         --max-wait 60 2>/dev/null",
        q(&with_ext(&base, "E01"))
    );
    children.0.insert(0, spawn_in(&names[0], &send));
    assert_eq!(wait_until(&mut children.0[0], deadline, "udp-sender"), 0);
    for (i, (target, record)) in receivers.into_iter().enumerate() {
        let code = wait_until(&mut children.0[i + 1], deadline, "a receiver");
        let rec = read_record(&record);
        if i == 3 {
            assert_eq!(code, 1, "the receiver expecting another hash");
            assert_eq!(
                rec["restore"]["targets"][0]["read_back"]["verdict"],
                "differs"
            );
        } else {
            assert_eq!(code, 0, "receiver {}", i + 1);
            assert_eq!(std::fs::read(&target).unwrap(), data);
            assert_eq!(rec["outcome"]["status"], "complete");
        }
    }
    drop(made);
    assert!(
        !Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&tag))
            .unwrap_or(false),
        "namespaces removed"
    );
}

#[test]
fn an_interrupted_restore_says_which_targets_were_not_finished() {
    use std::io::Write;
    let dir = tempdir();
    let d = dir.path();
    let (t1, t2, rec) = (d.join("t1.raw"), d.join("t2.raw"), d.join("r.yaml"));
    let mut child = exhibit()
        .args(["restore", "-", "--to"])
        .arg(&t1)
        .arg("--to")
        .arg(&t2)
        .args(["--size", "8M", "--expect-sha256"])
        .arg(sha256_hex(b"x"))
        .arg("--record")
        .arg(&rec)
        .arg("--quiet")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(&mixed(2 << 20, 1)).unwrap();
    // The stream stalls (the sender went away without closing it): a signal still stops it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rec.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    send_signal(&child, libc::SIGTERM);
    assert_eq!(
        wait_until(&mut child, deadline, "the interrupted restore"),
        2
    );
    drop(input);
    let r = read_record(&rec);
    assert_eq!(r["outcome"]["status"], "interrupted", "{r:?}");
    for t in r["restore"]["targets"].as_sequence().unwrap() {
        assert_eq!(t["status"], "not-finished", "{t:?}");
        assert!(t["read_back"].is_null());
    }
}
