//! Resumable uploads (tus 1.0) over real HTTP on 127.0.0.1, on every backend: in one go,
//! resumed after a cut connection, raced by two devices, and every refusal. Negative tests
//! name the threat they defend against (THREATS.md).

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestBackend, TestServer, seed_demo};
use reqwest::{Method, Response};
use serde_json::Value;
use tandem_core::crypto::sha256;
use tandem_server::Config;

/// Idle timeout of the test servers: short, so a stalled body is freed quickly.
const IDLE: Duration = Duration::from_millis(300);

async fn start(b: &TestBackend) -> (TestServer, common::Demo) {
    let mut state = b.state().await;
    state.config = Arc::new(Config {
        upload_max_bytes: 64 << 20,
        upload_patch_max_bytes: 16 << 20,
        upload_idle_timeout: IDLE,
        upload_lease: Duration::from_secs(2),
        ..(*state.config).clone()
    });
    let server = TestServer::start(state).await;
    let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
    (server, demo)
}

/// `len` bytes that differ from any other call's with another `seed`.
fn blob(seed: u8, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = sha256(&[seed]);
    while out.len() < len {
        out.extend_from_slice(block.as_bytes());
        block = sha256(block.as_bytes());
    }
    out.truncate(len);
    out
}

fn metadata(digest_hex: &str) -> String {
    format!(
        "filename {},sha256 {}",
        B64.encode("photo.jpg"),
        B64.encode(digest_hex)
    )
}

fn checksum(chunk: &[u8]) -> String {
    format!("sha256 {}", B64.encode(sha256(chunk).as_bytes()))
}

fn header_u64(resp: &Response, name: &str) -> u64 {
    resp.headers()[name].to_str().unwrap().parse().unwrap()
}

async fn problem_type(resp: Response, status: u16) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    body["type"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A tus client for one device.
struct Tus<'a> {
    server: &'a TestServer,
    token: String,
}

impl<'a> Tus<'a> {
    async fn enrol(server: &'a TestServer, code: &str) -> Self {
        let (_, enrolled) = server.enroll(code).await;
        Self {
            server,
            token: enrolled.token,
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token)
            .header("Tus-Resumable", "1.0.0")
    }

    async fn create(&self, blob: &[u8]) -> Response {
        self.req(Method::POST, "/v1/uploads")
            .header("Upload-Length", blob.len().to_string())
            .header("Upload-Metadata", metadata(&sha256(blob).to_hex()))
            .send()
            .await
            .unwrap()
    }

    /// Creates (or joins) the upload of `blob`: its location and committed offset.
    async fn create_ok(&self, blob: &[u8]) -> (String, u64) {
        let resp = self.create(blob).await;
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["tus-resumable"], "1.0.0");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/v1/uploads/"), "{location}");
        (location, header_u64(&resp, "upload-offset"))
    }

    async fn patch(
        &self,
        location: &str,
        offset: u64,
        chunk: &[u8],
        sum: Option<String>,
    ) -> Response {
        let mut req = self
            .req(Method::PATCH, location)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(chunk.to_vec());
        if let Some(sum) = sum {
            req = req.header("Upload-Checksum", sum);
        }
        req.send().await.unwrap()
    }

    async fn head(&self, location: &str) -> Response {
        self.req(Method::HEAD, location).send().await.unwrap()
    }

    async fn offset(&self, location: &str) -> u64 {
        let resp = self.head(location).await;
        assert_eq!(resp.status(), 200, "HEAD {location}");
        header_u64(&resp, "upload-offset")
    }

    /// Sends `blob` from the committed offset in `chunk`-byte PATCHes with checksums,
    /// resuming from HEAD after every 409; returns how many 409s it met.
    async fn upload(&self, location: &str, blob: &[u8], chunk: usize) -> usize {
        let mut conflicts = 0;
        let mut offset = self.offset(location).await;
        for _ in 0..10_000 {
            if offset == blob.len() as u64 {
                return conflicts;
            }
            let at = usize::try_from(offset).unwrap();
            let piece = &blob[at..blob.len().min(at + chunk)];
            let resp = self
                .patch(location, offset, piece, Some(checksum(piece)))
                .await;
            match resp.status().as_u16() {
                204 => offset = header_u64(&resp, "upload-offset"),
                409 => {
                    conflicts += 1;
                    offset = self.offset(location).await;
                }
                other => panic!("PATCH answered {other}: {}", resp.text().await.unwrap()),
            }
        }
        panic!("upload did not finish within 10 000 requests");
    }
}

