//! Who may call what: every endpoint × every kind of caller × own bank or another bank,
//! each with the status it must get. One table, run on every backend over real HTTP.
//!
//! Threat: a user of another bank, or a role without need (THREATS.md). Another bank's
//! ids answer 404, exactly as ids that do not exist, never 403.
//!
//! A second table, [`LEDGER_ROWS`], covers the log and ingest with the sample visit's own
//! bank (its team's phones and a legal user) beside the demo banks' devices and users: the
//! own bank gets its success status, every other bank the 404 of an unknown id.

mod common;
mod ledger_support;

use std::collections::BTreeMap;

use common::{TestServer, seed_demo};
use reqwest::Method;
use serde_json::{Value, json};

/// The callers, in the column order of [`ROWS`].
const CALLERS: [&str; 9] = [
    "anonymous",
    "device_a",
    "device_b",
    "manager_a",
    "legal_a",
    "admin_a",
    "manager_b",
    "legal_b",
    "admin_b",
];

/// The callers of [`LEDGER_ROWS`]: the sample visit's bank (lead and partner phones, a
/// legal user) and the demo banks' device and users, which serve other banks.
const LEDGER_CALLERS: [&str; 7] = [
    "anonymous",
    "sample_lead",
    "sample_partner",
    "sample_legal",
    "device_b",
    "manager_b",
    "legal_b",
];

/// One endpoint: method, path (with `{placeholders}` filled from the fixture), JSON body,
/// and the expected status for each caller of [`CALLERS`] (or [`LEDGER_CALLERS`]).
struct Row<const N: usize = 9> {
    method: Method,
    path: &'static str,
    body: Option<fn(&Fixture) -> Value>,
    expect: [u16; N],
}

/// Ids of bank A's and bank B's objects, by placeholder name.
struct Fixture {
    ids: BTreeMap<&'static str, String>,
    /// Bank A's policy as JSON.
    policy: Value,
    /// A committed sample bundle's PUT and commit bodies.
    put_body: Value,
    commit_body: Value,
}

/// One new case with a reference never used before (each call imports a new case).
fn one_case() -> Value {
    json!([{"case_ref": format!("ACL-{}", uuid::Uuid::now_v7().simple()),
            "card_number": "6222021234567890", "debtor_name": "测试",
            "id_number": "310101198001011234", "outstanding_fen": 100,
            "entrustment_start_ms": 1_796_000_000_000_i64,
            "entrustment_end_ms": 1_803_000_000_000_i64,
            "addresses": [{"text": "上海市黄浦区南京东路300号", "lat_e7": 312_380_500,
                           "lon_e7": 1_214_817_400, "datum": "gcj02"}]}])
}

impl Fixture {
    fn request_body(&self) -> Value {
        let now = tandem_server::clock::system_now_ms();
        json!({"case_id": self.ids["case_a"], "wanted_from_ms": now,
               "wanted_until_ms": now + 86_400_000, "purpose": "外访"})
    }

    fn approval_body(&self) -> Value {
        let now = tandem_server::clock::system_now_ms();
        json!({"team": [{"agent_id": self.ids["agent_a"]}, {"agent_id": self.ids["agent_a3"]}],
               "valid_from_ms": now, "valid_until_ms": now + 86_400_000,
               "letter_number": "WT-ACL", "letter_valid_until_ms": now + 30 * 86_400_000_i64})
    }

