//! The administrators' pages over real HTTP on every backend, driven as a browser without
//! JavaScript would: users created with a one-time password that forces its change,
//! disabled (their session ends, their sign-in is refused like a wrong password) and given
//! another role or bank; agents created, a phone enrolled with the code and QR code the
//! page shows, then revoked; a bank's policy saved as a version phones pull; each change in
//! the audit log. Negative tests name the actor they stop (THREATS.md).

mod common;

use common::browser::{Browser, Page};
use common::{Demo, TestBackend, TestServer, problem, seed_demo};
use serde_json::{Value, json};
use tandem_core::crypto::Signer as _;
use tandem_core::model::{Policy, Signed};
use tandem_server::audit::{AuditAction, AuditEntry, AuditFilter};

async fn server(b: &TestBackend) -> (TestServer, Demo) {
    let server = TestServer::start(b.state().await).await;
    let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
    (server, demo)
}

async fn signed_in(server: &TestServer, demo: &Demo, login: &str) -> Browser {
    let mut browser = Browser::new(server);
    let page = browser.sign_in(login, demo.password(login)).await;
    assert_eq!(page.status, 303, "{login} signs in");
    browser
}

fn user_id(demo: &Demo, login: &str) -> String {
    demo.seed
        .users
        .iter()
        .find(|u| u.login == login)
        .unwrap()
        .id
        .to_string()
}

/// Posts `form` to `path` with the CSRF token of the page at `from`.
async fn post_from(browser: &mut Browser, from: &str, path: &str, form: &[(&str, &str)]) -> Page {
    let page = browser.get(from).await;
    assert_eq!(page.status, 200, "{from}");
    let csrf = page.csrf();
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    browser.post(path, &fields).await
}

/// The audit entries of `action`, oldest first.
async fn audited(server: &TestServer, action: AuditAction) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        action: Some(action),
        ..AuditFilter::default()
    };
    let mut entries: Vec<_> = server
        .state
        .db
        .audit_entries(&filter, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect();
    entries.reverse();
    entries
}

/// Checks an entry was made by `actor` for `demo`'s bank from the test's address.
fn by_admin_of(entry: &AuditEntry, demo: &Demo, actor: &str) {
    assert_eq!(entry.actor.map(|a| a.to_string()), Some(actor.to_owned()));
    assert_eq!(entry.bank_id, Some(demo.bank_id()));
    assert_eq!(
        entry.client_addr,
        Some(std::net::IpAddr::from([127, 0, 0, 1]))
    );
}

/// The text between `start` and the next `end` in `body`.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let at = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} in page"))
        + start.len();
    body[at..].split(end).next().unwrap()
}

#[tokio::test]
async fn a_new_users_one_time_password_works_once_and_forces_its_change() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let mut admin = signed_in(&server, &demo, "admin").await;
        let home = admin.get("/").await;
        assert_eq!(
            home.location(),
            "/admin/users",
            "{}: an admin starts here",
            b.label
        );
        let bank = demo.bank_id().to_string();
        let created = post_from(
            &mut admin,
            "/admin/users",
            "/admin/users",
            &[
                ("login", "wang.fang"),
                ("name", "王芳"),
                ("role", "manager"),
                ("bank", &bank),
            ],
        )
        .await;
        assert_eq!(created.status, 201, "{}: {}", b.label, created.body);
        let password = between(&created.body, "id=\"initial-password\">", "<").to_owned();
        assert_eq!(password.len(), 16, "{}", b.label);
        let list = admin.get("/admin/users").await;
        assert!(list.body.contains("wang.fang"), "{}", b.label);
        assert!(
            !list.body.contains(&password),
            "{}: the password is shown once",
            b.label
        );

        // The first sign-in opens only the password page.
        let mut user = Browser::new(&server);
        assert_eq!(user.sign_in("wang.fang", &password).await.status, 303);
        assert_eq!(user.get("/requests").await.location(), "/password");
        let new_password = "长城外访十二个字的新口令";
        let page = user.get("/password").await;
        let changed = user
            .post(
                "/password",
                &[
                    ("csrf", &page.csrf()),
                    ("current", &password),
                    ("new", new_password),
                    ("confirm", new_password),
                ],
            )
            .await;
        assert_eq!(changed.status, 303, "{}: {}", b.label, changed.body);
        assert_eq!(user.get("/requests").await.status, 200, "{}", b.label);
        // Actor: a thief of the initial password, which worked once.
        let resp = server
            .http
            .post(server.url("/v1/login"))
            .json(&json!({"login": "wang.fang", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(resp, 401).await.0, "unauthorized", "{}", b.label);

        let entries = audited(&server, AuditAction::UserCreated).await;
        assert_eq!(entries.len(), 1, "{}", b.label);
        by_admin_of(&entries[0], &demo, &user_id(&demo, "admin"));
        assert_eq!(entries[0].detail["role"], "manager");
        assert!(
            !entries[0].detail.to_string().contains(&password),
            "{}: never the password",
            b.label
        );
    }
}

