//! Evidence on S3-compatible object storage, against a real 3-node Garage cluster on
//! 127.0.0.1 (replication 3): the blob store's reads and writes on a bucket, the migration
//! of a blob folder into one, and a visit sent to `tandem serve` configured with the
//! bucket, committed and exported, its export verifying with `tandem verify`.
//!
//! Actor: a thief of a disk or anyone pulling the plug — a blob is visible under its
//! address only once complete and checked; and the operator who outgrows one disk.
//! Skipped with a note when Garage is not installed, except under CI
//! (`tandem_server::testing::garage`).

mod common;
mod ledger_support;

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::TryStreamExt as _;
use ledger_support::{Phone, fresh, receipt_of, sample_position};
use tandem_core::bundle::testing::SampleBundle;
use tandem_core::crypto::{Digest, Signer as _, sha256};
use tandem_core::tlog::verify_receipt;
use tandem_server::blobstore::{BlobStore, BlobStoreError, KeyringError};

/// Bytes that differ from any other test's (a counter folded into a pattern).
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

fn read_all(store: &BlobStore, digest: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    store
        .open_read(digest)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The local folder's blobs (not `tmp/`): none when blobs live in the bucket.
fn local_blob_files(root: &std::path::Path) -> usize {
    std::fs::read_dir(root)
        .map(|dirs| {
            dirs.filter_map(Result::ok)
                .filter(|d| d.file_name() != "tmp" && d.path().is_dir())
                .map(|d| std::fs::read_dir(d.path()).unwrap().count())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_garage_bucket_keeps_blobs_whole_and_takes_a_blob_folder() {
    let Some(garage) = common::garage::start_or_skip("s3_store") else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let keys = rt.block_on(common::scratch_keyring(&dir.path().join("keys")));
    let store =
        BlobStore::open_s3(dir.path().join("blobs"), &garage.config(), keys.clone()).unwrap();
    common::garage::wait_writable(&store);

    // A small blob: put, size, read back whole and by range; nothing in the local folder.
    let small = bytes(300_000, 1);
    let digest = store.put_bytes(&small).unwrap();
    assert_eq!(store.size(&digest), Some(small.len() as u64));
    assert!(store.contains(&digest));
    assert_eq!(read_all(&store, &digest), small);
    assert_eq!(local_blob_files(store.root()), 0);
    // The bucket holds it sealed: not one 64-byte run of its plaintext.
    let mut raw = Vec::new();
    store
        .open_sealed(&digest)
        .unwrap()
        .0
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(
        raw.len() as u64,
        tandem_core::blobs::Sealer::sealed_len(small.len() as u64)
    );
    assert!(!raw.windows(64).any(|w| w == &small[100_000..100_064]));
    let range: Vec<u8> = rt.block_on(async {
        assert_eq!(store.stat(&digest).await.unwrap(), Some(small.len() as u64));
        let chunks: Vec<bytes::Bytes> = store
            .stream_range(&digest, 1000, 70_000)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    });
    assert_eq!(range, small[1000..71_000]);

    // A blob that is not there: no size, and reading it is an error, not empty bytes.
    let absent = sha256(b"never stored");
    assert_eq!(store.size(&absent), None);
    assert_eq!(rt.block_on(store.stat(&absent)).unwrap(), None);
    assert!(matches!(
        store.open_read(&absent),
        Err(BlobStoreError::Keys(KeyringError::NoKey(_)))
    ));

    // The empty blob is a blob.
    let empty = store.put_bytes(b"").unwrap();
    assert_eq!(store.size(&empty), Some(0));
    assert!(read_all(&store, &empty).is_empty());

    // A large blob goes up as a multipart upload (3 parts) from its checked temp file,
    // which is gone afterwards; it reads back to its digest.
    let large = bytes(40 << 20, 2);
    let large_digest = sha256(&large);
    let temp = store.tmp_dir().join("large");
    std::fs::write(&temp, &large).unwrap();
    let put = Instant::now();
    store.install(&temp, &large_digest).unwrap();
    common::garage::note(&format!(
        "s3_store: 40 MiB multipart put in {:.2} s",
        put.elapsed().as_secs_f64()
    ));
    assert!(!temp.exists());
    assert_eq!(store.size(&large_digest), Some(large.len() as u64));
    assert_eq!(sha256(&read_all(&store, &large_digest)), large_digest);

    // Bytes that are not their address are refused and nothing appears under it.
    let claimed = sha256(b"what the phone said");
    std::fs::write(&temp, b"what arrived instead").unwrap();
    assert!(matches!(
        store.install(&temp, &claimed),
        Err(BlobStoreError::DigestMismatch { .. })
    ));
    assert_eq!(store.size(&claimed), None);

    // Removed (retention's destruction), and removing again is no error.
    store.remove(&digest).unwrap();
    assert_eq!(store.size(&digest), None);
    store.remove(&digest).unwrap();

    // `tandem blobs migrate`: a folder of sealed blobs (one large) copied as they are and
    // verified; a file that is not a sealed blob is named, not copied, and fails the run.
    let data = dir.path().join("data");
    let folder = BlobStore::open(data.join("blobs"), keys).unwrap();
    let mut migrated: Vec<Digest> = (0..5u8)
        .map(|i| {
            folder
                .put_bytes(&bytes(10_000 + usize::from(i) * 777, 10 + i))
                .unwrap()
        })
        .collect();
    migrated.push(folder.put_bytes(&bytes(20 << 20, 20)).unwrap());
    migrated.push(folder.put_bytes(&small).unwrap()); // removed from the bucket above
    let rotten = sha256(b"the original photo");
    std::fs::create_dir_all(folder.path(&rotten).parent().unwrap()).unwrap();
    std::fs::write(folder.path(&rotten), b"bytes changed on disk").unwrap();
    std::fs::write(folder.tmp_dir().join("partial"), b"an upload in progress").unwrap();

    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["blobs", "migrate", "--data-dir"])
            .arg(&data)
            .envs(garage.env())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = migrate();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("FAILED {}", &rotten.to_hex()[..2])),
        "{out}"
    );
    assert!(out.contains("not a sealed blob; not copied"), "{out}");
    assert!(out.contains("7 blobs verified"), "{out}");
    assert_eq!(store.size(&rotten), None);
    for d in &migrated {
        assert_eq!(sha256(&read_all(&store, d)), *d);
    }
    // Again, without the rotten file: everything is there already, and verified again.
    std::fs::remove_file(folder.path(&rotten)).unwrap();
    let (code, out) = migrate();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("7 blobs verified"), "{out}");
    assert!(out.contains("0 copied, 7 there already"), "{out}");
    // A server given a wrong secret stops at start with one line saying so.
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TANDEM_DATA_DIR", dir.path().join("refused"))
        .env_remove("DATABASE_URL")
        .envs(garage.env())
        .env("TANDEM_S3_SECRET_ACCESS_KEY", "0".repeat(64))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("tandem serve: object store s3://tandem-evidence/")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(!stderr.contains(&garage.secret), "{stderr}");
    // `--check` probes the bucket too: it passes with the right secret and names the
    // bucket, and refuses the wrong one in one line, changing nothing.
    let check = |secret: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--check", "--listen", "127.0.0.1:0"])
            .env("TANDEM_DATA_DIR", dir.path().join("checked"))
            .env_remove("DATABASE_URL")
            .envs(garage.env())
            .env("TANDEM_S3_SECRET_ACCESS_KEY", secret)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = check(&garage.secret);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("bucket tandem-evidence reachable"),
        "{stdout}"
    );
    let (code, _, stderr) = check(&"0".repeat(64));
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("s3://tandem-evidence/"), "{stderr}");
    assert!(!stderr.contains(&garage.secret), "{stderr}");

    common::garage::note(&format!(
        "s3_store: store and migration checks in {:.1} s (cluster start {:.1} s)",
        started.elapsed().as_secs_f64(),
        garage.started_in.as_secs_f64()
    ));
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A phone's tus upload of `blob`, whole in one PATCH.
async fn upload(http: &reqwest::Client, base: &str, token: &str, blob: &[u8]) {
    let digest = sha256(blob);
    let created = http
        .post(format!("{base}/v1/uploads"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", blob.len().to_string())
        .header(
            "Upload-Metadata",
            format!("sha256 {}", B64.encode(digest.to_hex())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    if blob.is_empty() {
        return;
    }
    let patched = http
        .patch(format!("{base}{location}"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", "0")
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204, "{}", patched.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_sent_to_a_server_on_garage_commits_and_exports_verifiably() {
    let Some(garage) = common::garage::start_or_skip("s3_store") else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // The new cluster takes writes once its layout has spread.
    let (probe, config) = (dir.path().join("probe"), garage.config());
    let keys = common::scratch_keyring(&probe).await;
    tokio::task::spawn_blocking(move || {
        common::garage::wait_writable(&BlobStore::open_s3(probe, &config, keys).unwrap())
    })
    .await
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server_key = tandem_server::key::load_or_create(&data.join("server-key.p8")).unwrap();
    let key = server_key.public_key();
    let mut sample = SampleBundle::with_server(server_key).unwrap();
    let db = tandem_server::db::open_sqlite_file(&data.join("tandem.db"))
        .await
        .unwrap();
    let seeded = ledger_support::seed_sample(db.as_ref(), &sample, sample_position()).await;
    db.close().await;

    let addr = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--listen", &addr.to_string()])
        .env("TANDEM_DATA_DIR", &data)
        .env_remove("DATABASE_URL")
        .envs(garage.env())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut server = Serve(child);
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            break;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("tandem serve exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no healthy server within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The phone uploads every blob, then sends and commits the bundle.
    for blob in sample.blobs.values() {
        upload(&http, &base, &seeded.lead_token, blob).await;
    }
    let phone = Phone {
        base: &base,
        http: &http,
        token: &seeded.lead_token,
    };
    let sent = fresh(&mut sample);
    let (status, body) = phone.put(&sent).await;
    assert!((200..300).contains(&status), "PUT {status}: {body}");
    let (status, _, body) = phone.commit(&sent).await;
    assert_eq!(status, 200, "commit: {body}");
    let receipt = receipt_of(&body);
    verify_receipt(
        &receipt.receipt,
        &receipt.inclusion_proof,
        &receipt.checkpoint,
        &key,
        &sent.digest(),
    )
    .unwrap();

    // Every blob is in the bucket, whole and sealed under the server's keys; none in the
    // server's folder, and no plaintext in the bucket.
    assert_eq!(local_blob_files(&data.join("blobs")), 0);
    let check = tempfile::tempdir().unwrap();
    let server_db = tandem_server::db::open_sqlite_file(&data.join("tandem.db"))
        .await
        .unwrap();
    let bucket = BlobStore::open_s3(
        check.path(),
        &garage.config(),
        common::keyring(&data, server_db),
    )
    .unwrap();
    let blobs: Vec<(Digest, Vec<u8>)> = sample.blobs.iter().map(|(d, b)| (*d, b.clone())).collect();
    let read_back = tokio::task::spawn_blocking(move || {
        blobs
            .iter()
            .map(|(d, plain)| {
                let mut raw = Vec::new();
                bucket
                    .open_sealed(d)
                    .unwrap()
                    .0
                    .read_to_end(&mut raw)
                    .unwrap();
                let needle = &plain[plain.len() / 2..(plain.len() / 2 + 64).min(plain.len())];
                let sealed = plain.len() < 64 || !raw.windows(needle.len()).any(|w| w == needle);
                sha256(&read_all(&bucket, d)) == *d && sealed
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(read_back.iter().all(|ok| *ok), "{read_back:?}");

    // Legal staff's export streams the blobs back out of the bucket, and verifies.
    let export = http
        .get(format!(
            "{base}/v1/bundles/{}/export?purpose=litigation%3A%20S3%20test",
            sent.id
        ))
        .bearer_auth(&seeded.legal_token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let zip = export.bytes().await.unwrap();
    let zip_path = dir.path().join("export.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    let verified = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("verify")
        .arg(&zip_path)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "tandem verify: {}\n{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    common::garage::note(&format!(
        "s3_store: ingest and export through tandem serve in {:.1} s (cluster start {:.1} s)",
        started.elapsed().as_secs_f64(),
        garage.started_in.as_secs_f64()
    ));
}

#[test]
fn with_any_one_garage_node_killed_blobs_still_go_in_and_come_back_whole() {
    let Some(garage) = common::garage::start_or_skip("s3_store") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let keys = rt.block_on(common::scratch_keyring(&dir.path().join("keys")));
    let store = BlobStore::open_s3(dir.path().join("blobs"), &garage.config(), keys).unwrap();
    common::garage::wait_writable(&store);
    let before: Vec<Digest> = (0..3u8)
        .map(|i| store.put_bytes(&bytes(50_000, 40 + i)).unwrap())
        .collect();

    // SIGKILL a node: writes and reads go on with the two left (quorum 2 of 3).
    let down = Instant::now();
    garage.kill(2);
    let mut during: Vec<Digest> = (0..3u8)
        .map(|i| store.put_bytes(&bytes(60_000, 50 + i)).unwrap())
        .collect();
    let large = bytes(20 << 20, 60);
    let temp = store.tmp_dir().join("large");
    std::fs::write(&temp, &large).unwrap();
    store.install(&temp, &sha256(&large)).unwrap();
    during.push(sha256(&large));
    for d in before.iter().chain(&during) {
        assert_eq!(sha256(&read_all(&store, d)), *d);
    }
    common::garage::note(&format!(
        "s3_store: 1 node down: 3 small and one 20 MiB multipart put, 7 read back, in {:.1} s",
        down.elapsed().as_secs_f64()
    ));

    // The node comes back and another goes down: what was written without the first is
    // still there, whole.
    garage.restart(2);
    garage.kill(1);
    for d in before.iter().chain(&during) {
        assert_eq!(sha256(&read_all(&store, d)), *d);
    }
}