    fn fill(&self, path: &str) -> String {
        let mut out = path.to_owned();
        for (name, value) in &self.ids {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        assert!(!out.contains('{'), "unfilled placeholder in {out}");
        out
    }
}

const ROWS: &[Row] = &[
    // Operations and the server key: public.
    Row {
        method: Method::GET,
        path: "/healthz",
        body: None,
        expect: [200; 9],
    },
    Row {
        method: Method::GET,
        path: "/metrics",
        body: None,
        expect: [200; 9],
    },
    Row {
        method: Method::GET,
        path: "/openapi.json",
        body: None,
        expect: [200; 9],
    },
    Row {
        method: Method::GET,
        path: "/v1/server-key",
        body: None,
        expect: [200; 9],
    },
    // Who am I.
    Row {
        method: Method::GET,
        path: "/v1/me",
        body: None,
        expect: [401, 401, 401, 200, 200, 200, 200, 200, 200],
    },
    // A01: a password change needs a session and the current password (wrong here, so the
    // table's sessions keep theirs).
    Row {
        method: Method::POST,
        path: "/v1/password",
        body: Some(|_| {
            json!({"current_password": "not-the-password",
                   "new_password": "a-new-password-long-enough"})
        }),
        expect: [401, 401, 401, 422, 422, 422, 422, 422, 422],
    },
    Row {
        method: Method::GET,
        path: "/v1/device",
        body: None,
        expect: [401, 200, 200, 401, 401, 401, 401, 401, 401],
    },
    // Devices: admins of the device's bank only.
    Row {
        method: Method::POST,
        path: "/v1/agents/{agent_a}/enrollment-codes",
        body: None,
        expect: [401, 401, 401, 403, 403, 201, 403, 403, 404],
    },
    // Cases: console users of the bank; import by managers and admins.
    Row {
        method: Method::GET,
        path: "/v1/banks/{bank_a}/cases",
        body: None,
        expect: [401, 401, 401, 200, 200, 200, 404, 404, 404],
    },
    Row {
        method: Method::POST,
        path: "/v1/banks/{bank_a}/cases/import",
        body: Some(|_| one_case()),
        expect: [401, 401, 401, 201, 403, 201, 404, 403, 404],
    },
    Row {
        method: Method::GET,
        path: "/v1/cases/{case_a}",
        body: None,
        expect: [401, 401, 401, 200, 200, 200, 404, 404, 404],
    },
    // Policy: managers and admins read it, admins change it.
    Row {
        method: Method::GET,
        path: "/v1/banks/{bank_a}/policy",
        body: None,
        expect: [401, 401, 401, 200, 403, 200, 404, 403, 404],
    },
    Row {
        method: Method::PUT,
        path: "/v1/banks/{bank_a}/policy",
        body: Some(|fx| fx.policy.clone()),
        expect: [401, 401, 401, 403, 403, 200, 403, 403, 404],
    },
    // Visit requests: agents' phones and managers ask, managers of the bank decide.
    Row {
        method: Method::POST,
        path: "/v1/visit-requests",
        body: Some(|fx| fx.request_body()),
        expect: [401, 201, 404, 201, 403, 403, 404, 403, 403],
    },
    Row {
        method: Method::GET,
        path: "/v1/visit-requests",
        body: None,
        expect: [401, 401, 401, 200, 403, 200, 200, 403, 200],
    },
    Row {
        method: Method::POST,
        path: "/v1/visit-requests/{request_a}/approve",
        body: Some(|fx| fx.approval_body()),
        expect: [401, 401, 401, 201, 403, 403, 404, 403, 403],
    },
    Row {
        method: Method::POST,
        path: "/v1/visit-requests/{request_a2}/reject",
        body: Some(|_| json!({"reason": "access table"})),
        expect: [401, 401, 401, 200, 403, 403, 404, 403, 403],
    },
    Row {
        method: Method::POST,
        path: "/v1/devices/{device_a}/serial-ranges",
        body: Some(|_| json!({"count": 5})),
        expect: [401, 401, 401, 201, 403, 403, 404, 403, 403],
    },
    // Pull sync: enrolled phones only.
    Row {
        method: Method::GET,
        path: "/v1/sync",
        body: None,
        expect: [401, 200, 200, 401, 401, 401, 401, 401, 401],
    },
    // Bundles: only the team's own phones (see LEDGER_ROWS) may send or commit; no caller
    // of this table is on the sample visit's team, and its bank is another: 404, as if
    // the id did not exist.
    Row {
        method: Method::PUT,
        path: "/v1/bundles/{bundle}",
        body: Some(|fx| fx.put_body.clone()),
        expect: [401, 404, 404, 401, 401, 401, 401, 401, 401],
    },
    Row {
        method: Method::POST,
        path: "/v1/bundles/{bundle}/commit",
        body: Some(|fx| fx.commit_body.clone()),
        // Another bank's bundle, found by id only: 404, as if it did not exist.
        expect: [401, 404, 404, 401, 401, 401, 401, 401, 401],
    },
    // Evidence: legal staff, managers and admins of the visit's bank list a visit's
    // bundles; only legal staff and admins export one. The sample bundle belongs to a third
    // bank, so every user finds nothing (the journey test exports bank A's own evidence).
    Row {
        method: Method::GET,
        path: "/v1/visits/{visit}/bundles",
        body: None,
        expect: [401, 401, 401, 404, 404, 404, 404, 404, 404],
    },
    Row {
        method: Method::GET,
        path: "/v1/bundles/{bundle}/export",
        body: None,
        expect: [401, 401, 401, 403, 404, 404, 403, 404, 404],
    },
    // The log holds digests only: any enrolled phone or signed-in user may read it.
    Row {
        method: Method::GET,
        path: "/v1/log/checkpoint",
        body: None,
        expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
    },
    Row {
        method: Method::GET,
        path: "/v1/log/checkpoints/{tree_size}",
        body: None,
        expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
    },
    Row {
        method: Method::GET,
        path: "/v1/log/inclusion?index=0&tree_size=1",
        body: None,
        expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
    },
    // By bundle id only for the bundle's bank: the sample's bank is none of these.
    Row {
        method: Method::GET,
        path: "/v1/log/inclusion?bundle_id={bundle}",
        body: None,
        expect: [401, 404, 404, 404, 404, 404, 404, 404, 404],
    },
    Row {
        method: Method::GET,
        path: "/v1/log/consistency?from=1&to=1",
        body: None,
        expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
    },
    Row {
        method: Method::POST,
        path: "/v1/devices/{spare_device_a}/revoke",
        body: Some(|_| json!({"reason": "access table"})),
        expect: [401, 401, 401, 403, 403, 200, 403, 403, 404],
    },
];

/// The log and ingest, seen from the sample visit's bank and from the demo banks.
const LEDGER_ROWS: &[Row<7>] = &[
    // The team's phones send and commit their bundle (again: the same answer); anyone
    // else's phone gets the 404 of an unknown id, and nothing is written.
    Row {
        method: Method::PUT,
        path: "/v1/bundles/{bundle}",
        body: Some(|fx| fx.put_body.clone()),
        expect: [401, 200, 200, 401, 404, 401, 401],
    },
    Row {
        method: Method::POST,
        path: "/v1/bundles/{bundle}/commit",
        body: Some(|fx| fx.commit_body.clone()),
        expect: [401, 200, 200, 401, 404, 401, 401],
    },
    // Inclusion by bundle id: the bundle's bank only; by index: every known caller.
    Row {
        method: Method::GET,
        path: "/v1/log/inclusion?bundle_id={bundle}",
        body: None,
        expect: [401, 200, 200, 200, 404, 404, 404],
    },
    Row {
        method: Method::GET,
        path: "/v1/log/inclusion?index=0&tree_size=1",
        body: None,
        expect: [401, 200, 200, 200, 200, 200, 200],
    },
    Row {
        method: Method::GET,
        path: "/v1/log/checkpoints/{tree_size}",
        body: None,
        expect: [401, 200, 200, 200, 200, 200, 200],
    },
];

/// The tus routes need their protocol headers; each row names them.
struct TusRow {
    method: Method,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    expect: [u16; 9],
}

/// `hello`: 5 bytes, digest as tus metadata (base64 of the hex digest).
const HELLO_METADATA: &str = "sha256 \
    MmNmMjRkYmE1ZmIwYTMwZTI2ZTgzYjJhYzViOWUyOWUxYjE2MWU1YzFmYTc0MjVlNzMwNDMzNjI5MzhiOTgyNA==";

const TUS_ROWS: &[TusRow] = &[
    // Anyone may ask what the server speaks.
    TusRow {
        method: Method::OPTIONS,
        path: "/v1/uploads",
        headers: &[],
        body: b"",
        expect: [204; 9],
    },
    // Uploads are the phones', each its creator's: another phone (of another bank here)
    // gets the 404 of an unknown upload for HEAD, PATCH and DELETE. Any enrolled phone
    // may create one (of its own).
    TusRow {
        method: Method::POST,
        path: "/v1/uploads",
        headers: &[("Upload-Length", "5"), ("Upload-Metadata", HELLO_METADATA)],
        body: b"",
        expect: [401, 201, 201, 401, 401, 401, 401, 401, 401],
    },
    TusRow {
        method: Method::HEAD,
        path: "/v1/uploads/{upload_a}",
        headers: &[],
        body: b"",
        expect: [401, 200, 404, 401, 401, 401, 401, 401, 401],
    },
    TusRow {
        method: Method::PATCH,
        path: "/v1/uploads/{upload_a}",
        headers: &[
            ("Content-Type", "application/offset+octet-stream"),
            // Not where the upload stands (3): its owner gets the conflict, nobody writes.
            ("Upload-Offset", "1"),
        ],
        body: b"ello",
        expect: [401, 409, 404, 401, 401, 401, 401, 401, 401],
    },
    TusRow {
        method: Method::DELETE,
        path: "/v1/uploads/{upload_b}",
        headers: &[],
        body: b"",
        expect: [401, 404, 204, 401, 401, 401, 401, 401, 401],
    },
];

/// Starts an upload of `hello` (or `world`) as a device; returns its path's id.
async fn start_upload(server: &TestServer, token: &str, text: &str) -> String {
    let digest = tandem_core::crypto::sha256(text.as_bytes()).to_hex();
    use base64::Engine as _;
    let metadata = format!(
        "sha256 {}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    let resp = server
        .http
        .post(server.url("/v1/uploads"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", text.len().to_string())
        .header("Upload-Metadata", metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    location.rsplit('/').next().unwrap().to_owned()
}

async fn fixture(
    server: &TestServer,
    sample_key: tandem_core::crypto::SoftwareSigner,
) -> (Fixture, BTreeMap<&'static str, Option<String>>) {
    let db = server.state.db.as_ref();
    let a = seed_demo(db, "pujiang-cc").await;
    let b = seed_demo(db, "other-bank").await;
    let (_, device_a) = server.enroll(a.code(0)).await;
    let (_, device_b) = server.enroll(b.code(0)).await;
    let (_, spare_a) = server.enroll(a.code(1)).await;
    server.enroll(a.code(3)).await;
    let mut tokens = BTreeMap::new();
    tokens.insert("anonymous", None);
    tokens.insert("device_a", Some(device_a.token.clone()));
    tokens.insert("device_b", Some(device_b.token.clone()));
    for (caller, demo, login) in [
        ("manager_a", &a, "manager"),
        ("legal_a", &a, "legal"),
        ("admin_a", &a, "admin"),
        ("manager_b", &b, "other-bank-manager"),
        ("legal_b", &b, "other-bank-legal"),
        ("admin_b", &b, "other-bank-admin"),
    ] {
        tokens.insert(
            caller,
            Some(server.login(login, demo.password(login)).await),
        );
    }
    let mut ids = BTreeMap::new();
    ids.insert("agent_a", a.agent_id(0).to_string());
    ids.insert("agent_a3", a.agent_id(3).to_string());
    ids.insert("bank_a", a.bank_id().to_string());
    ids.insert("case_a", a.seed.cases[0].id.to_string());
    ids.insert("device_a", device_a.enrollment.device_id.to_string());
    // Two pending requests of bank A, one to approve and one to reject.
    let manager_a = tokens["manager_a"].clone().unwrap_or_default();
    for name in ["request_a", "request_a2"] {
        let now = tandem_server::clock::system_now_ms();
        let resp = server
            .http
            .post(server.url("/v1/visit-requests"))
            .bearer_auth(&manager_a)
            .json(
                &json!({"case_id": a.seed.cases[0].id.to_string(), "wanted_from_ms": now,
                          "wanted_until_ms": now + 86_400_000, "purpose": "外访"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        ids.insert(name, body["id"].as_str().unwrap().to_owned());
    }
    let policy = serde_json::to_value(tandem_core::model::Policy::defaults(a.bank_id())).unwrap();
    // An upload of `hello` with 3 bytes sent (by phone A), and one of `world` (by phone B).
    let upload_a = start_upload(server, &device_a.token, "hello").await;
    let resp = server
        .http
        .patch(server.url(&format!("/v1/uploads/{upload_a}")))
        .bearer_auth(&device_a.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", "0")
        .body("hel")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    ids.insert("upload_a", upload_a);
    ids.insert(
        "upload_b",
        start_upload(server, &device_b.token, "world").await,
    );
    ids.insert("spare_device_a", spare_a.enrollment.device_id.to_string());
    // A sample visit of a third bank, sent and committed by its own lead phone: the log
    // has one entry.
    let mut sample = tandem_core::bundle::testing::SampleBundle::with_server(sample_key).unwrap();
    let seeded = ledger_support::seed_sample(db, &sample, ledger_support::sample_position()).await;
    ledger_support::store_blobs(&server.state.blobs, &sample.blobs).await;
    let upload = ledger_support::fresh(&mut sample);
    for (path, body) in [
        (format!("/v1/bundles/{}", upload.id), upload.put_body()),
        (
            format!("/v1/bundles/{}/commit", upload.id),
            upload.commit_body(),
        ),
    ] {
        let put = path.ends_with(&upload.id.to_string());
        let req = if put {
            server.http.put(server.url(&path))
        } else {
            server.http.post(server.url(&path))
        };
        let resp = req
            .bearer_auth(&seeded.lead_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }
    tokens.insert("sample_lead", Some(seeded.lead_token.clone()));
    tokens.insert("sample_partner", Some(seeded.partner_token.clone()));
    tokens.insert("sample_legal", Some(seeded.legal_token.clone()));
    ids.insert("bundle", upload.id.to_string());
    ids.insert("visit", sample.manifest.visit.visit_id.to_string());
    ids.insert("tree_size", "1".to_owned());
    let fixture = Fixture {
        ids,
        policy,
        put_body: upload.put_body(),
        commit_body: upload.commit_body(),
    };
    (fixture, tokens)
}

/// Sends every row as every caller; notes each status that is not the expected one.
async fn check_rows<const N: usize>(
    server: &TestServer,
    fx: &Fixture,
    tokens: &BTreeMap<&'static str, Option<String>>,
    callers: &[&'static str; N],
    rows: &[Row<N>],
    wrong: &mut Vec<String>,
) {
    for row in rows {
        let path = fx.fill(row.path);
        for (i, caller) in callers.iter().enumerate() {
            let mut req = server.http.request(row.method.clone(), server.url(&path));
            if let Some(token) = &tokens[caller] {
                req = req.bearer_auth(token);
            }
            if let Some(body) = row.body {
                req = req.json(&body(fx));
            }
            let status = req.send().await.unwrap().status().as_u16();
            if status != row.expect[i] {
                wrong.push(format!(
                    "{} {} as {caller}: {status}, expected {}",
                    row.method, row.path, row.expect[i]
                ));
            }
        }
    }
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_table_says() {
    for backend in common::backends().await {
        // The app's key and the same key for the sample bundle (signers are not Clone).
        let alg = tandem_core::crypto::SignatureAlgorithm::Ed25519;
        let (key, pkcs8) = tandem_core::crypto::SoftwareSigner::generate(alg).unwrap();
        let sample_key = tandem_core::crypto::SoftwareSigner::from_pkcs8(alg, &pkcs8).unwrap();
        let server = TestServer::start(backend.state_with(key).await).await;
        let (fx, tokens) = fixture(&server, sample_key).await;
        let mut wrong = Vec::new();
        check_rows(&server, &fx, &tokens, &CALLERS, ROWS, &mut wrong).await;
        check_rows(
            &server,
            &fx,
            &tokens,
            &LEDGER_CALLERS,
            LEDGER_ROWS,
            &mut wrong,
        )
        .await;
        for row in TUS_ROWS {
            let path = fx.fill(row.path);
            for (i, caller) in CALLERS.iter().enumerate() {
                let mut req = server
                    .http
                    .request(row.method.clone(), server.url(&path))
                    .header("Tus-Resumable", "1.0.0")
                    .body(row.body);
                for (name, value) in row.headers {
                    req = req.header(*name, *value);
                }
                if let Some(token) = &tokens[caller] {
                    req = req.bearer_auth(token);
                }
                let status = req.send().await.unwrap().status().as_u16();
                if status != row.expect[i] {
                    wrong.push(format!(
                        "{} {} as {caller}: {status}, expected {}",
                        row.method, row.path, row.expect[i]
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}:\n{}", backend.label, wrong.join("\n"));
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn every_route_in_the_openapi_document_is_in_the_access_table() {
    let backend = common::sqlite();
    let server = TestServer::start(backend.state().await).await;
    let doc: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Routes anyone may call by design, and those whose callers the table cannot express
    // (enrollment and sign-in take credentials in the body; sign-out ends the session the
    // table runs on).
    let by_body = ["/v1/enroll", "/v1/login", "/v1/logout"];
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let covered = ROWS
                .iter()
                .map(|r| (&r.method, r.path))
                .chain(TUS_ROWS.iter().map(|r| (&r.method, r.path)))
                .any(|(method, row)| *method == m && template_matches(row, path));
            if !covered && !by_body.contains(&path.as_str()) {
                missing.push(format!("{m} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in the access table:\n{}",
        missing.join("\n")
    );
}

/// `/v1/devices/{spare_device_a}/revoke` matches `/v1/devices/{id}/revoke`.
fn template_matches(row: &str, openapi: &str) -> bool {
    let row = row.split('?').next().unwrap_or(row);
    let (a, b): (Vec<_>, Vec<_>) = (row.split('/').collect(), openapi.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.starts_with('{') && y.starts_with('{')))
}
