//! The web console over real HTTP on every backend: the sign-in form in both languages,
//! the session cookie, CSRF tokens on every form, the headers every page carries, the
//! requests queue of a manager's banks. Negative tests name the actor they stop
//! (THREATS.md). (Browser tests drive the same pages in Chromium.)

mod common;

use common::browser::{Browser, Page};
use common::{Demo, TestServer, seed_demo};
use reqwest::header;
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

/// The headers every console page carries.
fn assert_page_headers(page: &Page, what: &str) {
    let h = |name: header::HeaderName| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = h(header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h(header::X_FRAME_OPTIONS), "DENY", "{what}");
    assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
    assert_eq!(h(header::REFERRER_POLICY), "no-referrer", "{what}");
    assert_eq!(h(header::CACHE_CONTROL), "no-store", "{what}");
    assert!(h(header::CONTENT_TYPE).starts_with("text/html"), "{what}");
}

async fn pending_request(server: &TestServer, demo: &Demo, purpose: &str) {
    let manager = server.login("manager", demo.password("manager")).await;
    let now = tandem_server::clock::system_now_ms();
    let resp = server
        .post_json(
            &manager,
            "/v1/visit-requests",
            json!({"case_id": demo.seed.cases[0].id.to_string(), "wanted_from_ms": now,
                   "wanted_until_ms": now + DAY_MS, "purpose": purpose}),
        )
        .await;
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn the_sign_in_page_speaks_chinese_first_and_english_by_choice() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let mut browser = Browser::new(&server);
        let home = browser.get("/").await;
        assert_eq!(home.status, 303, "{}", b.label);
        assert_eq!(home.location(), "/login");

        let page = browser.get("/login").await;
        assert_eq!(page.status, 200, "{}", b.label);
        assert_page_headers(&page, "sign-in");
        assert!(page.body.contains("<html lang=\"zh-CN\">"), "{}", page.body);
        assert!(page.body.contains("登录管理控制台"));
        assert!(!page.body.contains("Sign in to the console"));
        let csrf_cookie = page
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("tandem_csrf="))
            .expect("a CSRF cookie");
        assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));

        browser.lang = Some("en-GB,en;q=0.9,zh;q=0.5");
        let english = browser.get("/login").await;
        assert!(english.body.contains("<html lang=\"en\">"));
        assert!(english.body.contains("Sign in to the console"));
        assert!(!english.body.contains("登录管理控制台"));

        // The switch keeps the choice in a cookie, above what the browser asks for.
        let switched = browser.get("/lang/zh-CN?back=/login").await;
        assert_eq!((switched.status, switched.location()), (303, "/login"));
        assert!(browser.get("/login").await.body.contains("登录管理控制台"));
        // Actor: anyone crafting links: the switch only ever goes back to this site.
        let away = browser.get("/lang/en?back=//evil.example/").await;
        assert_eq!(away.location(), "/");

        let css = browser.get("/assets/console.css").await;
        assert_eq!(css.status, 200);
        assert!(css.body.contains("--brand"));
    }
}

#[tokio::test]
async fn a_manager_signs_in_through_the_form_and_sees_the_pending_requests_escaped() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        // Actor: anyone putting markup into a field a manager reads.
        pending_request(&server, &demo, "<script>alert(1)</script> 核实地址").await;

        let mut browser = Browser::new(&server);
        let signed_in = browser.sign_in("manager", demo.password("manager")).await;
        assert_eq!(signed_in.status, 303, "{}: {}", b.label, signed_in.body);
        assert_eq!(signed_in.location(), "/requests");
        let session = signed_in
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("tandem_session="))
            .expect("a session cookie");
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));

        let page = browser.get("/requests").await;
        assert_eq!(page.status, 200, "{}", b.label);
        assert_page_headers(&page, "requests");
        let case = &demo.seed.cases[0];
        assert!(page.body.contains(&case.case_ref), "{}", page.body);
        assert!(page.body.contains("共 1 条待审批"));
        assert!(page.body.contains(case.card.as_str()));
        assert!(!page.body.contains("<script>alert(1)</script>"));
        let shown = page
            .body
            .split("<td class=\"prose\">")
            .find(|c| c.contains("核实地址"))
            .unwrap_or_default();
        // Shown as text: askama escapes `<` and `>` as numeric references.
        assert!(
            shown.starts_with("&#60;script&#62;alert(1)&#60;/script&#62; 核实地址"),
            "{shown}"
        );
        let outstanding = format!(
            "¥{}",
            tandem_core::model::Fen(case.outstanding_fen).grouped_abs()
        );
        assert!(page.body.contains(&outstanding), "{outstanding}");
        assert_eq!(browser.get("/").await.location(), "/requests");
    }
}

