//! `JOBS.yaml`: a top-level `jobs:` list whose entries each have `source`, `output` (BASE) and
//! any `exhibit acquire` option by its long name. Each entry becomes an acquire command line
//! (`--format=raw,e01 --split=2G --output=BASE -- SOURCE`) parsed by acquire's own clap
//! definition and turned into [`AcquireOptions`] by acquire's own conversion, so every
//! option, default and refusal is exactly acquire's.
//!
//! The file is hostile input: read bounded through `small_file` (a regular file, no final
//! symlink, at most [`JOBS_LIMIT`] bytes), at most [`MAX_JOBS`] entries, YAML aliases bounded
//! by the parser. It is read twice: once as YAML values, to refuse a wrong shape naming the
//! entry and the key; then every value as the text written, because a YAML value's type
//! would change it (`case-number: 0042` is the integer 42 to a YAML loader).

use std::ffi::OsString;
use std::path::Path;

use clap::{ArgAction, CommandFactory, Parser};
use exhibit::acquire::AcquireOptions;
use exhibit::text::printable as t;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_yaml::Value;

use crate::cli::AcquireArgs;

/// A jobs file lists drives and options: 1 MiB is thousands of entries' worth.
pub const JOBS_LIMIT: u64 = 1 << 20;
/// More drives than one machine images at once; each job is a pass with its own threads.
pub const MAX_JOBS: usize = 32;

/// Keys of acquire that mean nothing per job in a batch.
const NOT_PER_JOB: [(&str, &str); 3] = [
    ("quiet", "give `exhibit batch --quiet` instead"),
    ("help", "not an option"),
    ("version", "not an option"),
];

/// One entry, ready to run.
#[derive(Debug)]
pub struct Job {
    /// Its place in `jobs:`, from 1.
    pub number: usize,
    /// What acquire's own flags made of it.
    pub options: AcquireOptions,
}

/// acquire's flags, alone: the same definition `exhibit acquire` parses.
#[derive(Debug, Parser)]
#[command(name = "acquire", no_binary_name = true)]
struct AcquireLine {
    #[command(flatten)]
    args: AcquireArgs,
}

/// Reads `path` and turns every entry into acquire's options; the first problem is the error,
/// naming the entry (from 1) and the key.
pub fn read(path: &Path) -> Result<Vec<Job>, String> {
    let text = exhibit::small_file::read_small_text(path, JOBS_LIMIT).map_err(|e| e.to_string())?;
    parse(&text)
}

/// [`read`] of text.
pub fn parse(text: &str) -> Result<Vec<Job>, String> {
    check_shape(text)?;
    let raw: RawFile = serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let flags = acquire_flags();
    raw.jobs
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let number = i + 1;
            let argv = command_line(number, &entry.0, &flags)?;
            let line = AcquireLine::try_parse_from(argv)
                .map_err(|e| format!("job {number}{}", clap_problem(&e)))?;
            let options = line
                .args
                .options()
                .map_err(|e| format!("job {number}: {}", t(&format!("{e:#}"))))?;
            Ok(Job { number, options })
        })
        .collect()
}

/// The long names of acquire's options, each with whether it is a switch (takes no value).
fn acquire_flags() -> Vec<(String, bool)> {
    AcquireLine::command()
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            Some((
                long.to_string(),
                matches!(a.get_action(), ArgAction::SetTrue),
            ))
        })
        .collect()
}

