//! Visit requests, approval into signed documents, rejection, receipt-number ranges and the
//! bank's policy, over real HTTP on every backend. Negative tests name the actor they stop
//! (THREATS.md).

mod common;

use common::{Demo, TestServer, seed_demo};
use serde_json::{Value, json};
use tandem_core::crypto::Signer as _;
use tandem_core::model::{Approval, SerialRange, Signed, VisitTicket};

const DAY_MS: i64 = 86_400_000;

use common::problem;

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> reqwest::Response {
    server.post_json(token, path, body).await
}

/// A pending request for the demo's first case; returns its id.
async fn request_visit(server: &TestServer, token: &str, demo: &Demo) -> String {
    let now = tandem_server::clock::system_now_ms();
    let resp = post(
        server,
        token,
        "/v1/visit-requests",
        json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": now,
               "wanted_until_ms": now + 2 * DAY_MS, "purpose": "首次外访核实地址"}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    body["id"].as_str().unwrap().to_owned()
}

fn approval_body(team: Value) -> Value {
    let now = tandem_server::clock::system_now_ms();
    json!({
        "team": team,
        "valid_from_ms": now - 60_000,
        "valid_until_ms": now + 7 * DAY_MS,
        "letter_number": "WT-2026-0042",
        "letter_valid_until_ms": now + 30 * DAY_MS,
        "cash": {"limit_fen": 500_000, "currency": "CNY",
                 "designated_account": "6222 0210 0012 3456 789", "methods": ["cash"]},
        "promise": {"waiver": false, "instalments": true, "reinstatement": false}
    })
}

