//! Exporting a visit's evidence (issue 15): one committed visit with 1 GiB of blobs (10
//! photos of ~100 MB, their thumbnails and 10 one-minute WAV segments, sent and committed
//! through the API as a phone does: every blob hashed and the bundle verified), then a
//! signed-in legal user downloads its export, `GET /v1/bundles/{id}/export?purpose=…`, from a
//! release-built `tandem serve` process (SQLite) on 127.0.0.1, streaming the ZIP and
//! counting its bytes, while the server's `VmRSS` is sampled from `/proc/<pid>/status` every
//! 10 ms. The peer, in the same run and with the same client: nginx serving the same blob
//! files (hard links of the server's own blob files: the same bytes from the same page
//! cache; sealed at rest, so nginx sends the ciphertext and Tandem decrypts), one GET after
//! another. Runs interleaved (nginx, Tandem, nginx, …), best of each.
//!
//! `cargo bench -p tandem-server --bench export` (`TANDEM_BENCH_MIB`, default 1024,
//! `TANDEM_BENCH_RUNS`, default 3, `TANDEM_BENCH_DIR`; nginx from
//! `apt-get install nginx-light`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tandem_server::db::{NewUser, Role};
use uuid::Uuid;

#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;
#[path = "support/visits.rs"]
#[allow(dead_code)]
mod visits;
use process::{Server, env_number, proc_status};
use visits::{Org, SEGMENT_BYTES, THUMB_BYTES, send_visit};

/// What the export states as its purpose (the route will require one).
const PURPOSE: &str = "bench%20export%20throughput";

/// One download: bytes received and time from the request to the last byte.
struct Download {
    bytes: u64,
    took: Duration,
    /// From the request to the first byte of the body.
    first_byte: Duration,
    /// The first bytes (a ZIP starts with `PK`).
    head: Vec<u8>,
}

async fn download(http: &reqwest::Client, url: &str, token: Option<&str>) -> Download {
    let started = Instant::now();
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    let mut bytes = 0u64;
    let mut head = Vec::new();
    let mut first_byte = None;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        first_byte.get_or_insert_with(|| started.elapsed());
        if head.len() < 4 {
            head.extend_from_slice(&chunk[..chunk.len().min(4)]);
        }
        bytes += chunk.len() as u64;
    }
    Download {
        bytes,
        took: started.elapsed(),
        first_byte: first_byte.unwrap_or_default(),
        head,
    }
}

/// The largest `VmRSS` (KiB) of `pid` while `running`, sampled every 10 ms (bounded by
/// `max_samples`).
fn sample_rss(
    pid: u32,
    running: Arc<AtomicBool>,
    max_samples: usize,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = proc_status(pid, "VmRSS:");
        for _ in 0..max_samples {
            if !running.load(Ordering::Relaxed) {
                break;
            }
            peak = peak.max(proc_status(pid, "VmRSS:"));
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    })
}

fn gib_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / took.as_secs_f64().max(1e-9)
}

