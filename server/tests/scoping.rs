//! Issue 11 §2, §3: one bank's devices and users never reach another bank's evidence, log
//! entries or uploads, and a log size no database can hold is a 4xx, not an outage. Each
//! test reproduces a finding against a real server on 127.0.0.1, on every backend: the
//! request gets its 4xx, nothing is written, and the server keeps answering.

mod common;
mod ledger_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, problem, seed_demo};
use ledger_support::{Phone, Seeded, Upload, fresh, sample_position, store_blobs, variant};
use reqwest::Method;
use serde_json::Value;
use tandem_core::bundle::testing::SampleBundle;
use tandem_core::crypto::{SignatureAlgorithm, SoftwareSigner, sha256};

/// A server whose key signed the sample visits of two banks, A and B, each with its own
/// approved visit, team phones and legal user (the sample's organisation, seeded twice).
struct TwoBanks {
    _backend: common::TestBackend,
    server: TestServer,
    a: SampleBundle,
    a_org: Seeded,
    b: SampleBundle,
    b_org: Seeded,
}

/// The server's key and a copy of it for the samples (signers are not Clone).
fn server_keys() -> (SoftwareSigner, SoftwareSigner, SoftwareSigner) {
    let alg = SignatureAlgorithm::Ed25519;
    let (key, pkcs8) = SoftwareSigner::generate(alg).unwrap();
    (
        key,
        SoftwareSigner::from_pkcs8(alg, &pkcs8).unwrap(),
        SoftwareSigner::from_pkcs8(alg, &pkcs8).unwrap(),
    )
}

async fn two_banks(backend: common::TestBackend) -> TwoBanks {
    let (key, for_a, for_b) = server_keys();
    let state = backend.state_with(key).await;
    let a = SampleBundle::with_server(for_a).unwrap();
    let b = SampleBundle::with_server(for_b).unwrap();
    let a_org = ledger_support::seed_sample(state.db.as_ref(), &a, sample_position()).await;
    let b_org = ledger_support::seed_sample(state.db.as_ref(), &b, sample_position()).await;
    store_blobs(&state.blobs, &a.blobs).await;
    store_blobs(&state.blobs, &b.blobs).await;
    let server = TestServer::start(state).await;
    TwoBanks {
        _backend: backend,
        server,
        a,
        a_org,
        b,
        b_org,
    }
}

impl TwoBanks {
    fn phone<'a>(&'a self, token: &'a str) -> Phone<'a> {
        Phone {
            base: &self.server.base,
            http: &self.server.http,
            token,
        }
    }

    /// Bank A's bundle, sent and committed by its lead phone (accepted).
    async fn committed_a(&mut self) -> Upload {
        let upload = fresh(&mut self.a);
        let lead = self.phone(&self.a_org.lead_token);
        assert_eq!(lead.put(&upload).await.0, 201);
        let (status, _, body) = lead.commit(&upload).await;
        assert_eq!(status, 200, "{body}");
        upload
    }

