//! `exhibit mount --background`: the process forks before it opens anything; the child does
//! the whole mount and the parent waits on a pipe for its word. The parent then exits 0 once
//! the files are served (so they are readable the moment the command returns), or with the
//! child's own exit code and one-line error (printed by the child on the caller's stderr)
//! when the mount failed before it was ready. The child detaches as a daemon: a session of
//! its own (no terminal's Ctrl-C or hang-up), standard input and output on /dev/null,
//! standard error into the `--log` file (or /dev/null), and serves until `umount` or SIGTERM.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use anyhow::{bail, Context};
use exhibit::sys::{self, Forked};

/// What the parent sends when the mount is served.
const READY: &[u8] = b"ready";

/// The daemon's side: its word to the parent and where its stderr goes.
pub struct Daemon {
    word: File,
    log: Option<File>,
}

/// Which process returns from [`fork`].
pub enum Side {
    /// The caller: the exit code to end with (0: the mount is served).
    Parent(i32),
    /// The child, which goes on to mount and calls [`Daemon::detach`] once served.
    Daemon(Daemon),
}

/// Forks; the parent returns once the child is ready or has ended.
pub fn fork(log: Option<&File>) -> anyhow::Result<Side> {
    let (mut from_child, to_parent) = sys::pipe().context("--background: a pipe")?;
    match sys::fork().context("--background")? {
        Forked::Child => {
            drop(from_child);
            // A Ctrl-C at the terminal while the image opens reaches the parent only.
            sys::new_session().context("--background: setsid")?;
            let log = log.map(File::try_clone).transpose().context("--log")?;
            Ok(Side::Daemon(Daemon {
                word: to_parent,
                log,
            }))
        }
        Forked::Parent(pid) => {
            drop(to_parent);
            let mut word = Vec::new();
            // Ends at the child's word and close, or at its exit (which closes the pipe).
            let _ = (&mut from_child).take(64).read_to_end(&mut word);
            if word == READY {
                return Ok(Side::Parent(0));
            }
            let status = sys::wait_child(pid).context("--background: waiting for the mount")?;
            match (status.code(), status.signal()) {
                (Some(0), _) => bail!("the background mount ended before it was ready"),
                (Some(code), _) => Ok(Side::Parent(code)),
                (None, Some(sig)) => {
                    bail!("the background mount was killed by signal {sig} before it was ready")
                }
                (None, None) => bail!("the background mount ended before it was ready"),
            }
        }
    }
}

impl Daemon {
    /// Leaves the caller's terminal and pipes (stdin and stdout to /dev/null, stderr to the
    /// log or /dev/null), then tells the parent the mount is served.
    pub fn detach(self) -> std::io::Result<()> {
        let null = File::options().read(true).write(true).open("/dev/null")?;
        sys::redirect_stdio(0, &null)?;
        sys::redirect_stdio(1, &null)?;
        sys::redirect_stdio(2, self.log.as_ref().unwrap_or(&null))?;
        let mut word = self.word;
        word.write_all(READY)
    }
}

/// Opens `--log FILE` for appending (created 0640 if missing); refused when it is a link or
/// not a regular file (a FIFO would block every report).
pub fn open_log(path: &Path) -> anyhow::Result<File> {
    let f = File::options()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("--log {}", path.display()))?;
    if !f.metadata()?.is_file() {
        bail!("--log {}: not a regular file", path.display());
    }
    Ok(f)
}

/// A notice line for the log: the time first (a log outlives the terminal it was read on).
pub fn log_line(log: &File, line: &str) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let _ = writeln!(&*log, "{now} exhibit mount: {line}");
}
