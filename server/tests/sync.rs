//! Pull sync over real HTTP on every backend, with real core phones: a phone enrolled
//! through `POST /v1/enroll` accepts everything it pulls (policy, time anchor, assignment,
//! receipt range); pages reassemble to the same set; the same cursor gives the same bytes;
//! a phone sees nothing of other agents' visits or other banks. Negative tests name the
//! actor they stop (THREATS.md).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{Demo, TestServer, seed_demo};
use serde_json::{Value, json};
use tandem_core::clock::SystemClock;
use tandem_core::crypto::{SignatureRecord, Signer as _};
use tandem_core::model::{Policy, SerialRange, Signed, TimeAnchor};
use tandem_core::phone::{ManualLocation, Phone};
use tandem_core::testing::World;
use tandem_server::auth::EnrollResponse;
use tandem_server::sync::{Assignment, DeviceRevocation, SyncChange, SyncResponse};

const DAY_MS: i64 = 86_400_000;

/// A real core phone in `dir`, enrolled over HTTP with `code`.
async fn enrolled_phone(server: &TestServer, dir: &Path, code: &str) -> (Phone, EnrollResponse) {
    let phone = World::reopen_phone(
        dir,
        Arc::new(SystemClock::new()),
        Arc::new(ManualLocation::default()),
    )
    .unwrap();
    let proof = SignatureRecord::sign(
        phone.signer().as_ref(),
        tandem_server::auth::ENROLL_PURPOSE,
        tandem_server::secrets::enrollment_code_hash(code).as_bytes(),
    )
    .unwrap();
    let resp = server
        .http
        .post(server.url("/v1/enroll"))
        .json(&json!({"code": code, "public_key": phone.public_key(), "proof": proof}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let enrolled: EnrollResponse = resp.json().await.unwrap();
    phone.enroll(&enrolled.enrollment).unwrap();
    (phone, enrolled)
}

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> reqwest::Response {
    server.post_json(token, path, body).await
}

/// Approves a visit to the demo's first case for agents `team`; returns the visit id.
async fn approved_visit(server: &TestServer, demo: &Demo, manager: &str, team: &[usize]) -> String {
    let now = tandem_server::clock::system_now_ms();
    let resp = post(
        server,
        manager,
        "/v1/visit-requests",
        json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": now,
               "wanted_until_ms": now + DAY_MS, "purpose": "外访"}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let team: Vec<Value> = team
        .iter()
        .map(|&i| json!({"agent_id": demo.agent_id(i).to_string()}))
        .collect();
    let resp = post(
        server,
        manager,
        &format!("/v1/visit-requests/{id}/approve"),
        json!({"team": team, "valid_from_ms": now - 60_000, "valid_until_ms": now + 7 * DAY_MS,
               "letter_number": "WT-1", "letter_valid_until_ms": now + 30 * DAY_MS,
               "cash": {"limit_fen": 100_000, "currency": "CNY",
                        "designated_account": "6222 0210 0012 3456 789", "methods": ["cash"]}}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["visit_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn sync_page(
    server: &TestServer,
    token: &str,
    cursor: Option<&str>,
    limit: u32,
) -> reqwest::Response {
    let mut url = format!("/v1/sync?limit={limit}");
    if let Some(c) = cursor {
        url.push_str(&format!("&cursor={c}"));
    }
    server
        .http
        .get(server.url(&url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Pulls every page from `cursor`; returns the changes, the last cursor and the anchors.
async fn pull_all(
    server: &TestServer,
    token: &str,
    mut cursor: Option<String>,
    limit: u32,
) -> (Vec<SyncChange>, String, Vec<Signed<TimeAnchor>>, usize) {
    let (mut changes, mut anchors) = (Vec::new(), Vec::new());
    for pages in 1..=100 {
        let resp = sync_page(server, token, cursor.as_deref(), limit).await;
        assert_eq!(resp.status(), 200);
        let page: SyncResponse = resp.json().await.unwrap();
        assert!(page.changes.len() <= limit as usize);
        changes.extend(page.changes);
        anchors.push(page.time_anchor);
        cursor = Some(page.next_cursor);
        if !page.more {
            return (changes, cursor.unwrap(), anchors, pages);
        }
    }
    panic!("the feed did not end within 100 pages");
}

/// What a phone did with the changes it pulled.
#[derive(Debug, Default)]
struct Applied {
    policies: Vec<u32>,
    visits: Vec<String>,
    ranges: Vec<SerialRange>,
    revocations: Vec<DeviceRevocation>,
}

/// Gives every change to the phone as the sync client will.
fn apply(
    phone: &Phone,
    server_key: &tandem_core::crypto::PublicKey,
    changes: &[SyncChange],
) -> Applied {
    let mut out = Applied::default();
    for c in changes {
        let doc = c.document.get();
        match c.kind.as_str() {
            "policy" => {
                let signed: Signed<Policy> = serde_json::from_str(doc).unwrap();
                out.policies.push(
                    phone
                        .accept_policy(&signed)
                        .expect("policy accepted")
                        .version,
                );
            }
            "assignment" => {
                let a: Assignment = serde_json::from_str(doc).unwrap();
                let visit = phone
                    .accept_assignment(&a.case, &a.approval, &a.ticket)
                    .expect("assignment accepted");
                out.visits.push(visit.to_string());
            }
            "serial_range" => {
                let signed: Signed<SerialRange> = serde_json::from_str(doc).unwrap();
                out.ranges
                    .push(phone.accept_serial_range(&signed).expect("range accepted"));
            }
            "revocation" => {
                let signed: Signed<DeviceRevocation> = serde_json::from_str(doc).unwrap();
                out.revocations
                    .push(signed.verify(server_key).expect("revocation signed"));
            }
            other => panic!("unknown change kind {other}"),
        }
    }
    out
}

fn docs(changes: &[SyncChange]) -> Vec<String> {
    changes
        .iter()
        .map(|c| format!("{}:{}", c.kind, c.document.get()))
        .collect()
}

#[tokio::test]
async fn a_real_phone_accepts_everything_it_pulls_and_nothing_of_others() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let other = seed_demo(server.state.db.as_ref(), "bank2").await;
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let (phone_a, a) = enrolled_phone(&server, dirs[0].path(), demo.code(0)).await;
        let (phone_b, bb) = enrolled_phone(&server, dirs[1].path(), demo.code(1)).await;
        let (phone_c, c) = enrolled_phone(&server, dirs[2].path(), demo.code(2)).await;
        let (phone_x, x) = enrolled_phone(&server, dirs[3].path(), other.code(0)).await;
        let key = server.state.signer.public_key();
        let manager = server.login("manager", demo.password("manager")).await;
        let admin = server.login("admin", demo.password("admin")).await;

        let visit = approved_visit(&server, &demo, &manager, &[0, 1]).await;
        let resp = post(
            &server,
            &manager,
            &format!("/v1/devices/{}/serial-ranges", a.enrollment.device_id),
            json!({"count": 25}),
        )
        .await;
        assert_eq!(resp.status(), 201);
        let policy_path = server.url(&format!("/v1/banks/{}/policy", demo.bank_id()));
        let mut policy: Value = server
            .http
            .get(&policy_path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["policy"]
            .clone();
        policy["partner_max_distance_m"] = json!(40);
        let resp = server
            .http
            .put(&policy_path)
            .bearer_auth(&admin)
            .json(&policy)
            .send()
            .await;
        assert_eq!(resp.unwrap().status(), 200);

        // Phone A: its visit, its range, the newest policy, and a time anchor it accepts.
        let (changes, cursor_a, anchors, pages) = pull_all(&server, &a.token, None, 1).await;
        assert!(pages >= 3, "{}: paged", b.label);
        let applied = apply(&phone_a, &key, &changes);
        assert_eq!(applied.visits, vec![visit.clone()], "{}", b.label);
        assert_eq!(applied.ranges.len(), 1);
        assert_eq!(
            (applied.ranges[0].first.0, applied.ranges[0].last.0),
            (1, 25)
        );
        assert_eq!(applied.policies.last(), Some(&2));
        phone_a
            .accept_time_anchor(anchors.last().unwrap())
            .expect("anchor accepted");
        let anchor = anchors.last().unwrap().verify(&key).unwrap();
        assert_eq!(anchor.device_id, a.enrollment.device_id);

        // Phone B, the partner: the same visit, byte for byte, but not A's receipt numbers.
        let (changes_b, _, anchors_b, _) = pull_all(&server, &bb.token, None, 50).await;
        let applied_b = apply(&phone_b, &key, &changes_b);
        assert_eq!(applied_b.visits, vec![visit.clone()]);
        assert!(
            applied_b.ranges.is_empty(),
            "{}: another phone's range",
            b.label
        );
        phone_b.accept_time_anchor(&anchors_b[0]).unwrap();
        let assignment = |cs: &[SyncChange]| {
            cs.iter()
                .find(|c| c.kind == "assignment")
                .map(|c| c.document.get().to_owned())
        };
        assert_eq!(assignment(&changes), assignment(&changes_b));

        // Threat: a user of another bank, or a role without need (D01, D03): phone C of the
        // same bank, not on the team, gets only the policy; the other bank's phone only
        // its own bank's policy.
        let (changes_c, _, _, _) = pull_all(&server, &c.token, None, 50).await;
        let applied_c = apply(&phone_c, &key, &changes_c);
        assert!(
            applied_c.visits.is_empty() && applied_c.ranges.is_empty(),
            "{}",
            b.label
        );
        assert_eq!(applied_c.policies.last(), Some(&2));
        let (changes_x, _, anchors_x, _) = pull_all(&server, &x.token, None, 50).await;
        assert_eq!(changes_x.len(), 1, "{}: only its bank's policy", b.label);
        let policy_x: Signed<Policy> = serde_json::from_str(changes_x[0].document.get()).unwrap();
        assert_eq!(policy_x.verify(&key).unwrap().bank_id, other.bank_id());
        phone_x.accept_policy(&policy_x).unwrap();
        // Threat: a network attacker replaying another phone's anchor — the phone refuses it.
        assert!(phone_x.accept_time_anchor(&anchors[0]).is_err());
        phone_x.accept_time_anchor(&anchors_x[0]).unwrap();

        // Threat: a thief with a lost phone — once B is revoked, A learns it on its next sync.
        let resp = post(
            &server,
            &admin,
            &format!("/v1/devices/{}/revoke", bb.enrollment.device_id),
            json!({"reason": "stolen"}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let (news, _, _, _) = pull_all(&server, &a.token, Some(cursor_a), 10).await;
        let applied = apply(&phone_a, &key, &news);
        assert_eq!(applied.revocations.len(), 1, "{}", b.label);
        assert_eq!(applied.revocations[0].device_id, bb.enrollment.device_id);
        assert!(
            applied.visits.is_empty() && applied.ranges.is_empty(),
            "nothing repeated"
        );
        let (news_c, _, _, _) = pull_all(&server, &c.token, None, 50).await;
        assert!(
            news_c.iter().all(|c| c.kind == "policy"),
            "C shares no team with B"
        );
        // And B itself can no longer sync.
        assert_eq!(sync_page(&server, &bb.token, None, 10).await.status(), 401);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn pages_reassemble_and_the_same_cursor_gives_the_same_bytes() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, a) = server.enroll(demo.code(0)).await;
        server.enroll(demo.code(1)).await;
        let manager = server.login("manager", demo.password("manager")).await;
        for _ in 0..3 {
            approved_visit(&server, &demo, &manager, &[0, 1]).await;
        }
        for n in [3, 4] {
            let resp = post(
                &server,
                &manager,
                &format!("/v1/devices/{}/serial-ranges", a.enrollment.device_id),
                json!({"count": n}),
            )
            .await;
            assert_eq!(resp.status(), 201);
        }
        let (whole, end, _, pages) = pull_all(&server, &a.token, None, 500).await;
        assert_eq!(pages, 1);
        assert_eq!(whole.len(), 6, "{}: policy, 3 visits, 2 ranges", b.label);
        for limit in [1, 2, 4] {
            let (paged, paged_end, _, pages) = pull_all(&server, &a.token, None, limit).await;
            assert_eq!(docs(&paged), docs(&whole), "{} limit {limit}", b.label);
            assert_eq!(paged_end, end, "the same cursor at the end");
            assert!(pages >= 6 / limit as usize);
        }
        // The same cursor twice: the same bytes (only the time anchor is fresh).
        let first = sync_page(&server, &a.token, None, 2)
            .await
            .json::<SyncResponse>()
            .await;
        let first = first.unwrap();
        let again = sync_page(&server, &a.token, Some(&first.next_cursor), 3).await;
        let again: SyncResponse = again.json().await.unwrap();
        let twice = sync_page(&server, &a.token, Some(&first.next_cursor), 3).await;
        let twice: SyncResponse = twice.json().await.unwrap();
        assert_eq!(docs(&again.changes), docs(&twice.changes));
        assert_eq!(again.next_cursor, twice.next_cursor);
        assert_ne!(
            again.time_anchor, twice.time_anchor,
            "a fresh anchor each call"
        );
        // At the end nothing is new, and the cursor stays where it is.
        let idle: SyncResponse = sync_page(&server, &a.token, Some(&end), 10)
            .await
            .json()
            .await
            .unwrap();
        assert!(idle.changes.is_empty() && !idle.more);
        assert_eq!(idle.next_cursor, end);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn a_cursor_is_refused_unless_it_is_this_devices_own() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, a) = server.enroll(demo.code(0)).await;
        let (_, c) = server.enroll(demo.code(1)).await;
        let page: SyncResponse = sync_page(&server, &c.token, None, 10)
            .await
            .json()
            .await
            .unwrap();
        // Threat: a network attacker or a curious agent replaying another phone's cursor.
        for bad in [page.next_cursor.as_str(), "c1.AAAA", "garbage", "c1.!!!"] {
            let resp = sync_page(&server, &a.token, Some(bad), 10).await;
            assert_eq!(resp.status(), 400, "{}: {bad}", b.label);
            let body: Value = resp.json().await.unwrap();
            assert!(
                body["type"]
                    .as_str()
                    .unwrap()
                    .ends_with("/sync-cursor-invalid")
            );
        }
        // Threat: anyone without an enrolled phone.
        let resp = server
            .http
            .get(server.url("/v1/sync"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        server.state.db.close().await;
    }
}

#[tokio::test]
async fn cores_own_sync_client_pulls_the_feed_in_pages_and_resumes_from_its_cursor() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let (phone_a, a) = enrolled_phone(&server, dirs[0].path(), demo.code(0)).await;
        let (_phone_b, _) = enrolled_phone(&server, dirs[1].path(), demo.code(1)).await;
        let manager = server.login("manager", demo.password("manager")).await;
        let visit = approved_visit(&server, &demo, &manager, &[0, 1]).await;
        let resp = post(
            &server,
            &manager,
            &format!("/v1/devices/{}/serial-ranges", a.enrollment.device_id),
            json!({"count": 10}),
        )
        .await;
        assert_eq!(resp.status(), 201);

        // The phone's blocking client, as the shells and `tandem field` run it.
        let base = server.base.clone();
        let token = a.token.clone();
        let (phone_a, summary) = tokio::task::spawn_blocking(move || {
            let transport = tandem_core::sync::HttpTransport::new(&base, Default::default());
            let summary = tandem_core::sync::pull(&phone_a, &transport, &token).unwrap();
            (phone_a, summary)
        })
        .await
        .unwrap();
        assert_eq!(
            summary
                .assignments
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![visit.clone()],
            "{}",
            b.label
        );
        assert_eq!((summary.policies, summary.ranges), (1, 1), "{}", b.label);
        assert!(phone_a.sync_cursor().unwrap().is_some());
        assert!(phone_a.now().unwrap().anchor_ms.is_some(), "anchored");

        // Nothing new: the next pull applies nothing but the anchor.
        let base = server.base.clone();
        let token = a.token.clone();
        let again = tokio::task::spawn_blocking(move || {
            let transport = tandem_core::sync::HttpTransport::new(&base, Default::default());
            tandem_core::sync::pull(&phone_a, &transport, &token).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            again,
            tandem_core::phone::PullSummary::default(),
            "{}",
            b.label
        );
        server.state.db.close().await;
    }
}

/// Actor: an operator running a demo server's shifted clock for real work — every anchor it
/// signs says by how much its clock was shifted, so nothing anchored on it passes for real
/// time; a server on the system clock never says so.
#[tokio::test]
async fn a_shifted_clock_is_stamped_on_every_time_anchor() {
    use tandem_server::clock::ShiftedClock;
    let b = common::backends().await.swap_remove(0);
    for shift in [0, 3 * 3_600_000] {
        let mut state = b.state().await;
        if shift != 0 {
            state = state.with_clock(Arc::new(ShiftedClock::new(shift)));
        }
        let server = TestServer::start(state).await;
        let code = format!("code-{shift}");
        let demo = seed_demo(server.state.db.as_ref(), &code).await;
        let (_, a) = server.enroll(demo.code(0)).await;
        let page: SyncResponse = sync_page(&server, &a.token, None, 10)
            .await
            .json()
            .await
            .unwrap();
        let anchor: TimeAnchor = page
            .time_anchor
            .verify(&server.state.signer.public_key())
            .unwrap();
        let expected = (shift != 0).then_some(shift);
        assert_eq!(anchor.shifted_by_ms, expected);
        let off = anchor.server_time_ms - tandem_server::clock::system_now_ms();
        assert!((shift - 60_000..=shift).contains(&off), "{off}");
    }
}
