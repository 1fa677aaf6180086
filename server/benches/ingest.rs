//! Evidence ingest under load: 200 visits (10 photos of ~4 MB, their thumbnails and 10
//! minutes of WAV each) sent by 50 concurrent clients to a real `tandem serve` process —
//! resumable uploads of every blob, then the manifest, then the commit (full verification
//! and the log append) — on SQLite, and on PostgreSQL when `TANDEM_TEST_DATABASE_URL` is
//! set. The peer, measured in the same run: the same bytes PUT by the same 50 clients to
//! nginx (`dav_methods PUT`) writing into the same filesystem.
//!
//! ```sh
//! ./scripts/with-postgres cargo bench -p tandem-server --bench ingest
//! ```
//! `TANDEM_BENCH_VISITS` and `TANDEM_BENCH_CLIENTS` change the load.

#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/visits.rs"]
mod visits;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use tandem_core::crypto::Digest;
use visits::{BenchVisit, Org, send_visit};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `tandem serve` process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path, database_url: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            cmd.args(["--database-url", url]);
        }
        let mut child = cmd.spawn().expect("start tandem serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server stopped before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("tandem: listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }

    /// Peak resident memory of the server process, KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client saw.
#[derive(Default)]
struct ClientResult {
    commit_ms: Vec<f64>,
    visit_ms: Vec<f64>,
    bytes_ok: u64,
    errors: Vec<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs the load against one backend; prints and returns (visits/s, MB/s).
async fn run_tandem(
    label: &str,
    org: &Arc<Org>,
    per_client: &Arc<Vec<Vec<BenchVisit>>>,
    key: &Path,
    database_url: Option<&str>,
    work: &Path,
) -> (f64, f64) {
    let data = work.join(format!("tandem-{label}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(key, data.join("server-key.p8")).unwrap();
    let url = database_url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sqlite://{}", data.join("tandem.db").display()));
    {
        let db = tandem_server::db::open(&url).await.expect("open database");
        org.seed_into(db.as_ref()).await;
        org.approve_visits(db.as_ref(), per_client.iter().flatten())
            .await;
        db.close().await;
    }
    let server = Server::start(&data, Some(&url));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let visits: usize = per_client.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..per_client.len() {
        let (http, base, org, per_client) = (
            http.clone(),
            server.base.clone(),
            org.clone(),
            per_client.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let token = &org.pairs[c].0.token;
            let mut out = ClientResult::default();
            for visit in &per_client[c] {
                let t0 = Instant::now();
                match send_visit(&http, &base, token, visit).await {
                    Ok(ms) => {
                        out.commit_ms.push(ms);
                        out.visit_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                        out.bytes_ok += visit.bytes();
                    }
                    Err(e) => out.errors.push(e),
                }
            }
            out
        }));
    }
    let mut commit = Vec::new();
    let mut errors = Vec::new();
    let mut bytes_ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        commit.extend(r.commit_ms);
        errors.extend(r.errors);
        bytes_ok += r.bytes_ok;
    }
    let secs = started.elapsed().as_secs_f64();
    let rss_mib = server.peak_rss_kib() as f64 / 1024.0;
    drop(server);
    commit.sort_by(f64::total_cmp);
    let ok = commit.len();
    let visits_s = ok as f64 / secs;
    let mb_s = bytes_ok as f64 / 1e6 / secs;
    println!(
        "| Tandem on {label} | {visits} visits, {} clients | {secs:.1} s | {visits_s:.2} visits/s | \
         {mb_s:.0} MB/s | commit p50 {:.0} ms, p99 {:.0} ms | {} errors | server peak RSS {rss_mib:.0} MiB |",
        per_client.len(),
        percentile(&commit, 50.0),
        percentile(&commit, 99.0),
        errors.len(),
    );
    for e in errors.iter().take(5) {
        eprintln!("  error: {e}");
    }
    let _ = std::fs::remove_dir_all(&data);
    (visits_s, mb_s)
}

/// The peer: the same blob bytes PUT by the same clients to nginx.
async fn run_nginx(per_client: &Arc<Vec<Vec<BenchVisit>>>, work: &Path) -> Option<f64> {
    let (nginx, base, _) = nginx::start_nginx(
        work,
        "location /up/ { root ROOT; dav_methods PUT; create_full_put_path on; }",
        &["up"],
    )?;
    let http = reqwest::Client::new();
    let total_bytes: u64 = per_client.iter().flatten().map(BenchVisit::bytes).sum();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..per_client.len() {
        let (http, base, per_client) = (http.clone(), base.clone(), per_client.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = 0u32;
            for visit in &per_client[c] {
                for blob in &visit.blobs {
                    let r = http
                        .put(format!("{base}/up/{}", blob.digest.to_hex()))
                        .body(blob.bytes())
                        .send()
                        .await;
                    if !r.is_ok_and(|r| r.status().is_success()) {
                        errors += 1;
                    }
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    drop(nginx);
    let mb_s = total_bytes as f64 / 1e6 / secs;
    println!(
        "| nginx PUT (peer) | same bytes, {} clients | {secs:.1} s | — | {mb_s:.0} MB/s | — | {errors} errors | — |",
        per_client.len()
    );
    let _ = std::fs::remove_dir_all(work.join("nginx"));
    Some(mb_s)
}

fn main() {
    let visits_n = env_usize("TANDEM_BENCH_VISITS", 200);
    let clients = env_usize("TANDEM_BENCH_CLIENTS", 50).clamp(1, visits_n.max(1));
    let work = tempfile::Builder::new()
        .prefix("tandem-ingest-bench")
        .tempdir_in(std::env::var_os("TANDEM_BENCH_DIR").unwrap_or_else(|| "/tmp".into()))
        .unwrap();
    let key = work.path().join("server-key.p8");
    let server_key = tandem_server::key::load_or_create(&key).unwrap();
    let org = Arc::new(Org::new(clients));

    // Every visit, built (and its blobs hashed) before any clock starts.
    let t0 = Instant::now();
    let mut per_client: Vec<Vec<BenchVisit>> = (0..clients).map(|_| Vec::new()).collect();
    let mut prev: Vec<Option<Digest>> = vec![None; clients];
    for v in 0..visits_n {
        let c = v % clients;
        let seq = per_client[c].len() as u64;
        let visit = visits::visit(&org, &server_key, &org.pairs[c], seq, prev[c], v as u64 + 1);
        prev[c] = Some(tandem_core::bundle::Manifest::digest_of(&visit.manifest));
        per_client[c].push(visit);
    }
    visits::check_offline(&org, &server_key, &per_client[0][0]);
    let per_client = Arc::new(per_client);
    let total: u64 = per_client.iter().flatten().map(BenchVisit::bytes).sum();
    eprintln!(
        "built {visits_n} visits ({:.2} GB of blobs) in {:.1} s",
        total as f64 / 1e9,
        t0.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "| run | load | time | visits/s | throughput | commit latency | errors | memory |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        if run_nginx(&per_client, work.path()).await.is_none() {
            println!("| nginx PUT (peer) | not installed: `apt-get install nginx` | | | | | | |");
        }
        run_tandem("SQLite", &org, &per_client, &key, None, work.path()).await;
        match std::env::var("TANDEM_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let url = postgres::fresh_database(&admin).await;
                run_tandem(
                    "PostgreSQL",
                    &org,
                    &per_client,
                    &key,
                    Some(&url),
                    work.path(),
                )
                .await;
            }
            _ => println!(
                "| Tandem on PostgreSQL | skipped: TANDEM_TEST_DATABASE_URL not set | | | | | | |"
            ),
        }
    });
}