#[tokio::test]
async fn a_form_without_its_token_is_refused() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let password = demo.password("manager");
        // Actor: a malicious web page a manager visits, posting to the console.
        let mut attacker = Browser::new(&server);
        let forged = attacker
            .post(
                "/login",
                &[
                    ("csrf", "guess"),
                    ("login", "manager"),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(forged.status, 403, "{}", b.label);
        assert!(forged.body.contains("表单已失效"));

        let mut browser = Browser::new(&server);
        assert_eq!(browser.sign_in("manager", password).await.status, 303);
        let page = browser.get("/requests").await;
        let good = page.csrf();
        let refused = browser.post("/logout", &[("csrf", "not-the-token")]).await;
        assert_eq!(refused.status, 403);
        assert_eq!(
            browser.get("/requests").await.status,
            200,
            "still signed in"
        );

        let out = browser.post("/logout", &[("csrf", &good)]).await;
        assert_eq!((out.status, out.location()), (303, "/login?why=out"));
        assert!(
            browser
                .get("/login?why=out")
                .await
                .body
                .contains("您已安全退出")
        );
        let after = browser.get("/requests").await;
        assert_eq!((after.status, after.location()), (303, "/login"));

        // A browser still holding a session that ended is told so.
        let mut stale = Browser::new(&server);
        stale
            .cookies
            .push(("tandem_session".into(), "tss_ended".into()));
        let sent = stale.get("/requests").await;
        assert_eq!((sent.status, sent.location()), (303, "/login?why=ended"));
        assert!(
            stale
                .get("/login?why=ended")
                .await
                .body
                .contains("您的会话已结束")
        );
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_name_get_the_same_answer_in_the_users_language() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let mut browser = Browser::new(&server);
        // Actor: someone guessing sign-in names.
        let wrong = browser.sign_in("manager", "not-the-password").await;
        let unknown = browser.sign_in("nobody-here", "not-the-password").await;
        assert_eq!((wrong.status, unknown.status), (422, 422), "{}", b.label);
        for page in [&wrong, &unknown] {
            assert!(page.body.contains("用户名或密码错误。"));
            assert_page_headers(page, "refused sign-in");
        }
        assert!(wrong.body.contains("value=\"manager\""), "the name is kept");

        browser.lang = Some("en");
        let english = browser.sign_in("manager", "still-wrong").await;
        assert!(english.body.contains("Wrong sign-in name or password."));
    }
}

/// Every form a signed-in user posts (the evidence pages' aside), with ids that need not
/// exist: the checks come before the id is looked up.
const POSTED_FORMS: [&str; 22] = [
    "/logout",
    "/password",
    "/requests/0/approve",
    "/requests/0/reject",
    "/cases/import",
    "/cases/0/request",
    "/cases/0/complaint",
    "/complaints/0/resolve",
    "/receipts/0/deposit",
    "/admin/users",
    "/admin/users/0/access",
    "/admin/users/0/disable",
    "/admin/users/0/enable",
    "/admin/agents",
    "/admin/agents/0/code",
    "/admin/devices/0/revoke",
    "/admin/policy/0",
    "/admin/audit/verify",
    "/retention/holds",
    "/retention/holds/0/lift",
    "/retention/destructions",
    "/retention/destructions/0/approve",
];