fn team_of(demo: &Demo, agents: &[usize]) -> Value {
    json!(
        agents
            .iter()
            .map(|&i| json!({"agent_id": demo.agent_id(i).to_string()}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn an_approved_request_yields_an_approval_and_ticket_signed_by_the_server() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (key_a, phone_a) = server.enroll(demo.code(0)).await;
        let (key_b, _) = server.enroll(demo.code(1)).await;
        let manager = server.login("manager", demo.password("manager")).await;

        // The agent's phone asks; the manager sees it pending.
        let id = request_visit(&server, &phone_a.token, &demo).await;
        let pending: Vec<Value> = server
            .http
            .get(server.url("/v1/visit-requests?status=pending"))
            .bearer_auth(&manager)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(pending.len(), 1, "{}", b.label);
        assert_eq!(pending[0]["id"], id.as_str());
        assert_eq!(
            pending[0]["requested_device"],
            phone_a.enrollment.device_id.to_string()
        );

        let resp = post(
            &server,
            &manager,
            &format!("/v1/visit-requests/{id}/approve"),
            approval_body(team_of(&demo, &[0, 1])),
        )
        .await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        let body: Value = resp.json().await.unwrap();
        let server_key = server.state.signer.public_key();
        let approval: Signed<Approval> = serde_json::from_value(body["approval"].clone()).unwrap();
        let ticket: Signed<VisitTicket> = serde_json::from_value(body["ticket"].clone()).unwrap();
        let approval = approval.verify(&server_key).expect("approval verifies");
        let ticket = ticket.verify(&server_key).expect("ticket verifies");
        assert_eq!(approval.case_id, demo.seed.cases[0].id);
        assert_eq!(approval.bank_id, demo.bank_id());
        assert_eq!(approval.team.len(), 2);
        assert_eq!(approval.team[0].public_key, key_a.public_key());
        assert_eq!(approval.team[1].public_key, key_b.public_key());
        assert_eq!(approval.cash.as_ref().unwrap().limit.0, 500_000);
        assert!(approval.promise.instalments);
        assert_eq!(approval.policy_version, 1);
        assert_eq!(ticket.approval_id, approval.id);
        assert_eq!(ticket.nonce.len(), 32);
        assert_eq!(body["visit_id"], ticket.visit_id.to_string());

        let none: Vec<Value> = server
            .http
            .get(server.url("/v1/visit-requests?status=pending"))
            .bearer_auth(&manager)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(none.is_empty());

        // Deciding twice is a conflict, whichever way.
        let again = post(
            &server,
            &manager,
            &format!("/v1/visit-requests/{id}/approve"),
            approval_body(team_of(&demo, &[0, 1])),
        )
        .await;
        assert_eq!(problem(again, 409).await.0, "visit-request-decided");
        let reject = post(
            &server,
            &manager,
            &format!("/v1/visit-requests/{id}/reject"),
            json!({"reason": "late"}),
        )
        .await;
        assert_eq!(problem(reject, 409).await.0, "visit-request-decided");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn teams_that_break_the_rules_are_refused_with_the_rule() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let other = seed_demo(server.state.db.as_ref(), "bank2").await;
        server.enroll(demo.code(0)).await;
        server.enroll(demo.code(1)).await;
        let (_, revoked) = server.enroll(demo.code(3)).await;
        server.enroll(other.code(0)).await;
        let manager = server.login("manager", demo.password("manager")).await;
        let admin = server.login("admin", demo.password("admin")).await;
        let resp = post(
            &server,
            &admin,
            &format!("/v1/devices/{}/revoke", revoked.enrollment.device_id),
            json!({"reason": "lost"}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let id = request_visit(&server, &manager, &demo).await;
        let path = format!("/v1/visit-requests/{id}/approve");
        let a0 = demo.agent_id(0).to_string();

        let cases: Vec<(Value, &str, &str)> = vec![
            // Threat: a lone agent — a team of one, or one agent listed twice.
            (team_of(&demo, &[0]), "team-too-small", "V03"),
            (
                json!([{"agent_id": a0}, {"agent_id": a0}]),
                "team-too-small",
                "V03",
            ),
            // Threat: a colluding pair bringing in someone the bank never registered.
            (
                json!([{"agent_id": a0}, {"agent_id": other.agent_id(0).to_string()}]),
                "team-agent-not-of-bank",
                "A02",
            ),
            // Threat: a lone agent pairing with a colleague who has no phone to co-sign.
            (team_of(&demo, &[0, 2]), "team-device-not-enrolled", "A02"),
            // Threat: a thief with a lost phone — its revoked key cannot join a team.
            (
                json!([{"agent_id": a0}, {"agent_id": demo.agent_id(3).to_string(),
                        "device_id": revoked.enrollment.device_id.to_string()}]),
                "team-device-revoked",
                "A02",
            ),
            (team_of(&demo, &[0, 3]), "team-device-not-enrolled", "A02"),
        ];
        for (team, kind, rule) in cases {
            let resp = post(&server, &manager, &path, approval_body(team)).await;
            let (got, body) = problem(resp, 422).await;
            assert_eq!(
                (got.as_str(), body["rule"].as_str()),
                (kind, Some(rule)),
                "{}",
                b.label
            );
        }
        // An expired letter (V06) and cash terms without an account (C01).
        let mut body = approval_body(team_of(&demo, &[0, 1]));
        body["letter_valid_until_ms"] = json!(tandem_server::clock::system_now_ms() - 1);
        let (kind, p) = problem(post(&server, &manager, &path, body).await, 422).await;
        assert_eq!(
            (kind.as_str(), p["rule"].as_str()),
            ("letter-expired", Some("V06"))
        );
        let mut body = approval_body(team_of(&demo, &[0, 1]));
        body["cash"]["designated_account"] = json!(" ");
        let (kind, p) = problem(post(&server, &manager, &path, body).await, 422).await;
        assert_eq!(
            (kind.as_str(), p["rule"].as_str()),
            ("cash-terms-invalid", Some("C01"))
        );

        // None of that decided the request: it is still pending and can be approved.
        let resp = post(
            &server,
            &manager,
            &path,
            approval_body(team_of(&demo, &[0, 1])),
        )
        .await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn a_rejected_request_stays_rejected_and_other_banks_see_nothing() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let other = seed_demo(server.state.db.as_ref(), "bank2").await;
        server.enroll(demo.code(0)).await;
        server.enroll(demo.code(1)).await;
        let manager = server.login("manager", demo.password("manager")).await;
        let id = request_visit(&server, &manager, &demo).await;

        // Threat: a user of another bank — the request does not exist for them.
        let outsider = server
            .login("bank2-manager", other.password("bank2-manager"))
            .await;
        let resp = post(
            &server,
            &outsider,
            &format!("/v1/visit-requests/{id}/approve"),
            approval_body(json!([{"agent_id": other.agent_id(0).to_string()},
                                 {"agent_id": other.agent_id(1).to_string()}])),
        )
        .await;
        assert_eq!(problem(resp, 404).await.0, "not-found", "{}", b.label);
        let listed: Vec<Value> = server
            .http
            .get(server.url("/v1/visit-requests"))
            .bearer_auth(&outsider)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(listed.is_empty());
        // Nor may their phone ask for a visit to this bank's case.
        let (_, phone) = server.enroll(other.code(2)).await;
        let now = tandem_server::clock::system_now_ms();
        let resp = post(
            &server,
            &phone.token,
            "/v1/visit-requests",
            json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": now,
                   "wanted_until_ms": now + DAY_MS, "purpose": "x"}),
        )
        .await;
        assert_eq!(problem(resp, 404).await.0, "not-found");

        let resp = post(
            &server,
            &manager,
            &format!("/v1/visit-requests/{id}/reject"),
            json!({"reason": "地址待核实"}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "rejected");
        assert_eq!(body["reject_reason"], "地址待核实");
        let resp = post(
            &server,
            &manager,
            &format!("/v1/visit-requests/{id}/approve"),
            approval_body(team_of(&demo, &[0, 1])),
        )
        .await;
        assert_eq!(problem(resp, 409).await.0, "visit-request-decided");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn receipt_ranges_are_gapless_and_never_overlap_under_concurrent_allocation() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, a) = server.enroll(demo.code(0)).await;
        let (_, c) = server.enroll(demo.code(1)).await;
        let manager = server.login("manager", demo.password("manager")).await;
        let devices = [a.enrollment.device_id, c.enrollment.device_id];
        let mut tasks = Vec::new();
        for i in 0..16_u64 {
            let url = server.url(&format!(
                "/v1/devices/{}/serial-ranges",
                devices[(i % 2) as usize]
            ));
            let token = manager.clone();
            tasks.push(tokio::spawn(async move {
                let resp = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"count": 10 + i}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
                resp.json::<Value>().await.unwrap()
            }));
        }
        let key = server.state.signer.public_key();
        let mut ranges = Vec::new();
        for t in tasks {
            let body = t.await.unwrap();
            let signed: Signed<SerialRange> =
                serde_json::from_value(body["range"].clone()).unwrap();
            let range = signed.verify(&key).expect("range signed by the server");
            assert_eq!(range.first.0, body["first"].as_u64().unwrap());
            ranges.push(range);
        }
        ranges.sort_by_key(|r| r.first);
        let mut next = 1;
        for r in &ranges {
            assert_eq!(r.first.0, next, "{}: gapless, no overlap", b.label);
            next = r.last.0 + 1;
        }
        let total: u64 = (0..16).map(|i| 10 + i).sum();
        assert_eq!(next - 1, total);

        // Threat: a user of another bank cannot hand numbers to this bank's phones.
        let other = seed_demo(server.state.db.as_ref(), "bank2").await;
        let outsider = server
            .login("bank2-manager", other.password("bank2-manager"))
            .await;
        let resp = post(
            &server,
            &outsider,
            &format!("/v1/devices/{}/serial-ranges", devices[0]),
            json!({"count": 5}),
        )
        .await;
        assert_eq!(problem(resp, 404).await.0, "not-found");
        let resp = post(
            &server,
            &manager,
            &format!("/v1/devices/{}/serial-ranges", devices[0]),
            json!({"count": 0}),
        )
        .await;
        assert_eq!(problem(resp, 422).await.0, "serial-range-count");
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn the_bank_admin_changes_the_policy_as_a_new_version() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id();
        let admin = server.login("admin", demo.password("admin")).await;
        let path = server.url(&format!("/v1/banks/{bank}/policy"));
        let current: Value = server
            .http
            .get(&path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(current["version"], 1, "{}", b.label);
        let mut policy = current["policy"].clone();
        policy["geofence_radius_m"] = json!(300);
        let resp = server
            .http
            .put(&path)
            .bearer_auth(&admin)
            .json(&policy)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["version"], 2);
        assert_eq!(body["policy"]["version"], 2);
        assert_eq!(body["policy"]["geofence_radius_m"], 300);

        // Threat: anyone sending bad input — a policy core would refuse never reaches phones.
        policy["time_zone"] = json!("Mars/Olympus");
        let resp = server
            .http
            .put(&path)
            .bearer_auth(&admin)
            .json(&policy)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(resp, 422).await.0, "policy-invalid");
        // Threat: a role without need — managers read the policy but do not set it.
        let manager = server.login("manager", demo.password("manager")).await;
        let resp = server
            .http
            .put(&path)
            .bearer_auth(&manager)
            .json(&policy)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(resp, 403).await.0, "forbidden");
        server.state.db.close().await;
    }
}
