//! A real 3-node Garage cluster on 127.0.0.1 for the S3 tests: each node a `garage server`
//! process (a separate program, never linked) with its own temp folders and ephemeral
//! ports, replication factor 3, the layout assigned and applied, one bucket and one access
//! key made with the `garage` command. Dropping the cluster kills its nodes.
//!
//! The binary is `$GARAGE_BIN`, else `garage` on the PATH, else `~/.cargo/bin/garage`
//! (`.ci/run` installs it with `cargo install garage --locked`). Without it a test is
//! skipped with a note, except under CI, where a missing Garage fails the test.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tandem_server::blobstore::S3Config;

/// The region the cluster signs with.
pub const REGION: &str = "garage";
/// The bucket every cluster has.
pub const BUCKET: &str = "tandem-evidence";

/// A running cluster.
pub struct Garage {
    bin: PathBuf,
    nodes: Vec<Node>,
    /// Each node's `id@address`.
    ids: Vec<String>,
    /// `http://127.0.0.1:PORT` of the first node's S3 API.
    pub endpoint: String,
    /// The access key's id.
    pub key_id: String,
    /// The access key's secret.
    pub secret: String,
    /// How long the cluster took to be ready.
    pub started_in: Duration,
    // Last: the folders outlive the processes.
    _dir: tempfile::TempDir,
}

struct Node {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    s3: SocketAddr,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The Garage binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("GARAGE_BIN") {
        return Some(PathBuf::from(bin));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("garage"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let bin = Path::new(&home).join(".cargo/bin/garage");
        bin.is_file().then_some(bin)
    })
}

/// A line on the test process's stderr that the test harness does not capture.
pub fn note(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A fresh cluster, or `None` (after a note on stderr) when Garage is not installed and
/// this is not CI. Under CI a missing Garage fails the test.
pub fn start_or_skip(test: &str) -> Option<Garage> {
    match binary() {
        Some(bin) => Some(Garage::start(bin)),
        None if under_ci() => {
            panic!("{test}: no garage binary under CI (install it: cargo install garage --locked)")
        }
        None => {
            note(&format!(
                "{test}: SKIPPED: no garage binary (cargo install garage --locked, or GARAGE_BIN)"
            ));
            None
        }
    }
}

impl Garage {
    /// Starts 3 nodes, joins them, applies a layout with replication 3, and makes the
    /// bucket and a key allowed to read and write it.
    pub fn start(bin: PathBuf) -> Self {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let secret_seed = format!("{:?}{}", Instant::now(), std::process::id());
        let rpc_secret = tandem_core::crypto::sha256(secret_seed.as_bytes()).to_hex();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let home = dir.path().join(format!("node{i}"));
            fs::create_dir_all(home.join("meta")).unwrap();
            fs::create_dir_all(home.join("data")).unwrap();
            let (rpc, s3) = (free_port(), free_port());
            let config = home.join("garage.toml");
            fs::write(
                &config,
                format!(
                    r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "{rpc}"
rpc_public_addr = "{rpc}"
rpc_secret = "{rpc_secret}"
bootstrap_peers = []

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "{s3}"
root_domain = ".s3.garage.localhost"
"#,
                    meta = home.join("meta").display(),
                    data = home.join("data").display(),
                ),
            )
            .unwrap();
            let mut node = Node {
                config,
                log: home.join("garage.log"),
                child: None,
                s3,
            };
            node.spawn(&bin);
            nodes.push(node);
        }
        let mut garage = Self {
            bin,
            endpoint: format!("http://{}", nodes[0].s3),
            nodes,
            ids: Vec::new(),
            key_id: String::new(),
            secret: String::new(),
            started_in: Duration::ZERO,
            _dir: dir,
        };
        let ids: Vec<String> = (0..3).map(|i| garage.node_id(i)).collect();
        garage.ids.clone_from(&ids);
        for id in &ids[1..] {
            garage.cli(0, &["node", "connect", id]);
        }
        for id in &ids {
            let short = id.split('@').next().unwrap();
            garage.cli_retrying(0, &["layout", "assign", "-z", "dc1", "-c", "1G", short]);
        }
        garage.cli(0, &["layout", "apply", "--version", "1"]);
        garage.cli_retrying(0, &["bucket", "create", BUCKET]);
        let key = garage.cli(0, &["key", "create", "tandem-tests"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {name} in `garage key create`'s answer:\n{key}"))
        };
        garage.key_id = field("Key ID:");
        garage.secret = field("Secret key:");
        garage.cli(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                "tandem-tests",
            ],
        );
        garage.started_in = started.elapsed();
        note(&format!(
            "garage: 3 nodes, replication 3, ready in {:.1} s",
            garage.started_in.as_secs_f64()
        ));
        garage
    }

    /// The settings `tandem serve` and the store take for the cluster's bucket.
    pub fn config(&self) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            bucket: BUCKET.to_owned(),
            region: REGION.to_owned(),
            access_key_id: self.key_id.clone(),
            secret_access_key: self.secret.clone(),
            virtual_hosted_style: false,
            allow_http: true,
        }
    }

    /// The same settings as `tandem` takes them from the environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TANDEM_S3_ENDPOINT", self.endpoint.clone()),
            ("TANDEM_S3_BUCKET", BUCKET.to_owned()),
            ("TANDEM_S3_REGION", REGION.to_owned()),
            ("TANDEM_S3_ACCESS_KEY_ID", self.key_id.clone()),
            ("TANDEM_S3_SECRET_ACCESS_KEY", self.secret.clone()),
            ("TANDEM_S3_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// SIGKILLs node `i` (its data stays).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its folders and ports, and waits until a node that stayed
    /// up is connected to it again.
    pub fn restart(&mut self, i: usize) {
        let bin = self.bin.clone();
        self.nodes[i].spawn(&bin);
        self.node_id(i);
        let other = (i + 1) % self.nodes.len();
        self.cli_retrying(other, &["node", "connect", &self.ids[i].clone()]);
    }

    fn run(&self, i: usize, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[i].config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `garage -c <node i> ARGS`; its stdout, or a panic with its stderr.
    fn cli(&self, i: usize, args: &[&str]) -> String {
        let out = self.run(i, args);
        assert!(
            out.status.success(),
            "garage {args:?}: {}\n{}\nnode log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.nodes[i].log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// As [`Self::cli`], again every 200 ms for up to 30 s while the cluster settles.
    fn cli_retrying(&self, i: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.run(i, args);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "garage {args:?} kept failing: {}\nnode log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.nodes[i].log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Node `i`'s `id@address`, once it answers.
    fn node_id(&self, i: usize) -> String {
        let out = self.cli_retrying(i, &["node", "id", "-q"]);
        out.lines()
            .find(|l| l.contains('@'))
            .unwrap_or_else(|| panic!("no node id in {out:?}"))
            .trim()
            .to_owned()
    }
}

impl Node {
    fn spawn(&mut self, bin: &Path) {
        let log = fs::File::create(&self.log).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // A test process killed outright takes its nodes with it.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().unwrap());
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