/// The stored blob's plaintext (sealed at rest: checked), `None` when it is not stored.
async fn stored(server: &TestServer, blob: &[u8]) -> Option<Vec<u8>> {
    common::stored_plaintext(&server.state.blobs, sha256(blob)).await
}

/// Uploads with partial files left in `blobs/tmp/` (`upload-<id>` and its `.tail`).
fn partial_files(server: &TestServer) -> usize {
    let mut uploads: Vec<String> = std::fs::read_dir(server.state.blobs.tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("upload-"))
        .map(|name| name.split('.').next().unwrap_or_default().to_owned())
        .collect();
    uploads.sort();
    uploads.dedup();
    uploads.len()
}

#[tokio::test]
async fn options_advertise_tus_1_0_0_without_authentication() {
    for b in common::backends().await {
        let (server, _) = start(&b).await;
        let resp = server
            .http
            .request(Method::OPTIONS, server.url("/v1/uploads"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{}", b.label);
        let h = resp.headers();
        assert_eq!(h["tus-resumable"], "1.0.0");
        assert_eq!(h["tus-version"], "1.0.0");
        assert_eq!(h["tus-extension"], "creation,checksum,termination");
        assert_eq!(h["tus-checksum-algorithm"], "sha256,sha1");
        assert_eq!(h["tus-max-size"], (64u64 << 20).to_string().as_str());
    }
}

#[tokio::test]
async fn a_blob_uploads_in_one_go_and_lands_at_its_address() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(1, 9 << 20);
        let (location, offset) = phone.create_ok(&data).await;
        assert_eq!(offset, 0);

        let resp = phone
            .patch(&location, 0, &data, Some(checksum(&data)))
            .await;
        assert_eq!(resp.status(), 204, "{}", b.label);
        assert_eq!(header_u64(&resp, "upload-offset"), data.len() as u64);
        assert_eq!(stored(&server, &data).await.as_deref(), Some(&data[..]));
        assert_eq!(partial_files(&server), 0);

        let head = phone.head(&location).await;
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["cache-control"], "no-store");
        assert_eq!(header_u64(&head, "upload-offset"), data.len() as u64);
        assert_eq!(header_u64(&head, "upload-length"), data.len() as u64);

        // Asking again answers with the same, complete upload.
        let (again, offset) = phone.create_ok(&data).await;
        assert_eq!((again, offset), (location, data.len() as u64));
    }
}

