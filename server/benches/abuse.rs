//! Unauthenticated abuse of a real `tandem serve` process (SQLite, demo organisation) on
//! 127.0.0.1, bounded in time (issue 11):
//!
//! - (a) 200 concurrent wrong-password logins for 30 s while `/healthz` latency and the
//!   server's RSS (`VmRSS`, `VmHWM` in /proc/PID/status) are sampled; run twice: with the
//!   sign-in backoff lifted (every attempt reaches the hash pool: the worst case for memory
//!   and CPU) and with the defaults, the 200 clients each on its own loopback address.
//!   Targets: RSS < 256 MiB, `/healthz` p99 < 50 ms; the peer is `/healthz` with no load.
//! - (b) 500 connections that send nothing, from five loopback addresses, against the
//!   default limits: when each is closed (target: within the header-read timeout, 10 s);
//!   and 300 from one address against the per-address cap (256).
//! - (c) `/metrics` size after 10,000 requests with random methods and paths (< 1 MB).
//!
//! `cargo bench -p tandem-server --bench abuse`. `TANDEM_BENCH_SECS` shortens (a) (30).

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tokio::io::AsyncReadExt as _;

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;
use process::{env_number, proc_status};

const MIB: u64 = 1024;

/// A `tandem serve` process on its own data folder with the demo organisation.
struct Tandem {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Tandem {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--demo", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tandem serve");
        let stdout = child.stdout.take().unwrap();
        let mut addr = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(a) = line.strip_prefix("tandem: listening on http://") {
                addr = Some(a.parse().unwrap());
                break;
            }
        }
        Self {
            child,
            addr: addr.expect("tandem serve did not start"),
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn stop(mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id().cast_signed(), libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// One `GET /healthz` on a kept-alive blocking connection; the answer is read whole.
fn healthz_once(stream: &mut std::net::TcpStream) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if body.len() >= len {
                return Ok(());
            }
        }
    }
}

/// `/healthz` latencies (sorted), and the server's largest RSS, VmHWM (KiB) and threads.
type Samples = (Vec<Duration>, u64, u64, u64);

/// `/healthz` every 20 ms and the server's memory every 250 ms, until `stop`. On its own
/// OS thread with a blocking socket, so the load generator's tasks never delay the probe:
/// what is measured is the server's answer time.
fn sample(addr: SocketAddr, pid: u32, stop: Arc<AtomicBool>) -> Samples {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut latencies = Vec::new();
    let (mut max_rss, mut max_threads) = (0, 0);
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        if healthz_once(&mut stream).is_err() {
            // Closed (an idle timeout between runs): reconnect, and time the retry.
            stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            healthz_once(&mut stream).unwrap();
        }
        latencies.push(start.elapsed());
        if tick.is_multiple_of(12) {
            max_rss = max_rss.max(proc_status(pid, "VmRSS:"));
            max_threads = max_threads.max(proc_status(pid, "Threads:"));
        }
        tick += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    latencies.sort();
    (latencies, max_rss, proc_status(pid, "VmHWM:"), max_threads)
}

fn start_sampler(server: &Tandem) -> (Arc<AtomicBool>, std::thread::JoinHandle<Samples>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, pid, flag) = (server.addr, server.pid(), Arc::clone(&stop));
    (stop, std::thread::spawn(move || sample(addr, pid, flag)))
}

struct FloodResult {
    label: &'static str,
    answers: std::collections::BTreeMap<u16, u64>,
    healthz: Vec<Duration>,
    max_rss_kib: u64,
    hwm_kib: u64,
    max_threads: u64,
    rss_after_kib: u64,
}

/// 200 clients sending wrong-password logins back to back for `secs`; `own_address` puts
/// each on its own loopback address (127.0.1.x).
async fn login_flood(
    server: &Tandem,
    label: &'static str,
    secs: u64,
    own_address: bool,
) -> FloodResult {
    let (stop, sampler) = start_sampler(server);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..200u8)
        .map(|w| {
            let mut builder = reqwest::Client::builder();
            if own_address {
                builder = builder.local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 1, w + 1)));
            }
            let http = builder.build().unwrap();
            let url = server.url("/v1/login");
            tokio::spawn(async move {
                let mut answers = std::collections::BTreeMap::<u16, u64>::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    // Half at a real account, half at names that do not exist.
                    let login = if n.is_multiple_of(2) {
                        "manager".to_owned()
                    } else {
                        format!("guess-{w}-{n}")
                    };
                    n += 1;
                    let body =
                        serde_json::json!({"login": login, "password": format!("wrong-{n}")});
                    let status = match http.post(&url).json(&body).send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let _ = resp.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    *answers.entry(status).or_default() += 1;
                }
                answers
            })
        })
        .collect();
    let mut answers = std::collections::BTreeMap::new();
    for w in workers {
        for (status, n) in w.await.unwrap() {
            *answers.entry(status).or_default() += n;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (healthz, max_rss_kib, hwm_kib, max_threads) = sampler.join().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    FloodResult {
        label,
        answers,
        healthz,
        max_rss_kib,
        hwm_kib,
        max_threads,
        rss_after_kib: proc_status(server.pid(), "VmRSS:"),
    }
}

/// `n` connections from `ips` (round robin) that send nothing; the time each was closed.
async fn idle_connections(addr: SocketAddr, ips: &[Ipv4Addr], n: usize) -> Vec<Duration> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(IpAddr::V4(ips[i % ips.len()]), 0))
            .unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let closed = tokio::time::timeout(Duration::from_secs(90), async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            closed.map_or(Duration::MAX, |()| start.elapsed())
        }));
    }
    let mut closed = Vec::new();
    for t in tasks {
        closed.push(t.await.unwrap());
    }
    closed.sort();
    closed
}

