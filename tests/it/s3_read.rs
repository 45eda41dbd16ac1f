//! `exhibit verify`, `info` and `cat` on images in a bucket (a real Garage): the same sets
//! made on disk (by exhibit, several segments, raw and split raw, and by `ewfacquire`) are
//! put into the bucket with their side files, and what exhibit says about `s3://…` must be
//! what it says about the local files, paths aside: the same hashes, the same checks, a
//! corrupted or missing object found and named where the local verify names it, `cat`'s
//! bytes those of `ewfexport`. A wrong secret is one clear line that does not echo it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::garage::{self, Garage};
use crate::support::*;

const MIB: usize = 1 << 20;

/// Every regular file of `dir` as an object under `prefix` (`case/`).
fn upload(g: &Garage, dir: &Path, prefix: &str) {
    let c = g.client();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let name = e.file_name().into_string().unwrap();
            let body = std::fs::read(e.path()).unwrap();
            c.put_object(&format!("{prefix}{name}"), &body, &Default::default())
                .unwrap();
        }
    }
}

fn put(g: &Garage, key: &str, file: &Path) {
    g.client()
        .put_object(key, &std::fs::read(file).unwrap(), &Default::default())
        .unwrap();
}

/// `s3://evidence/KEY`.
fn url(key: &str) -> String {
    format!("s3://{}/{key}", garage::BUCKET)
}

/// exhibit with the environment that points it at `g`.
fn exhibit_at(g: &Garage) -> Command {
    let mut c = exhibit();
    g.command_env(&mut c);
    c
}

/// `exhibit verify --json NAME` (local or in the bucket), its exit code and report.
fn verify_json(g: &Garage, name: &str, code: i32) -> Value {
    let out = exhibit_at(g).args(["verify", "--json", name]).exits(code);
    serde_json::from_slice(&out.stdout).expect("verify --json")
}

/// The parts of a verify report that do not depend on where the files are: each image's
/// format, bytes and hashes, and every check with the local directory written as the
/// bucket's prefix.
fn verdict(report: &Value, local_dir: &Path, prefix_url: &str) -> Value {
    let local = format!("{}/", local_dir.display());
    let swap = |s: &str| s.replace(&local, prefix_url);
    let images: Vec<Value> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let files: Vec<Value> = i["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| Value::String(swap(f.as_str().unwrap())))
                .collect();
            serde_json::json!({
                "format": i["format"],
                "files": files,
                "media_bytes": i["media_bytes"],
                "computed": i["computed"],
            })
        })
        .collect();
    let checks: Vec<Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["message"] = Value::String(swap(c["message"].as_str().unwrap()));
            c
        })
        .collect();
    serde_json::json!({ "images": images, "checks": checks })
}

/// Verify of `name` in `dir` and of the same name under `prefix` in the bucket: the same
/// exit code, hashes and checks. Returns the bucket's report.
fn same_verify(g: &Garage, dir: &Path, prefix: &str, name: &str, code: i32) -> Value {
    let local = verify_json(g, dir.join(name).to_str().unwrap(), code);
    let remote = verify_json(g, &url(&format!("{prefix}{name}")), code);
    let prefix_url = url(prefix);
    assert_eq!(
        verdict(&local, dir, &prefix_url),
        verdict(&remote, Path::new("/nowhere"), &prefix_url),
        "{name}: verify in the bucket differs from verify on disk"
    );
    remote
}

/// A 64 MiB mixed source acquired as raw + E01 (segments of 5 MiB: several, each with more
/// than one read-ahead request's worth of media) into `dir/disk`, and as split raw (16 MiB)
/// into `dir/split`.
fn acquired(dir: &Path) -> Vec<u8> {
    let data = mixed(64 * MIB + 12_288, 41);
    let src = dir.join("source.img");
    std::fs::write(&src, &data).unwrap();
    let sets = dir.join("sets");
    std::fs::create_dir(&sets).unwrap();
    acquire(
        &src,
        &sets.join("disk"),
        &["--format", "raw,e01", "--segment-size", "5M"],
        0,
    );
    acquire(&src, &sets.join("split"), &["--split", "16M"], 0);
    assert!(
        sets.join("disk.E04").exists(),
        "the E01 set has few segments"
    );
    assert!(sets.join("split.005").exists());
    data
}