/// Sends PATCH headers (`Upload-Offset: offset`, a `total`-byte body) and `part` of the
/// body on a raw socket. `close` ends the connection there (a phone losing its network);
/// otherwise the socket just goes quiet. Returns the status the server answered with once
/// it gave up on the body (0 when it only closed the connection).
async fn cut_patch(
    server: &TestServer,
    token: &str,
    location: &str,
    (offset, total): (usize, usize),
    part: &[u8],
    close: bool,
) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = server.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
         Upload-Offset: {offset}\r\nContent-Length: {total}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(part).await.unwrap();
    s.flush().await.unwrap();
    if close {
        s.shutdown().await.unwrap();
    }
    let mut answer = vec![0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut answer)).await;
    assert!(read.is_ok(), "the server answers or closes within 20 s");
    String::from_utf8_lossy(answer.get(9..12).unwrap_or_default())
        .parse()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_cut_connection_keeps_what_arrived_and_the_upload_resumes_from_head() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(2, 3 << 20);
        let (location, _) = phone.create_ok(&data).await;

        // The connection drops after 1 MiB and a bit: tus core keeps what arrived (no
        // checksum was sent).
        let part = (1 << 20) + 12_345;
        let status = cut_patch(
            &server,
            &phone.token,
            &location,
            (0, data.len()),
            &data[..part],
            true,
        )
        .await;
        assert!(matches!(status, 0 | 400), "{}: {status}", b.label);
        let mut offset = 0;
        for _ in 0..200 {
            offset = phone.offset(&location).await;
            if offset == part as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(offset, part as u64, "{}", b.label);
        assert!(stored(&server, &data).await.is_none());

        // A phone whose network goes quiet: the server gives up after the idle timeout,
        // keeps the bytes and frees the upload.
        let more = part + 500_000;
        let t0 = std::time::Instant::now();
        let status = cut_patch(
            &server,
            &phone.token,
            &location,
            (part, data.len() - part),
            &data[part..more],
            false,
        )
        .await;
        assert_eq!(status, 408, "{}", b.label);
        assert!(t0.elapsed() < IDLE * 10, "freed within seconds");
        assert_eq!(phone.offset(&location).await, more as u64);

        // A stalled chunk that carried a checksum keeps what arrived too: the checksum
        // cannot be checked on a chunk that never ended, and a phone on a weak network
        // must not send the same bytes again after every cut. The blob's digest still
        // checks them at the end.
        let stalled = cut_patch_with_checksum(&server, &phone.token, &location, more, &data).await;
        assert_eq!(stalled, 408);
        let more = more + CUT_CHECKSUMMED;
        assert_eq!(phone.offset(&location).await, more as u64, "{}", b.label);

        let conflicts = phone.upload(&location, &data, 1 << 20).await;
        assert_eq!(conflicts, 0);
        assert_eq!(stored(&server, &data).await.as_deref(), Some(&data[..]));
        assert_eq!(partial_files(&server), 0);
    }
}

/// The partial file of an upload (`blobs/tmp/upload-<id>`).
fn partial_path(server: &TestServer, location: &str) -> std::path::PathBuf {
    let id: uuid::Uuid = location.rsplit('/').next().unwrap().parse().unwrap();
    server
        .state
        .blobs
        .tmp_dir()
        .join(format!("upload-{}", id.simple()))
}

/// 64-byte runs from across `bytes` that a plaintext copy would contain.
fn samples(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    (1..8).map(move |i| {
        let at = bytes.len() * i / 8;
        &bytes[at..at + 64]
    })
}

