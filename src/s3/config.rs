//! Credentials, region and endpoint, taken the way the AWS tools take them, so a responder's
//! existing setup works unchanged: the `AWS_*` variables first, then the profile
//! (`AWS_PROFILE`, else `default`) in `~/.aws/credentials` and `~/.aws/config` (or the files
//! `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` name), then AWS's defaults.
//!
//! The secret key and session token live in [`Secret`], which never prints: not in `Debug`
//! output, not in an error, not in the record.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A credentials or config file holds a few profiles of a few lines each.
pub const AWS_FILE_LIMIT: u64 = 1 << 20;

/// A secret (secret access key, session token). It has no `Display`, its `Debug` is `***`,
/// and the only way to its text is [`Secret::expose`], called where a request is signed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret's text, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***` (for messages that came
    /// from elsewhere, such as a server's error, which must never carry it on).
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An access key: the key id (not secret: it is in every signed request) and its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `AWS_ACCESS_KEY_ID` or the profile's `aws_access_key_id`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY` or the profile's `aws_secret_access_key`.
    pub secret_access_key: Secret,
    /// `AWS_SESSION_TOKEN` or the profile's `aws_session_token` (temporary credentials).
    pub session_token: Option<Secret>,
    /// Where they came from, for messages and the record (`environment`, `profile NAME`).
    pub source: String,
}

