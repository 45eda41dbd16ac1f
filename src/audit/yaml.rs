//! The record's YAML, written so that every loader reads the same values: YAML 1.2 (serde_yaml,
//! ruamel) and YAML 1.1 (PyYAML, Ruby's Psych, many tools examiners use).
//!
//! serde_yaml leaves a string plain whenever YAML 1.2 would read it back as a string, but YAML
//! 1.1 reads plain `yes`/`on`/`n` as booleans, `12:30` and `8:0` (a device number) as base-60
//! integers, `2026-01-01` as a date, `1_000` as 1000, and a plain `=` or `<<` as tags it cannot
//! construct, which makes the whole record unloadable. Deciding which strings are "safe" plain
//! means knowing every loader's resolver; so instead **every string is double-quoted** (with
//! every character that is not printable in YAML escaped), which all YAML versions read as
//! exactly that string. The tree comes from serde (`serde_yaml::to_value`), so the fields and
//! their order are the ones serde_yaml wrote before; only the scalars' style changed, and
//! serde_yaml reads old (plain) and new (quoted) records alike.

use std::fmt::Write;

use serde::Serialize;
use serde_yaml::Value;

/// `value` as block-style YAML with every string double-quoted.
pub fn to_string(value: &impl Serialize) -> Result<String, serde_yaml::Error> {
    let tree = serde_yaml::to_value(value)?;
    let mut out = String::new();
    match &tree {
        Value::Mapping(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Value::Sequence(s) if !s.is_empty() => sequence(&mut out, s, 0),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    Ok(out)
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A value that fits on its line: scalars, empty collections, tagged scalars.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Sequence(_) => "[]".into(),
        Value::Mapping(_) => "{}".into(),
        Value::Tagged(t) => format!("!{} {}", tag(&t.tag.to_string()), inline(&t.value)),
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(t) => is_block(&t.value),
        _ => false,
    }
}

/// A tag's name without serde_yaml's leading `!`.
fn tag(t: &str) -> &str {
    t.strip_prefix('!').unwrap_or(t)
}

/// Writes `key: value` lines at `depth`; a sequence under a key is not indented (the layout
/// serde_yaml used), a mapping is indented by two.
fn mapping(out: &mut String, m: &serde_yaml::Mapping, depth: usize) {
    for (k, v) in m {
        indent(out, depth);
        out.push_str(&key(k));
        out.push(':');
        entry(out, v, depth + 2, depth);
    }
}

/// Writes the value after `key:` or `-`: inline, or as a block below at `map_depth` (a
/// mapping) or `seq_depth` (a sequence).
fn entry(out: &mut String, v: &Value, map_depth: usize, seq_depth: usize) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, map_depth);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, seq_depth);
        }
        Value::Tagged(t) if is_block(&t.value) => {
            let _ = write!(out, " !{}", tag(&t.tag.to_string()));
            entry(out, &t.value, map_depth, map_depth);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

/// Writes `- item` lines at `depth`; a mapping item starts on the dash's line.
fn sequence(out: &mut String, s: &[Value], depth: usize) {
    for v in s {
        indent(out, depth);
        out.push('-');
        match v {
            Value::Mapping(m) if !m.is_empty() => {
                let mut first = true;
                for (k, v) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        indent(out, depth + 2);
                    }
                    out.push_str(&key(k));
                    out.push(':');
                    entry(out, v, depth + 4, depth + 2);
                }
            }
            other => entry(out, other, depth + 2, depth + 2),
        }
    }
}

/// A mapping key: plain when it is a field name (lower-case letters, digits, `_`, `-`,
/// starting with a letter), quoted like any other string otherwise.
fn key(k: &Value) -> String {
    match k {
        Value::String(s)
            if s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                })
                && !matches!(
                    s.as_str(),
                    "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
                ) =>
        {
            s.clone()
        }
        other => inline(other),
    }
}

/// `s` as a double-quoted YAML scalar on one line: `"` and `\` escaped, line breaks, tabs and
/// every character YAML does not allow raw in a stream (C0, DEL, C1, surrogates are impossible
/// in a `str`, U+FEFF, U+FFFE/U+FFFF, the line and paragraph separators) as escapes.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct T {
        a: String,
        list: Vec<String>,
        nested: Vec<Inner>,
        empty: Vec<u8>,
        map: std::collections::BTreeMap<String, f64>,
        none: Option<u32>,
        n: u64,
        yes: bool,
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Inner {
        p: String,
        q: Vec<u32>,
        r: Option<Box<Inner>>,
    }

    #[test]
    fn every_string_is_quoted_and_reads_back_exactly() {
        let hostile = [
            "yes",
            "12:30",
            "<<",
            "=",
            "a\"b\\c",
            "\u{1b}[31m\u{85}\u{feff}",
            " x\n",
        ];
        let t = T {
            a: "2026-01-01".into(),
            list: hostile.iter().map(|s| s.to_string()).collect(),
            nested: vec![Inner {
                p: "~".into(),
                q: vec![1, 2],
                r: Some(Box::new(Inner {
                    p: "on".into(),
                    q: vec![],
                    r: None,
                })),
            }],
            empty: vec![],
            map: [("hash-md5".to_string(), 1.5), ("Odd Key".to_string(), 2.0)].into(),
            none: None,
            n: 7,
            yes: true,
        };
        let text = to_string(&t).unwrap();
        assert!(text.contains("a: \"2026-01-01\"\n"), "{text}");
        assert!(text.contains("\"Odd Key\": 2.0\n"), "{text}");
        assert!(text.contains("\n- \"<<\"\n"), "{text}");
        assert_eq!(serde_yaml::from_str::<T>(&text).unwrap(), t, "{text}");
    }
}
