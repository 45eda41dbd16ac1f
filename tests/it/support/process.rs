//! Running the exhibit binary (and other commands) and asserting how they exit.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The exhibit binary under test.
pub fn exhibit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_exhibit"))
}

/// Running a command and asserting its exit code, with everything it said in the failure.
pub trait Exits {
    /// Runs to the end; panics, showing the command, its stdout and its stderr, unless it
    /// exited with `code`.
    fn exits(&mut self, code: i32) -> Output;
}

impl Exits for Command {
    fn exits(&mut self, code: i32) -> Output {
        let out = self
            .output()
            .unwrap_or_else(|e| panic!("could not run {self:?}: {e}"));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{self:?} exited with {}, expected {code}\n--- stdout:\n{}\n--- stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Runs exhibit with `args`, whatever it exits with.
pub fn run(args: &[&str]) -> Output {
    exhibit().args(args).output().expect("run exhibit")
}

/// Runs exhibit with `args`; asserts exit code `code`.
pub fn run_exit(code: i32, args: &[&str]) -> Output {
    exhibit().args(args).exits(code)
}

/// Runs exhibit with `args`; asserts it succeeds.
pub fn run_ok(args: &[&str]) -> Output {
    run_exit(0, args)
}

/// What a command wrote to stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What a command wrote to stdout, then to stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs exhibit with `args`; returns (exit code, stdout + stderr).
pub fn run_text(args: &[&str]) -> (i32, String) {
    let out = run(args);
    (out.status.code().unwrap_or(-1), text(&out))
}

/// Sends `signal` to our own child (as a user's Ctrl-C or a shutdown would).
pub fn send_signal(child: &Child, signal: i32) {
    // SAFETY: kill has no memory preconditions; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// `exhibit acquire SOURCE -o BASE --quiet EXTRA`; asserts exit code `code`.
pub fn acquire(source: &Path, base: &Path, extra: &[&str], code: i32) -> Output {
    exhibit()
        .arg("acquire")
        .arg(source)
        .arg("-o")
        .arg(base)
        .arg("--quiet")
        .args(extra)
        .exits(code)
}

/// `exhibit convert IMAGE -o BASE EXTRA`; asserts exit code `code`; returns its output (the
/// summary names every claim of the source).
pub fn convert(image: &Path, base: &Path, extra: &[&str], code: i32) -> Output {
    exhibit()
        .arg("convert")
        .arg(image)
        .arg("-o")
        .arg(base)
        .args(extra)
        .exits(code)
}

/// `exhibit rescue DEVICE -o BASE --quiet EXTRA`, to run or spawn.
pub fn rescue_cmd(device: &Path, base: &Path, extra: &[&str]) -> Command {
    let mut c = exhibit();
    c.arg("rescue")
        .arg(device)
        .arg("-o")
        .arg(base)
        .arg("--quiet")
        .args(extra);
    c
}

/// `exhibit verify PATH [more]`; returns (exit code, stdout + stderr).
pub fn verify(path: &Path, more: &[&str]) -> (i32, String) {
    let p = path.to_str().unwrap();
    let mut args = vec!["verify", p];
    args.extend_from_slice(more);
    run_text(&args)
}

/// Asserts exit code `code` and that every needle is in the output.
pub fn expect(result: &(i32, String), code: i32, needles: &[&str]) {
    let (c, text) = result;
    assert_eq!(*c, code, "exit code {c}, expected {code}; output:\n{text}");
    for n in needles {
        assert!(text.contains(n), "missing {n:?} in output:\n{text}");
    }
}

/// This test binary running only the test `name` (its full path, `module::test`), alone and
/// with its output shown: for a test that must be its own process (to be killed, or to limit
/// the process). Its stdout is not inherited: the child's "test result" line would be
/// counted by scripts/test.sh as the parent's.
pub fn child_test(name: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    c
}

/// Waits for `child` at most `limit`; kills it and fails the test if it is still running.
pub fn wait_bounded(mut child: Child, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return (child.wait_with_output().unwrap(), started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