fn main() {
    let mib: usize = env_number("TANDEM_BENCH_MIB", 1024);
    let runs: usize = env_number("TANDEM_BENCH_RUNS", 3).max(1);
    let work = tempfile::Builder::new()
        .prefix("tandem-export-bench")
        .tempdir_in(std::env::var_os("TANDEM_BENCH_DIR").unwrap_or_else(|| "/tmp".into()))
        .unwrap();
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let signer = tandem_server::key::load_or_create(&data.join("server-key.p8")).unwrap();
    let org = Org::new(1);
    // Ten photos make up what the audio and thumbnails leave of the total.
    let others = visits::PER_VISIT * (SEGMENT_BYTES + THUMB_BYTES);
    let photo = ((mib << 20).saturating_sub(others) / visits::PER_VISIT).max(1_000);
    let visit = visits::visit_with_photos_of(&org, &signer, &org.pairs[0], (0, None), 1, photo);
    let blob_bytes = visit.bytes();
    let password = "bench-legal-password-7Q";
    let legal = NewUser {
        id: Uuid::now_v7(),
        login: "bench-legal".into(),
        display_name: "Legal".into(),
        role: Role::Legal,
        password_hash: Some(tandem_server::secrets::hash_password(password).unwrap()),
        bank_ids: vec![org.bank],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", data.join("tandem.db").display());
        let db = tandem_server::db::open(&url).await.unwrap();
        org.seed_with_users(db.as_ref(), vec![legal]).await;
        org.approve_visits(db.as_ref(), std::iter::once(&visit))
            .await;
        db.close().await;
        // The organisation is seeded as of a month before the visit: the legal user's
        // password would be past its age by now (A01).
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE users SET password_changed_ms = $1 WHERE login = 'bench-legal'")
            .bind(tandem_server::clock::system_now_ms())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let server = Server::start(&data, None);
        let http = reqwest::Client::new();
        let started = Instant::now();
        send_visit(&http, &server.base, &org.pairs[0].0.token, &visit)
            .await
            .unwrap();
        eprintln!(
            "sent and committed a visit of {blob_bytes} bytes in {} blobs in {:.1} s",
            visit.blobs.len(),
            started.elapsed().as_secs_f64()
        );
        let login: serde_json::Value = http
            .post(format!("{}/v1/login", server.base))
            .json(&serde_json::json!({ "login": "bench-legal", "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().expect("a session token").to_owned();

        // The peer serves the server's own blob files.
        let Some((nginx, nginx_base, root)) =
            nginx::start_nginx(work.path(), "location /blobs/ { root ROOT; }", &["blobs"])
        else {
            println!("nginx not installed: `apt-get install nginx-light`");
            return;
        };
        // The files are the blobs as stored: sealed (AES-256-GCM records), slightly longer
        // than the plaintext the export carries.
        let mut served_bytes = 0;
        for b in &visit.blobs {
            let hex = b.digest.to_hex();
            let stored = data.join("blobs").join(&hex[..2]).join(&hex);
            served_bytes += std::fs::metadata(&stored).unwrap().len();
            let served = root.join("blobs").join(&hex);
            if std::fs::hard_link(&stored, &served).is_err() {
                std::fs::copy(&stored, &served).unwrap();
            }
        }
        let export_url = format!(
            "{}/v1/bundles/{}/export?purpose={PURPOSE}",
            server.base, visit.bundle_id
        );
        let pid = server.child.id();
        // Warm-up: both read the files once (page cache), nothing timed.
        let _ = download(&http, &export_url, Some(&token)).await;
        let mut nginx_runs = Vec::new();
        let mut tandem_runs = Vec::new();
        let mut first_bytes = Vec::new();
        let mut growths = Vec::new();
        let mut zip_bytes = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let mut bytes = 0;
            for b in &visit.blobs {
                let url = format!("{nginx_base}/blobs/{}", b.digest.to_hex());
                bytes += download(&http, &url, None).await.bytes;
            }
            assert_eq!(bytes, served_bytes, "nginx served every blob");
            nginx_runs.push(started.elapsed());

            let before = proc_status(pid, "VmRSS:");
            let running = Arc::new(AtomicBool::new(true));
            let sampler = sample_rss(pid, running.clone(), 60_000);
            let got = download(&http, &export_url, Some(&token)).await;
            running.store(false, Ordering::Relaxed);
            let peak = sampler.join().unwrap();
            assert_eq!(&got.head[..2], b"PK", "the export is a ZIP");
            assert!(got.bytes >= blob_bytes, "the export carries every blob");
            zip_bytes = got.bytes;
            tandem_runs.push(got.took);
            first_bytes.push(got.first_byte);
            growths.push((before, peak));
        }
        drop(nginx);
        let best_nginx = *nginx_runs.iter().min().unwrap();
        let best_tandem = *tandem_runs.iter().min().unwrap();
        let list = |v: &[Duration]| {
            v.iter()
                .map(|d| format!("{:.3}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "## Export of a visit of {blob_bytes} blob bytes ({} blobs)\n",
            visit.blobs.len()
        );
        println!("| | runs (s) | best | throughput |");
        println!("|---|---|---|---|");
        println!(
            "| nginx, the same (sealed) blob files one after another, {served_bytes} bytes | {} \
             | {:.3} s | {:.3} GiB/s |",
            list(&nginx_runs),
            best_nginx.as_secs_f64(),
            gib_s(served_bytes, best_nginx)
        );
        println!(
            "| Tandem export, ZIP of {zip_bytes} bytes | {} | {:.3} s | {:.3} GiB/s |",
            list(&tandem_runs),
            best_tandem.as_secs_f64(),
            gib_s(zip_bytes, best_tandem)
        );
        println!(
            "| Tandem export: time to the first byte | {} | {:.3} s | |",
            list(&first_bytes),
            first_bytes.iter().min().unwrap().as_secs_f64()
        );
        println!(
            "| ratio Tandem / nginx (bytes per second) | | **{:.2}** | target ≥ 0.7 |",
            gib_s(zip_bytes, best_tandem) / gib_s(served_bytes, best_nginx)
        );
        let growth = growths
            .iter()
            .map(|(before, peak)| peak.saturating_sub(*before))
            .max()
            .unwrap_or(0);
        let (before, peak) = growths[0];
        println!(
            "| server memory growth during an export (largest of the runs) | | **{:.1} MiB** \
             (first run {:.1} → {:.1} MiB; VmHWM {:.1} MiB) | target < 64 MiB |",
            growth as f64 / 1024.0,
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            proc_status(pid, "VmHWM:") as f64 / 1024.0
        );
    });
}