#[tokio::test]
async fn a_disabled_users_session_ends_and_their_sign_in_is_refused_like_a_wrong_password() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let mut admin = signed_in(&server, &demo, "admin").await;
        let mut manager = signed_in(&server, &demo, "manager").await;
        assert_eq!(manager.get("/requests").await.status, 200);
        let id = user_id(&demo, "manager");
        let page = format!("/admin/users/{id}");
        let done = post_from(&mut admin, &page, &format!("{page}/disable"), &[]).await;
        assert_eq!(done.status, 303, "{}: {}", b.label, done.body);
        assert_eq!(
            manager.get("/requests").await.location(),
            "/login?why=ended",
            "{}: the session ended at once",
            b.label
        );
        let login = |password: String| {
            let server = &server;
            async move {
                let resp = server
                    .http
                    .post(server.url("/v1/login"))
                    .json(&json!({"login": "manager", "password": password}))
                    .send()
                    .await
                    .unwrap();
                problem(resp, 401).await.1
            }
        };
        let disabled = login(demo.password("manager").to_owned()).await;
        let wrong = login("not-the-password".to_owned()).await;
        assert_eq!(disabled, wrong, "{}: the same answer", b.label);

        let done = post_from(&mut admin, &page, &format!("{page}/enable"), &[]).await;
        assert_eq!(done.status, 303, "{}", b.label);
        let mut again = Browser::new(&server);
        assert_eq!(
            again
                .sign_in("manager", demo.password("manager"))
                .await
                .status,
            303
        );
        assert_eq!(again.get("/requests").await.status, 200, "{}", b.label);
        assert_eq!(
            manager.get("/requests").await.location(),
            "/login?why=ended",
            "{}: enabling revives no old session",
            b.label
        );

        // An admin cannot lock themselves out.
        let own = format!("/admin/users/{}", user_id(&demo, "admin"));
        let refused = post_from(&mut admin, &own, &format!("{own}/disable"), &[]).await;
        assert_eq!(refused.status, 422, "{}", b.label);
        assert!(refused.body.contains("不能停用本人账户"), "{}", b.label);

        let admin_id = user_id(&demo, "admin");
        for action in [AuditAction::UserDisabled, AuditAction::UserEnabled] {
            let entries = audited(&server, action).await;
            assert_eq!(entries.len(), 1, "{}: {action}", b.label);
            by_admin_of(&entries[0], &demo, &admin_id);
            assert_eq!(entries[0].subject_id, Some(id.clone()));
        }
    }
}

