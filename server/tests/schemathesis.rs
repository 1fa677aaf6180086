//! The whole OpenAPI document against the real server, by Schemathesis (PyPI;
//! `scripts/install-deps` installs it): generated requests for every operation,
//! unauthenticated, as each console role and as a device, with real ids of two banks mixed
//! into the generated ones. Fails on any 5xx, any status the document does not list, any
//! answer whose body or content type breaks its schema.
//!
//! Threat: anyone sending bad input (THREATS.md) — and every client that trusts the
//! document: a phone, a bank's script, a stock tus client.

mod common;
mod ledger_support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use common::{TestServer, seed_demo};
use serde_json::{Value, json};

/// Generated cases per operation and phase: enough to walk every operation's boundaries
/// (the coverage phase adds its own edge cases), bounded so both backends run in minutes.
const MAX_EXAMPLES: u32 = 12;

/// The checks that make the run fail.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance";

/// The folder of `tandem_hooks.py` (the serializer for tus chunks).
fn hooks_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis")
}

/// Runs Schemathesis's command line through the interpreter pip installed it for, so the
/// test does not depend on where pip put its script.
const LAUNCH: &str = "import sys; from schemathesis.cli import schemathesis; \
sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())";

fn schemathesis_available() -> bool {
    Command::new("python3")
        .args(["-c", LAUNCH, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Real ids by the operation path they belong to, each a list of this bank's and another
/// bank's (or a spare's) values.
struct RealIds {
    by_path: BTreeMap<&'static str, (&'static str, Vec<String>)>,
}

impl RealIds {
    /// The Schemathesis configuration: one dictionary per operation's id parameter, used
    /// for half of the generated requests (the other half keeps generated ids).
    fn config(&self) -> String {
        let mut toml = String::new();
        writeln!(toml, "[generation]\nmax-examples = {MAX_EXAMPLES}\n").unwrap();
        for (i, (path, (param, values))) in self.by_path.iter().enumerate() {
            let values: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
            writeln!(
                toml,
                "[dictionaries.ids{i}]\nvalues = [{}]\n\n[[operations]]\ninclude-path = \"{path}\"\n\
                 parameters = {{ \"{param}\" = {{ dictionary = \"ids{i}\", probability = 0.5 }} }}\n",
                values.join(", ")
            )
            .unwrap();
        }
        toml
    }
}

/// Two banks' organisations, their phones and sessions, requests, uploads and a committed
/// bundle: (the real ids, the callers' tokens).
async fn world(
    server: &TestServer,
    sample_key: tandem_core::crypto::SoftwareSigner,
) -> (RealIds, Vec<(&'static str, Option<String>)>) {
    let db = server.state.db.as_ref();
    let a = seed_demo(db, "pujiang-cc").await;
    let b = seed_demo(db, "other-bank").await;
    let (_, device_a) = server.enroll(a.code(0)).await;
    let (_, device_a2) = server.enroll(a.code(1)).await;
    let (_, spare_a) = server.enroll(a.code(2)).await;
    let (_, device_b) = server.enroll(b.code(0)).await;
    let manager = server.login("manager", a.password("manager")).await;
    let legal = server.login("legal", a.password("legal")).await;
    let admin = server.login("admin", a.password("admin")).await;
    let mut requests = Vec::new();
    for demo in [&a, &a, &b] {
        let login = if demo.bank_id() == a.bank_id() {
            "manager".to_owned()
        } else {
            "other-bank-manager".to_owned()
        };
        let token = if login == "manager" {
            manager.clone()
        } else {
            server.login(&login, demo.password(&login)).await
        };
        let now = tandem_server::clock::system_now_ms();
        let resp = server
            .post_json(
                &token,
                "/v1/visit-requests",
                json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": now,
                       "wanted_until_ms": now + 86_400_000, "purpose": "外访"}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        requests.push(body["id"].as_str().unwrap().to_owned());
    }
    let mut uploads = Vec::new();
    for (token, text) in [(&device_a.token, "hello"), (&device_b.token, "world")] {
        use base64::Engine as _;
        let digest = tandem_core::crypto::sha256(text.as_bytes()).to_hex();
        let resp = server
            .http
            .post(server.url("/v1/uploads"))
            .bearer_auth(token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", text.len().to_string())
            .header(
                "Upload-Metadata",
                format!(
                    "sha256 {}",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let location = resp.headers()["location"].to_str().unwrap();
        uploads.push(location.rsplit('/').next().unwrap().to_owned());
    }
    // A committed bundle of a third bank (the sample visit), so the log has an entry.
    let mut sample = tandem_core::bundle::testing::SampleBundle::with_server(sample_key).unwrap();
    let seeded = ledger_support::seed_sample(db, &sample, ledger_support::sample_position()).await;
    ledger_support::store_blobs(&server.state.blobs, &sample.blobs).await;
    let upload = ledger_support::fresh(&mut sample);
    let phone = ledger_support::Phone {
        base: &server.base,
        http: &server.http,
        token: &seeded.lead_token,
    };
    assert!(phone.put(&upload).await.0 < 300);
    assert!(phone.commit(&upload).await.0 < 300);
    let bundle = upload.id.to_string();
    let visit = sample.manifest.visit.visit_id.to_string();

    let (bank_a, bank_b) = (a.bank_id().to_string(), b.bank_id().to_string());
    let banks = vec![bank_a, bank_b];
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut by_path = BTreeMap::new();
    by_path.insert(
        "/v1/agents/{id}/enrollment-codes",
        (
            "path.id",
            ids(&[&a.agent_id(3).to_string(), &b.agent_id(3).to_string()]),
        ),
    );
    for path in [
        "/v1/banks/{bank}/cases",
        "/v1/banks/{bank}/cases/import",
        "/v1/banks/{bank}/policy",
    ] {
        by_path.insert(path, ("path.bank", banks.clone()));
    }
    by_path.insert(
        "/v1/cases/{id}",
        (
            "path.id",
            ids(&[
                &a.seed.cases[0].id.to_string(),
                &b.seed.cases[0].id.to_string(),
            ]),
        ),
    );
    for path in [
        "/v1/visit-requests/{id}/approve",
        "/v1/visit-requests/{id}/reject",
    ] {
        by_path.insert(path, ("path.id", requests.clone()));
    }
    by_path.insert(
        "/v1/devices/{id}/serial-ranges",
        (
            "path.id",
            ids(&[
                &device_a.enrollment.device_id.to_string(),
                &device_b.enrollment.device_id.to_string(),
            ]),
        ),
    );
    // Only the spare phone may be revoked: the others' tokens drive the run.
    by_path.insert(
        "/v1/devices/{id}/revoke",
        ("path.id", vec![spare_a.enrollment.device_id.to_string()]),
    );
    by_path.insert("/v1/uploads/{id}", ("path.id", uploads));
    for path in [
        "/v1/bundles/{id}",
        "/v1/bundles/{id}/commit",
        "/v1/bundles/{id}/export",
    ] {
        by_path.insert(path, ("path.id", vec![bundle.clone()]));
    }
    by_path.insert("/v1/visits/{id}/bundles", ("path.id", vec![visit]));
    by_path.insert(
        "/v1/log/checkpoints/{tree_size}",
        ("path.tree_size", vec!["1".to_owned()]),
    );
    by_path.insert("/v1/log/inclusion", ("query.bundle_id", vec![bundle]));
    let callers = vec![
        ("anonymous", None),
        ("device", Some(device_a2.token)),
        ("manager", Some(manager)),
        ("legal", Some(legal)),
        ("admin", Some(admin)),
    ];
    (RealIds { by_path }, callers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_holds_for_every_caller() {
    if !schemathesis_available() {
        assert!(
            std::env::var("CI").is_err(),
            "schemathesis is not installed (scripts/install-deps installs it)"
        );
        eprintln!("schemathesis not installed: skipped (scripts/install-deps installs it)");
        return;
    }
    for backend in common::backends().await {
        let alg = tandem_core::crypto::SignatureAlgorithm::Ed25519;
        let (key, pkcs8) = tandem_core::crypto::SoftwareSigner::generate(alg).unwrap();
        let sample_key = tandem_core::crypto::SoftwareSigner::from_pkcs8(alg, &pkcs8).unwrap();
        let server = TestServer::start(backend.state_with(key).await).await;
        let (ids, callers) = world(&server, sample_key).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("schemathesis.toml");
        std::fs::write(&config, ids.config()).unwrap();
        let schema = server.url("/openapi.json");
        let mut failed = Vec::new();
        for (caller, token) in callers {
            let mut cmd = tokio::process::Command::new("python3");
            cmd.args(["-c", LAUNCH])
                .current_dir(dir.path())
                .env("PYTHONPATH", hooks_dir())
                .env("SCHEMATHESIS_HOOKS", "tandem_hooks")
                .arg("--config-file")
                .arg(&config)
                .arg("run")
                .arg(&schema)
                .args(["--checks", CHECKS])
                .args(["--phases", "examples,coverage,fuzzing"])
                .args(["--seed", "20261203"])
                // One worker: Hypothesis's lambda-source cache is not thread-safe (a
                // "recursion depth mismatch" error under two workers).
                .args(["--workers", "1"])
                .args(["--request-timeout", "20"])
                .args(["--suppress-health-check", "all"])
                .args(["--warnings", "off"])
                .arg("--no-color");
            if let Some(token) = &token {
                // Signing out would end the session the rest of the run uses.
                cmd.args(["--exclude-path", "/v1/logout"])
                    .args(["-H", &format!("Authorization: Bearer {token}")]);
            }
            let out = cmd.output().await.expect("run schemathesis");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let summary: Vec<&str> = stdout
                .lines()
                .filter(|l| l.contains("passed") || l.contains("failed"))
                .collect();
            eprintln!("{} as {caller}: {}", backend.label, summary.join(" | "));
            if !out.status.success() {
                failed.push(format!(
                    "--- {} as {caller} ---\n{stdout}\n{}",
                    backend.label,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        // The server took every request and is still answering.
        let resp = server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(failed.is_empty(), "{}", failed.join("\n"));
        server.state.db.close().await;
    }
}
