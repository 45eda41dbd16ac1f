//! A real S3 server for the tests: Garage on loopback, one node (sqlite metadata, a layout of
//! one zone, one key, one bucket) or a three-node cluster with replication factor 3, each in
//! its own temporary directory with its own ports. Everything is stopped (SIGKILL, waited
//! for) and removed on drop, also when a test panics.
//!
//! Garage is found through `scripts/install-garage.sh --path`; without it the tests that need
//! it print why and skip, unless `EXHIBIT_REQUIRE_GARAGE=1` (set by scripts/test.sh once it
//! has built Garage), when its absence fails them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The region Garage signs for (its `s3_region`).
pub const REGION: &str = "garage";
/// The bucket every fixture creates.
pub const BUCKET: &str = "evidence";
/// The key every fixture imports (Garage's own format: `GK` + 24 hex, a 64-hex secret).
pub const KEY_ID: &str = "GK0123456789abcdef01234567";
/// Its secret.
pub const SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e7fade";

/// Garage's binary, or `None` after saying why the test skips (a failure instead when
/// `EXHIBIT_REQUIRE_GARAGE=1`).
pub fn garage_binary() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-garage.sh");
    let found = Command::new(&script)
        .arg("--path")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file());
    if found.is_none() {
        let why = "Garage is not installed (scripts/install-garage.sh builds it)";
        if std::env::var("EXHIBIT_REQUIRE_GARAGE").as_deref() == Ok("1") {
            panic!("{why}, and EXHIBIT_REQUIRE_GARAGE=1 says the S3 tests must run");
        }
        eprintln!("SKIP: {why}; the S3 test is skipped");
    }
    found
}