/// Everything needed to reach a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://HOST[:PORT]`, without a trailing `/`.
    pub endpoint: String,
    /// Whether `endpoint` is one the user gave (a self-hosted server), not AWS's default.
    pub custom_endpoint: bool,
    /// The signing region.
    pub region: String,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`), what self-hosted servers (Garage, MinIO,
    /// Ceph RGW) expect; AWS gets virtual-hosted style (`BUCKET.ENDPOINT/KEY`).
    pub path_style: bool,
    /// The access key.
    pub credentials: Credentials,
}

/// Where the configuration comes from; [`S3Config::from_env`] fills it from the process.
pub struct ConfigSources<'a> {
    /// A variable of the environment.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// The home directory (`~/.aws/...`), if any.
    pub home: Option<PathBuf>,
    /// `--endpoint`, which beats every other source.
    pub endpoint: Option<&'a str>,
}

impl S3Config {
    /// The configuration from this process's environment and the AWS files in `$HOME`, with
    /// `--endpoint` when given.
    pub fn from_env(endpoint: Option<&str>) -> Result<S3Config> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from);
        Self::from_sources(&ConfigSources {
            var: &var,
            home,
            endpoint,
        })
    }

    /// The configuration from `sources` (the environment and files of a test, say).
    pub fn from_sources(sources: &ConfigSources<'_>) -> Result<S3Config> {
        let var = |name: &str| (sources.var)(name).filter(|v| !v.trim().is_empty());
        let profile = var("AWS_PROFILE")
            .or_else(|| var("AWS_DEFAULT_PROFILE"))
            .unwrap_or_else(|| "default".into());
        let aws_file = |variable: &str, name: &str| {
            var(variable)
                .map(PathBuf::from)
                .or_else(|| sources.home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let credentials_file = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_file = aws_file("AWS_CONFIG_FILE", "config");
        // In the credentials file a profile is `[NAME]`; in the config file `[profile NAME]`,
        // except `[default]`.
        let from_credentials = read_profile(credentials_file.as_deref(), &profile, false)?;
        let from_config = read_profile(config_file.as_deref(), &profile, true)?;
        let setting = |key: &str| {
            from_credentials
                .get(key)
                .or_else(|| from_config.get(key))
                .map(str::to_string)
        };

        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Credentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
                source: "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)".into(),
            },
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::InvalidOption(
                    "S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set \
                     together"
                        .into(),
                ))
            }
            (None, None) => match (
                setting("aws_access_key_id"),
                setting("aws_secret_access_key"),
            ) {
                (Some(id), Some(secret)) => Credentials {
                    access_key_id: id,
                    secret_access_key: Secret::new(secret),
                    session_token: setting("aws_session_token").map(Secret::new),
                    source: format!("profile {profile}"),
                },
                _ => {
                    return Err(Error::InvalidOption(format!(
                        "S3 credentials: none found: set AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY, or give profile {} aws_access_key_id and \
                         aws_secret_access_key in {}",
                        crate::text::printable(&profile),
                        credentials_file
                            .as_deref()
                            .map(crate::text::printable_path)
                            .unwrap_or_else(|| "~/.aws/credentials".into())
                    )))
                }
            },
        };

        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| setting("region"))
            .unwrap_or_else(|| "us-east-1".into());
        check_token("region", &region)?;
        let given = sources
            .endpoint
            .map(str::to_string)
            .or_else(|| var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| setting("endpoint_url"));
        let custom_endpoint = given.is_some();
        let endpoint = match given {
            Some(e) => check_endpoint(&e)?,
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        // A self-hosted server is addressed by path (its buckets are no DNS names); AWS by
        // virtual host. `AWS_S3_ADDRESSING_STYLE` (`path` / `virtual`) overrides either.
        let path_style = match var("AWS_S3_ADDRESSING_STYLE").as_deref() {
            Some("path") => true,
            Some("virtual") => false,
            Some(other) => {
                return Err(Error::InvalidOption(format!(
                    "AWS_S3_ADDRESSING_STYLE={}: give path or virtual",
                    crate::text::printable(other)
                )))
            }
            None => custom_endpoint,
        };
        Ok(S3Config {
            endpoint,
            custom_endpoint,
            region,
            path_style,
            credentials,
        })
    }
}

fn check_token(what: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::InvalidOption(format!(
            "S3 {what} {}: only letters, digits, - and _",
            crate::text::printable(value)
        )));
    }
    Ok(())
}

/// `http(s)://HOST[:PORT]` with no path, query or credentials in it.
fn check_endpoint(endpoint: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::InvalidOption(format!(
            "S3 endpoint {}: {why}",
            crate::text::printable(endpoint)
        ))
    };
    let (scheme, rest) = if let Some(rest) = endpoint.strip_prefix("https://") {
        ("https://", rest)
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        ("http://", rest)
    } else {
        return Err(bad("give http://HOST[:PORT] or https://HOST[:PORT]"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(bad("has no host"));
    }
    if rest.contains('@') {
        return Err(bad(
            "must not hold credentials (use AWS_ACCESS_KEY_ID and friends)",
        ));
    }
    if rest.contains(['/', '?', '#']) || rest.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(
            "must be a scheme, a host and a port only, with no path",
        ));
    }
    Ok(format!("{scheme}{rest}"))
}

/// The `key = value` settings of `profile` in the INI file at `path`; nothing when the file
/// does not exist. Read bounded (it is a file exhibit did not write).
fn read_profile(path: Option<&Path>, profile: &str, config_file: bool) -> Result<Settings> {
    let Some(path) = path else {
        return Ok(Settings::default());
    };
    if !path.exists() {
        return Ok(Settings::default());
    }
    let text = crate::small_file::read_small_text(path, AWS_FILE_LIMIT)?;
    Ok(parse_profile(&text, profile, config_file))
}

#[derive(Default)]
struct Settings(Vec<(String, String)>);

