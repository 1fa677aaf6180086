//! Core's blocking tus client (what phones run) against the real server over 127.0.0.1:
//! a blob in chunks, a resume that sends nothing already acknowledged, a blob the server
//! holds already, and a damaged source refused by the server's digest check. And a stock
//! client, tuspy, with its own per-chunk checksums (SHA-1) switched on.

mod common;

use std::io::Read;

use common::{TestServer, seed_demo};
use tandem_core::crypto::sha256;
use tandem_core::sync::{HttpTransport, SyncError, TusClient};

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Runs a core upload on a blocking thread; returns its stats or error.
async fn upload(
    server: &TestServer,
    token: &str,
    bytes: Vec<u8>,
    source: Vec<u8>,
    chunk: usize,
) -> Result<tandem_core::sync::UploadStats, SyncError> {
    let base = server.base.clone();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        let transport = HttpTransport::new(&base, Default::default());
        let client = TusClient::new(&transport, &token).with_chunk_bytes(chunk);
        let digest = sha256(&bytes);
        let mut open = || -> Result<Box<dyn Read>, SyncError> {
            Ok(Box::new(std::io::Cursor::new(source.clone())))
        };
        client.upload(&digest, bytes.len() as u64, &mut open, &mut |_, _| {})
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_phone_uploads_resumes_and_skips_what_the_server_has() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let data = blob(3 << 20, 7);
        let digest = sha256(&data);

        let stats = upload(&server, &phone.token, data.clone(), data.clone(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            (stats.bytes_sent, stats.skipped),
            (3 << 20, 0),
            "{}",
            b.label
        );
        assert_eq!(server.state.blobs.size(&digest), Some(3 << 20));

        // The same blob again (another visit, another phone): nothing is sent.
        let stats = upload(&server, &phone.token, data.clone(), data, 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            (stats.bytes_sent, stats.skipped),
            (0, 3 << 20),
            "{}",
            b.label
        );

        // A cut connection left 1 MiB on the server: the client sends only the rest.
        let other = blob(2 << 20, 9);
        let other_digest = sha256(&other);
        let first = &other[..1 << 20];
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let created = server
            .http
            .post(server.url("/v1/uploads"))
            .bearer_auth(&phone.token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", other.len().to_string())
            .header(
                "Upload-Metadata",
                format!("sha256 {}", b64.encode(other_digest.to_hex())),
            )
            .send()
            .await
            .unwrap();
        let location = created.headers()["location"].to_str().unwrap().to_owned();
        let patched = server
            .http
            .patch(server.url(&location))
            .bearer_auth(&phone.token)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", "0")
            .body(first.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 204);
        let stats = upload(&server, &phone.token, other.clone(), other, 512 << 10)
            .await
            .unwrap();
        assert_eq!(
            (stats.bytes_sent, stats.skipped),
            (1 << 20, 1 << 20),
            "{}",
            b.label
        );
        assert_eq!(server.state.blobs.size(&other_digest), Some(2 << 20));
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn bytes_that_are_not_the_blob_are_never_stored_under_its_address() {
    // Threat: a colluding pair or a damaged phone store sending other bytes under an
    // evidence digest.
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let data = blob(1 << 20, 3);
        let mut forged = data.clone();
        forged[1000] ^= 1;
        let err = upload(&server, &phone.token, data.clone(), forged, 256 << 10)
            .await
            .unwrap_err();
        assert!(err.kind_is("upload-digest-mismatch"), "{}: {err}", b.label);
        assert_eq!(server.state.blobs.size(&sha256(&data)), None);
        server.state.db.close().await;
    }
}

/// tuspy's own upload: a client built from the server's URL and a bearer header, the
/// blob's digest as `sha256` metadata, and `upload_checksum=True` (SHA-1 per chunk).
const TUSPY_UPLOAD: &str = r#"
import sys
from tusclient import client
base, token, path, digest, chunk = sys.argv[1:6]
tus = client.TusClient(base + "/v1/uploads", headers={"Authorization": "Bearer " + token})
with open(path, "rb") as f:
    uploader = tus.uploader(file_stream=f, chunk_size=int(chunk),
                            metadata={"sha256": digest}, upload_checksum=True)
    uploader.upload()
    print(uploader.url)
"#;

#[tokio::test]
async fn a_stock_tus_client_uploads_with_its_sha1_chunk_checksums() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let data = blob(1 << 20, 5);
        let digest = sha256(&data);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &data).unwrap();
        let args = [
            server.base.clone(),
            phone.token.clone(),
            file.path().to_string_lossy().into_owned(),
            digest.to_hex(),
            // Four PATCHes, each with its own `Upload-Checksum: sha1 …`.
            (256 << 10).to_string(),
        ];
        let out = tokio::process::Command::new("python3")
            .arg("-c")
            .arg(TUSPY_UPLOAD)
            .args(&args)
            .output()
            .await
            .expect("python3 with tuspy (scripts/install-deps installs it)");
        assert!(
            out.status.success(),
            "{}: tuspy failed: {}",
            b.label,
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout);
        assert!(url.contains("/v1/uploads/"), "{}: {url}", b.label);
        // The blob is installed under its SHA-256 address, whole.
        let stored = common::stored_plaintext(&server.state.blobs, digest)
            .await
            .unwrap();
        assert_eq!(sha256(&stored), digest, "{}", b.label);
        server.state.db.close().await;
    }
}