/// Actor: a thief of the disk (or of a backup of it) while phones are still uploading:
/// the partial file of an upload in progress holds no plaintext either. And a disk that
/// rots under a partial file, or a hand that edits it: a torn record left by a crash is
/// cut off at HEAD; a record that no longer opens restarts the upload from 0 rather than
/// installing bytes the phone never sent.
#[tokio::test]
async fn an_upload_in_progress_is_sealed_on_disk_and_a_damaged_one_starts_again() {
    for b in common::backends().await {
        let label = b.label;
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(9, (3 << 20) + 777);
        let (location, _) = phone.create_ok(&data).await;
        let part = (2 << 20) + 4321;
        let resp = phone.patch(&location, 0, &data[..part], None).await;
        assert_eq!(resp.status(), 204, "{label}");
        let path = partial_path(&server, &location);
        // The whole records are in the blob sealed as it will be stored; the rest waits in
        // a sealed tail.
        let spool_len = std::fs::metadata(&path).unwrap().len();
        let sealed_records = tandem_core::blobs::Sealer::sealed_prefix_len(part as u64);
        assert_eq!(spool_len, sealed_records, "{label}");
        let id: uuid::Uuid = location.rsplit('/').next().unwrap().parse().unwrap();
        let tmp = server.state.blobs.tmp_dir();
        let received = tandem_server::uploads::received_len(&tmp, id).unwrap();
        assert_eq!(received, part as u64, "{label}");
        for run in samples(&data[..part]) {
            let found = common::occurs_in_files(b.dir.path(), run);
            assert!(
                found.is_empty(),
                "{label}: plaintext of an upload in {found:?}"
            );
        }

        // A crash between a write and its commit leaves a torn record: HEAD cuts it off.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &[0x5a; 40_000]).unwrap();
        drop(f);
        assert_eq!(phone.offset(&location).await, part as u64, "{label}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            spool_len,
            "{label}"
        );

        // Another server resuming (no cached hash) opens every record again on the way.
        server.state.upload_hashes.forget(id);
        let more = part + 100_000;
        let resp = phone
            .patch(&location, part as u64, &data[part..more], None)
            .await;
        assert_eq!(resp.status(), 204, "{label}");

        // A tail (the bytes after the last whole record) that no longer opens: the upload
        // resumes from its last whole record.
        let tail = tmp.join(format!("upload-{}.{more}.tail", id.simple()));
        let mut bytes = std::fs::read(&tail).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&tail, &bytes).unwrap();
        let resp = phone
            .patch(&location, more as u64, &data[more..], None)
            .await;
        assert_eq!(resp.status(), 409, "{label}");
        let whole = more - more % 65_536;
        assert_eq!(header_u64(&resp, "upload-offset"), whole as u64, "{label}");

        // One flipped byte inside the first record: the prefix no longer opens, so the
        // upload starts again from 0 and the phone sends it whole.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[200] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        server.state.upload_hashes.forget(id);
        let resp = phone
            .patch(&location, whole as u64, &data[whole..], None)
            .await;
        assert_eq!(resp.status(), 409, "{label}");
        assert_eq!(header_u64(&resp, "upload-offset"), 0, "{label}");
        assert_eq!(phone.upload(&location, &data, 1 << 20).await, 0, "{label}");
        assert_eq!(
            stored(&server, &data).await.as_deref(),
            Some(&data[..]),
            "{label}"
        );
        assert_eq!(partial_files(&server), 0, "{label}");
        for run in samples(&data) {
            let found = common::occurs_in_files(b.dir.path(), run);
            assert!(found.is_empty(), "{label}: plaintext at rest in {found:?}");
        }
    }
}

/// Bytes of a checksummed chunk that arrive before its socket goes quiet.
const CUT_CHECKSUMMED: usize = 100_000;

/// A chunk from `offset` to the end with its checksum, of which only [`CUT_CHECKSUMMED`]
/// bytes arrive before the socket goes quiet.
async fn cut_patch_with_checksum(
    server: &TestServer,
    token: &str,
    location: &str,
    offset: usize,
    data: &[u8],
) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = server.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let rest = &data[offset..];
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
         Upload-Offset: {offset}\r\nUpload-Checksum: {}\r\nContent-Length: {}\r\n\r\n",
        checksum(rest),
        rest.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&rest[..CUT_CHECKSUMMED]).await.unwrap();
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer[9..12]).parse().unwrap()
}

#[tokio::test]
async fn a_wrong_offset_is_409_with_the_committed_offset() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(3, 200_000);
        let (location, _) = phone.create_ok(&data).await;
        assert_eq!(
            phone
                .patch(&location, 0, &data[..1000], None)
                .await
                .status(),
            204
        );

        // Threat: anyone sending bad input — a chunk at the wrong place would corrupt the blob.
        let resp = phone.patch(&location, 5000, &data[5000..6000], None).await;
        assert_eq!(header_u64(&resp, "upload-offset"), 1000);
        assert_eq!(
            problem_type(resp, 409).await,
            "upload-offset-mismatch",
            "{}",
            b.label
        );
        assert_eq!(phone.offset(&location).await, 1000);
    }
}

#[tokio::test]
async fn a_chunk_failing_its_checksum_is_460_and_the_offset_stays() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(4, 300_000);
        let (location, _) = phone.create_ok(&data).await;
        let first = &data[..100_000];
        assert_eq!(
            phone
                .patch(&location, 0, first, Some(checksum(first)))
                .await
                .status(),
            204
        );

        // Threat: a network attacker altering a chunk in flight.
        let mut altered = data[100_000..200_000].to_vec();
        altered[7] ^= 1;
        let resp = phone
            .patch(
                &location,
                100_000,
                &altered,
                Some(checksum(&data[100_000..200_000])),
            )
            .await;
        assert_eq!(
            problem_type(resp, 460).await,
            "upload-checksum-mismatch",
            "{}",
            b.label
        );
        assert_eq!(phone.offset(&location).await, 100_000);

        // The discarded chunk left nothing behind: the blob still completes correctly.
        phone.upload(&location, &data, 64 << 10).await;
        assert_eq!(stored(&server, &data).await.as_deref(), Some(&data[..]));
    }
}