/// One Garage process and its directory.
struct Node {
    config: PathBuf,
    s3_port: u16,
    rpc_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

/// A running Garage (one node or a cluster) with [`BUCKET`] and the key [`KEY_ID`] allowed
/// on it. Node 0 is the one the S3 endpoint points at.
pub struct Garage {
    binary: PathBuf,
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Garage {
    /// One node, replication factor 1. `None` when Garage is absent (the test skips).
    pub fn single() -> Option<Garage> {
        Self::start(1)
    }

    /// Three nodes on loopback, replication factor 3, each in its own zone.
    pub fn cluster() -> Option<Garage> {
        Self::start(3)
    }

    fn start(count: usize) -> Option<Garage> {
        let binary = garage_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("exhibit-test-garage-")
            .tempdir()
            .expect("tempdir");
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
            .collect();
        let mut nodes = Vec::new();
        for i in 0..count {
            let root = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(root.join("meta")).unwrap();
            std::fs::create_dir_all(root.join("data")).unwrap();
            let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
            let config = root.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{meta}\"\n\
                     data_dir = \"{data}\"\n\
                     db_engine = \"sqlite\"\n\
                     replication_factor = {count}\n\
                     rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                     rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                     rpc_secret = \"{secret}\"\n\
                     [s3_api]\n\
                     s3_region = \"{REGION}\"\n\
                     api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                     root_domain = \".s3.garage.localhost\"\n\
                     [admin]\n\
                     api_bind_addr = \"127.0.0.1:{admin_port}\"\n",
                    meta = root.join("meta").display(),
                    data = root.join("data").display(),
                ),
            )
            .unwrap();
            nodes.push(Node {
                config,
                s3_port,
                rpc_port,
                child: None,
                log: root.join("garage.log"),
            });
        }
        let mut g = Garage { binary, nodes, dir };
        for i in 0..count {
            g.start_node(i);
        }
        let ids: Vec<String> = (0..count).map(|i| g.node_id(i)).collect();
        for id in &ids[1..] {
            g.cli_ok(0, &["node", "connect", id]);
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap();
            let zone = format!("dc{}", i + 1);
            // The layout names nodes by their id; a cluster node may not be known yet to
            // node 0 right after connecting, so this is retried briefly.
            g.cli_retry(0, &["layout", "assign", "-z", &zone, "-c", "1G", short]);
        }
        g.cli_retry(0, &["layout", "apply", "--version", "1"]);
        g.cli_retry(
            0,
            &[
                "key",
                "import",
                "--yes",
                "-n",
                "exhibit-test",
                KEY_ID,
                SECRET,
            ],
        );
        g.cli_retry(0, &["bucket", "create", BUCKET]);
        g.cli_retry(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_ID,
            ],
        );
        g.wait_writable();
        Some(g)
    }

    fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::File::create(&node.log).unwrap();
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start garage");
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let (s3, rpc) = (node.s3_port, node.rpc_port);
        while TcpStream::connect(("127.0.0.1", s3)).is_err()
            || TcpStream::connect(("127.0.0.1", rpc)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "garage node {i} did not listen within 30 s:\n{}",
                self.log_of(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts node `i` again (after [`Garage::kill_node`]) on its data and ports.
    pub fn restart_node(&mut self, i: usize) {
        self.start_node(i);
    }

    /// Stops node `i` at once (SIGKILL), as a crashed or unplugged server.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The S3 endpoint (node 0's API).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.nodes[0].s3_port)
    }

    /// The environment that points an exhibit process (or the library) at this server with
    /// the test key, isolated from any `~/.aws` of the machine.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_PROFILE", "exhibit-test-none".to_string()),
            ("AWS_CONFIG_FILE", "/nonexistent/exhibit-test".to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/exhibit-test".to_string(),
            ),
        ]
    }

    /// `cmd` with [`Garage::env`] set (and the session token of the caller's shell removed).
    pub fn command_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL_S3")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_S3_ADDRESSING_STYLE");
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd
    }

    /// The library's configuration for this server.
    pub fn config(&self) -> exhibit::s3::S3Config {
        let vars = self.env();
        let var = move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        exhibit::s3::S3Config::from_sources(&exhibit::s3::config::ConfigSources {
            var: &var,
            home: None,
            endpoint: None,
        })
        .expect("the fixture's S3 configuration")
    }

    /// A client of [`BUCKET`] with the test key.
    pub fn client(&self) -> exhibit::s3::Client {
        exhibit::s3::Client::new(&self.config(), BUCKET).expect("client")
    }

    /// The fixture's own directory (for files a test keeps beside the server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn node_id(&self, i: usize) -> String {
        let out = self.cli_retry(i, &["node", "id", "-q"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn cli(&self, i: usize, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("-c")
            .arg(&self.nodes[i].config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .expect("run garage")
    }

    fn cli_ok(&self, i: usize, args: &[&str]) -> Output {
        let out = self.cli(i, args);
        assert!(
            out.status.success(),
            "{}",
            self.describe_failure(i, args, &out)
        );
        out
    }

    /// Retries a command for up to 20 s: a cluster settles (nodes learn of each other, the
    /// layout spreads) in the background.
    fn cli_retry(&self, i: usize, args: &[&str]) -> Output {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.cli(i, args);
            if out.status.success() {
                return out;
            }
            if Instant::now() > deadline {
                panic!("{}", self.describe_failure(i, args, &out));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until a write through S3 succeeds (the layout has reached every node).
    fn wait_writable(&self) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let written = client.put_object(
                "exhibit-fixture-probe",
                b"probe",
                &exhibit::s3::PutOptions::default(),
            );
            match written {
                Ok(_) => {
                    client.delete_object("exhibit-fixture-probe").unwrap();
                    return;
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("garage never accepted a write: {e}\n{}", self.log_of(0))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn describe_failure(&self, i: usize, args: &[&str], out: &Output) -> String {
        format!(
            "garage {args:?} on node {i} failed ({}):\n{}{}\n--- server log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_of(i)
        )
    }

    /// The server log of node `i` (its last 4 KiB), for failure messages.
    pub fn log_of(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        text.get(start..).unwrap_or("").to_string()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
        // The temporary directory goes with `self.dir`.
    }
}