#[test]
fn sets_in_a_bucket_verify_as_on_disk() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let data = acquired(dir.path());
    let sets = dir.path().join("sets");
    upload(&g, &sets, "case/");
    let md5 = coreutils_sum("md5sum", &dir.path().join("source.img"));
    for name in ["disk.E01", "disk.E03", "disk.raw", "split.001", "disk.yaml"] {
        let r = same_verify(&g, &sets, "case/", name, 0);
        let computed = r["images"][0]["computed"].to_string();
        assert!(computed.contains(&md5), "{name}: {computed}");
        assert_eq!(r["images"][0]["media_bytes"], data.len() as u64);
    }
    // The record's check covers both of its images.
    let r = verify_json(&g, &url("case/disk.yaml"), 0);
    assert_eq!(r["images"].as_array().unwrap().len(), 2);
}

#[test]
fn a_corrupted_or_missing_object_is_found_and_named_as_on_disk() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    acquired(dir.path());
    let sets = dir.path().join("sets");
    upload(&g, &sets, "case/");
    // One byte flipped in the middle of the second segment's chunks and of the raw image,
    // locally and in the bucket alike.
    let e02 = sets.join("disk.E02");
    let len = std::fs::metadata(&e02).unwrap().len();
    flip(&e02, len / 2);
    put(&g, "case/disk.E02", &e02);
    flip(&sets.join("disk.raw"), 17 * MIB as u64 + 5);
    put(&g, "case/disk.raw", &sets.join("disk.raw"));
    let r = same_verify(&g, &sets, "case/", "disk.E01", 1);
    let failed: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert!(
        failed
            .iter()
            .any(|m| m.starts_with(&url("case/disk.E02")) && m.contains("chunk")),
        "{failed:#?}"
    );
    let r = same_verify(&g, &sets, "case/", "disk.raw", 1);
    assert!(
        r["checks"]
            .to_string()
            .contains("media bytes 17825792..18874368 differ"),
        "{r}"
    );
    // A missing segment: the same refusal as on disk, naming it.
    std::fs::remove_file(sets.join("split.003")).unwrap();
    g.client().delete_object("case/split.003").unwrap();
    let r = same_verify(&g, &sets, "case/", "split.001", 1);
    assert!(
        r["checks"].to_string().contains("split.003 is missing"),
        "{r}"
    );
    std::fs::remove_file(sets.join("disk.E03")).unwrap();
    g.client().delete_object("case/disk.E03").unwrap();
    let r = same_verify(&g, &sets, "case/", "disk.E01", 1);
    assert!(
        r["checks"]
            .to_string()
            .contains(&format!("{}: segment file missing", url("case/disk.E03"))),
        "{r}"
    );
}

/// `info --json` of `name`, with the local directory written as the bucket's prefix in the
/// paths exhibit gives (the record's own contents, and so a record's files, are as acquire
/// wrote them).
fn info_json(g: &Garage, name: &str, local_dir: Option<&Path>) -> Value {
    let out = exhibit_at(g).args(["info", "--json", name]).exits(0);
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    if let Some(dir) = local_dir {
        let local = format!("{}/", dir.display());
        let swap = |v: &mut Value| {
            let s = v.as_str().unwrap().replace(&local, &url("case/"));
            *v = Value::String(s);
        };
        swap(&mut v["path"]);
        if !name.ends_with(".yaml") {
            for f in v["files"].as_array_mut().unwrap() {
                swap(&mut f["path"]);
            }
        }
        if v["record"].is_object() {
            swap(&mut v["record"]["path"]);
        }
    }
    v
}

