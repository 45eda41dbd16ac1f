//! NTFS alternate data streams: written through ntfs-3g (`streams_interface=windows`, so
//! `file:stream` names a stream) on a loop device over the image, then listed by `exhibit ls`
//! as `file:stream` beside the file and extracted each as its own file of that name, with its
//! SHA-256 in extract.yaml. The Sleuth Kit (`fls`, `icat` of `MFT-128-ID`) is the oracle.

use std::process::Command;

use crate::support::*;

#[test]
fn ntfs_alternate_data_streams_are_listed_and_extracted_as_their_own_files() {
    require_faulty_device!();
    if skip_without_loop("ntfs streams") || !have_all(&["mkntfs", "ntfs-3g", "fls", "icat"]) {
        return;
    }
    let dir = tempdir();
    let img = dir.path().join("ntfs.img");
    ntfs_image(&img, 16);
    let secret = random(70_000, 11);
    let zone = b"[ZoneTransfer]\r\nZoneId=3\r\n".to_vec();
    {
        let lo = LoopDevice::attach(&img, 512, false, false);
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        Command::new("ntfs-3g")
            .args(["-o", "streams_interface=windows"])
            .arg(&lo.path)
            .arg(&mnt)
            .exits(0);
        {
            let m = Mount { dir: mnt.clone() };
            std::fs::write(m.dir.join("a.txt"), b"main data").unwrap();
            std::fs::write(m.dir.join("a.txt:secret"), &secret).unwrap();
            std::fs::create_dir(m.dir.join("Docs")).unwrap();
            std::fs::write(m.dir.join("Docs/b.bin"), b"b").unwrap();
            std::fs::write(m.dir.join("Docs/b.bin:Zone.Identifier"), &zone).unwrap();
        }
        wait_for_ntfs3g(&lo.path);
    }
    // TSK sees the streams: their attribute ids for icat.
    let streams: Vec<FlsEntry> = fls(&img, None)
        .into_iter()
        .filter(|e| e.stream && (e.path == "a.txt" || e.path == "Docs/b.bin"))
        .collect();
    assert_eq!(streams.len(), 2, "{streams:?}");
    let tsk = |path: &str| -> Vec<u8> {
        let e = streams.iter().find(|e| e.path == path).unwrap();
        icat(&img, None, &e.inode)
    };
    assert!(tsk("a.txt") == secret);
    assert!(tsk("Docs/b.bin") == zone);

    let out = exhibit()
        .arg("ls")
        .arg(&img)
        .arg("/")
        .arg("--json")
        .exits(0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |name: &str| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {v}"))
    };
    let (main, stream) = (find("a.txt"), find("a.txt:secret"));
    assert_eq!(main["size"], 9);
    assert_eq!(stream["size"], secret.len() as u64);
    assert_eq!(stream["type"], "file");
    assert_eq!(stream["id"], main["id"]);
    let text = exhibit().arg("ls").arg(&img).arg("/Docs").exits(0).stdout;
    assert!(String::from_utf8_lossy(&text).contains("b.bin:Zone.Identifier"));

    let out = dir.path().join("out");
    exhibit()
        .arg("extract")
        .arg(&img)
        .arg("/a.txt")
        .arg("/Docs")
        .arg("/a.txt:secret")
        .arg("-o")
        .arg(&out)
        .exits(0);
    let rec = extract_record(&out);
    assert_eq!(std::fs::read(out.join("disk/a.txt")).unwrap(), b"main data");
    assert!(std::fs::read(out.join("disk/Docs/b.bin:Zone.Identifier")).unwrap() == zone);
    assert!(std::fs::read(out.join("disk/a.txt:secret")).unwrap() == secret);
    let item = record_item(&rec, "disk:/Docs/b.bin:Zone.Identifier");
    assert_eq!(item["sha256"].as_str().unwrap(), sha256_hex(&zone));
    let item = record_item(&rec, "disk:/a.txt:secret");
    assert_eq!(item["sha256"].as_str().unwrap(), sha256_hex(&secret));
}
