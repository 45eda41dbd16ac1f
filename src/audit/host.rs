//! The machine a record was made on.

use super::HostInfo;

impl HostInfo {
    /// The machine this runs on.
    pub fn current() -> Self {
        let (name, kernel) = match crate::sys::uname() {
            Ok(u) => (
                u.nodename,
                format!("{} {} {}", u.sysname, u.release, u.machine),
            ),
            Err(_) => ("unknown".into(), "unknown".into()),
        };
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        HostInfo { name, kernel, os }
    }
}