#[test]
fn info_and_cat_in_a_bucket_are_those_of_the_local_files() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let data = acquired(dir.path());
    let sets = dir.path().join("sets");
    // ewfacquire's own set of the same source, several segments.
    let theirs = ewfacquire(
        &dir.path().join("source.img"),
        &sets.join("theirs"),
        "fast",
        Some("5MiB"),
    );
    upload(&g, &sets, "case/");
    for name in ["disk.E01", "disk.raw", "split.002", "disk.yaml"] {
        assert_eq!(
            info_json(&g, &url(&format!("case/{name}")), None),
            info_json(&g, sets.join(name).to_str().unwrap(), Some(&sets)),
            "{name}"
        );
    }
    let want = sha256_hex(&data);
    let cat = |name: &str, extra: &[&str]| {
        let out = exhibit_at(&g)
            .arg("cat")
            .arg(url(&format!("case/{name}")))
            .args(extra)
            .exits(0);
        out.stdout
    };
    for name in ["disk.E01", "disk.raw", "split.001"] {
        assert_eq!(sha256_hex(&cat(name, &[])), want, "cat {name}");
    }
    let part = cat("disk.E02", &["--range", "7M:3M"]);
    assert_eq!(part, &data[7 * MIB..10 * MIB]);
    let Some(theirs) = theirs else { return };
    assert!(
        sets.join("theirs.E03").exists(),
        "ewfacquire made few segments"
    );
    let exported = ewfexport(&theirs).expect("ewfexport beside ewfacquire");
    assert_eq!(sha256_hex(&cat("theirs.E01", &[])), sha256_hex(&exported));
    assert_eq!(sha256_hex(&exported), want);
    let r = same_verify(&g, &sets, "case/", "theirs.E01", 0);
    assert!(r["checks"].to_string().contains("stored MD5"), "{r}");
    assert_eq!(
        info_json(&g, &url("case/theirs.E01"), None),
        info_json(&g, theirs.to_str().unwrap(), Some(&sets))
    );
}