#[tokio::test]
async fn every_form_wants_a_session_then_its_token_then_the_role() {
    for b in common::backends().await {
        let label = b.label;
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        // Actor: anyone on the internet, not signed in: sent to sign in, nothing read.
        let mut stranger = Browser::new(&server);
        for path in POSTED_FORMS {
            let page = stranger.post(path, &[("csrf", "guess")]).await;
            assert_eq!(
                (page.status, page.location()),
                (303, "/login"),
                "{label}: {path}"
            );
        }
        // Actor: a malicious web page a signed-in user visits: refused in the page's
        // language before the role is even looked at (an admin's form too).
        let mut manager = Browser::new(&server);
        manager.lang = Some("en");
        manager
            .sign_in_ok("manager", demo.password("manager"))
            .await;
        for path in POSTED_FORMS {
            let page = manager.post(path, &[("csrf", "not-the-token")]).await;
            assert_eq!(page.status, 403, "{label}: {path}");
            assert!(
                page.body.contains("This form has expired"),
                "{label}: {path}"
            );
        }
        // Actor: a user without need for the data (D01): the right token, the wrong role.
        let csrf = manager.get("/requests").await.csrf();
        let mut legal = Browser::new(&server);
        legal.lang = Some("en");
        legal.sign_in_ok("legal", demo.password("legal")).await;
        let legal_csrf = legal.get("/retention").await.csrf();
        let refused = [
            manager
                .post("/admin/audit/verify", &[("csrf", &csrf)])
                .await,
            manager.post("/retention/holds", &[("csrf", &csrf)]).await,
            legal.post("/admin/users", &[("csrf", &legal_csrf)]).await,
        ];
        for page in refused {
            assert_eq!(page.status, 403, "{label}");
            assert!(
                page.body.contains("Your role cannot use this page."),
                "{label}"
            );
        }
    }
}

#[tokio::test]
async fn legal_staff_are_told_the_requests_queue_is_not_theirs() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let mut browser = Browser::new(&server);
        // Actor: a user without need for this data (D01): legal staff do not decide visits.
        assert_eq!(
            browser
                .sign_in("legal", demo.password("legal"))
                .await
                .status,
            303
        );
        let page = browser.get("/requests").await;
        assert_eq!(page.status, 403, "{}", b.label);
        assert!(page.body.contains("您的角色不能使用此页面。"));
        assert!(page.body.contains("退出登录"), "still offered the way out");
    }
}

/// What a page shows in its `<main>` (the frame differs by its own address).
fn main_of(page: &Page) -> &str {
    let from = page.body.find("<main").expect("a main element");
    let to = page.body.find("</main>").expect("its end");
    &page.body[from..to]
}

