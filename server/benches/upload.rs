//! Resumable upload throughput: a blob sent through the tus API (one POST, then PATCH
//! chunks with `Upload-Checksum`) to a release-built `tandem serve` on 127.0.0.1, against
//! `curl -T` of the same file to nginx with `dav_methods PUT` writing into the same
//! filesystem; and the server's memory growth during a 1 GiB upload.
//!
//! `cargo bench -p tandem-server --bench upload`. Settings from the environment:
//! `TANDEM_BENCH_MIB` (blob size, 512), `TANDEM_BENCH_CHUNK_MIB` (PATCH size, 16),
//! `TANDEM_BENCH_RUNS` (runs of each, 3), `TANDEM_BENCH_MEM_MIB` (memory run, 1024),
//! `TANDEM_BENCH_DIR` (the folder both servers write into; a temp folder by default).
//! nginx must be installed (`apt-get install -y nginx`); it runs as the current user from a
//! temp config, with no root-owned paths besides the binary.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use rand::{Rng as _, SeedableRng as _};
use tandem_core::crypto::{Digest, SignatureAlgorithm, SoftwareSigner, sha256};

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;
use process::{env_number, proc_status};

const MIB: usize = 1 << 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `len` pseudo-random bytes (incompressible, like photos and audio).
fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

