//! The HTTP app without a socket (`oneshot`), on every backend.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tower::ServiceExt as _;

async fn send(state: &tandem_server::AppState, req: Request<Body>) -> Response {
    tandem_server::app(state.clone())
        .oneshot(req)
        .await
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

async fn json(resp: Response) -> Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Checks a problem+json answer and returns its `type`.
async fn problem(resp: Response, status: StatusCode) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = json(resp).await;
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string() && body["detail"].is_string());
    body["type"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn healthz_answers_ok_with_the_backend() {
    for b in common::backends().await {
        let state = b.state().await;
        let resp = send(&state, get("/healthz")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", b.label);
        assert_eq!(json(resp).await["database"], b.label);
        state.db.close().await;
    }
}

#[tokio::test]
async fn healthz_reports_a_closed_database_as_unavailable() {
    for b in common::backends().await {
        let state = b.state().await;
        state.db.close().await;
        let t = problem(
            send(&state, get("/healthz")).await,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
        assert!(t.ends_with("/unavailable"), "{}", b.label);
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_problem_404() {
    for b in common::backends().await {
        let state = b.state().await;
        let t = problem(
            send(&state, get("/v1/nothing-here")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(t, "https://tandem.example/problems/not-found");
        let t = problem(
            send(&state, get("/v1/login")).await,
            StatusCode::METHOD_NOT_ALLOWED,
        )
        .await;
        assert!(t.ends_with("/method-not-allowed"));
        state.db.close().await;
    }
}

#[tokio::test]
async fn malformed_bodies_are_problem_400s_that_do_not_echo_the_body() {
    for b in common::backends().await {
        let state = b.state().await;
        let resp = send(&state, post_json("/v1/login", "{not json")).await;
        assert!(
            problem(resp, StatusCode::BAD_REQUEST)
                .await
                .ends_with("/malformed-request")
        );

        let resp = send(
            &state,
            post_json("/v1/login", r#"{"login":"a","password":12345678}"#),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = json(resp).await;
        assert!(
            !body["detail"].as_str().unwrap().contains("12345678"),
            "{}",
            b.label
        );

        let resp = send(
            &state,
            Request::post("/v1/login").body(Body::from("{}")).unwrap(),
        )
        .await;
        assert_eq!(
            problem(resp, StatusCode::BAD_REQUEST).await,
            "https://tandem.example/problems/malformed-request"
        );
        state.db.close().await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_problem_413() {
    for b in common::backends().await {
        let state = b.state().await;
        let big = format!(r#"{{"login":"{}","password":"x"}}"#, "a".repeat(100 * 1024));
        let t = problem(
            send(&state, post_json("/v1/login", big)).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert!(t.ends_with("/payload-too-large"), "{}", b.label);
        state.db.close().await;
    }
}

#[tokio::test]
async fn demo_users_sign_in_with_their_printed_password_and_nothing_else() {
    for b in common::backends().await {
        let state = b.state().await;
        let creds =
            tandem_server::demo::seed(state.db.as_ref(), tandem_server::clock::system_now_ms())
                .await
                .unwrap()
                .unwrap();
        let (login, role, password) = creds.users[0].clone();
        let ok = send(
            &state,
            post_json(
                "/v1/login",
                serde_json::json!({"login": login, "password": password}).to_string(),
            ),
        )
        .await;
        assert_eq!(ok.status(), StatusCode::OK, "{}", b.label);
        let body = json(ok).await;
        assert_eq!(body["role"], role.as_str());
        assert_eq!(body["bank_ids"].as_array().unwrap().len(), 1);

        for (l, p) in [
            (login.as_str(), "wrong-password"),
            ("nobody", password.as_str()),
            ("agent-a001", ""),
        ] {
            let resp = send(
                &state,
                post_json(
                    "/v1/login",
                    serde_json::json!({"login": l, "password": p}).to_string(),
                ),
            )
            .await;
            assert!(
                problem(resp, StatusCode::UNAUTHORIZED)
                    .await
                    .ends_with("/unauthorized"),
                "{}",
                b.label
            );
        }
        state.db.close().await;
    }
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let b = common::sqlite();
    let state = b.state().await;
    let resp = send(&state, get("/openapi.json")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc = json(resp).await;
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/server-key",
        "/v1/login",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /openapi.json");
    }
    assert!(doc["paths"]["/v1/login"]["post"].is_object());
}

#[tokio::test]
async fn every_parameter_is_declared_where_it_is_sent() {
    let b = common::sqlite();
    let state = b.state().await;
    let doc = json(send(&state, get("/openapi.json")).await).await;
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let place = p["in"].as_str().unwrap();
                // A path parameter is one the template names; every other is a query or a
                // header: a client that trusts the document sends it where it belongs.
                let templated = path.contains(&format!("{{{name}}}"));
                assert_eq!(
                    place == "path",
                    templated,
                    "{method} {path}: {name} declared in {place}"
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 20, "parameters were read ({seen})");
    let inclusion: Vec<&str> = doc["paths"]["/v1/log/inclusion"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["in"].as_str().unwrap())
        .collect();
    assert_eq!(inclusion, ["query"; 3]);
}

#[tokio::test]
async fn the_server_key_is_the_state_signer() {
    use base64::Engine as _;
    use tandem_core::crypto::Signer as _;
    let b = common::sqlite();
    let state = b.state().await;
    let body = json(send(&state, get("/v1/server-key")).await).await;
    let public = state.signer.public_key();
    assert_eq!(body["alg"], "ed25519");
    assert_eq!(body["kid"], public.kid().to_string());
    let key = base64::engine::general_purpose::STANDARD
        .decode(body["key"].as_str().unwrap())
        .unwrap();
    assert_eq!(key, public.key);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let b = common::sqlite();
    let state = b.state().await;
    send(&state, get("/healthz")).await;
    send(&state, get("/healthz")).await;
    send(&state, get("/v1/case/secret-path")).await;
    let resp = send(&state, get("/metrics")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.contains(
            r#"tandem_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("secret-path"));
    assert!(text.contains(
        r#"tandem_http_request_duration_seconds_count{method="GET",route="/healthz"} 2"#
    ));
}