/// The entry as an acquire command line: `--KEY=VALUE` for each option, `--KEY` for a switch
/// set to true, then `-- SOURCE` (so that no value is ever taken for a flag).
fn command_line(
    number: usize,
    entry: &[(String, String)],
    flags: &[(String, bool)],
) -> Result<Vec<OsString>, String> {
    let mut argv = Vec::with_capacity(entry.len() + 2);
    let mut source = None;
    for (key, value) in entry {
        let named = || format!("job {number}, key '{}'", t(key));
        if key == "source" {
            source = Some(exhibit::text::path_from_text(value).into_os_string());
            continue;
        }
        if let Some((_, why)) = NOT_PER_JOB.iter().find(|(k, _)| k == key) {
            return Err(format!("{}: not an option of a batch job ({why})", named()));
        }
        let Some((_, switch)) = flags.iter().find(|(k, _)| k == key) else {
            return Err(format!(
                "{}: unknown key (keys are source, output and the long names of `exhibit acquire`'s options: format, split, hash, case-number, …)",
                named()
            ));
        };
        if *switch {
            match value.as_str() {
                "true" | "True" | "TRUE" => argv.push(OsString::from(format!("--{key}"))),
                "false" | "False" | "FALSE" => {}
                other => {
                    return Err(format!("{}: true or false, not '{}'", named(), t(other)));
                }
            }
        } else if key == "output" {
            let mut a = OsString::from("--output=");
            a.push(exhibit::text::path_from_text(value));
            argv.push(a);
        } else {
            argv.push(OsString::from(format!("--{key}={value}")));
        }
    }
    argv.push("--".into());
    argv.extend(source);
    Ok(argv)
}

/// `, key 'K': what clap says` for an error clap found in an entry's command line.
fn clap_problem(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let key = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => {
            let name = arg.trim_start_matches('-');
            let name = name.split([' ', '=', '<']).next().unwrap_or(name);
            if name.is_empty() || arg.starts_with('<') {
                Some("source".to_string())
            } else {
                Some(name.to_string())
            }
        }
        _ => None,
    };
    let message = crate::cli::clap_error_line(e);
    match key {
        Some(k) => format!(", key '{}': {message}", t(&k)),
        None => format!(": {message}"),
    }
}

/// The shape, as YAML values: a mapping with only `jobs:`, a list of 1 to [`MAX_JOBS`]
/// mappings, each with `source` and `output`, every key a name and every value one scalar.
fn check_shape(text: &str) -> Result<(), String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let show = |v: &Value| {
        let s = serde_yaml::to_string(v).unwrap_or_default();
        t(s.trim()).into_owned()
    };
    let Value::Mapping(top) = doc else {
        return Err("expected a mapping with a `jobs:` list".into());
    };
    if let Some((k, _)) = top.iter().find(|(k, _)| k.as_str() != Some("jobs")) {
        return Err(format!("unknown top-level key {} (only `jobs:`)", show(k)));
    }
    let Some(Value::Sequence(jobs)) = top.get("jobs") else {
        return Err("`jobs:` must be a list of entries (- source: …, output: …)".into());
    };
    if jobs.is_empty() {
        return Err("`jobs:` is empty".into());
    }
    if jobs.len() > MAX_JOBS {
        return Err(format!(
            "{} jobs; at most {MAX_JOBS} run in one batch",
            jobs.len()
        ));
    }
    for (i, entry) in jobs.iter().enumerate() {
        let number = i + 1;
        let Value::Mapping(m) = entry else {
            return Err(format!(
                "job {number}: an entry is a mapping (source: …, output: …, options by their long names)"
            ));
        };
        for (k, v) in m {
            let Some(key) = k.as_str() else {
                return Err(format!("job {number}: key {} is not a name", show(k)));
            };
            let named = || format!("job {number}, key '{}'", t(key));
            match v {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
                Value::Null => return Err(format!("{}: no value", named())),
                Value::Sequence(_) => {
                    return Err(format!(
                        "{}: one value, not a list (a list of formats or hashes is one comma-separated value: raw,e01)",
                        named()
                    ))
                }
                Value::Mapping(_) | Value::Tagged(_) => {
                    return Err(format!("{}: one value, not {}", named(), show(v)))
                }
            }
        }
        for required in ["source", "output"] {
            if !m.contains_key(required) {
                return Err(format!("job {number}: no `{required}:`"));
            }
        }
    }
    Ok(())
}

/// The file with every value as the text written.
#[derive(Deserialize)]
struct RawFile {
    jobs: Vec<RawEntry>,
}

