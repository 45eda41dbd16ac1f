//! Case metadata an examiner attaches to an acquisition: it goes into the audit record and
//! into E01 headers.

use std::path::Path;

use crate::error::{Error, Result};

/// The examiner's description of the evidence. Every field is optional free text.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseMetadata {
    /// Case number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    /// Evidence (item) number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_number: Option<String>,
    /// Examiner's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examiner: Option<String>,
    /// Description of the evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl CaseMetadata {
    /// Reads a `--case FILE.yaml` with the same field names as the record's `case:` block.
    pub fn from_yaml_file(path: &Path) -> Result<Self> {
        let text = crate::small_file::read_small_text(path, crate::small_file::CASE_LIMIT)?;
        serde_yaml::from_str(&text).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("not a case file: {e}"),
        })
    }

    /// Fields given on the command line win over those from a file.
    pub fn overlay(mut self, other: CaseMetadata) -> Self {
        macro_rules! take {
            ($f:ident) => {
                if other.$f.is_some() {
                    self.$f = other.$f;
                }
            };
        }
        take!(case_number);
        take!(evidence_number);
        take!(examiner);
        take!(description);
        take!(notes);
        self
    }
}