/// `Upload-Checksum: sha1 <base64>` of a chunk, as stock tus clients send it.
fn sha1_checksum(chunk: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, chunk);
    format!("sha1 {}", B64.encode(d.as_ref()))
}

#[tokio::test]
async fn sha1_chunk_checksums_are_checked_like_sha256_ones() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(14, 300_000);
        let (location, _) = phone.create_ok(&data).await;
        // The first chunk starts the blob: SHA-1 still gets a hash of its own.
        let first = &data[..100_000];
        let resp = phone
            .patch(&location, 0, first, Some(sha1_checksum(first)))
            .await;
        assert_eq!(resp.status(), 204, "{}", b.label);

        // Threat: a network attacker altering a chunk in flight, under a SHA-1 checksum.
        let mut altered = data[100_000..200_000].to_vec();
        altered[3] ^= 1;
        let resp = phone
            .patch(
                &location,
                100_000,
                &altered,
                Some(sha1_checksum(&data[100_000..200_000])),
            )
            .await;
        assert_eq!(
            problem_type(resp, 460).await,
            "upload-checksum-mismatch",
            "{}",
            b.label
        );
        assert_eq!(phone.offset(&location).await, 100_000);
        // Threat: anyone sending bad input — a SHA-256-sized digest under the sha1 name.
        let resp = phone
            .patch(
                &location,
                100_000,
                &data[100_000..200_000],
                Some(format!("sha1 {}", B64.encode([0u8; 32]))),
            )
            .await;
        assert_eq!(problem_type(resp, 400).await, "upload-checksum-invalid");

        for (from, to) in [(100_000, 200_000), (200_000, 300_000)] {
            let piece = &data[from..to];
            let resp = phone
                .patch(&location, from as u64, piece, Some(sha1_checksum(piece)))
                .await;
            assert_eq!(resp.status(), 204, "{}", b.label);
        }
        // The blob's address is still its SHA-256: it landed there, whole.
        assert_eq!(stored(&server, &data).await.as_deref(), Some(&data[..]));
    }
}

#[tokio::test]
async fn a_blob_that_does_not_hash_to_its_address_is_discarded() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let announced = blob(5, 150_000);
        let (location, _) = phone.create_ok(&announced).await;

        // Threat: anyone sending bad input — bytes that are not the blob they claim to be
        // (each chunk with a correct checksum of its own).
        let other = blob(6, 150_000);
        let resp = phone
            .patch(
                &location,
                0,
                &other[..100_000],
                Some(checksum(&other[..100_000])),
            )
            .await;
        assert_eq!(resp.status(), 204);
        let resp = phone
            .patch(
                &location,
                100_000,
                &other[100_000..],
                Some(checksum(&other[100_000..])),
            )
            .await;
        assert_eq!(
            problem_type(resp, 422).await,
            "upload-digest-mismatch",
            "{}",
            b.label
        );

        assert!(stored(&server, &announced).await.is_none());
        assert!(stored(&server, &other).await.is_none());
        assert_eq!(partial_files(&server), 0);
        assert_eq!(phone.head(&location).await.status(), 404);
        // Starting again gets a new upload.
        let (again, offset) = phone.create_ok(&announced).await;
        assert_ne!(again, location);
        assert_eq!(offset, 0);
    }
}

