//! How a job ended: its status word, its process exit code and what the user can do next, in
//! one type, so that every job and the binary say the same thing for the same ending.

use super::OutcomeInfo;
use crate::error::Error;

/// The process exit codes of every command, defined here only (docs/audit-record.md and the
/// README describe them).
pub mod exit {
    /// The job did everything and found nothing wrong: complete, or verified.
    pub const COMPLETE: i32 = 0;
    /// The job finished and found something wrong: unreadable sectors filled with zeros
    /// (acquire, rescue), or a check that failed (verify).
    pub const FINDINGS: i32 = 1;
    /// The job failed, was refused, was interrupted, or could not run.
    pub const FAILED: i32 = 2;
}

/// What to do after an interrupted (or killed) run of a job that resumes from its map.
pub const RESUME_GUIDANCE: &str = "the map is saved: run the same command again to resume";

/// The end of a job, or its absence (`Running`, written when it starts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Started, not finished; a record that still says so belongs to a killed run.
    Running,
    /// Everything read.
    Complete,
    /// Finished; some sectors are unreadable and filled with zeros.
    CompleteWithUnreadable,
    /// Finished, and what was read is not what it should be (a conversion whose source does
    /// not hold its own hashes, or has damaged chunks); the reason says what.
    CompleteWithFindings(String),
    /// Stopped by a signal; the reason says which.
    Interrupted(String),
    /// A real failure or a refusal; the reason says what failed.
    Failed(String),
}

impl Outcome {
    /// Complete, or complete with unreadable sectors when `unreadable` is true.
    pub fn complete(unreadable: bool) -> Self {
        if unreadable {
            Outcome::CompleteWithUnreadable
        } else {
            Outcome::Complete
        }
    }

    /// The ending an error stands for: interrupted or failed, with its message.
    pub fn from_error(e: &Error) -> Self {
        match e {
            Error::Interrupted(_) => Outcome::Interrupted(e.to_string()),
            _ => Outcome::Failed(e.to_string()),
        }
    }

    /// The record's status word.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Complete => "complete",
            Outcome::CompleteWithUnreadable => "complete-with-unreadable-sectors",
            Outcome::CompleteWithFindings(_) => "complete-with-findings",
            Outcome::Interrupted(_) => "interrupted",
            Outcome::Failed(_) => "failed",
        }
    }

    /// The process exit code; none while running.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Outcome::Running => None,
            Outcome::Complete => Some(exit::COMPLETE),
            Outcome::CompleteWithUnreadable | Outcome::CompleteWithFindings(_) => {
                Some(exit::FINDINGS)
            }
            Outcome::Interrupted(_) | Outcome::Failed(_) => Some(exit::FAILED),
        }
    }

    /// What the user can do next, for a job that resumes from its map when `resumable`.
    pub fn guidance(&self, resumable: bool) -> Option<&'static str> {
        match self {
            Outcome::Interrupted(_) if resumable => Some(RESUME_GUIDANCE),
            _ => None,
        }
    }

    /// The record's `outcome` for a job named `job` (`acquisition`, `rescue`).
    pub(crate) fn info(&self, job: &str, resumable: bool) -> OutcomeInfo {
        let reason = match self {
            Outcome::Running if resumable => Some(format!(
                "the {job} has not finished; if this persists it was killed: run the same \
                 command again to resume from the map"
            )),
            Outcome::Running => Some(format!(
                "the {job} has not finished; if this persists, it was killed"
            )),
            Outcome::Complete | Outcome::CompleteWithUnreadable => None,
            Outcome::CompleteWithFindings(why) => Some(why.clone()),
            Outcome::Interrupted(why) | Outcome::Failed(why) => {
                Some(match self.guidance(resumable) {
                    Some(next) => format!("{why}; {next}"),
                    None => why.clone(),
                })
            }
        };
        OutcomeInfo {
            status: self.status().into(),
            exit_code: self.exit_code(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ending_has_its_status_code_and_guidance() {
        let e = Error::Interrupted("a signal (SIGINT or SIGTERM)");
        let o = Outcome::from_error(&e);
        assert_eq!((o.status(), o.exit_code()), ("interrupted", Some(2)));
        let rescue = o.info("rescue", true);
        assert_eq!(
            rescue.reason.as_deref(),
            Some(format!("{e}; {RESUME_GUIDANCE}").as_str())
        );
        assert_eq!(o.info("acquisition", false).reason, Some(e.to_string()));
        assert_eq!(Outcome::complete(true).exit_code(), Some(exit::FINDINGS));
        assert_eq!(Outcome::complete(false).info("rescue", true).reason, None);
        let running = Outcome::Running.info("acquisition", false);
        assert_eq!(running.exit_code, None);
        assert_eq!(
            running.reason.as_deref(),
            Some("the acquisition has not finished; if this persists, it was killed")
        );
    }
}
