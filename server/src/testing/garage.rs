//! A real 3-node Garage cluster on 127.0.0.1 for the S3 tests (the server's and the
//! end-to-end ones): each node a `garage server` process (a separate program, never linked)
//! with its own temp folders and ephemeral ports, replication factor 3, the layout assigned
//! and applied, one bucket and one access key made with the `garage` command. Nodes can be
//! SIGKILLed and started again; dropping the cluster kills its nodes.
//!
//! The binary is `$GARAGE_BIN`, else `garage` on the PATH, else `~/.cargo/bin/garage`
//! (`scripts/install-deps` installs it with `cargo install garage --locked`). Without it a
//! test is skipped with a note, except under CI, where a missing Garage fails the test.

use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::blobstore::{BlobStore, S3Config};

/// The region the cluster signs with.
pub const REGION: &str = "garage";
/// The bucket every cluster has.
pub const BUCKET: &str = "tandem-evidence";
/// The node whose S3 API [`Garage::config`] names: killing it takes the bucket away from
/// its clients, so fault tests kill the others.
pub const ENDPOINT_NODE: usize = 0;
/// Nodes in a cluster (each holds a replica of everything).
pub const NODES: usize = 3;

/// A running cluster.
pub struct Garage {
    bin: PathBuf,
    nodes: Mutex<Vec<Node>>,
    /// Each node's `id@address`.
    ids: Vec<String>,
    /// `http://127.0.0.1:PORT` of the endpoint node's S3 API.
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
    data: PathBuf,
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

/// Puts a first blob, again while a new cluster's layout settles (up to 30 s): a fresh
/// cluster takes writes once its layout has spread.
pub fn wait_writable(store: &BlobStore) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.put_bytes(b"ready") {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                note(&format!("bucket not writable yet: {e}"));
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!("bucket never became writable: {e}"),
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
        for i in 0..NODES {
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
                data: home.join("data"),
                child: None,
                s3,
            };
            node.spawn(&bin);
            nodes.push(node);
        }
        let mut garage = Self {
            bin,
            endpoint: format!("http://{}", nodes[ENDPOINT_NODE].s3),
            nodes: Mutex::new(nodes),
            ids: Vec::new(),
            key_id: String::new(),
            secret: String::new(),
            started_in: Duration::ZERO,
            _dir: dir,
        };
        let ids: Vec<String> = (0..NODES).map(|i| garage.node_id(i)).collect();
        garage.ids.clone_from(&ids);
        // A node writes its key (what `node id` reads) before it listens: connect again
        // until it does.
        for id in &ids[1..] {
            garage.cli_retrying(0, &["node", "connect", id]);
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

    fn nodes(&self) -> MutexGuard<'_, Vec<Node>> {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// SIGKILLs node `i` (its folders stay).
    pub fn kill(&self, i: usize) {
        self.nodes()[i].kill();
    }

    /// Starts node `i` again on its folders and ports, and connects it with every other
    /// node that runs, both ways (a node counts a peer up by its own outgoing connection,
    /// which it would otherwise retry only every 30 s). Call it from a thread that outlives
    /// the node (the test's own): a node dies with the thread that started it.
    pub fn restart(&self, i: usize) {
        self.nodes()[i].spawn(&self.bin);
        self.node_id(i);
        for other in (0..NODES).filter(|&o| o != i && self.runs(o)) {
            self.cli_retrying(i, &["node", "connect", &self.ids[other]]);
            self.cli_retrying(other, &["node", "connect", &self.ids[i]]);
        }
    }

    /// Whether node `i` runs (was not killed, or was restarted).
    fn runs(&self, i: usize) -> bool {
        self.nodes()[i].child.is_some()
    }

    /// Waits (up to `within`) until `garage status`, asked of every node, lists every node
    /// healthy and none failed; how long that took.
    pub fn wait_all_healthy(&self, within: Duration) -> Duration {
        let started = Instant::now();
        let short: Vec<&str> = self.ids.iter().map(|id| &id[..16]).collect();
        for i in 0..NODES {
            loop {
                let out = self.run(i, &["status"]);
                let text = String::from_utf8_lossy(&out.stdout);
                let healthy: Vec<&str> = text
                    .split("==== FAILED NODES ====")
                    .next()
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .collect();
                let all = short.iter().all(|id| healthy.contains(id));
                if out.status.success() && all && !text.contains("FAILED NODES") {
                    note(&format!(
                        "garage: node {i} reports all healthy after {:.1} s",
                        started.elapsed().as_secs_f64()
                    ));
                    break;
                }
                assert!(
                    started.elapsed() < within,
                    "node {i} did not report all nodes healthy within {within:?}:\n{text}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        started.elapsed()
    }

    /// Brings node `i`, back after missing writes, up to date with the endpoint node and
    /// waits (up to `within`) until it is: a full sync of the metadata tables
    /// (`garage repair -a --yes tables`) until its object, version and block-reference
    /// tables hold as many entries as the endpoint's, then its block resync queue cleared
    /// and refilled at once (`garage repair --yes clear-resync-queue`, then `blocks`) until
    /// its data folder holds every block the endpoint's does. Garage would get there by
    /// itself, but later: table anti-entropy runs every 10 minutes and a block is checked
    /// twice the RPC timeout (10 minutes) after its reference arrives. How long it took.
    pub fn heal(&self, i: usize, within: Duration) -> Duration {
        let started = Instant::now();
        let deadline = started + within;
        let tables = ["object", "version", "block_ref"];
        let mut last_try: Option<Instant> = None;
        loop {
            if last_try.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                self.cli_retrying(i, &["repair", "-a", "--yes", "tables"]);
                last_try = Some(Instant::now());
            }
            let (theirs, ours) = (
                self.table_items(ENDPOINT_NODE, &tables),
                self.table_items(i, &tables),
            );
            if theirs.is_some() && theirs == ours {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i}'s tables {tables:?} hold {ours:?} entries, the endpoint's {theirs:?}, \
                 after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let tables_in = started.elapsed();
        // One worker resting twice as long as it works is Garage's default pace.
        self.cli_retrying(i, &["worker", "set", "resync-tranquility", "0"]);
        self.cli_retrying(i, &["worker", "set", "resync-worker-count", "4"]);
        // Again every 2 s: a reference counted after a round is queued 10 minutes out.
        let (mut last_try, mut rounds): (Option<Instant>, u32) = (None, 0);
        loop {
            if last_try.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                self.cli_retrying(i, &["repair", "--yes", "clear-resync-queue"]);
                self.cli_retrying(i, &["repair", "--yes", "blocks"]);
                last_try = Some(Instant::now());
                rounds += 1;
            }
            let (theirs, ours) = (self.blocks(ENDPOINT_NODE), self.blocks(i));
            let missing = theirs.difference(&ours).count();
            if missing == 0 {
                note(&format!(
                    "garage: node {i} healed: tables in {:.1} s, {} blocks in {:.1} s more \
                     ({rounds} block repairs)",
                    tables_in.as_secs_f64(),
                    ours.len(),
                    (started.elapsed() - tables_in).as_secs_f64()
                ));
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "node {i} still misses {missing} of the endpoint's {} blocks after {within:?}",
                theirs.len()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The blocks in node `i`'s data folder, by hash (Garage keeps each as
    /// `data/xx/yy/<hash>`, `.zst` when compressed).
    pub fn blocks(&self, i: usize) -> BTreeSet<String> {
        fn walk(dir: &Path, depth: usize, out: &mut BTreeSet<String>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                if depth < 2 && path.is_dir() {
                    walk(&path, depth + 1, out);
                } else if depth == 2 && path.is_file() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let hash = name.strip_suffix(".zst").unwrap_or(&name);
                    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                        out.insert(hash.to_owned());
                    }
                }
            }
        }
        let data = self.nodes()[i].data.clone();
        let mut out = BTreeSet::new();
        walk(&data, 0, &mut out);
        out
    }

    /// Entries of `tables` on node `i` alone, as its `garage stats` counts them; `None`
    /// while it cannot say (it asks the cluster too).
    fn table_items(&self, i: usize, tables: &[&str]) -> Option<Vec<u64>> {
        let out = self.run(i, &["stats"]);
        if !out.status.success() {
            return None;
        }
        let stats = String::from_utf8_lossy(&out.stdout);
        // The node's own section comes first, before the cluster's.
        let own = stats.split("CLUSTER STATISTICS").next().unwrap_or_default();
        tables
            .iter()
            .map(|table| {
                own.lines().find_map(|l| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some(table))
                        .then(|| words.next()?.parse().ok())
                        .flatten()
                })
            })
            .collect()
    }

    fn run(&self, i: usize, args: &[&str]) -> Output {
        let config = self.nodes()[i].config.clone();
        Command::new(&self.bin)
            .arg("-c")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn log_tail(&self, i: usize) -> String {
        self.nodes()[i].log_tail()
    }

    /// Runs `garage -c <node i> ARGS`; its stdout, or a panic with its stderr.
    fn cli(&self, i: usize, args: &[&str]) -> String {
        let out = self.run(i, args);
        assert!(
            out.status.success(),
            "garage {args:?}: {}\n{}\nnode log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(i)
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
                self.log_tail(i)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Node `i`'s `id@address`, once it has written its key (it may not listen yet).
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
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
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
        for node in self.nodes().iter_mut() {
            node.kill();
        }
    }
}
