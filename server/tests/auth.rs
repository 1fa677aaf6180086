//! Enrollment, device tokens, revocation and console sessions over real HTTP on 127.0.0.1,
//! on every backend. Negative tests name the threat they defend against (THREATS.md).

mod common;

use common::{TestServer, seed_demo};
use serde_json::{Value, json};
use tandem_core::crypto::{SignatureAlgorithm, SoftwareSigner};

async fn problem_type(resp: reqwest::Response, status: u16) -> String {
    common::problem(resp, status).await.0
}

#[tokio::test]
async fn a_phone_enrols_once_and_its_token_identifies_it() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (signer, enrolled) = server.enroll(demo.code(0)).await;
        assert_eq!(
            enrolled.enrollment.agent_id,
            demo.agent_id(0),
            "{}",
            b.label
        );
        assert_eq!(enrolled.bank_ids, vec![demo.bank_id().to_string()]);
        assert!(enrolled.token.starts_with("tdv_"));
        use tandem_core::crypto::Signer as _;
        assert_eq!(
            enrolled.enrollment.server_key,
            server.state.signer.public_key()
        );

        let me: Value = server
            .http
            .get(server.url("/v1/device"))
            .bearer_auth(&enrolled.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["device_id"], enrolled.enrollment.device_id.to_string());
        assert_eq!(me["kid"], signer.public_key().kid().to_string());

        // Threat: a network attacker replaying a used enrollment code.
        let (other, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        let t = problem_type(server.enroll_with(&other, demo.code(0)).await, 401).await;
        assert_eq!(t, "enrollment-code-used", "{}", b.label);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn enrollment_refuses_unknown_codes_bad_proofs_and_taken_keys() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (key, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();

        // Threat: a thief with a lost phone guessing a code.
        let t = problem_type(server.enroll_with(&key, "AAAA-BBBB-CCCC").await, 401).await;
        assert_eq!(t, "enrollment-code-unknown");

        // Threat: a network attacker enrolling a key it does not hold (proof by another key).
        let (thief, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        use tandem_core::crypto::Signer as _;
        let proof = tandem_core::crypto::SignatureRecord::sign(
            &thief,
            "enroll",
            tandem_server::secrets::enrollment_code_hash(demo.code(1)).as_bytes(),
        )
        .unwrap();
        let resp = server
            .http
            .post(server.url("/v1/enroll"))
            .json(&json!({"code": demo.code(1), "public_key": key.public_key(), "proof": proof}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem_type(resp, 400).await,
            "enrollment-proof-invalid",
            "{}",
            b.label
        );

        // The code is still good after those refusals; then one key cannot enrol twice.
        let resp = server.enroll_with(&key, demo.code(1)).await;
        assert_eq!(resp.status(), 201);
        let t = problem_type(server.enroll_with(&key, demo.code(2)).await, 409).await;
        assert_eq!(t, "device-key-enrolled");
        // The refused attempt did not spend code 2.
        let (fresh, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        assert_eq!(server.enroll_with(&fresh, demo.code(2)).await.status(), 201);

        // Unknown fields in the request are refused, not ignored.
        let resp = server
            .http
            .post(server.url("/v1/enroll"))
            .json(
                &json!({"code": demo.code(3), "public_key": key.public_key(),
                          "proof": proof, "agent_id": "someone-else"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(resp, 400).await, "malformed-request");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn two_phones_racing_for_one_code_enrol_exactly_once() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let code = demo.code(0).to_owned();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (key, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
            let base = server.base.clone();
            let code = code.clone();
            tasks.push(tokio::spawn(async move {
                common::enroll_request(&reqwest::Client::new(), &base, &key, &code)
                    .await
                    .status()
                    .as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses.sort_unstable();
        assert_eq!(
            statuses.iter().filter(|&&s| s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|&s| s == 201 || s == 401),
            "{statuses:?}"
        );
        assert_eq!(
            server.state.db.counts().await.unwrap().devices,
            1,
            "{}",
            b.label
        );
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let code = "EXPI-RED0-CODE";
        server
            .state
            .db
            .add_enrollment_code(
                demo.agent_id(0),
                &tandem_server::db::NewEnrollmentCode {
                    id: uuid::Uuid::now_v7(),
                    code_hash: tandem_server::secrets::enrollment_code_hash(code),
                    expires_ms: tandem_server::clock::system_now_ms() - 1,
                },
                tandem_server::clock::system_now_ms() - 10,
            )
            .await
            .unwrap();
        let (key, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        let t = problem_type(server.enroll_with(&key, code).await, 401).await;
        assert_eq!(t, "enrollment-code-expired", "{}", b.label);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn an_admin_revokes_a_device_and_its_token_stops_at_once() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let other = seed_demo(server.state.db.as_ref(), "other-bank").await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let device = phone.enrollment.device_id;
        let revoke = |token: String| {
            server
                .http
                .post(server.url(&format!("/v1/devices/{device}/revoke")))
                .bearer_auth(token)
                .json(&json!({"reason": "phone lost"}))
                .send()
        };

        // Threat: a user of another bank, or a role without need (no session, a manager,
        // another bank's admin): refused.
        let resp = server
            .http
            .post(server.url(&format!("/v1/devices/{device}/revoke")))
            .json(&json!({"reason": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(resp, 401).await, "unauthorized");
        let manager = server.login("manager", demo.password("manager")).await;
        assert_eq!(
            problem_type(revoke(manager).await.unwrap(), 403).await,
            "forbidden"
        );
        let foreign = server
            .login("other-bank-admin", other.password("other-bank-admin"))
            .await;
        assert_eq!(
            problem_type(revoke(foreign).await.unwrap(), 404).await,
            "not-found"
        );

        // Threat: a thief with a lost phone. The bank's own admin revokes it; the token is
        // refused from then on.
        let admin = server.login("admin", demo.password("admin")).await;
        let resp = revoke(admin.clone()).await.unwrap();
        assert_eq!(resp.status(), 200, "{}", b.label);
        let body: Value = resp.json().await.unwrap();
        assert!(body["revoked_at_ms"].as_i64().unwrap() > 0);
        let resp = server
            .http
            .get(server.url("/v1/device"))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(resp, 401).await, "device-revoked");

        // A new code lets the agent enrol a new phone.
        let resp = server
            .http
            .post(server.url(&format!("/v1/agents/{}/enrollment-codes", demo.agent_id(0))))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let code: Value = resp.json().await.unwrap();
        server.enroll(code["code"].as_str().unwrap()).await;
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn sessions_work_by_bearer_and_cookie_and_end_at_logout() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let resp = server
            .http
            .post(server.url("/v1/login"))
            .json(&json!({"login": "legal", "password": demo.password("legal")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let body: Value = resp.json().await.unwrap();
        let token = body["token"].as_str().unwrap().to_owned();
        assert_eq!(body["role"], "legal");

        let me = server
            .http
            .get(server.url("/v1/me"))
            .header("cookie", format!("tandem_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "{}", b.label);

        // Threat: a network attacker presenting one kind of token as the other.
        let (_, phone) = server.enroll(demo.code(0)).await;
        let resp = server
            .http
            .get(server.url("/v1/me"))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(resp, 401).await, "unauthorized");
        let resp = server
            .http
            .get(server.url("/v1/device"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(resp, 401).await, "unauthorized");

        let out = server
            .http
            .post(server.url("/v1/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 204);
        let resp = server
            .http
            .get(server.url("/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(problem_type(resp, 401).await, "unauthorized");

        // Wrong password and unknown login look the same.
        for (login, pw) in [("legal", "wrong"), ("nobody", "wrong")] {
            let resp = server
                .http
                .post(server.url("/v1/login"))
                .json(&json!({"login": login, "password": pw}))
                .send()
                .await
                .unwrap();
            assert_eq!(problem_type(resp, 401).await, "unauthorized");
        }
        server.state.db.close().await;
    }
}
