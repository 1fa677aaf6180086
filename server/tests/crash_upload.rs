//! Crash test of resumable uploads: the real `tandem serve` binary is SIGKILLed at random
//! moments while a phone uploads blobs in chunks, restarted, and the phone resumes from
//! HEAD. After every kill no blob may be visible at its address unless complete and
//! correct, and the committed offset never exceeds what was sent; in the end every blob is
//! stored with the right digest. The seed is printed (`TANDEM_CRASH_SEED` replays it).

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tandem_core::crypto::{Digest, SignatureAlgorithm, SoftwareSigner, sha256};

/// At least this many kills per backend.
const KILLS: usize = 50;
/// Lease and idle timeout of the server under test: short, so a killed writer's upload is
/// free again quickly.
const LEASE_MS: u64 = 600;
const IDLE_MS: u64 = 300;

/// One `tandem serve` process and the address it listens on.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(b: &common::TestBackend, data: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(["--upload-lease-ms", &LEASE_MS.to_string()])
            .args(["--upload-idle-timeout-ms", &IDLE_MS.to_string()])
            .env("DATABASE_URL", &b.url)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the port from the listening line, then keeps draining the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(base) = line.strip_prefix("tandem: listening on ") {
                    let _ = tx.send(base.trim().to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("tandem serve prints its address within 30 s");
        Self { child, base }
    }

    /// SIGKILLs it (if the killer has not already) and checks that is how it ended: a
    /// server that died on its own is a failure, not a crash test.
    fn kill(mut self) {
        use std::os::unix::process::ExitStatusExt as _;
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let status = self.child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "tandem serve ended by itself: {status}"
        );
    }
}

/// A phone's view of the server: its token and a client without pooled connections (a
/// killed server leaves dead ones).
struct Phone {
    http: reqwest::Client,
    token: String,
}

impl Phone {
    fn new(token: String) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self { http, token }
    }

    fn req(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("Tus-Resumable", "1.0.0")
    }
}

/// One blob to upload and what the phone knows of it.
struct Upload {
    data: Vec<u8>,
    digest: Digest,
    location: Option<String>,
    /// The end of the furthest chunk ever sent: the offset may never pass it.
    sent_end: u64,
    done: bool,
}

/// The result of driving an upload until it is done or the server dies.
enum Drive {
    Done,
    ServerGone,
}

#[derive(Default)]
struct Figures {
    kills: usize,
    resumes: usize,
    bytes_sent: u64,
    bytes_resent: u64,
    busy_answers: usize,
    blobs: usize,
}

async fn drive(
    phone: &Phone,
    base: &str,
    up: &mut Upload,
    rng: &mut StdRng,
    figures: &mut Figures,
) -> Drive {
    use reqwest::Method;
    let len = up.data.len() as u64;
    let location = match &up.location {
        Some(l) => l.clone(),
        None => {
            let meta = format!("sha256 {}", B64.encode(up.digest.to_hex()));
            let Ok(resp) = phone
                .req(Method::POST, format!("{base}/v1/uploads"))
                .header("Upload-Length", len.to_string())
                .header("Upload-Metadata", meta)
                .send()
                .await
            else {
                return Drive::ServerGone;
            };
            assert_eq!(resp.status(), 201);
            let l = resp.headers()["location"].to_str().unwrap().to_owned();
            up.location = Some(l.clone());
            l
        }
    };
    for _ in 0..10_000 {
        let Ok(head) = phone
            .req(Method::HEAD, format!("{base}{location}"))
            .send()
            .await
        else {
            return Drive::ServerGone;
        };
        assert_eq!(head.status(), 200, "HEAD");
        let offset: u64 = head.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            offset <= up.sent_end && offset <= len,
            "committed offset {offset} is past what was sent ({})",
            up.sent_end
        );
        if offset == len {
            up.done = true;
            return Drive::Done;
        }
        let at = usize::try_from(offset).unwrap();
        let size = rng.random_range(64usize << 10..=768 << 10);
        let chunk = up.data[at..up.data.len().min(at + size)].to_vec();
        let end = offset + chunk.len() as u64;
        if end <= up.sent_end {
            figures.bytes_resent += chunk.len() as u64;
        } else {
            figures.bytes_resent += up.sent_end.saturating_sub(offset);
        }
        up.sent_end = up.sent_end.max(end);
        figures.bytes_sent += chunk.len() as u64;
        let mut req = phone
            .req(Method::PATCH, format!("{base}{location}"))
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string());
        if rng.random_bool(0.5) {
            req = req.header(
                "Upload-Checksum",
                format!("sha256 {}", B64.encode(sha256(&chunk).as_bytes())),
            );
        }
        let Ok(resp) = req.body(chunk).send().await else {
            return Drive::ServerGone;
        };
        match resp.status().as_u16() {
            204 => {}
            // The lease of a killed writer has not expired yet, or the offset moved.
            409 => {
                figures.busy_answers += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("PATCH answered {other}: {:?}", resp.text().await),
        }
    }
    panic!("upload did not finish within 10 000 rounds");
}

