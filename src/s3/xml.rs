//! The little XML of S3 that rusty-s3 does not parse for us (error documents, the
//! ListMultipartUploads answer) and the completion body with per-part checksums, read as
//! bounded text: a server's answer is hostile input like any other.

pub(crate) fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    // A server's message is hostile text: bounded, like everything else read from outside.
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text of the first `<NAME>…</NAME>` in `xml`.
pub(crate) fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml_unescape(xml[start..end].trim()))
}

/// Every `<NAME>…</NAME>` block's inside.
pub(crate) fn xml_blocks<'x>(xml: &'x str, name: &str) -> Vec<&'x str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        let Some(e) = after.find(&close) else { break };
        out.push(&after[..e]);
        rest = &after[e + close.len()..];
    }
    out
}

/// The `Code` and `Message` of an S3 error document (empty when absent).
pub(crate) fn error_fields(xml: &str) -> (String, String) {
    (
        xml_field(xml, "Code").unwrap_or_default(),
        xml_field(xml, "Message").unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_become_one_line() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
                   <Message>Forbidden: key\n &lt;x&gt;</Message></Error>";
        assert_eq!(
            error_fields(xml),
            (
                "AccessDenied".to_string(),
                "Forbidden: key\n <x>".to_string()
            )
        );
        assert_eq!(one_line("a\n\x1b b"), "a b");
        let blocks = xml_blocks(
            "<R><Upload><Key>a</Key><UploadId>1</UploadId></Upload><Upload><Key>b</Key>\
             <UploadId>2</UploadId></Upload></R>",
            "Upload",
        );
        assert_eq!(blocks.len(), 2);
        assert_eq!(xml_field(blocks[1], "UploadId").as_deref(), Some("2"));
    }
}