/// 10,000 requests with random methods (1–4,000 letters) and paths; `/metrics` size before
/// and after.
async fn random_requests(server: &Tandem) -> (usize, usize) {
    let http = reqwest::Client::new();
    let metrics_size = |http: reqwest::Client, url: String| async move {
        http.get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len()
    };
    let before = metrics_size(http.clone(), server.url("/metrics")).await;
    let workers: Vec<_> = (0..20u64)
        .map(|w| {
            let http = http.clone();
            let base = server.url("");
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(w);
                for _ in 0..500 {
                    let method: String = (0..rng.random_range(1..4_000))
                        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
                        .collect();
                    let path: String = (0..rng.random_range(1..200))
                        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                        .collect();
                    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                    let resp = http
                        .request(method, format!("{base}/{path}"))
                        .send()
                        .await
                        .unwrap();
                    let _ = resp.bytes().await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let after = metrics_size(http, server.url("/metrics")).await;
    (before, after)
}

async fn baseline_healthz(server: &Tandem, secs: u64) -> Vec<Duration> {
    let (stop, sampler) = start_sampler(server);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap().0
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let secs = env_number("TANDEM_BENCH_SECS", 30u64);
    let mut rows: Vec<String> = Vec::new();

    // (a) Login floods; the baseline first, on the same server, before any load.
    let lifted = Tandem::start(&[
        "--login-free-failures-per-account",
        "4000000000",
        "--login-free-failures-per-address",
        "4000000000",
    ]);
    let rss_idle = proc_status(lifted.pid(), "VmRSS:");
    let base = baseline_healthz(&lifted, 10).await;
    rows.push(format!(
        "| /healthz, no load (peer) | p50 {} ms, p99 {} ms ({} samples) | RSS {} MiB | — |",
        ms(percentile(&base, 0.5)),
        ms(percentile(&base, 0.99)),
        base.len(),
        rss_idle / MIB
    ));
    let a1 = login_flood(&lifted, "backoff lifted, one address", secs, false).await;
    lifted.stop();
    let defaults = Tandem::start(&[]);
    let a2 = login_flood(&defaults, "default backoff, 200 addresses", secs, true).await;
    defaults.stop();
    for r in [&a1, &a2] {
        let answers: Vec<String> = r
            .answers
            .iter()
            .map(|(s, n)| {
                format!(
                    "{n}×{}",
                    if *s == 0 {
                        "error".into()
                    } else {
                        s.to_string()
                    }
                )
            })
            .collect();
        let p99 = percentile(&r.healthz, 0.99);
        let ok = p99 < Duration::from_millis(50) && r.hwm_kib < 256 * MIB;
        rows.push(format!(
            "| 200 wrong-password logins × {secs} s, {} | /healthz p50 {} ms, p99 {} ms, max {} ms ({} samples) | RSS max {} MiB, VmHWM {} MiB, {} MiB after, {} threads max; answers {} | {} |",
            r.label,
            ms(percentile(&r.healthz, 0.5)),
            ms(p99),
            ms(percentile(&r.healthz, 1.0)),
            r.healthz.len(),
            r.max_rss_kib / MIB,
            r.hwm_kib / MIB,
            r.rss_after_kib / MIB,
            r.max_threads,
            answers.join(", "),
            if ok { "yes" } else { "NO" }
        ));
    }

    // (b) Idle connections against the default limits (header-read 10 s, idle 60 s).
    let server = Tandem::start(&[]);
    let five: Vec<Ipv4Addr> = (1..=5).map(|i| Ipv4Addr::new(127, 0, 2, i)).collect();
    let closed = idle_connections(server.addr, &five, 500).await;
    let within = closed
        .iter()
        .filter(|d| **d <= Duration::from_secs(11))
        .count();
    rows.push(format!(
        "| 500 idle connections (5 addresses × 100) | closed after min {} ms, median {} ms, max {} ms | {within}/500 within 10 s + 1 s | {} |",
        ms(closed[0]),
        ms(percentile(&closed, 0.5)),
        ms(closed[closed.len() - 1]),
        if within == 500 { "yes" } else { "NO" }
    ));
    let one = [Ipv4Addr::new(127, 0, 3, 1)];
    let closed = idle_connections(server.addr, &one, 300).await;
    let at_once = closed
        .iter()
        .filter(|d| **d < Duration::from_secs(1))
        .count();
    rows.push(format!(
        "| 300 idle connections from one address (cap 256) | {at_once} closed within 1 s, the rest after median {} ms | cap {} | {} |",
        ms(percentile(&closed[at_once..], 0.5)),
        300 - at_once,
        if at_once == 44 { "yes" } else { "NO" }
    ));

    // (c) Random methods and paths.
    let (before, after) = random_requests(&server).await;
    rows.push(format!(
        "| /metrics after 10,000 random methods and paths | {before} bytes before, {after} bytes after | — | {} |",
        if after < 1 << 20 { "yes" } else { "NO" }
    ));
    server.stop();

    println!("\n| scenario | figures | memory / other | target met |");
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