impl Settings {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_profile(text: &str, profile: &str, config_file: bool) -> Settings {
    let wanted = if config_file && profile != "default" {
        format!("profile {profile}")
    } else {
        profile.to_string()
    };
    let mut settings = Settings::default();
    let mut inside = false;
    for line in text.lines() {
        // An indented line belongs to a nested block (`s3 =` and its sub-settings), which
        // this reader does not need.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = section == wanted;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if !v.is_empty() && settings.get(&k).is_none() {
                    settings.0.push((k, v));
                }
            }
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(
        vars: &[(&str, &str)],
        home: Option<&Path>,
        endpoint: Option<&str>,
    ) -> Result<S3Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let var = move |name: &str| vars.get(name).cloned();
        S3Config::from_sources(&ConfigSources {
            var: &var,
            home: home.map(Path::to_path_buf),
            endpoint,
        })
    }

    #[test]
    fn environment_beats_profiles_and_the_secret_never_prints() {
        let c = config(
            &[
                ("AWS_ACCESS_KEY_ID", "GK123"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
                ("AWS_SESSION_TOKEN", "tok3n-value"),
                ("AWS_DEFAULT_REGION", "eu-west-3"),
            ],
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.credentials.access_key_id, "GK123");
        assert_eq!(c.region, "eu-west-3");
        assert_eq!(c.endpoint, "https://s3.eu-west-3.amazonaws.com");
        assert!(!c.path_style && !c.custom_endpoint);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok3n"),
            "{shown}"
        );
        assert_eq!(
            c.credentials
                .secret_access_key
                .redact("bad s3cr3t-value here"),
            "bad *** here"
        );

        let c = config(
            &[
                ("AWS_ACCESS_KEY_ID", "GK1"),
                ("AWS_SECRET_ACCESS_KEY", "x"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:3900/"),
                ("AWS_REGION", "garage"),
            ],
            None,
            Some("http://[::1]:3901"),
        )
        .unwrap();
        assert_eq!(c.endpoint, "http://[::1]:3901");
        assert!(c.path_style && c.custom_endpoint);
        assert_eq!(c.region, "garage");
    }

    #[test]
    fn reads_the_profile_from_the_aws_files() {
        let home = tempfile::tempdir().unwrap();
        let aws = home.path().join(".aws");
        std::fs::create_dir(&aws).unwrap();
        std::fs::write(
            aws.join("credentials"),
            "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n\n\
             [lab]\n# a comment\naws_access_key_id=LAB\naws_secret_access_key = labsecret\n",
        )
        .unwrap();
        std::fs::write(
            aws.join("config"),
            "[default]\nregion = us-west-2\n[profile lab]\nregion = garage\n\
             endpoint_url = http://127.0.0.1:3900\ns3 =\n  addressing_style = path\n",
        )
        .unwrap();
        let c = config(&[], Some(home.path()), None).unwrap();
        assert_eq!(
            (c.credentials.access_key_id.as_str(), c.region.as_str()),
            ("DEF", "us-west-2")
        );
        assert_eq!(c.credentials.secret_access_key.expose(), "defsecret");
        let c = config(&[("AWS_PROFILE", "lab")], Some(home.path()), None).unwrap();
        assert_eq!(c.credentials.access_key_id, "LAB");
        assert_eq!(c.credentials.source, "profile lab");
        assert_eq!(
            (c.region.as_str(), c.endpoint.as_str()),
            ("garage", "http://127.0.0.1:3900")
        );
        assert!(c.path_style);

        let e = config(&[("AWS_PROFILE", "none")], Some(home.path()), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("none found") && e.contains("profile none"),
            "{e}"
        );
        // A config file that is no regular file is refused, not read forever.
        let e = config(&[("AWS_CONFIG_FILE", "/dev/zero")], Some(home.path()), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("character device"), "{e}");
    }

    #[test]
    fn refuses_half_credentials_and_bad_endpoints() {
        let e = config(&[("AWS_ACCESS_KEY_ID", "A")], None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be set together"), "{e}");
        let creds = [("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "B")];
        for (endpoint, why) in [
            ("ftp://host", "give http://"),
            ("http://", "no host"),
            ("http://user:pw@host", "must not hold credentials"),
            ("http://host/path", "no path"),
        ] {
            let e = config(&creds, None, Some(endpoint))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{endpoint}: {e}");
        }
        let e = config(&[creds[0], creds[1], ("AWS_REGION", "eu west")], None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("S3 region"), "{e}");
    }
}