/// The href of the first request in the queue.
fn first_request_href(queue: &Page) -> String {
    let at = queue
        .body
        .find("href=\"/requests/")
        .expect("a request link")
        + 6;
    queue.body[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_manager_approves_a_request_by_the_form_and_the_teams_phones_receive_it() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let (_, lead) = server.enroll(demo.code(0)).await;
        let (_, partner) = server.enroll(demo.code(1)).await;
        pending_request(&server, &demo, "核实地址").await;

        let mut browser = Browser::new(&server);
        browser.sign_in("manager", demo.password("manager")).await;
        let queue = browser.get("/requests").await;
        let href = first_request_href(&queue);
        let page = browser.get(&href).await;
        assert_eq!(page.status, 200, "{}: {}", b.label, page.body);
        assert_page_headers(&page, "request");
        assert!(page.body.contains("批准外访"), "{}", page.body);
        let case = &demo.seed.cases[0];
        assert!(page.body.contains(case.card.as_str()));
        let csrf = page.csrf();
        let agent = |i: usize| demo.agent_id(i).to_string();
        let (lead_agent, partner_agent) = (agent(0), agent(1));
        let now = tandem_server::clock::system_now_ms();
        let zone = chrono_tz::Asia::Shanghai;
        let local = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .with_timezone(&zone)
        };
        let from = local(now + 3_600_000).format("%Y-%m-%dT%H:%M").to_string();
        let until = local(now + DAY_MS).format("%Y-%m-%dT%H:%M").to_string();
        let letter_until = local(now + 10 * DAY_MS).format("%Y-%m-%d").to_string();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("agent", lead_agent.as_str()),
            ("valid_from", from.as_str()),
            ("valid_until", until.as_str()),
            ("letter_number", "WT-2026-0042"),
            ("letter_until", letter_until.as_str()),
            ("cash", "1"),
            ("cash_limit", "5,000.00"),
            ("cash_account", "6222 0000 1111"),
            ("cash_method", "cash"),
            ("promise_instalments", "1"),
        ];

        // One agent only: refused by V03, the form shown again as typed.
        let refused = browser.post(&format!("{href}/approve"), &form).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(
            refused
                .body
                .contains("规则 V03：请至少选择两名不同的催收员。"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("value=\"WT-2026-0042\""));
        assert!(refused.body.contains("value=\"5,000.00\""));

        // Actor: a malicious page a signed-in manager visits posts the form without the
        // session's token.
        let mut forged = form.clone();
        forged[0] = ("csrf", "forged");
        forged.push(("agent", partner_agent.as_str()));
        let cross_site = browser.post(&format!("{href}/approve"), &forged).await;
        assert_eq!(cross_site.status, 403);

        form.push(("agent", partner_agent.as_str()));
        let approved = browser.post(&format!("{href}/approve"), &form).await;
        assert_eq!(approved.status, 303, "{}: {}", b.label, approved.body);
        assert_eq!(approved.location(), "/requests?done=approved");
        let after = browser.get(approved.location()).await;
        assert!(after.body.contains("外访已审批"), "{}", after.body);
        assert!(after.body.contains("共 0 条待审批"), "{}", after.body);
        let decided = browser.get(&href).await;
        assert!(decided.body.contains("审批通过。"), "{}", decided.body);
        assert!(!decided.body.contains("/approve\""));

        // The visit is listed, awaiting evidence, with its team and terms.
        let visits = browser.get("/visits").await;
        assert_eq!(visits.status, 200);
        assert_page_headers(&visits, "visits");
        assert!(visits.body.contains("已审批，等待证据"), "{}", visits.body);
        let at = visits.body.find("href=\"/visits/").unwrap() + 6;
        let visit_href = visits.body[at..].split('"').next().unwrap().to_owned();
        let visit = browser.get(&visit_href).await;
        assert_eq!(visit.status, 200, "{}", visit.body);
        assert!(visit.body.contains("编号 WT-2026-0042"), "{}", visit.body);
        assert!(
            visit
                .body
                .contains("最多 ¥5,000.00，存入账户 6222 0000 1111；现金")
        );
        assert!(visit.body.contains("分期还款"));
        assert!(visit.body.contains("尚无证据"));

        // Both phones receive the signed assignment with the manager's terms.
        for token in [&lead.token, &partner.token] {
            let resp = server
                .http
                .get(server.url("/v1/sync?limit=100"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let page: serde_json::Value = resp.json().await.unwrap();
            let assignment = page["changes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["kind"] == "assignment")
                .expect("the assignment");
            let approval: serde_json::Value =
                serde_json::from_str(assignment["document"]["approval"]["body"].as_str().unwrap())
                    .unwrap();
            assert_eq!(approval["letter"]["number"], "WT-2026-0042");
            assert_eq!(approval["cash"]["limit"], 500_000);
            assert_eq!(approval["cash"]["designated_account"], "6222 0000 1111");
            assert_eq!(approval["promise"]["instalments"], true);
            assert_eq!(approval["team"].as_array().unwrap().len(), 2);
        }
        let audited = server
            .state
            .db
            .audit_entries(
                &tandem_server::audit::AuditFilter {
                    action: Some(tandem_server::audit::AuditAction::VisitApproved),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(audited.len(), 1, "{}", b.label);
        assert_eq!(audited[0].entry.bank_id, Some(demo.bank_id()));
    }
}

#[tokio::test]
async fn another_banks_manager_gets_the_same_not_found_for_a_request_as_for_a_random_id() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let other = seed_demo(server.state.db.as_ref(), "xinhai-bank").await;
        pending_request(&server, &demo, "核实地址").await;
        let mut owner = Browser::new(&server);
        owner.sign_in("manager", demo.password("manager")).await;
        let href = first_request_href(&owner.get("/requests").await);

        // Actor: a manager of another bank guessing ids.
        let mut stranger = Browser::new(&server);
        let login = other
            .creds
            .users
            .iter()
            .find(|(_, role, _)| *role == tandem_server::db::Role::Manager)
            .map(|(l, _, p)| (l.clone(), p.clone()))
            .unwrap();
        let signed_in = stranger.sign_in(&login.0, &login.1).await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        let theirs = stranger.get(&href).await;
        let random = stranger
            .get(&format!("/requests/{}", uuid::Uuid::now_v7()))
            .await;
        let garbage = stranger.get("/requests/not-an-id").await;
        assert_eq!(theirs.status, 404, "{}", b.label);
        assert_eq!(random.status, 404);
        assert_eq!(garbage.status, 404);
        assert_eq!(main_of(&theirs), main_of(&random));
        assert_eq!(main_of(&theirs), main_of(&garbage));
        let csrf = theirs.csrf();
        let post = stranger
            .post(
                &format!("{href}/reject"),
                &[("csrf", &csrf), ("reason", "x")],
            )
            .await;
        assert_eq!(post.status, 404);
        assert!(owner.get("/requests").await.body.contains("共 1 条待审批"));
        let random_visit = stranger
            .get(&format!("/visits/{}", uuid::Uuid::now_v7()))
            .await;
        assert_eq!(random_visit.status, 404);
        assert_eq!(main_of(&random_visit), main_of(&random));
    }
}

/// A case file of `refs`, entrusted from yesterday for 180 days; `names` are the debtors.
fn case_csv(rows: &[(&str, &str)]) -> String {
    let now = tandem_server::clock::system_now_ms();
    let mut csv = String::from(
        "case_ref,card_number,debtor_name,id_number,outstanding_fen,entrustment_start_ms,\
         entrustment_end_ms,address_1,lat_e7_1,lon_e7_1,datum_1\n",
    );
    for (i, (case_ref, name)) in rows.iter().enumerate() {
        csv.push_str(&format!(
            "{case_ref},62220202000012{i:05},\"{name}\",11010119900307{i:03}4,{},{},{},\
             上海市浦东新区世纪大道{i}号,312345670,1215123450,gcj02\n",
            100_000 + i * 1000,
            now - DAY_MS,
            now + 180 * DAY_MS
        ));
    }
    csv
}

#[tokio::test]
async fn a_manager_imports_a_case_file_by_the_form_finds_a_case_and_asks_for_a_visit() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        let bank = demo.bank_id().to_string();
        let mut browser = Browser::new(&server);
        browser.sign_in("manager", demo.password("manager")).await;

        // Two bad rows: nothing imported, each named by its line and column.
        let mut bad = case_csv(&[("IMP-1", "张三"), ("IMP-2", "李四"), ("IMP-1", "王五")]);
        bad = bad.replacen("6222020200001200001", "1234", 1);
        let refused = browser.upload(&bank, "cases.csv", bad.into_bytes()).await;
        assert_eq!(refused.status, 422, "{}: {}", b.label, refused.body);
        assert!(
            refused.body.contains("文件中有 2 处问题"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("卡号应为 12 至 19 位数字"));
        assert!(refused.body.contains("文件前面已有相同的委案编号"));
        assert!(refused.body.contains("<td class=\"num\">3</td>"));
        assert!(refused.body.contains("<td class=\"num\">4</td>"));
        // Actor: a case file crafted to inject markup into the console.
        let xss = "<img src=x onerror=alert(1)>";
        let good = case_csv(&[("IMP-1", "张三"), ("IMP-2", xss), ("IMP-3", "王五")]);
        let list = browser.get("/cases?q=IMP").await;
        assert!(list.body.contains("没有符合条件的委案"), "{}", list.body);
        let imported = browser.upload(&bank, "cases.csv", good.into_bytes()).await;
        assert_eq!(imported.status, 200, "{}", imported.body);
        assert!(
            imported.body.contains("已导入 3 个委案"),
            "{}",
            imported.body
        );

        let list = browser.get("/cases?q=imp").await;
        assert_eq!(list.status, 200);
        assert_page_headers(&list, "cases");
        for r in ["IMP-1", "IMP-2", "IMP-3"] {
            assert!(list.body.contains(r), "{r}: {}", list.body);
        }
        assert!(!list.body.contains(xss));
        assert!(list.body.contains("&#60;img src=x onerror=alert(1)&#62;"));
        assert!(
            !list.body.contains("6222020200001200001"),
            "card numbers are masked"
        );
        let by_name = browser.get("/cases?q=%E7%8E%8B%E4%BA%94").await;
        assert!(by_name.body.contains("IMP-3") && !by_name.body.contains("IMP-1"));
        let settled = browser.get("/cases?q=IMP&status=settled").await;
        assert!(!settled.body.contains("IMP-1"));

        let at = list
            .body
            .find("<td class=\"mono nb\"><a href=\"/cases/")
            .unwrap()
            + 29;
        let href = list.body[at..].split('"').next().unwrap().to_owned();
        let case = browser.get(&href).await;
        assert_eq!(case.status, 200, "{}", case.body);
        assert!(case.body.contains("该债务人尚无外访"));
        let csrf = case.csrf();
        let address_at = case.body.find("name=\"address\" value=\"").unwrap() + 22;
        let address = case.body[address_at..]
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let zone = chrono_tz::Asia::Shanghai;
        let local = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .with_timezone(&zone)
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        };
        let now = tandem_server::clock::system_now_ms();
        let (from, until) = (local(now + 3_600_000), local(now + DAY_MS));
        let empty = browser
            .post(
                &format!("{href}/request"),
                &[
                    ("csrf", csrf.as_str()),
                    ("address", address.as_str()),
                    ("wanted_from", from.as_str()),
                    ("wanted_until", until.as_str()),
                    ("purpose", "  "),
                ],
            )
            .await;
        assert_eq!(empty.status, 422);
        assert!(empty.body.contains("请填写 1 至 500 个字符的外访目的"));
        let asked = browser
            .post(
                &format!("{href}/request"),
                &[
                    ("csrf", csrf.as_str()),
                    ("address", address.as_str()),
                    ("wanted_from", from.as_str()),
                    ("wanted_until", until.as_str()),
                    ("purpose", "核实还款意愿"),
                ],
            )
            .await;
        assert_eq!(asked.status, 303, "{}", asked.body);
        assert!(asked.location().starts_with("/requests/"));
        let request = browser.get(asked.location()).await;
        assert!(request.body.contains("核实还款意愿"));
        assert!(browser.get(&href).await.body.contains("待审批"));

        // Actor: a manager of another bank guessing a case's address.
        let other = seed_demo(server.state.db.as_ref(), "xinhai-bank").await;
        let (login, password) = other
            .creds
            .users
            .iter()
            .find(|(_, role, _)| *role == tandem_server::db::Role::Manager)
            .map(|(l, _, p)| (l.clone(), p.clone()))
            .unwrap();
        let mut stranger = Browser::new(&server);
        stranger.sign_in(&login, &password).await;
        let theirs = stranger.get(&href).await;
        let random = stranger
            .get(&format!("/cases/{}", uuid::Uuid::now_v7()))
            .await;
        assert_eq!(theirs.status, 404);
        assert_eq!(main_of(&theirs), main_of(&random));
        assert!(!stranger.get("/cases?q=IMP").await.body.contains("IMP-1"));
        let foreign = stranger
            .upload(
                &bank,
                "cases.csv",
                case_csv(&[("IMP-9", "赵六")]).into_bytes(),
            )
            .await;
        assert_eq!(foreign.status, 422, "another bank cannot be chosen");
        let nothing = browser.get("/cases?q=IMP-9").await;
        assert!(
            nothing.body.contains("没有符合条件的委案"),
            "{}",
            nothing.body
        );
    }
}