/// A release-built `tandem serve` on its own data folder, with an enrolled phone.
struct Tandem {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Tandem {
    async fn start(data: &Path) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let db = tandem_server::db::open_sqlite_file(&data.join("tandem.db"))
            .await
            .unwrap();
        let creds = tandem_server::demo::seed(db.as_ref(), tandem_server::clock::system_now_ms())
            .await
            .unwrap()
            .expect("a fresh folder");
        db.close().await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("tandem: listening on ") {
                    let _ = tx.send(base.trim().to_owned());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let http = reqwest::Client::new();
        let (signer, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        let code = &creds.agents[0].2;
        let proof = tandem_core::crypto::SignatureRecord::sign(
            &signer,
            tandem_server::auth::ENROLL_PURPOSE,
            tandem_server::secrets::enrollment_code_hash(code).as_bytes(),
        )
        .unwrap();
        use tandem_core::crypto::Signer as _;
        let resp = http
            .post(format!("{base}/v1/enroll"))
            .json(&serde_json::json!({
                "code": code, "public_key": signer.public_key(), "proof": proof,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let token = resp.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            child,
            base,
            token,
            http,
        }
    }

    /// Uploads `data` (whose digest and chunk checksums are given) in one POST and PATCH
    /// chunks; the time from the POST to the last answer (blob fsynced and installed).
    async fn upload(
        &self,
        data: &Bytes,
        digest: &Digest,
        chunks: &[(usize, usize, String)],
    ) -> f64 {
        let t0 = Instant::now();
        let resp = self
            .http
            .post(format!("{}/v1/uploads", self.base))
            .bearer_auth(&self.token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", data.len().to_string())
            .header(
                "Upload-Metadata",
                format!("sha256 {}", B64.encode(digest.to_hex())),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        for (start, end, sum) in chunks {
            let resp = self
                .http
                .patch(format!("{}{location}", self.base))
                .bearer_auth(&self.token)
                .header("Tus-Resumable", "1.0.0")
                .header("Content-Type", "application/offset+octet-stream")
                .header("Upload-Offset", start.to_string())
                .header("Upload-Checksum", sum)
                .body(data.slice(*start..*end))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
        }
        t0.elapsed().as_secs_f64()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The chunk ranges of `data` with their `Upload-Checksum` values (computed before timing:
/// the phone computes them, the benchmark measures the server).
fn chunks(data: &[u8], chunk: usize) -> Vec<(usize, usize, String)> {
    (0..data.len())
        .step_by(chunk)
        .map(|start| {
            let end = data.len().min(start + chunk);
            let sum = format!(
                "sha256 {}",
                B64.encode(sha256(&data[start..end]).as_bytes())
            );
            (start, end, sum)
        })
        .collect()
}

/// nginx serving `root` with WebDAV PUT on 127.0.0.1, one process, no root-owned paths.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        for d in ["www/dav", "body", "logs"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/logs/error.log warn;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
               client_max_body_size 0;\n  server {{\n    listen 127.0.0.1:{port};\n\
                 location /dav/ {{ root {d}/www; dav_methods PUT; create_full_put_path on; }}\n\
               }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx is installed (apt-get install -y nginx)");
        wait_port(port);
        Self { child, port }
    }

    /// `curl -T file` to a new name; the time of the curl command, and of an fsync of the
    /// stored file afterwards (nginx does not sync).
    fn put(&self, file: &Path, root: &Path, name: &str) -> (f64, f64) {
        let t0 = Instant::now();
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T"])
            .arg(file)
            .arg(format!("http://127.0.0.1:{}/dav/{name}", self.port))
            .output()
            .unwrap();
        let put = t0.elapsed().as_secs_f64();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{:?}", out);
        let stored = root.join("www/dav").join(name);
        let t1 = Instant::now();
        std::fs::File::open(&stored).unwrap().sync_all().unwrap();
        let sync = t1.elapsed().as_secs_f64();
        std::fs::remove_file(stored).unwrap();
        (put, sync)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let mib: usize = env_number("TANDEM_BENCH_MIB", 512);
    let chunk_mib: usize = env_number("TANDEM_BENCH_CHUNK_MIB", 16);
    let runs: usize = env_number("TANDEM_BENCH_RUNS", 3);
    let mem_mib: usize = env_number("TANDEM_BENCH_MEM_MIB", 1024);
    let temp = match std::env::var("TANDEM_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let dir = temp.path().to_owned();
    println!(
        "upload bench: {mib} MiB, {chunk_mib} MiB PATCHes with checksums, {runs} runs, in {}",
        dir.display()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());

    let mut data = blob(mib * MIB, 1);
    let file: PathBuf = dir.join("blob.bin");
    let tandem = Tandem::start(&dir.join("tandem")).await;
    let nginx = Nginx::start(&dir.join("nginx"));
    let (mut tus, mut put, mut put_sync) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        // A new blob each run (else the server answers "stored already").
        data[..8].copy_from_slice(&(run as u64).to_le_bytes());
        std::fs::write(&file, &data).unwrap();
        let digest = sha256(&data);
        let ranges = chunks(&data, chunk_mib * MIB);
        let bytes = Bytes::from(data.clone());
        tus.push(tandem.upload(&bytes, &digest, &ranges).await);
        let stored = dir
            .join("tandem/blobs")
            .join(&digest.to_hex()[..2])
            .join(digest.to_hex());
        // Stored sealed at rest: the plaintext's length in records.
        let sealed = tandem_core::blobs::Sealer::sealed_len(data.len() as u64);
        assert_eq!(std::fs::metadata(&stored).unwrap().len(), sealed);
        std::fs::remove_file(stored).unwrap();
        let (p, s) = nginx.put(&file, &dir.join("nginx"), &format!("blob-{run}"));
        put.push(p);
        put_sync.push(p + s);
        println!(
            "run {run}: tus {:.3} s, nginx {p:.3} s (+ fsync {s:.3} s)",
            tus[run]
        );
    }
    tandem.stop();
    drop(nginx);
    let gib = (mib as f64) / 1024.0;
    let tput = |t: f64| gib / t;
    println!(
        "tus API (POST + PATCH): {} s; best {:.3} GiB/s",
        list(&tus),
        tput(best(&tus))
    );
    println!(
        "nginx PUT (curl -T):   {} s; best {:.3} GiB/s",
        list(&put),
        tput(best(&put))
    );
    println!(
        "nginx PUT + fsync:     {} s; best {:.3} GiB/s",
        list(&put_sync),
        tput(best(&put_sync))
    );
    println!("ratio tus / nginx: {:.2}", best(&put) / best(&tus));
    println!(
        "ratio tus / (nginx + fsync): {:.2}",
        best(&put_sync) / best(&tus)
    );
    drop(data);
    let _ = std::fs::remove_file(&file);

    // Memory: a fresh server, a large upload, RSS sampled throughout.
    let tandem = Tandem::start(&dir.join("tandem-mem")).await;
    let pid = tandem.child.id();
    let base_rss = proc_status(pid, "VmRSS:");
    let base_hwm = proc_status(pid, "VmHWM:");
    let big = blob(mem_mib * MIB, 2);
    let digest = sha256(&big);
    let ranges = chunks(&big, chunk_mib * MIB);
    let bytes = Bytes::from(big);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut max = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            max = max.max(proc_status(pid, "VmRSS:"));
            std::thread::sleep(Duration::from_millis(20));
        }
        max
    });
    let secs = tandem.upload(&bytes, &digest, &ranges).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let max_rss = sampler.join().unwrap();
    let hwm = proc_status(pid, "VmHWM:");
    tandem.stop();
    println!(
        "memory, {mem_mib} MiB upload in {secs:.3} s: VmRSS before {:.1} MiB, sampled max {:.1} MiB, \
         VmHWM before {:.1} MiB, after {:.1} MiB; growth (VmHWM after - VmRSS before) {:.1} MiB",
        base_rss as f64 / 1024.0,
        max_rss as f64 / 1024.0,
        base_hwm as f64 / 1024.0,
        hwm as f64 / 1024.0,
        (hwm.saturating_sub(base_rss)) as f64 / 1024.0
    );
    let _ = std::io::stdout().flush();
}