#[tokio::test]
async fn an_admin_changes_a_users_role_and_banks_but_never_their_own_role() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let mut admin = signed_in(&server, &demo, "admin").await;
        let bank = demo.bank_id().to_string();
        let legal = user_id(&demo, "legal");
        let page = format!("/admin/users/{legal}");
        let done = post_from(
            &mut admin,
            &page,
            &format!("{page}/access"),
            &[("role", "manager"), ("bank", &bank)],
        )
        .await;
        assert_eq!(done.status, 303, "{}: {}", b.label, done.body);
        let resp = server
            .http
            .post(server.url("/v1/login"))
            .json(&json!({"login": "legal", "password": demo.password("legal")}))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["role"], "manager", "{}", b.label);
        let entries = audited(&server, AuditAction::UserAccessChanged).await;
        assert_eq!(entries.len(), 1, "{}", b.label);
        by_admin_of(&entries[0], &demo, &user_id(&demo, "admin"));
        assert_eq!(entries[0].detail["role_before"], "legal");
        assert_eq!(entries[0].detail["role"], "manager");

        // No bank chosen: refused, nothing changed.
        let refused = post_from(
            &mut admin,
            &page,
            &format!("{page}/access"),
            &[("role", "legal")],
        )
        .await;
        assert_eq!(refused.status, 422, "{}", b.label);
        // Actor: a forged bank id (another bank's, or none) is refused, not ignored.
        let other = tandem_core::model::BankId::new().to_string();
        let refused = post_from(
            &mut admin,
            &page,
            &format!("{page}/access"),
            &[("role", "legal"), ("bank", &other)],
        )
        .await;
        assert_eq!(refused.status, 422, "{}", b.label);
        let own = format!("/admin/users/{}", user_id(&demo, "admin"));
        let refused = post_from(
            &mut admin,
            &own,
            &format!("{own}/access"),
            &[("role", "manager"), ("bank", &bank)],
        )
        .await;
        assert_eq!(refused.status, 422, "{}", b.label);
        assert_eq!(
            audited(&server, AuditAction::UserAccessChanged).await.len(),
            1,
            "{}",
            b.label
        );
    }
}

/// Reads the QR code of an SVG the console drew (`M{x} {y}h{w}v{h}…` rectangles on a white
/// square), as a phone's camera would.
fn read_qr(svg: &str) -> String {
    let size: usize = between(svg, "width=\"", "\"").parse().unwrap();
    let scale = 4;
    let side = size * scale;
    let mut pixels = vec![255u8; side * side];
    let path = between(svg, " d=\"", "\"");
    for rect in path.split('M').filter(|r| !r.is_empty()) {
        let numbers: Vec<usize> = rect
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect();
        let (x, y, w, h) = (numbers[0], numbers[1], numbers[2], numbers[3]);
        for py in y * scale..(y + h) * scale {
            for px in x * scale..(x + w) * scale {
                pixels[py * side + px] = 0;
            }
        }
    }
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| pixels[y * side + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn an_agent_created_here_enrols_a_phone_with_the_code_shown_once_until_revoked() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let mut admin = signed_in(&server, &demo, "admin").await;
        let bank = demo.bank_id().to_string();
        let created = post_from(
            &mut admin,
            "/admin/agents",
            "/admin/agents",
            &[
                ("employee_no", "PJ-0100"),
                ("name", "赵六"),
                ("bank", &bank),
            ],
        )
        .await;
        assert_eq!(created.status, 303, "{}: {}", b.label, created.body);
        let agent_page = created.location().split('?').next().unwrap().to_owned();
        let agent_id = agent_page.rsplit('/').next().unwrap().to_owned();
        let issued = post_from(&mut admin, &agent_page, &format!("{agent_page}/code"), &[]).await;
        assert_eq!(issued.status, 200, "{}: {}", b.label, issued.body);
        let code = between(&issued.body, "<p class=\"code\" aria-label=\"", "\"").to_owned();
        assert_eq!(code.len(), 14, "{}: {code}", b.label);
        let svg = between(&issued.body, "<svg", "</svg>");
        assert!(!issued.body.contains("<?xml"), "{}", b.label);
        let port = server.base.rsplit(':').next().unwrap();
        assert_eq!(
            read_qr(svg),
            format!("tandem-enroll:?server=http%3A%2F%2F127.0.0.1%3A{port}&code={code}"),
            "{}: the QR code carries the server and the code",
            b.label
        );
        assert!(
            !admin.get(&agent_page).await.body.contains(&code),
            "{}: shown once",
            b.label
        );

        let (_, phone) = server.enroll(&code).await;
        assert_eq!(phone.enrollment.agent_id.to_string(), agent_id);
        // Actor: a second phone with the same code.
        let (second, _) = tandem_core::crypto::SoftwareSigner::generate(
            tandem_core::crypto::SignatureAlgorithm::Ed25519,
        )
        .unwrap();
        let resp = server.enroll_with(&second, &code).await;
        assert_eq!(
            problem(resp, 401).await.0,
            "enrollment-code-used",
            "{}",
            b.label
        );
        let device_self = || {
            server
                .http
                .get(server.url("/v1/device"))
                .bearer_auth(&phone.token)
                .send()
        };
        assert_eq!(device_self().await.unwrap().status(), 200);
        let page = admin.get(&agent_page).await;
        assert!(
            page.body.contains("ed25519"),
            "{}: the phone is listed",
            b.label
        );

        let device = phone.enrollment.device_id.to_string();
        let revoke = format!("/admin/devices/{device}/revoke");
        let refused = post_from(&mut admin, &agent_page, &revoke, &[("reason", " ")]).await;
        assert_eq!(refused.status, 422, "{}: a reason is required", b.label);
        assert_eq!(device_self().await.unwrap().status(), 200);
        let done = post_from(&mut admin, &agent_page, &revoke, &[("reason", "手机遗失")]).await;
        assert_eq!(done.status, 303, "{}: {}", b.label, done.body);
        // Actor: a thief with the lost phone.
        assert_eq!(device_self().await.unwrap().status(), 401, "{}", b.label);

        let admin_id = user_id(&demo, "admin");
        let agent = audited(&server, AuditAction::AgentCreated).await;
        assert_eq!(agent.len(), 1, "{}", b.label);
        by_admin_of(&agent[0], &demo, &admin_id);
        let codes = audited(&server, AuditAction::EnrollmentCodeIssued).await;
        assert_eq!(codes.len(), 1, "{}", b.label);
        by_admin_of(&codes[0], &demo, &admin_id);
        assert_eq!(codes[0].subject_id, Some(agent_id.clone()));
        let hash = tandem_server::secrets::enrollment_code_hash(&code);
        let detail = codes[0].detail.to_string();
        assert!(
            !detail.contains(&code)
                && !detail.contains(&code.replace('-', ""))
                && !detail.contains(&hash),
            "{}: never the code",
            b.label
        );
        let revoked = audited(&server, AuditAction::DeviceRevoked).await;
        assert_eq!(revoked.len(), 1, "{}", b.label);
        by_admin_of(&revoked[0], &demo, &admin_id);
        assert_eq!(revoked[0].subject_id, Some(device));
    }
}

