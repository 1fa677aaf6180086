//! Who may call what: every endpoint × every kind of caller × own bank or another bank,
//! each with the status it must get. One table, run on every backend over real HTTP.
//!
//! Threat: a user of another bank, or a role without need (THREATS.md). Another bank's
//! ids answer 404, exactly as ids that do not exist, never 403.

mod common;

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

/// One endpoint: method, path (with `{placeholders}` filled from the fixture), JSON body,
/// and the expected status for each caller of [`CALLERS`].
struct Row {
    method: Method,
    path: &'static str,
    body: Option<fn(&Fixture) -> Value>,
    expect: [u16; 9],
}

/// Ids of bank A's and bank B's objects, by placeholder name.
struct Fixture {
    ids: BTreeMap<&'static str, String>,
}

impl Fixture {
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
    Row {
        method: Method::POST,
        path: "/v1/devices/{spare_device_a}/revoke",
        body: Some(|_| json!({"reason": "access table"})),
        expect: [401, 401, 401, 403, 403, 200, 403, 403, 404],
    },
];

async fn fixture(server: &TestServer) -> (Fixture, BTreeMap<&'static str, Option<String>>) {
    let db = server.state.db.as_ref();
    let a = seed_demo(db, "pujiang-cc").await;
    let b = seed_demo(db, "other-bank").await;
    let (_, device_a) = server.enroll(a.code(0)).await;
    let (_, device_b) = server.enroll(b.code(0)).await;
    let (_, spare_a) = server.enroll(a.code(1)).await;
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
    ids.insert("bank_a", a.bank_id().to_string());
    ids.insert("spare_device_a", spare_a.enrollment.device_id.to_string());
    (Fixture { ids }, tokens)
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_table_says() {
    for backend in common::backends().await {
        let server = TestServer::start(backend.state().await).await;
        let (fx, tokens) = fixture(&server).await;
        let mut wrong = Vec::new();
        for row in ROWS {
            let path = fx.fill(row.path);
            for (i, caller) in CALLERS.iter().enumerate() {
                let mut req = server.http.request(row.method.clone(), server.url(&path));
                if let Some(token) = &tokens[caller] {
                    req = req.bearer_auth(token);
                }
                if let Some(body) = row.body {
                    req = req.json(&body(&fx));
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
                .any(|r| r.method == m && template_matches(r.path, path));
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
    let (a, b): (Vec<_>, Vec<_>) = (row.split('/').collect(), openapi.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.starts_with('{') && y.starts_with('{')))
}
