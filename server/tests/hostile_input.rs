//! Numbers and ids no client should send, over real HTTP on every backend: each gets a 4xx
//! problem document that names the field and never echoes the value, nothing is written,
//! and the server keeps answering. Every answer carries `nosniff` and `no-store`.
//!
//! Threat: anyone sending bad input (THREATS.md) — crash the server or corrupt its data.

mod common;

use common::{TestServer, problem, seed_demo};
use reqwest::Method;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

/// The extremes that overflowed an `i64` subtraction before (`-1` to `i64::MAX`), and
/// their mirror images.
const EXTREMES: [(i64, i64); 4] = [
    (-1, i64::MAX),
    (i64::MIN, i64::MAX),
    (i64::MAX, i64::MIN),
    (0, 1),
];

async fn pending_requests(server: &TestServer, bank: tandem_core::model::BankId) -> usize {
    server
        .state
        .db
        .visit_requests(bank, None, 1000)
        .await
        .unwrap()
        .len()
}

async fn still_serving(server: &TestServer) {
    let resp = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the server stays up");
}

#[tokio::test]
async fn times_out_of_range_in_a_visit_request_are_refused_before_any_arithmetic() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let token = server.login("manager", demo.password("manager")).await;
        let before = pending_requests(&server, demo.bank_id()).await;
        for (from, until) in EXTREMES {
            let resp = server
                .post_json(
                    &token,
                    "/v1/visit-requests",
                    json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": from,
                           "wanted_until_ms": until, "purpose": "外访"}),
                )
                .await;
            let (kind, body) = problem(resp, 422).await;
            assert_eq!(kind, "time-out-of-range", "{}: {from}..{until}", b.label);
            let detail = body["detail"].as_str().unwrap();
            assert!(detail.contains("wanted_"), "names the field: {detail}");
            assert!(!detail.contains(&i64::MAX.to_string()), "no value echoed");
        }
        assert_eq!(pending_requests(&server, demo.bank_id()).await, before);
        still_serving(&server).await;
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn times_and_amounts_out_of_range_in_an_approval_are_refused_and_nothing_is_approved() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let token = server.login("manager", demo.password("manager")).await;
        // Each team member has an enrolled phone (A02), so only the numbers can be wrong.
        server.enroll(demo.code(0)).await;
        server.enroll(demo.code(1)).await;
        let now = tandem_server::clock::system_now_ms();
        let resp = server
            .post_json(
                &token,
                "/v1/visit-requests",
                json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": now,
                       "wanted_until_ms": now + DAY_MS, "purpose": "外访"}),
            )
            .await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        let request: Value = resp.json().await.unwrap();
        let id = request["id"].as_str().unwrap().to_owned();
        let team = json!([{"agent_id": demo.agent_id(0).to_string()},
                          {"agent_id": demo.agent_id(1).to_string()}]);
        let good = json!({"team": team, "valid_from_ms": now - 60_000,
            "valid_until_ms": now + DAY_MS, "letter_number": "WT-1",
            "letter_valid_until_ms": now + 30 * DAY_MS});
        let mut bodies = Vec::new();
        for (from, until) in EXTREMES {
            let mut body = good.clone();
            body["valid_from_ms"] = json!(from);
            body["valid_until_ms"] = json!(until);
            bodies.push(("time-out-of-range", body));
        }
        let mut letter = good.clone();
        letter["letter_valid_until_ms"] = json!(i64::MAX);
        bodies.push(("time-out-of-range", letter));
        let mut appointment = good.clone();
        appointment["appointment"] = json!({"from_ms": -1, "until_ms": i64::MAX});
        bodies.push(("time-out-of-range", appointment));
        let mut cash = good.clone();
        cash["cash"] = json!({"limit_fen": i64::MAX, "currency": "CNY",
            "designated_account": "6222 0210 0012 3456 789", "methods": ["cash"]});
        bodies.push(("amount-out-of-range", cash));
        for (expected, body) in bodies {
            let resp = server
                .post_json(&token, &format!("/v1/visit-requests/{id}/approve"), body)
                .await;
            let (kind, _) = problem(resp, 422).await;
            assert_eq!(kind, expected, "{}", b.label);
        }
        // Nothing was approved: the request is still pending and a good body still works.
        let resp = server
            .post_json(&token, &format!("/v1/visit-requests/{id}/approve"), good)
            .await;
        let status = resp.status();
        assert_eq!(status, 201, "{}: {}", b.label, resp.text().await.unwrap());
        still_serving(&server).await;
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn malformed_ids_and_queries_answer_a_problem_document_without_echoing_them() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let legal = server.login("legal", demo.password("legal")).await;
        let manager = server.login("manager", demo.password("manager")).await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let device = phone.token;
        let bank = demo.bank_id();
        let bad = "not-an-id-%3Cscript%3E";
        let cases: Vec<(Method, String, &str)> = vec![
            (Method::GET, format!("/v1/visits/{bad}/bundles"), &legal),
            (Method::GET, format!("/v1/bundles/{bad}/export"), &legal),
            (Method::PUT, format!("/v1/bundles/{bad}"), &device),
            (Method::POST, format!("/v1/bundles/{bad}/commit"), &device),
            (Method::GET, format!("/v1/log/checkpoints/{bad}"), &device),
            (
                Method::GET,
                format!("/v1/log/inclusion?index={bad}&tree_size=1"),
                &device,
            ),
            (
                Method::GET,
                format!("/v1/log/consistency?from={bad}&to=2"),
                &device,
            ),
            (Method::GET, format!("/v1/sync?limit={bad}"), &device),
            (
                Method::GET,
                format!("/v1/banks/{bank}/cases?limit={bad}"),
                &manager,
            ),
            (
                Method::GET,
                format!("/v1/visit-requests?limit={bad}"),
                &manager,
            ),
        ];
        for (method, path, token) in cases {
            let mut req = server
                .http
                .request(method.clone(), server.url(&path))
                .bearer_auth(token);
            if method != Method::GET {
                req = req.json(&json!({}));
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
            assert_eq!(resp.headers()["cache-control"], "no-store");
            let status = resp.status().as_u16();
            assert!(
                status == 400 || status == 404,
                "{} {method} {path}: {status}",
                b.label
            );
            let text = {
                assert_eq!(
                    resp.headers()["content-type"],
                    "application/problem+json",
                    "{method} {path}"
                );
                resp.text().await.unwrap()
            };
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["status"], status);
            assert!(!text.contains("not-an-id"), "{path} echoed: {text}");
            assert!(!text.contains("script"), "{path} echoed: {text}");
        }
        still_serving(&server).await;
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn every_answer_says_nosniff_and_answers_with_debtor_data_are_never_stored() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let manager = server.login("manager", demo.password("manager")).await;
        let bank = demo.bank_id();
        // Threat: a thief of a shared computer, or a proxy cache between the console and the
        // server — the case list and the session token must not be kept by either.
        for (path, token) in [
            (format!("/v1/banks/{bank}/cases"), Some(&manager)),
            (
                format!("/v1/cases/{}", demo.seed.cases[0].id),
                Some(&manager),
            ),
            ("/v1/me".to_owned(), Some(&manager)),
            ("/healthz".to_owned(), None),
            ("/v1/nothing-here".to_owned(), None),
        ] {
            let mut req = server.http.get(server.url(&path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(
                resp.headers()["x-content-type-options"],
                "nosniff",
                "{path}"
            );
            assert_eq!(resp.headers()["cache-control"], "no-store", "{path}");
        }
        let resp = server
            .http
            .post(server.url("/v1/login"))
            .json(&json!({"login": "manager", "password": demo.password("manager")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn a_nul_character_in_any_text_is_refused_alike_on_both_databases() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let admin = server.login("admin", demo.password("admin")).await;
        let manager = server.login("manager", demo.password("manager")).await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let device = phone.enrollment.device_id.to_string();
        // Found by Schemathesis: PostgreSQL cannot store NUL and answered 503.
        let resp = server
            .post_json(
                &admin,
                &format!("/v1/devices/{device}/revoke"),
                json!({"reason": "lost\u{0}"}),
            )
            .await;
        let (kind, _) = problem(resp, 400).await;
        assert_eq!(kind, "text-invalid", "{}", b.label);
        let now = tandem_server::clock::system_now_ms();
        let resp = server
            .post_json(
                &manager,
                "/v1/visit-requests",
                json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": now,
                       "wanted_until_ms": now + DAY_MS, "purpose": "外访\u{0}"}),
            )
            .await;
        assert_eq!(problem(resp, 400).await.0, "text-invalid");
        // Nothing was written: the phone still syncs (not revoked).
        let resp = server
            .http
            .get(server.url("/v1/sync"))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", b.label);
        // An escaped backslash before u0000 is ordinary text.
        let resp = server
            .post_json(
                &admin,
                &format!("/v1/devices/{device}/revoke"),
                json!({"reason": "path C:\\u0000"}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", b.label);
        still_serving(&server).await;
        server.state.db.close().await;
    }
}