#[test]
fn a_wrong_secret_or_a_missing_object_is_one_clear_line() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let src = dir.path().join("disk.raw");
    std::fs::write(&src, mixed(MIB, 3)).unwrap();
    put(&g, "case/disk.raw", &src);
    let wrong = "wr0ngSecretWr0ngSecretWr0ngSecretWr0ngSecret";
    for cmd in ["verify", "info", "cat"] {
        let out = exhibit_at(&g)
            .env("AWS_SECRET_ACCESS_KEY", wrong)
            .args([cmd, &url("case/disk.raw")])
            .exits(2);
        let e = stderr(&out);
        assert!(!e.contains(wrong) && !e.contains(garage::SECRET), "{e}");
        assert!(
            e.contains("s3://evidence/case/") && e.contains("check the access key"),
            "{e}"
        );
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    }
    let out = exhibit_at(&g)
        .args(["verify", &url("case/none.raw")])
        .exits(2);
    let e = stderr(&out);
    assert!(
        e.contains("s3://evidence/case/none.raw") && e.contains("No such file"),
        "{e}"
    );
    // Commands that read local images only say so.
    let out = exhibit_at(&g)
        .args(["mount", &url("case/disk.raw"), dir.path().to_str().unwrap()])
        .exits(2);
    assert!(
        stderr(&out).contains("read by verify, info, cat and convert"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn random_reads_are_the_bytes_and_an_object_replaced_meanwhile_is_named() {
    use exhibit::image::bucket::BucketPlace;
    use exhibit::image::{Image, Place};
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let data = mixed(3 * MIB + 777, 9);
    let file = dir.path().join("disk.raw");
    std::fs::write(&file, &data).unwrap();
    put(&g, "case/disk.raw", &file);
    let name = url("case/disk.raw");
    let bucket = BucketPlace::open(&exhibit::s3::S3Url::parse(&name).unwrap(), &g.config());
    let place = Place::Bucket(std::sync::Arc::new(bucket.unwrap()));
    let image = Image::open_in(&place, Path::new(&name)).unwrap();
    assert_eq!(image.media_size(), data.len() as u64);
    // Small reads (kept blocks), reads across them, a large one, the tail and past the end.
    for (at, len) in [
        (0, 76),
        (100, 5000),
        (300_000, 9),
        (262_100, 200),
        (1000, 2 * MIB),
        (data.len() - 10, 10),
    ] {
        let mut buf = vec![0u8; len];
        assert_eq!(image.read_at(&mut buf, at as u64).unwrap(), len);
        assert_eq!(buf, &data[at..at + len], "{at}+{len}");
    }
    let mut buf = [0u8; 16];
    assert_eq!(image.read_at(&mut buf, data.len() as u64).unwrap(), 0);
    assert!(place.changed_since_opened().unwrap().is_empty());
    flip(&file, 5);
    put(&g, "case/disk.raw", &file);
    let changed = place.changed_since_opened().unwrap();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(
        changed[0].starts_with(&name) && changed[0].contains("changed while it was read"),
        "{changed:?}"
    );
}

#[test]
fn names_of_many_bases_are_found_and_missing_ones_are_not() {
    use exhibit::image::bucket::BucketPlace;
    let Some(g) = Garage::single() else { return };
    let c = g.client();
    for i in 0..40 {
        c.put_object(&format!("d/b{i}.raw"), &[i as u8; 10], &Default::default())
            .unwrap();
    }
    c.put_object("d/sub/b1.raw", b"deeper", &Default::default())
        .unwrap();
    let first = exhibit::s3::S3Url::parse(&url("d/b0.raw")).unwrap();
    let place = BucketPlace::open(&first, &g.config()).unwrap();
    // Past the first bases the whole directory is listed; every answer stays right.
    for i in 0..40 {
        let e = place
            .metadata(Path::new(&url(&format!("d/b{i}.raw"))))
            .unwrap();
        assert_eq!(e.len, 10, "b{i}");
        let missing = place.metadata(Path::new(&url(&format!("d/b{i}.md5"))));
        assert_eq!(missing.unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }
    let e = place.metadata(Path::new(&url("d/sub/b1.raw"))).unwrap();
    assert_eq!(e.len, 6);
    let outside = place.metadata(Path::new("s3://other-bucket/d/b1.raw"));
    assert!(outside
        .unwrap_err()
        .to_string()
        .contains("not in the bucket"));
}

/// `convert` reads an image in a bucket through the same reader as `verify`: the raw it writes
/// is the source's bytes and the hashes the bucket's E01 and record claim are checked; a
/// conversion onto the image's own BASE in the bucket is refused even with `--overwrite`, and
/// the image's objects stay as they were.
#[test]
fn convert_reads_an_image_in_a_bucket_and_never_writes_over_it() {
    let Some(g) = Garage::single() else { return };
    let dir = tempdir();
    let data = acquired(dir.path());
    let sets = dir.path().join("sets");
    upload(&g, &sets, "case/");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    exhibit_at(&g)
        .arg("convert")
        .arg(url("case/disk.E01"))
        .arg("-o")
        .arg(out.join("copy"))
        .args(["--format", "raw"])
        .exits(0);
    assert!(std::fs::read(out.join("copy.raw")).unwrap() == data);
    let rec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(out.join("copy.yaml")).unwrap()).unwrap();
    let from = &rec["converted_from"];
    assert_eq!(from["image"].as_str(), Some(url("case/disk.E01").as_str()));
    let claimed = from["claimed_hashes"].as_sequence().unwrap();
    assert!(claimed.len() >= 2, "{claimed:?}");
    assert!(claimed.iter().all(|c| c["matches"] == true), "{claimed:?}");
    assert_eq!(from["hashes_match"], true);

    let before = g.client().head_object("case/disk.E01").unwrap();
    assert!(before.is_some());
    let refused = exhibit_at(&g)
        .arg("convert")
        .arg(url("case/disk.E01"))
        .args(["-o", &url("case/disk"), "--format", "raw", "--overwrite"])
        .exits(2);
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains("an object of the image being converted"), "{e}");
    assert_eq!(g.client().head_object("case/disk.E01").unwrap(), before);
    assert!(g.client().head_object("case/disk.yaml").unwrap().is_some());
}