/// An entry's keys and values, in the order written.
struct RawEntry(Vec<(String, String)>);

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> Visitor<'de> for Entry {
            type Value = RawEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of keys to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
                let mut pairs: Vec<(String, String)> = Vec::new();
                // (A key given twice was refused by the first reading.)
                while let Some((k, Text(v))) = map.next_entry::<String, Text>()? {
                    pairs.push((k, v));
                }
                Ok(RawEntry(pairs))
            }
        }
        d.deserialize_map(Entry)
    }
}

/// A scalar as written: asked for as a string, the YAML parser gives its text unresolved.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl Visitor<'_> for Scalar {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("one value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_str(Scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(entry: &str) -> Result<AcquireOptions, String> {
        parse(&format!("jobs:\n  - {entry}\n")).map(|mut v| v.remove(0).options)
    }

    #[test]
    fn an_entry_is_acquire_s_command_line() {
        let o = one("{source: /dev/sdb, output: ev/disk, format: 'raw,e01', split: 2G, hash: md5, case-number: 0042, overwrite: true, retries: 5}").unwrap();
        assert_eq!(o.source, Path::new("/dev/sdb"));
        assert_eq!(o.base, Path::new("ev/disk"));
        assert_eq!(o.formats.len(), 2);
        assert_eq!(o.split, Some(2 << 30));
        assert_eq!(o.hashes, vec![exhibit::hash::HashAlgorithm::Md5]);
        // As written, not the integer YAML would make of it.
        assert_eq!(o.case.case_number.as_deref(), Some("0042"));
        assert!(o.overwrite);
        assert_eq!(o.reader.retries, 5);
        // The defaults of everything else are acquire's.
        let d = one("{source: s, output: b}").unwrap();
        let want = AcquireOptions::new("s", "b");
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::to_value(&want).unwrap()
        );
    }

    #[test]
    fn bad_entries_name_the_job_and_the_key() {
        let cases = [
            (
                "{source: a, output: b, colour: red}",
                "job 1, key 'colour': unknown key",
            ),
            ("{source: a, output: b, split: 2Q}", "job 1, key 'split': "),
            (
                "{source: a, output: b, overwrite: yes}",
                "job 1, key 'overwrite': true or false",
            ),
            (
                "{source: a, output: b, format: [raw, e01]}",
                "job 1, key 'format': one value, not a list",
            ),
            (
                "{source: a, output: b, examiner: }",
                "job 1, key 'examiner': no value",
            ),
            (
                "{source: a, output: b, quiet: true}",
                "job 1, key 'quiet': not an option",
            ),
            (
                "{source: a, output: b, format: tiff}",
                "job 1, key 'format': ",
            ),
            ("{source: a, split: 2G}", "job 1: no `output:`"),
            (
                "{source: a, output: b, source: c}",
                "duplicate entry with key \"source\"",
            ),
        ];
        for (entry, want) in cases {
            let e = one(entry).unwrap_err();
            assert!(e.contains(want), "{entry}: {e}");
        }
        let e = parse("jobs:\n  - {source: a, output: b}\n  - {source: c, output: d, hash: crc}\n")
            .unwrap_err();
        assert!(e.starts_with("job 2, key 'hash'"), "{e}");
    }

    #[test]
    fn the_file_s_shape_is_checked() {
        for (text, want) in [
            (
                "- {source: a, output: b}\n",
                "a mapping with a `jobs:` list",
            ),
            ("jobs: []\n", "empty"),
            ("jobs:\n  - x\n", "job 1: an entry is a mapping"),
            (
                "jobs: [{source: a, output: b}]\nextra: 1\n",
                "unknown top-level key extra",
            ),
            ("jobs: {a: 1}\n", "must be a list"),
            (
                "jobs: [{source: a, output: b}, {? [1] : 2, source: a, output: b}]\n",
                "job 2: key",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        let many: String = (0..=MAX_JOBS)
            .map(|i| format!("  - {{source: s{i}, output: b{i}}}\n"))
            .collect();
        assert!(parse(&format!("jobs:\n{many}"))
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn alias_bombs_end_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        text.push_str("jobs: [{source: a, output: b}]\n");
        let started = std::time::Instant::now();
        assert!(parse(&text).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
