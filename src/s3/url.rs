//! `s3://BUCKET/KEY` names: what a user types for an output or an image in a bucket. Parsed
//! strictly, so a typo is a clear one-line refusal instead of an object written somewhere else.

use std::fmt;

use crate::error::{Error, Result};

/// The scheme every object name starts with.
pub const SCHEME: &str = "s3://";

/// S3's limit on a key, in bytes of UTF-8.
pub const KEY_LIMIT: usize = 1024;

/// A bucket and a key within it (`s3://BUCKET/KEY`). The key may be empty only for a name
/// parsed with [`S3Url::parse_prefix`] (a whole bucket or a prefix to list).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Url {
    bucket: String,
    key: String,
}

/// True when `name` is meant as an object name (starts with `s3://`), whatever follows.
pub fn is_s3(name: &str) -> bool {
    name.get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// [`is_s3`] for a path or argument as the OS gave it.
pub fn is_s3_os(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(is_s3)
}

impl S3Url {
    /// An object's name: `s3://BUCKET/KEY` with a non-empty key that does not end in `/`.
    pub fn parse(name: &str) -> Result<S3Url> {
        let url = Self::parse_prefix(name)?;
        if url.key.is_empty() || url.key.ends_with('/') {
            return Err(bad(name, "names no object: give s3://BUCKET/PREFIX/NAME"));
        }
        Ok(url)
    }

    /// A bucket with an optional key prefix: `s3://BUCKET`, `s3://BUCKET/`, `s3://BUCKET/DIR/`.
    pub fn parse_prefix(name: &str) -> Result<S3Url> {
        if !is_s3(name) {
            return Err(bad(name, "does not start with s3://"));
        }
        let rest = &name[SCHEME.len()..];
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(name, bucket)?;
        check_key(name, key)?;
        Ok(S3Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key (empty for a whole bucket).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key's last `/`-separated part: the name a local file of the same set would have.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or("")
    }

    /// Everything of the key up to and including its last `/` (empty at the bucket's root).
    pub fn dir_prefix(&self) -> &str {
        match self.key.rfind('/') {
            Some(i) => &self.key[..=i],
            None => "",
        }
    }

    /// The object named `name` beside this one (in the same "directory" of the bucket).
    pub fn sibling(&self, name: &str) -> Result<S3Url> {
        let key = format!("{}{name}", self.dir_prefix());
        let shown = format!("{SCHEME}{}/{key}", self.bucket);
        check_key(&shown, &key)?;
        if name.is_empty() || name.contains('/') {
            return Err(bad(&shown, "is not a name beside the others"));
        }
        Ok(S3Url {
            bucket: self.bucket.clone(),
            key,
        })
    }

    /// This object's key with `suffix` appended (`BASE` + `.E01`).
    pub fn with_suffix(&self, suffix: &str) -> Result<S3Url> {
        let key = format!("{}{suffix}", self.key);
        check_key(&format!("{SCHEME}{}/{key}", self.bucket), &key)?;
        Ok(S3Url {
            bucket: self.bucket.clone(),
            key,
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.bucket, self.key)
    }
}

fn check_bucket(name: &str, bucket: &str) -> Result<()> {
    if bucket.is_empty() {
        return Err(bad(name, "has no bucket: give s3://BUCKET/KEY"));
    }
    // S3's rules for bucket names: 3 to 63 of lowercase letters, digits, dots and hyphens,
    // beginning and ending with a letter or digit. A name outside them cannot be a bucket,
    // and an upper-case one is the usual typo.
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&bucket.len())
        || !ok_chars
        || !ends_ok(bucket.bytes().next())
        || !ends_ok(bucket.bytes().last())
        || bucket.contains("..")
    {
        return Err(bad(
            name,
            "has no valid bucket name (3 to 63 lowercase letters, digits, dots and hyphens, \
             starting and ending with a letter or digit)",
        ));
    }
    Ok(())
}

fn check_key(name: &str, key: &str) -> Result<()> {
    if key.len() > KEY_LIMIT {
        return Err(bad(name, "has a key longer than S3's 1024 bytes"));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(bad(name, "has a control character in its key"));
    }
    if key.starts_with('/') || key.contains("//") {
        return Err(bad(name, "has an empty part in its key (//)"));
    }
    if key.split('/').any(|part| part == "." || part == "..") {
        return Err(bad(name, "has a . or .. part in its key"));
    }
    Ok(())
}

fn bad(name: &str, why: &str) -> Error {
    Error::InvalidOption(format!("{}: {why}", crate::text::printable(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_prefixes() {
        let u = S3Url::parse("s3://evidence-2026/case-17/disk1").unwrap();
        assert_eq!((u.bucket(), u.key()), ("evidence-2026", "case-17/disk1"));
        assert_eq!((u.file_name(), u.dir_prefix()), ("disk1", "case-17/"));
        assert_eq!(u.to_string(), "s3://evidence-2026/case-17/disk1");
        assert_eq!(
            u.sibling("disk1.E02").unwrap().to_string(),
            "s3://evidence-2026/case-17/disk1.E02"
        );
        assert_eq!(u.with_suffix(".yaml").unwrap().key(), "case-17/disk1.yaml");
        let root = S3Url::parse("s3://abc/disk").unwrap();
        assert_eq!((root.dir_prefix(), root.file_name()), ("", "disk"));
        assert_eq!(S3Url::parse_prefix("s3://abc").unwrap().key(), "");
        assert_eq!(S3Url::parse_prefix("s3://abc/dir/").unwrap().key(), "dir/");
        assert!(is_s3("S3://x") && !is_s3("/tmp/s3://x") && !is_s3("s3:/"));
    }

    #[test]
    fn refuses_what_is_no_object_name() {
        for (name, why) in [
            ("/tmp/x", "does not start with s3://"),
            ("s3://", "has no bucket"),
            ("s3:///key", "has no bucket"),
            ("s3://Evidence/key", "no valid bucket name"),
            ("s3://ab/key", "no valid bucket name"),
            ("s3://-ab/key", "no valid bucket name"),
            ("s3://a..b/key", "no valid bucket name"),
            ("s3://bucket", "names no object"),
            ("s3://bucket/dir/", "names no object"),
            ("s3://bucket//key", "empty part"),
            ("s3://bucket/a/../key", ". or .. part"),
            ("s3://bucket/a\nb", "control character"),
        ] {
            let e = S3Url::parse(name).unwrap_err().to_string();
            assert!(e.contains(why), "{name}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let long = format!("s3://bucket/{}", "k".repeat(1025));
        assert!(S3Url::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("1024"));
        let u = S3Url::parse("s3://bucket/k").unwrap();
        assert!(u.sibling("a/b").is_err() && u.sibling("").is_err());
    }
}