/// Every file at a blob address is complete and hashes to it; `expected` are present in full.
/// Every blob visible at its address is complete and correct: it opens under its key,
/// every record authenticates and its plaintext hashes to its name.
fn check_blob_folder(store: &tandem_server::blobstore::BlobStore) {
    for dir in std::fs::read_dir(store.root()).unwrap() {
        let dir = dir.unwrap().path();
        if dir.file_name().is_some_and(|n| n == "tmp") || !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let path: PathBuf = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let digest: Digest = name.parse().unwrap();
            assert_eq!(
                sha256(&common::read_blob(store, &digest)),
                digest,
                "a blob visible at its address is complete and correct"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_survive_sigkill_at_random_moments() {
    let seed: u64 = std::env::var("TANDEM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| tandem_server::clock::system_now_ms().unsigned_abs());
    writeln!(
        std::io::stderr(),
        "crash_upload: seed {seed} (TANDEM_CRASH_SEED={seed} replays it)"
    )
    .unwrap();
    for b in common::backends().await {
        let t0 = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let db = b.open().await;
        let demo = common::seed_demo(db.as_ref(), "pujiang-cc").await;
        let data = b.dir.path().join("data");
        let store = common::blob_store(&data, db.clone());

        let mut server = Server::start(&b, &data);
        let (signer, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        let enrolled =
            common::enroll_request(&reqwest::Client::new(), &server.base, &signer, demo.code(0))
                .await;
        assert_eq!(enrolled.status(), 201);
        let token = enrolled.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let phone = Phone::new(token);

        let mut figures = Figures::default();
        let mut uploads: Vec<Upload> = Vec::new();
        let mut current: Option<Upload> = None;
        for _round in 0..2_000 {
            if figures.kills >= KILLS && current.is_none() {
                break;
            }
            let mut up = current.take().unwrap_or_else(|| {
                let size = rng.random_range(1usize << 20..=4 << 20);
                let seed_byte: u64 = rng.random();
                let mut data = Vec::with_capacity(size + 32);
                let mut block = sha256(&seed_byte.to_le_bytes());
                while data.len() < size {
                    data.extend_from_slice(block.as_bytes());
                    block = sha256(block.as_bytes());
                }
                data.truncate(size);
                let digest = sha256(&data);
                Upload {
                    data,
                    digest,
                    location: None,
                    sent_end: 0,
                    done: false,
                }
            });
            // A kill at a random moment of this stretch of the upload (unless enough were done).
            let killer = (figures.kills < KILLS).then(|| {
                let pid = i32::try_from(server.child.id()).unwrap();
                let delay = Duration::from_millis(rng.random_range(0..120));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    // SAFETY: plain kill(2) on our own child's pid.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                })
            });
            let outcome = drive(&phone, &server.base, &mut up, &mut rng, &mut figures).await;
            let killed = match killer {
                Some(k) => {
                    // Let a pending kill land (or not) before deciding what happened.
                    if matches!(outcome, Drive::Done) {
                        k.abort();
                    }
                    let _ = k.await;
                    server.child.try_wait().unwrap().is_some()
                        || matches!(outcome, Drive::ServerGone)
                }
                None => false,
            };
            if killed {
                server.kill();
                figures.kills += 1;
                // While it is down: nothing half-way at any address.
                check_blob_folder(&store);
                server = Server::start(&b, &data);
                if !up.done {
                    figures.resumes += 1;
                }
            }
            if up.done {
                let stored = common::read_blob(&store, &up.digest);
                assert_eq!(sha256(&stored), up.digest);
                figures.blobs += 1;
                uploads.push(up);
            } else {
                current = Some(up);
            }
        }
        assert!(
            figures.kills >= KILLS,
            "{}: only {} kills",
            b.label,
            figures.kills
        );
        assert!(current.is_none(), "{}: the last upload finished", b.label);
        check_blob_folder(&store);
        for up in &uploads {
            assert_eq!(
                sha256(&common::read_blob(&store, &up.digest)),
                up.digest,
                "{}",
                b.label
            );
        }
        server.kill();
        writeln!(
            std::io::stderr(),
            "crash_upload [{}]: seed {seed}: {} kills, {} resumes, {} blobs completed, \
             {} bytes sent of which {} re-sent, {} busy/409 answers, {:.1} s",
            b.label,
            figures.kills,
            figures.resumes,
            figures.blobs,
            figures.bytes_sent,
            figures.bytes_resent,
            figures.busy_answers,
            t0.elapsed().as_secs_f64()
        )
        .unwrap();
    }
}