#[tokio::test]
async fn a_complaint_puts_the_case_on_hold_until_a_manager_resolves_it() {
    for b in common::backends().await {
        let server = TestServer::start(b.state().await).await;
        let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
        server.enroll(demo.code(0)).await;
        server.enroll(demo.code(1)).await;
        pending_request(&server, &demo, "核实地址").await;
        let mut browser = Browser::new(&server);
        browser.sign_in("manager", demo.password("manager")).await;
        let case_href = format!("/cases/{}", demo.seed.cases[0].id);

        let case = browser.get(&case_href).await;
        let csrf = case.csrf();
        let empty = browser
            .post(
                &format!("{case_href}/complaint"),
                &[("csrf", &csrf), ("note", " ")],
            )
            .await;
        assert_eq!(empty.status, 422);
        assert!(
            empty
                .body
                .contains("规则 P01：请填写 1 至 1000 个字符的说明。")
        );
        let recorded = browser
            .post(
                &format!("{case_href}/complaint"),
                &[("csrf", &csrf), ("note", "债务人来电投诉外访人员态度")],
            )
            .await;
        assert_eq!(recorded.status, 303, "{}: {}", b.label, recorded.body);
        let held = browser.get(recorded.location()).await;
        assert!(held.body.contains("投诉已登记"), "{}", held.body);
        assert!(held.body.contains("暂停：投诉"));

        // Approval is refused, naming V01; the request page warns before the manager tries.
        let href = first_request_href(&browser.get("/requests").await);
        let request = browser.get(&href).await;
        assert!(request.body.contains("<span class=\"rule\">V01</span>"));
        let (a0, a1) = (demo.agent_id(0).to_string(), demo.agent_id(1).to_string());
        let now = tandem_server::clock::system_now_ms();
        let local = |ms: i64, f: &str| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format(f)
                .to_string()
        };
        let (from, until) = (
            local(now + 3_600_000, "%Y-%m-%dT%H:%M"),
            local(now + DAY_MS, "%Y-%m-%dT%H:%M"),
        );
        let letter = local(now + 10 * DAY_MS, "%Y-%m-%d");
        let approve = [
            ("csrf", csrf.as_str()),
            ("agent", a0.as_str()),
            ("agent", a1.as_str()),
            ("valid_from", from.as_str()),
            ("valid_until", until.as_str()),
            ("letter_number", "WT-1"),
            ("letter_until", letter.as_str()),
        ];
        let refused = browser.post(&format!("{href}/approve"), &approve).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(
            refused.body.contains("规则 V01：委案已暂停。"),
            "{}",
            refused.body
        );

        // The review queue lists it with its deadline; resolving lifts the hold.
        let queue = browser.get("/flags").await;
        assert_eq!(queue.status, 200);
        assert_page_headers(&queue, "flags");
        assert!(queue.body.contains("债务人来电投诉外访人员态度"));
        let at = queue.body.find("action=\"/complaints/").unwrap() + 8;
        let resolve = queue.body[at..].split('"').next().unwrap().to_owned();
        let resolved = browser
            .post(
                &resolve,
                &[
                    ("csrf", csrf.as_str()),
                    ("note", "已回访债务人，致歉并更换外访人员"),
                ],
            )
            .await;
        assert_eq!(resolved.status, 303, "{}", resolved.body);
        let again = browser
            .post(&resolve, &[("csrf", csrf.as_str()), ("note", "x")])
            .await;
        assert_eq!(again.status, 422);
        assert!(again.body.contains("该投诉已处理"));
        assert!(browser.get(&case_href).await.body.contains("在催"));
        let approved = browser.post(&format!("{href}/approve"), &approve).await;
        assert_eq!(approved.status, 303, "{}", approved.body);
        for action in [
            tandem_server::audit::AuditAction::ComplaintRecorded,
            tandem_server::audit::AuditAction::ComplaintResolved,
        ] {
            let filter = tandem_server::audit::AuditFilter {
                action: Some(action),
                ..Default::default()
            };
            let found = server.state.db.audit_entries(&filter, 10).await.unwrap();
            assert_eq!(found.len(), 1, "{action}");
        }
    }
}