#[tokio::test]
async fn two_devices_sending_the_same_blob_at_once_store_it_once() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let lead = Tus::enrol(&server, demo.code(0)).await;
        let partner = Tus::enrol(&server, demo.code(1)).await;
        let data = blob(7, 2 << 20);
        let (l1, _) = lead.create_ok(&data).await;
        let (l2, _) = partner.create_ok(&data).await;
        // Each device has an upload of its own (docs/decisions.md): neither can write into
        // the other's; whichever finishes first installs the blob.
        assert_ne!(l1, l2, "never another device's upload");
        let (again, _) = lead.create_ok(&data).await;
        assert_eq!(again, l1, "a device resumes its own upload");

        let (c1, c2) = tokio::join!(
            lead.upload(&l1, &data, 64 << 10),
            partner.upload(&l2, &data, 64 << 10)
        );
        eprintln!("{}: conflicts met: lead {c1}, partner {c2}", b.label);
        assert_eq!(lead.offset(&l1).await, data.len() as u64);
        assert_eq!(partner.offset(&l2).await, data.len() as u64);
        assert_eq!(
            stored(&server, &data).await.as_deref(),
            Some(&data[..]),
            "{}",
            b.label
        );
        assert_eq!(partial_files(&server), 0);
        let blobs_dir = server.state.blobs.path(&sha256(&data));
        let siblings = std::fs::read_dir(blobs_dir.parent().unwrap())
            .unwrap()
            .count();
        assert_eq!(siblings, 1, "one stored blob");
    }
}

#[tokio::test]
async fn a_blob_stored_already_is_reported_complete_at_once() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(8, 70_000);
        let (blobs, bytes) = (server.state.blobs.clone(), data.clone());
        tokio::task::spawn_blocking(move || blobs.put_bytes(&bytes).unwrap())
            .await
            .unwrap();
        let (location, offset) = phone.create_ok(&data).await;
        assert_eq!(offset, data.len() as u64, "{}", b.label);
        assert_eq!(phone.offset(&location).await, data.len() as u64);
        // A client that sends the last offset anyway is simply done.
        let resp = phone.patch(&location, data.len() as u64, &[], None).await;
        assert_eq!(resp.status(), 204);

        // The empty blob needs no PATCH at all.
        let (_, offset) = phone.create_ok(&[]).await;
        assert_eq!(offset, 0);
        assert!(stored(&server, &[]).await.is_some());

        // Threat: anyone sending bad input — a length that contradicts the stored blob.
        let resp = phone
            .req(Method::POST, "/v1/uploads")
            .header("Upload-Length", "5")
            .header("Upload-Metadata", metadata(&sha256(&data).to_hex()))
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(resp, 422).await, "upload-length-mismatch");
    }
}

#[tokio::test]
async fn termination_removes_the_upload_and_its_partial_file() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let other = Tus::enrol(&server, demo.code(1)).await;
        let data = blob(9, 100_000);
        let (location, _) = phone.create_ok(&data).await;
        assert_eq!(
            phone
                .patch(&location, 0, &data[..40_000], None)
                .await
                .status(),
            204
        );
        assert_eq!(partial_files(&server), 1);

        // Threat: a user without need — another agent's phone cancelling this transfer:
        // the same 404 as an upload that does not exist, and the upload stays.
        let resp = other.req(Method::DELETE, &location).send().await.unwrap();
        assert_eq!(problem_type(resp, 404).await, "not-found", "{}", b.label);
        assert_eq!(phone.offset(&location).await, 40_000);
        assert_eq!(partial_files(&server), 1);

        let resp = phone.req(Method::DELETE, &location).send().await.unwrap();
        assert_eq!(resp.status(), 204, "{}", b.label);
        assert_eq!(phone.head(&location).await.status(), 404);
        assert_eq!(partial_files(&server), 0);
        let resp = phone.patch(&location, 40_000, &data[40_000..], None).await;
        assert_eq!(problem_type(resp, 404).await, "not-found");
    }
}

