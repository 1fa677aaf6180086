//! Bad input of every kind against every JSON route: malformed JSON, wrong content types,
//! oversized bodies, unknown fields, wrong types, truncated bodies. Each gets a clear 4xx
//! problem, nothing is stored half-way, and the server keeps serving.
//!
//! Threat: anyone sending bad input (THREATS.md).

mod common;

use common::{TestServer, seed_demo};
use reqwest::Method;
use serde_json::{Value, json};

/// A JSON route, the caller it needs and a valid-looking body to spoil.
struct Target {
    method: Method,
    path: String,
    token: Option<String>,
    good: Value,
}

/// The spoiled variants of a body: (what, content type, bytes, expected status).
fn spoiled(good: &Value, limit: usize) -> Vec<(&'static str, &'static str, Vec<u8>, u16)> {
    let text = good.to_string();
    let mut unknown = good.clone();
    if let Some(obj) = unknown.as_object_mut() {
        obj.insert("injected".into(), json!(true));
    }
    let mut wrong_type = good.clone();
    if let Some((_, v)) = wrong_type.as_object_mut().and_then(|o| o.iter_mut().next()) {
        *v = json!([1, 2, 3]);
    }
    vec![
        (
            "malformed JSON",
            "application/json",
            b"{\"a\": ".to_vec(),
            400,
        ),
        (
            "not an object",
            "application/json",
            b"[1,2,3]".to_vec(),
            400,
        ),
        ("empty body", "application/json", Vec::new(), 400),
        (
            "wrong content type",
            "text/plain",
            text.clone().into_bytes(),
            400,
        ),
        ("no content type", "", text.clone().into_bytes(), 400),
        (
            "unknown field",
            "application/json",
            unknown.to_string().into_bytes(),
            400,
        ),
        (
            "wrong field type",
            "application/json",
            wrong_type.to_string().into_bytes(),
            400,
        ),
        (
            "truncated",
            "application/json",
            text.as_bytes()[..text.len() / 2].to_vec(),
            400,
        ),
        (
            "invalid UTF-8",
            "application/json",
            b"{\"code\": \"\xff\xfe\"}".to_vec(),
            400,
        ),
        (
            "oversized",
            "application/json",
            format!("{{\"pad\": \"{}\"}}", "x".repeat(limit + 1)).into_bytes(),
            413,
        ),
        (
            "deeply nested",
            "application/json",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            400,
        ),
    ]
}

#[tokio::test]
async fn every_json_route_refuses_bad_bodies_cleanly_and_stores_nothing() {
    for backend in common::backends().await {
        let state = backend.state().await;
        let limit = state.config.body_limit_bytes;
        let server = TestServer::start(state).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let admin = server.login("admin", demo.password("admin")).await;
        let manager = server.login("manager", demo.password("manager")).await;
        let resp = server
            .http
            .post(server.url("/v1/visit-requests"))
            .bearer_auth(&manager)
            .json(&json!({"case_id": demo.seed.cases[0].id.to_string(),
                          "wanted_from_ms": tandem_server::clock::system_now_ms(),
                          "wanted_until_ms": tandem_server::clock::system_now_ms() + 3_600_000,
                          "purpose": "外访"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let request = resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let targets = [
            Target {
                method: Method::POST,
                path: "/v1/login".into(),
                token: None,
                good: json!({"login": "admin", "password": "x"}),
            },
            Target {
                method: Method::POST,
                path: "/v1/enroll".into(),
                token: None,
                good: json!({"code": demo.code(1), "public_key": {"alg": "ed25519", "key": ""},
                             "proof": {"kid": "00", "alg": "ed25519", "sig": ""}}),
            },
            Target {
                method: Method::POST,
                path: format!("/v1/devices/{}/revoke", phone.enrollment.device_id),
                token: Some(admin.clone()),
                good: json!({"reason": "lost"}),
            },
            Target {
                method: Method::POST,
                path: "/v1/visit-requests".into(),
                token: Some(manager.clone()),
                good: json!({"case_id": demo.seed.cases[0].id.to_string(),
                             "wanted_from_ms": 1, "wanted_until_ms": 2, "purpose": "x"}),
            },
            Target {
                method: Method::POST,
                path: format!("/v1/visit-requests/{request}/approve"),
                token: Some(manager.clone()),
                good: json!({"team": [], "valid_from_ms": 1, "valid_until_ms": 2,
                             "letter_number": "x", "letter_valid_until_ms": 3}),
            },
            Target {
                method: Method::POST,
                path: format!("/v1/visit-requests/{request}/reject"),
                token: Some(manager.clone()),
                good: json!({"reason": "x"}),
            },
            Target {
                method: Method::POST,
                path: format!("/v1/devices/{}/serial-ranges", phone.enrollment.device_id),
                token: Some(manager.clone()),
                good: json!({"count": 5}),
            },
            Target {
                method: Method::PUT,
                path: format!("/v1/banks/{}/policy", demo.bank_id()),
                token: Some(admin.clone()),
                good: serde_json::to_value(tandem_core::model::Policy::defaults(demo.bank_id()))
                    .unwrap(),
            },
        ];
        let before = server.state.db.counts().await.unwrap();
        let mut wrong = Vec::new();
        for t in &targets {
            for (what, content_type, bytes, expected) in spoiled(&t.good, limit) {
                let mut req = server
                    .http
                    .request(t.method.clone(), server.url(&t.path))
                    .body(bytes);
                if !content_type.is_empty() {
                    req = req.header("content-type", content_type);
                }
                if let Some(token) = &t.token {
                    req = req.bearer_auth(token);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let is_problem = resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/problem+json");
                if status != expected || !is_problem {
                    wrong.push(format!(
                        "{} {}: {what}: {status} (problem+json: {is_problem}), expected {expected}",
                        t.method, t.path
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}:\n{}", backend.label, wrong.join("\n"));
        // Nothing stored: the device is not revoked, no session or device was added.
        assert_eq!(
            server.state.db.counts().await.unwrap(),
            before,
            "{}",
            backend.label
        );
        let me = server
            .http
            .get(server.url("/v1/device"))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "the device was not revoked by a bad body");
        let health = server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "still serving");
        server.state.db.close().await;
    }
}
