//! The S3 client against a real Garage: every operation the outputs and the image reader use,
//! checksums compared with what the server reports, refusals as one line without the secret.

use crate::support::garage::{self, Garage};
use exhibit::s3::checksum::crc64nvme;
use exhibit::s3::client::{RetryPolicy, Timeouts};
use exhibit::s3::{Client, PutOptions};

#[test]
fn objects_round_trip_with_checksums_and_metadata() {
    let Some(g) = Garage::single() else { return };
    let c = g.client();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let options = PutOptions {
        metadata: vec![("md5".into(), "0123abcd".into())],
        lock: None,
    };
    let crc = c.put_object("case/disk.yaml", &data, &options).unwrap();
    assert_eq!(crc, crc64nvme(&data));
    let head = c.head_object("case/disk.yaml").unwrap().expect("object");
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.crc64nvme, Some(crc));
    assert_eq!(
        head.metadata,
        vec![("md5".to_string(), "0123abcd".to_string())]
    );
    assert_eq!(c.head_object("case/none").unwrap(), None);

    assert_eq!(
        c.get_range("case/disk.yaml", 1000..5000).unwrap(),
        &data[1000..5000]
    );
    let e = c
        .get_range("case/disk.yaml", 299_000..301_000)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s3://evidence/case/disk.yaml") && e.contains("shorter"),
        "{e}"
    );
    assert_eq!(c.get_object("case/disk.yaml", 1 << 20).unwrap(), data);
    let e = c
        .get_object("case/disk.yaml", 1000)
        .unwrap_err()
        .to_string();
    assert!(e.contains("longer than"), "{e}");

    c.put_object("case/disk.E01", b"x", &PutOptions::default())
        .unwrap();
    c.put_object("other/disk.E01", b"y", &PutOptions::default())
        .unwrap();
    let mut keys: Vec<String> = c
        .list_objects("case/", 100)
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["case/disk.E01", "case/disk.yaml"]);
    let e = c.list_objects("case/", 1).unwrap_err().to_string();
    assert!(e.contains("more than 1 objects"), "{e}");
    c.delete_object("case/disk.E01").unwrap();
    c.delete_object("case/disk.E01").unwrap();
    assert_eq!(c.list_objects("case/", 100).unwrap().len(), 1);
}

#[test]
fn a_multipart_upload_completes_with_the_full_object_crc_or_is_aborted() {
    let Some(g) = Garage::single() else { return };
    let c = g.client();
    let part = 5 << 20;
    let data: Vec<u8> = (0..(2 * part + 12345)).map(|i| (i % 253) as u8).collect();
    let id = c
        .create_multipart("img/disk.raw", &PutOptions::default())
        .unwrap();
    let mut parts = Vec::new();
    for (n, chunk) in data.chunks(part).enumerate() {
        parts.push(
            c.upload_part("img/disk.raw", &id, n as u16 + 1, chunk)
                .unwrap(),
        );
    }
    // A wrong full-object checksum is refused by the server: nothing completes.
    let e = c
        .complete_multipart("img/disk.raw", &id, &parts, crc64nvme(b"not it"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("COMPLETE UPLOAD"), "{e}");
    assert_eq!(c.head_object("img/disk.raw").unwrap(), None);
    c.complete_multipart("img/disk.raw", &id, &parts, crc64nvme(&data))
        .unwrap();
    let head = c.head_object("img/disk.raw").unwrap().unwrap();
    assert_eq!(
        (head.size, head.crc64nvme),
        (data.len() as u64, Some(crc64nvme(&data)))
    );
    assert_eq!(c.get_object("img/disk.raw", 1 << 30).unwrap(), data);

    let id = c
        .create_multipart("img/other.raw", &PutOptions::default())
        .unwrap();
    c.upload_part("img/other.raw", &id, 1, &data[..part])
        .unwrap();
    let pending = c.list_multipart_uploads("img/").unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        (pending[0].key.as_str(), pending[0].upload_id.as_str()),
        ("img/other.raw", id.as_str())
    );
    c.abort_multipart("img/other.raw", &id).unwrap();
    assert_eq!(c.list_multipart_uploads("img/").unwrap(), vec![]);
}

#[test]
fn a_wrong_secret_or_a_gone_server_is_one_clear_line_without_the_secret() {
    let Some(g) = Garage::single() else { return };
    let mut config = g.config();
    let wrong = "wrong-secret-0123456789abcdef0123456789abcdef0123456789abcdef";
    config.credentials.secret_access_key = exhibit::s3::Secret::new(wrong);
    let c = Client::new(&config, garage::BUCKET).unwrap();
    let e = c
        .put_object("k", b"data", &PutOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3://evidence/k") && e.contains("403"), "{e}");
    assert!(e.contains("check the access key"), "{e}");
    assert!(
        !e.contains(wrong) && !e.contains(garage::SECRET) && !e.contains('\n'),
        "{e}"
    );

    let config = g.config();
    drop(g);
    let quick = RetryPolicy {
        attempts: 2,
        first_pause: std::time::Duration::from_millis(10),
    };
    let c = Client::with_policy(&config, garage::BUCKET, quick, Timeouts::default()).unwrap();
    let e = c.head_object("k").unwrap_err().to_string();
    assert!(
        e.contains("connection failed") && e.contains("after 2 attempts"),
        "{e}"
    );
    assert!(!e.contains("X-Amz-") && !e.contains(garage::SECRET), "{e}");
}

#[test]
fn a_cluster_takes_writes_with_one_node_down_and_refuses_them_with_two() {
    let Some(mut g) = Garage::cluster() else {
        return;
    };
    let c = g.client();
    c.put_object("a", b"all three up", &PutOptions::default())
        .unwrap();
    g.kill_node(2);
    c.put_object("b", b"one down", &PutOptions::default())
        .unwrap();
    g.kill_node(1);
    let quick = RetryPolicy {
        attempts: 2,
        first_pause: std::time::Duration::from_millis(10),
    };
    let c = Client::with_policy(&g.config(), garage::BUCKET, quick, Timeouts::default()).unwrap();
    let e = c
        .put_object("c", b"two down", &PutOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3://evidence/c"), "{e}");
}