#[tokio::test]
async fn uploads_refuse_missing_credentials_and_malformed_requests() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        let data = blob(10, 1000);
        let (location, _) = phone.create_ok(&data).await;

        // Threat: anyone on the network without an enrolled phone filling the disk.
        let anonymous = server
            .http
            .post(server.url("/v1/uploads"))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", "1000")
            .header("Upload-Metadata", metadata(&sha256(&data).to_hex()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem_type(anonymous, 401).await,
            "unauthorized",
            "{}",
            b.label
        );
        let forged = Tus {
            server: &server,
            token: "tdv_forged".into(),
        };
        // HEAD answers carry no body: the status says it.
        assert_eq!(forged.head(&location).await.status(), 401);
        // A console session is not a device.
        let session = server.login("manager", demo.password("manager")).await;
        let console = Tus {
            server: &server,
            token: session,
        };
        assert_eq!(
            problem_type(console.create(&data).await, 401).await,
            "unauthorized"
        );

        // Threat: a thief with a lost phone — a revoked device uploads nothing.
        let thief = Tus::enrol(&server, demo.code(2)).await;
        let device: Value = server
            .http
            .get(server.url("/v1/device"))
            .bearer_auth(&thief.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let admin = server.login("admin", demo.password("admin")).await;
        let revoked = server
            .http
            .post(server.url(&format!(
                "/v1/devices/{}/revoke",
                device["device_id"].as_str().unwrap()
            )))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"reason": "lost"}))
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        assert_eq!(
            problem_type(thief.create(&data).await, 401).await,
            "device-revoked"
        );

        // Threat: anyone sending bad input.
        let no_version = server
            .http
            .head(server.url(&location))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        assert_eq!(no_version.status(), 412);
        assert_eq!(no_version.headers()["tus-version"], "1.0.0");
        let too_big = phone
            .req(Method::POST, "/v1/uploads")
            .header("Upload-Length", (65u64 << 20).to_string())
            .header("Upload-Metadata", metadata(&sha256(&data).to_hex()))
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(too_big, 413).await, "upload-too-large");
        for (length, meta, kind) in [
            (
                None,
                Some(metadata(&sha256(&data).to_hex())),
                "upload-length-required",
            ),
            (
                Some("-3"),
                Some(metadata(&sha256(&data).to_hex())),
                "upload-header-invalid",
            ),
            (Some("1000"), None, "upload-metadata-invalid"),
            (
                Some("1000"),
                Some(format!("sha256 {}", B64.encode("not-a-digest"))),
                "upload-metadata-invalid",
            ),
        ] {
            let mut req = phone.req(Method::POST, "/v1/uploads");
            if let Some(l) = length {
                req = req.header("Upload-Length", l);
            }
            if let Some(m) = meta {
                req = req.header("Upload-Metadata", m);
            }
            assert_eq!(problem_type(req.send().await.unwrap(), 400).await, kind);
        }
        let wrong_type = phone
            .req(Method::PATCH, &location)
            .header("Content-Type", "application/octet-stream")
            .header("Upload-Offset", "0")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(wrong_type, 415).await, "upload-content-type");
        let past_the_end = phone.patch(&location, 0, &blob(11, 1001), None).await;
        assert_eq!(
            problem_type(past_the_end, 413).await,
            "upload-exceeds-length"
        );
        let md5 = phone
            .patch(
                &location,
                0,
                &data,
                Some(format!("md5 {}", B64.encode([0u8; 16]))),
            )
            .await;
        assert_eq!(problem_type(md5, 400).await, "upload-checksum-unsupported");
        assert_eq!(phone.offset(&location).await, 0, "nothing stored half-way");
    }
}

#[tokio::test]
async fn an_unknown_upload_is_404() {
    for b in common::backends().await {
        let (server, demo) = start(&b).await;
        let phone = Tus::enrol(&server, demo.code(0)).await;
        // Threat: anyone sending bad input — guessed or garbage ids find nothing.
        for path in [
            format!("/v1/uploads/{}", uuid::Uuid::now_v7()),
            "/v1/uploads/not-an-id".to_owned(),
        ] {
            assert_eq!(phone.head(&path).await.status(), 404, "{}", b.label);
            let resp = phone.patch(&path, 0, b"x", None).await;
            assert_eq!(problem_type(resp, 404).await, "not-found");
            let resp = phone.req(Method::DELETE, &path).send().await.unwrap();
            assert_eq!(problem_type(resp, 404).await, "not-found");
        }
    }
}
