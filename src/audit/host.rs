//! The machine a record was made on.

use super::HostInfo;

impl HostInfo {
    /// The machine this runs on.
    pub fn current() -> Self {
        let (name, kernel) = uname().unwrap_or_else(|| ("unknown".into(), "unknown".into()));
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

/// The host name and `uname -srm`, by uname(2). The only `unsafe` of the audit module, kept in
/// one function so that it can move to the syscall module whole.
fn uname() -> Option<(String, String)> {
    // SAFETY: utsname is plain old data, filled by uname(2).
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some((
        field(&u.nodename),
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        ),
    ))
}