    async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.server
            .http
            .get(self.server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn still_answering(&self) {
        let resp = self
            .server
            .http
            .get(self.server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn a_checkpoint_size_beyond_what_the_database_holds_is_404_not_an_outage() {
    for backend in common::backends().await {
        let label = backend.label;
        let mut t = two_banks(backend).await;
        t.committed_a().await;
        let token = t.a_org.lead_token.clone();
        // Anyone sending bad input: a size past i64 used to reach the database as a bind
        // error and answer 503 "database unavailable".
        for size in ["9223372036854775808", "18446744073709551615", "2"] {
            let resp = t.get(&token, &format!("/v1/log/checkpoints/{size}")).await;
            let (kind, _) = problem(resp, 404).await;
            assert_eq!(kind, "log-no-checkpoint", "{label}: {size}");
        }
        // The same sizes in the proofs are out of the log's range, not an outage.
        for path in [
            "/v1/log/inclusion?index=9223372036854775808&tree_size=1",
            "/v1/log/inclusion?index=0&tree_size=9223372036854775808",
            "/v1/log/consistency?from=1&to=18446744073709551615",
        ] {
            let resp = t.get(&token, path).await;
            assert!(
                resp.status().is_client_error(),
                "{label}: {path}: {}",
                resp.status()
            );
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
        }
        let resp = t.get(&token, "/v1/log/checkpoints/1").await;
        assert_eq!(resp.status(), 200, "{label}");
        t.still_answering().await;
    }
}

#[tokio::test]
async fn inclusion_by_bundle_id_answers_only_for_the_callers_bank() {
    for backend in common::backends().await {
        let label = backend.label;
        let mut t = two_banks(backend).await;
        let upload = t.committed_a().await;
        let by_id = format!("/v1/log/inclusion?bundle_id={}", upload.id);
        // Bank A's own phones and legal user get the proof.
        for token in [
            &t.a_org.lead_token,
            &t.a_org.partner_token,
            &t.a_org.legal_token,
        ] {
            let resp = t.get(token, &by_id).await;
            assert_eq!(resp.status(), 200, "{label}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["manifest_digest"], upload.digest().to_hex());
        }
        // A user of another bank (its phone or its legal user) gets exactly the answer of
        // an id never used, so it cannot learn that bank A's bundle exists.
        let unknown = format!(
            "/v1/log/inclusion?bundle_id={}",
            tandem_core::model::BundleId::new()
        );
        let (_, never_used) = problem(t.get(&t.b_org.lead_token, &unknown).await, 404).await;
        for token in [&t.b_org.lead_token, &t.b_org.legal_token] {
            let (kind, body) = problem(t.get(token, &by_id).await, 404).await;
            assert_eq!(kind, "not-found", "{label}");
            assert_eq!(body, never_used, "{label}");
        }
        // By index the log stays open to every known caller: an index names no bundle.
        let resp = t
            .get(&t.b_org.lead_token, "/v1/log/inclusion?index=0&tree_size=1")
            .await;
        assert_eq!(resp.status(), 200, "{label}");
        t.still_answering().await;
    }
}

#[tokio::test]
async fn a_phone_of_another_bank_cannot_put_or_commit_under_a_bank_a_bundle_id() {
    for backend in common::backends().await {
        let label = backend.label;
        let mut t = two_banks(backend).await;
        let a_bundle = t.committed_a().await;
        let a_id = a_bundle.id;
        let receipt_before = t.phone(&t.a_org.lead_token).commit(&a_bundle).await.1;

        // A user of another bank: bank B's lead phone seals its own, approved visit under
        // bank A's bundle id. It used to get 409 `bundle-equivocation` and leave an
        // equivocation flag on bank A's accepted bundle.
        let forged = variant(&mut t.b, |m| m.bundle_id = a_id);
        assert_eq!(forged.id, a_id);
        let a_next = fresh(&mut t.a);
        let unapproved = variant(&mut t.b, |m| {
            m.visit.visit_id = tandem_core::model::VisitId::new();
        });
        let b_lead = t.phone(&t.b_org.lead_token);
        let resp = t
            .server
            .http
            .put(t.server.url(&format!("/v1/bundles/{a_id}")))
            .bearer_auth(&t.b_org.lead_token)
            .json(&forged.put_body())
            .send()
            .await
            .unwrap();
        let (kind, _) = problem(resp, 404).await;
        assert_eq!(kind, "not-found", "{label}");
        // Commit is scoped the same way, whichever digest it names.
        for claim in [&forged, &a_bundle] {
            let (status, _, body) = b_lead.commit(claim).await;
            assert_eq!(
                (status, body["type"].as_str()),
                (404, Some("https://tandem.example/problems/not-found")),
                "{label}: {body}"
            );
        }
        let flags = t.server.state.db.flags(a_id).await.unwrap();
        assert!(
            flags.is_empty(),
            "{label}: no flag on bank A's bundle: {flags:?}"
        );
        let receipt_after = t.phone(&t.a_org.lead_token).commit(&a_bundle).await.1;
        assert_eq!(
            receipt_after, receipt_before,
            "{label}: bank A's bundle untouched"
        );

        // Nor may it file bank A's sealed visit under a new id: the server approved that
        // visit for bank A's team only. Nothing is stored, so the id stays free.
        let (status, body) = b_lead.put(&a_next).await;
        assert_eq!(status, 404, "{label}: {body}");
        assert!(t.server.state.db.bundle(a_next.id).await.unwrap().is_none());
        let (status, _) = t.phone(&t.a_org.lead_token).put(&a_next).await;
        assert_eq!(status, 201, "{label}: bank A's phone still files it");

        // A phone's own bank but a visit the server never approved: 404 as well.
        let (status, _) = b_lead.put(&unapproved).await;
        assert_eq!(status, 404, "{label}");
        assert!(
            t.server
                .state
                .db
                .bundle(unapproved.id)
                .await
                .unwrap()
                .is_none()
        );
        t.still_answering().await;
    }
}

/// A tus request of one device.
fn tus(server: &TestServer, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    server
        .http
        .request(method, server.url(path))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
}

fn create(server: &TestServer, token: &str, blob: &[u8]) -> reqwest::RequestBuilder {
    let hex = sha256(blob).to_hex();
    tus(server, token, Method::POST, "/v1/uploads")
        .header("Upload-Length", blob.len().to_string())
        .header("Upload-Metadata", format!("sha256 {}", B64.encode(hex)))
}

fn patch(
    server: &TestServer,
    token: &str,
    path: &str,
    offset: usize,
    bytes: &[u8],
) -> reqwest::RequestBuilder {
    tus(server, token, Method::PATCH, path)
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .body(bytes.to_vec())
}

fn partial_len(server: &TestServer, location: &str) -> u64 {
    let id: uuid::Uuid = location.rsplit('/').next().unwrap().parse().unwrap();
    tandem_server::uploads::received_len(&server.state.blobs.tmp_dir(), id).unwrap()
}

#[tokio::test]
async fn an_upload_belongs_to_the_device_that_created_it() {
    for backend in common::backends().await {
        let label = backend.label;
        let server = TestServer::start(backend.state().await).await;
        let a = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let b = seed_demo(server.state.db.as_ref(), "other-bank").await;
        let owner = server.enroll(a.code(0)).await.1.token;
        let same_bank = server.enroll(a.code(1)).await.1.token;
        let other_bank = server.enroll(b.code(0)).await.1.token;
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let resp = create(&server, &owner, &data).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let resp = patch(&server, &owner, &location, 0, &data[..80_000])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{label}");

        // A phone of the same bank without need, and a user of another bank: the owner's
        // upload is the same 404 as one that does not exist, for every method. Their bytes
        // at the right offset used to be appended (204) and make the owner's blob fail its
        // hash and be discarded.
        for intruder in [&same_bank, &other_bank] {
            let resp = tus(&server, intruder, Method::HEAD, &location)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 404, "{label}: HEAD");
            assert!(resp.headers().get("upload-offset").is_none());
            let resp = patch(&server, intruder, &location, 80_000, &[0u8; 40_000])
                .send()
                .await
                .unwrap();
            assert_eq!(problem(resp, 404).await.0, "not-found", "{label}: PATCH");
            let resp = tus(&server, intruder, Method::DELETE, &location)
                .send()
                .await
                .unwrap();
            assert_eq!(problem(resp, 404).await.0, "not-found", "{label}: DELETE");
            // Creating an upload of the same blob gives a new upload of its own, never the
            // owner's id (docs/decisions.md).
            let resp = create(&server, intruder, &data).send().await.unwrap();
            assert_eq!(resp.status(), 201);
            assert_ne!(resp.headers()["location"].to_str().unwrap(), location);
            assert_eq!(resp.headers()["upload-offset"], "0");
        }
        // Nothing was written into the owner's upload.
        assert_eq!(partial_len(&server, &location), 80_000, "{label}");
        let resp = tus(&server, &owner, Method::HEAD, &location)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["upload-offset"], "80000", "{label}");

        // The owner finishes, and the blob verifies at its address.
        let resp = patch(&server, &owner, &location, 80_000, &data[80_000..])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{label}");
        let stored = common::stored_plaintext(&server.state.blobs, sha256(&data))
            .await
            .unwrap();
        assert_eq!(sha256(&stored), sha256(&data), "{label}");

        // A finished blob is still shared by content: another device creating it is told
        // it is complete at once, under an upload of its own.
        let resp = create(&server, &other_bank, &data).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(
            resp.headers()["upload-offset"],
            data.len().to_string().as_str()
        );
        assert_ne!(resp.headers()["location"].to_str().unwrap(), location);
        let resp = server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        server.state.db.close().await;
    }
}