/// The form values of the bank's policy page, as shown.
fn policy_form(page: &Page) -> Vec<(String, String)> {
    let mut out = vec![("csrf".to_owned(), page.csrf())];
    let zone = between(&page.body, "<option value=\"", "\" selected");
    out.push((
        "time_zone".into(),
        zone.rsplit('"').next().unwrap().to_owned(),
    ));
    for name in [
        "visit_start",
        "visit_end",
        "visit_end_warning_minutes",
        "geofence_radius_m",
        "max_fix_accuracy_m",
        "partner_max_distance_m",
        "max_visits_per_debtor_per_day",
        "clock_tolerance_minutes",
        "handshake_ttl_minutes",
        "audio_segment_seconds",
        "audio_gap_tolerance_seconds",
        "deposit_deadline_business_days",
        "upload_deadline_hours",
        "retention_days",
    ] {
        let field = between(&page.body, &format!("name=\"{name}\" value=\""), "\"");
        out.push((name.to_owned(), field.to_owned()));
    }
    out
}

fn with(form: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    form.iter()
        .map(|(k, v)| {
            if k == name {
                (k.clone(), value.to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

async fn post_pairs(browser: &mut Browser, path: &str, form: &[(String, String)]) -> Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post(path, &pairs).await
}

#[tokio::test]
async fn a_policy_saved_here_is_the_signed_version_a_phone_pulls_next() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        let mut admin = signed_in(&server, &demo, "admin").await;
        let path = format!("/admin/policy/{}", demo.bank_id());
        let page = admin.get(&path).await;
        assert_eq!(page.status, 200, "{}", b.label);
        let form = policy_form(&page);
        assert!(
            form.contains(&("visit_start".into(), "08:00".into())),
            "{form:?}"
        );
        assert!(form.contains(&("upload_deadline_hours".into(), "24".into())));

        // E04: never less than two years; every wrong field says so, nothing is saved.
        let bad = with(&with(&form, "retention_days", "365"), "visit_end", "07:00");
        let refused = post_pairs(&mut admin, &path, &bad).await;
        assert_eq!(refused.status, 422, "{}", b.label);
        assert!(refused.body.contains("E04"), "{}", b.label);
        assert!(refused.body.contains("开始早于结束"), "{}", b.label);
        assert!(refused.body.contains("有 2 个字段需要更正"), "{}", b.label);

        let good = with(
            &with(&form, "geofence_radius_m", "300"),
            "visit_start",
            "09:30",
        );
        let saved = post_pairs(&mut admin, &path, &good).await;
        assert_eq!(saved.status, 303, "{}: {}", b.label, saved.body);
        let shown = admin.get(saved.location()).await;
        assert!(shown.body.contains("当前版本 2"), "{}", b.label);

        let feed: Value = server
            .http
            .get(server.url("/v1/sync?limit=100"))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let policies: Vec<Policy> = feed["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == "policy")
            .map(|c| {
                let signed: Signed<Policy> = serde_json::from_str(
                    c["document"]
                        .as_str()
                        .map_or_else(|| c["document"].to_string(), str::to_owned)
                        .as_str(),
                )
                .unwrap();
                signed.verify(&server.state.signer.public_key()).unwrap()
            })
            .collect();
        let newest = policies.last().expect("a policy in the feed");
        assert_eq!(newest.version, 2, "{}", b.label);
        assert_eq!(newest.geofence_radius_m, 300);
        assert_eq!(newest.visit_start_minute, 9 * 60 + 30);
        assert_eq!(newest.retention_days, 730);

        let entries = audited(&server, AuditAction::PolicyChanged).await;
        assert_eq!(entries.len(), 1, "{}", b.label);
        by_admin_of(&entries[0], &demo, &user_id(&demo, "admin"));
        assert_eq!(entries[0].detail["version"], 2);

        // The audit page lists it, in the bank's zone, without anyone's name.
        let log = admin.get("/admin/audit?action=policy-changed").await;
        assert_eq!(log.status, 200, "{}", b.label);
        assert!(log.body.contains("修改策略") && log.body.contains("版本 2"));
        assert!(!log.body.contains("系统管理员</td>"), "{}", b.label);
        let none = admin.get("/admin/audit?action=device-revoked").await;
        assert!(none.body.contains("没有符合条件的记录"), "{}", b.label);
    }
}

#[tokio::test]
async fn another_banks_admin_finds_nothing_of_this_bank_and_a_manager_is_forbidden() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let other = seed_demo(server.state.db.as_ref(), "bank-b").await;
        let (_, phone) = server.enroll(demo.code(0)).await;
        // Actor: a user of another bank guessing ids.
        let mut admin_b = signed_in(&server, &other, "bank-b-admin").await;
        let random = uuid::Uuid::now_v7();
        let unknown = admin_b.get(&format!("/admin/users/{random}")).await;
        assert_eq!(unknown.status, 404);
        let gets = [
            format!("/admin/users/{}", user_id(&demo, "manager")),
            format!("/admin/agents/{}", demo.agent_id(0)),
            format!("/admin/policy/{}", demo.bank_id()),
        ];
        for path in &gets {
            let page = admin_b.get(path).await;
            assert_eq!(page.status, 404, "{}: {path}", b.label);
            assert!(
                page.body
                    .contains(between(&unknown.body, "role=\"alert\">", "<"))
            );
        }
        let list = admin_b.get("/admin/users").await;
        assert!(!list.body.contains(">manager<"), "{}", b.label);
        assert!(list.body.contains("bank-b-manager"), "{}", b.label);
        let agents = admin_b.get("/admin/agents").await;
        assert!(!agents.body.contains(&demo.agent_id(0).to_string()));
        let audit = admin_b.get("/admin/audit").await;
        assert_eq!(audit.status, 200);

        let device = phone.enrollment.device_id;
        let posts = [
            (
                format!("/admin/devices/{device}/revoke"),
                vec![("reason", "x")],
            ),
            (format!("/admin/agents/{}/code", demo.agent_id(0)), vec![]),
            (
                format!("/admin/users/{}/disable", user_id(&demo, "manager")),
                vec![],
            ),
            (
                format!("/admin/policy/{}", demo.bank_id()),
                vec![("time_zone", "Asia/Shanghai")],
            ),
        ];
        for (path, form) in &posts {
            let page = post_from(&mut admin_b, "/admin/users", path, form).await;
            assert_eq!(page.status, 404, "{}: {path}", b.label);
        }
        let resp = server
            .http
            .get(server.url("/v1/device"))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}: the phone still works", b.label);

        // Actor: a role without need.
        let mut manager = signed_in(&server, &demo, "manager").await;
        for path in [
            "/admin/users",
            "/admin/agents",
            "/admin/policy",
            "/admin/audit",
        ] {
            assert_eq!(manager.get(path).await.status, 403, "{}: {path}", b.label);
        }
        let page = manager.get("/requests").await;
        assert!(
            !page.body.contains("/admin/users"),
            "{}: no admin entry",
            b.label
        );
        let forbidden = manager
            .post(
                "/admin/users",
                &[
                    ("csrf", &page.csrf()),
                    ("login", "mallory"),
                    ("name", "M"),
                    ("role", "admin"),
                    ("bank", &demo.bank_id().to_string()),
                ],
            )
            .await;
        assert_eq!(forbidden.status, 403, "{}", b.label);
        assert_eq!(manager.get("/").await.location(), "/requests");
        assert!(audited(&server, AuditAction::UserCreated).await.is_empty());
        assert!(
            audited(&server, AuditAction::DeviceRevoked)
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn admin_forms_without_this_sessions_csrf_token_change_nothing() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let mut admin = signed_in(&server, &demo, "admin").await;
        let bank = demo.bank_id().to_string();
        // Actor: a web attacker forging a signed-in admin's form posts.
        let posts = [
            (
                "/admin/users".to_owned(),
                vec![
                    ("login", "mallory"),
                    ("name", "M"),
                    ("role", "admin"),
                    ("bank", bank.as_str()),
                ],
            ),
            (
                format!("/admin/users/{}/disable", user_id(&demo, "manager")),
                vec![],
            ),
            (format!("/admin/agents/{}/code", demo.agent_id(0)), vec![]),
            (
                format!("/admin/policy/{bank}"),
                vec![("retention_days", "730")],
            ),
        ];
        for (path, form) in &posts {
            for csrf in [None, Some("forged")] {
                let mut fields = form.clone();
                if let Some(token) = csrf {
                    fields.push(("csrf", token));
                }
                let page = admin.post(path, &fields).await;
                assert_eq!(page.status, 403, "{}: {path} {csrf:?}", b.label);
            }
        }
        let counts = server.state.db.counts().await.unwrap();
        assert_eq!(counts.policies, 1, "{}", b.label);
        for action in [
            AuditAction::UserCreated,
            AuditAction::UserDisabled,
            AuditAction::EnrollmentCodeIssued,
            AuditAction::PolicyChanged,
        ] {
            assert!(
                audited(&server, action).await.is_empty(),
                "{}: {action}",
                b.label
            );
        }
        let manager = Browser::new(&server)
            .sign_in("manager", demo.password("manager"))
            .await;
        assert_eq!(manager.status, 303, "{}: still enabled", b.label);
    }
}

#[tokio::test]
async fn the_json_api_writes_the_same_audit_entries_as_the_pages() {
    for b in common::backends().await {
        let (server, demo) = server(&b).await;
        let admin = server.login("admin", demo.password("admin")).await;
        let resp = server
            .post_json(
                &admin,
                &format!("/v1/agents/{}/enrollment-codes", demo.agent_id(1)),
                json!({}),
            )
            .await;
        assert_eq!(resp.status(), 201, "{}", b.label);
        let path = server.url(&format!("/v1/banks/{}/policy", demo.bank_id()));
        let policy = Policy {
            retention_days: 729,
            ..Policy::defaults(demo.bank_id())
        };
        let resp = server
            .http
            .put(&path)
            .bearer_auth(&admin)
            .json(&policy)
            .send()
            .await
            .unwrap();
        let (kind, body) = problem(resp, 422).await;
        assert_eq!(
            (kind.as_str(), body["rule"].as_str()),
            ("policy-invalid", Some("E04"))
        );
        let policy = Policy {
            retention_days: 1_095,
            ..Policy::defaults(demo.bank_id())
        };
        let resp = server
            .http
            .put(&path)
            .bearer_auth(&admin)
            .json(&policy)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", b.label);
        let admin_id = user_id(&demo, "admin");
        for action in [
            AuditAction::EnrollmentCodeIssued,
            AuditAction::PolicyChanged,
        ] {
            let entries = audited(&server, action).await;
            assert_eq!(entries.len(), 1, "{}: {action}", b.label);
            by_admin_of(&entries[0], &demo, &admin_id);
        }
    }
}
