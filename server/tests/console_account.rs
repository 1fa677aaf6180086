//! Account security (A01) over real HTTP on every backend: the lockout after failed
//! sign-ins in a row (the same answers for an unknown name), one session per account, the
//! password that expires and the rules a new one follows, each written to the audit log;
//! through the console's forms and the JSON API alike. Negative tests name the actor they
//! stop (THREATS.md).

mod common;

use std::sync::Arc;

use common::browser::Browser;
use common::{Demo, TestBackend, TestServer, problem, seed_demo};
use serde_json::{Value, json};
use tandem_server::audit::{AuditAction, AuditFilter};
use tandem_server::clock::ShiftedClock;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// A server on `b` whose clock the test moves, with the demo organisation.
async fn server(b: &TestBackend) -> (TestServer, Demo, Arc<ShiftedClock>) {
    let clock = Arc::new(ShiftedClock::new(0));
    let state = b.state().await.with_clock(clock.clone());
    let server = TestServer::start(state).await;
    let demo = seed_demo(server.state.db.as_ref(), "pujiang-cc").await;
    (server, demo, clock)
}

async fn login(server: &TestServer, login: &str, password: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/v1/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The audit entries of `action`, oldest first.
async fn audited(
    server: &TestServer,
    action: AuditAction,
) -> Vec<tandem_server::audit::AuditEntry> {
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

fn manager_id(demo: &Demo) -> String {
    demo.seed
        .users
        .iter()
        .find(|u| u.login == "manager")
        .unwrap()
        .id
        .to_string()
}

async fn change(server: &TestServer, token: &str, current: &str, new: &str) -> reqwest::Response {
    server
        .post_json(
            token,
            "/v1/password",
            json!({"current_password": current, "new_password": new}),
        )
        .await
}

#[tokio::test]
async fn a01_five_wrong_passwords_lock_a_name_known_or_not_even_against_the_right_password() {
    for b in common::backends().await {
        let (server, demo, clock) = server(&b).await;
        let password = demo.password("manager");
        // Actor: anyone on the internet guessing passwords, and probing which names exist.
        let mut answers: [Vec<(u16, Value)>; 2] = [Vec::new(), Vec::new()];
        for (slot, name) in ["manager", "nobody-here"].into_iter().enumerate() {
            for _ in 0..5 {
                let resp = login(&server, name, "not-the-password").await;
                let status = resp.status().as_u16();
                answers[slot].push((status, resp.json().await.unwrap()));
            }
            let right = if slot == 0 { password } else { "any" };
            let resp = login(&server, name, right).await;
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((14 * 60..=15 * 60).contains(&retry), "{}: {retry}", b.label);
            let (kind, body) = problem(resp, 429).await;
            assert_eq!(kind, "account-locked", "{}", b.label);
            answers[slot].push((429, body));
        }
        assert_eq!(answers[0], answers[1], "{}: one answer for both", b.label);
        let statuses: Vec<u16> = answers[0].iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses, [401, 401, 401, 401, 429, 429], "{}", b.label);

        let locked = audited(&server, AuditAction::LockedOut).await;
        assert_eq!(locked.len(), 2, "{}", b.label);
        assert_eq!(locked[0].subject_id, Some(manager_id(&demo)));
        assert_eq!(locked[1].subject_id, None, "an unknown name is not stored");
        let failed = audited(&server, AuditAction::SignInFailed).await;
        assert_eq!(failed.len(), 12, "{}: every failure", b.label);
        assert_eq!(failed[4].detail["failures"], 5);
        assert_eq!(failed[5].detail["reason"], "locked");
        let all = server
            .state
            .db
            .audit_entries(&AuditFilter::default(), 1_000)
            .await
            .unwrap();
        let text = format!("{all:?}");
        assert!(!text.contains("nobody-here") && !text.contains(password));

        // The lock lasts 15 minutes, by the server's clock (which the lock is stored in).
        clock.advance_ms(14 * MINUTE_MS);
        assert_eq!(login(&server, "manager", password).await.status(), 429);
        clock.advance_ms(MINUTE_MS + 1_000);
        assert_eq!(login(&server, "manager", password).await.status(), 200);
        assert_eq!(audited(&server, AuditAction::SignIn).await.len(), 1);
    }
}

#[tokio::test]
async fn a01_the_console_form_says_the_account_is_locked_whether_it_exists_or_not() {
    for b in common::backends().await {
        let (server, demo, _clock) = server(&b).await;
        // Actor: anyone on the internet guessing passwords through the console's form.
        let mut browser = Browser::new(&server);
        for i in 1..=5 {
            let page = browser.sign_in("manager", "not-the-password").await;
            let expected = if i < 5 { 422 } else { 429 };
            assert_eq!(page.status, expected, "{}: attempt {i}", b.label);
        }
        let right = browser.sign_in("manager", demo.password("manager")).await;
        assert_eq!(right.status, 429, "{}: locked even now", b.label);
        assert!(right.body.contains("该账号已被锁定"), "{}", right.body);
        assert!(right.body.contains("15 分钟"), "{}", right.body);
        assert!(!browser.cookies.iter().any(|(n, _)| n == "tandem_session"));

        let mut other = Browser::new(&server);
        other.lang = Some("en");
        for _ in 0..5 {
            other.sign_in("nobody-here", "not-the-password").await;
        }
        let unknown = other.sign_in("nobody-here", "not-the-password").await;
        assert_eq!(unknown.status, 429, "{}", b.label);
        assert!(
            unknown
                .body
                .contains("Too many failed sign-ins in a row: this account is locked."),
            "{}",
            unknown.body
        );
    }
}

#[tokio::test]
async fn a01_a_second_sign_in_ends_the_first_session_which_is_told_why() {
    for b in common::backends().await {
        let (server, demo, _clock) = server(&b).await;
        let password = demo.password("manager");
        // Actor: a thief of a password or a session, who signs in alongside the user.
        let mut first = Browser::new(&server);
        assert_eq!(first.sign_in("manager", password).await.status, 303);
        assert_eq!(first.get("/requests").await.status, 200);
        let mut second = Browser::new(&server);
        assert_eq!(second.sign_in("manager", password).await.status, 303);
        assert_eq!(second.get("/requests").await.status, 200, "{}", b.label);

        let sent = first.get("/requests").await;
        assert_eq!(
            (sent.status, sent.location()),
            (303, "/login?why=elsewhere"),
            "{}",
            b.label
        );
        assert!(
            !first.cookies.iter().any(|(n, _)| n == "tandem_session"),
            "the stale cookie is cleared"
        );
        let told = first.get("/login?why=elsewhere").await;
        assert_eq!(told.status, 200);
        assert!(
            told.body.contains("您的账号已在其他地方登录"),
            "{}",
            told.body
        );

        // The JSON API: the first token answers 401 with its own type.
        let token1 = server.login("manager", password).await;
        let token2 = server.login("manager", password).await;
        let me = |t: &str| {
            server
                .http
                .get(server.url("/v1/me"))
                .bearer_auth(t.to_owned())
                .send()
        };
        assert_eq!(me(&token2).await.unwrap().status(), 200);
        let (kind, body) = problem(me(&token1).await.unwrap(), 401).await;
        assert_eq!(kind, "session-replaced", "{}", b.label);
        assert_eq!(body["rule"], "A01");
        // The browser that signed in last was replaced too.
        let sent = second.get("/requests").await;
        assert_eq!(sent.location(), "/login?why=elsewhere");

        let replaced = audited(&server, AuditAction::SessionReplaced).await;
        assert_eq!(replaced.len(), 3, "{}", b.label);
        assert!(
            replaced
                .iter()
                .all(|e| e.subject_id == Some(manager_id(&demo)))
        );
        let signed_in = audited(&server, AuditAction::SignIn).await;
        let via: Vec<_> = signed_in.iter().map(|e| e.detail["via"].clone()).collect();
        assert_eq!(via, ["console", "console", "api", "api"]);
    }
}

#[tokio::test]
async fn a01_a_password_older_than_30_days_must_be_changed_before_anything_else() {
    for b in common::backends().await {
        let (server, demo, clock) = server(&b).await;
        let password = demo.password("manager");
        // Actor: a thief of an old password: it stops working for anything but its change.
        clock.advance_ms(31 * DAY_MS);
        let mut browser = Browser::new(&server);
        let signed_in = browser.sign_in("manager", password).await;
        assert_eq!(signed_in.status, 303, "{}", b.label);
        for path in ["/requests", "/", "/login"] {
            let page = browser.get(path).await;
            assert_eq!(
                (page.status, page.location()),
                (303, "/password"),
                "{}: {path}",
                b.label
            );
        }
        let form = browser.get("/password").await;
        assert_eq!(form.status, 200);
        assert!(
            form.body.contains("您的密码已超过 30 天未修改"),
            "{}",
            form.body
        );
        // The language switch and the stylesheet still answer.
        assert_eq!(browser.get("/assets/console.css").await.status, 200);
        let switched = browser.get("/lang/en?back=/password").await;
        assert_eq!(switched.location(), "/password");

        let csrf = form.csrf();
        let short = browser
            .post(
                "/password",
                &[
                    ("csrf", &csrf),
                    ("current", password),
                    ("new", "short"),
                    ("confirm", "short"),
                ],
            )
            .await;
        assert_eq!(short.status, 422, "{}", b.label);
        assert!(short.body.contains("id=\"new-error\""), "{}", short.body);
        let good = "万里长城今犹在-2026-外访";
        let changed = browser
            .post(
                "/password",
                &[
                    ("csrf", &csrf),
                    ("current", password),
                    ("new", good),
                    ("confirm", good),
                ],
            )
            .await;
        assert_eq!(
            (changed.status, changed.location()),
            (303, "/password?changed=1"),
            "{}: {}",
            b.label,
            changed.body
        );
        assert_eq!(browser.get("/requests").await.status, 200, "{}", b.label);
        assert_eq!(
            audited(&server, AuditAction::PasswordChanged).await.len(),
            1
        );

        // The JSON API: 403 until changed, the change itself allowed.
        let legal = demo.password("legal");
        let resp = login(&server, "legal", legal).await;
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["password_change_required"], true, "{}", b.label);
        let token = body["token"].as_str().unwrap().to_owned();
        let me = server
            .http
            .get(server.url("/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (kind, _) = problem(me, 403).await;
        assert_eq!(kind, "password-expired", "{}", b.label);
        let resp = change(&server, &token, legal, "a-new-password-for-the-law").await;
        assert_eq!(resp.status(), 204, "{}", b.label);
        let me = server
            .http
            .get(server.url("/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "{}", b.label);
    }
}

#[tokio::test]
async fn a01_a_new_password_is_long_free_of_the_login_and_none_of_the_last_five() {
    for b in common::backends().await {
        let (server, demo, _clock) = server(&b).await;
        let original = demo.password("manager").to_owned();
        let token = server.login("manager", &original).await;
        // Actor: anyone guessing passwords: short, name-based and recycled ones are refused.
        for (current, new, kind) in [
            (original.as_str(), "short-1", "password-too-short"),
            (
                original.as_str(),
                "xx-MANAGER-2026-yy",
                "password-contains-login",
            ),
            (
                "not-the-password",
                "a-fine-new-password",
                "password-current-wrong",
            ),
            (original.as_str(), original.as_str(), "password-reused"),
        ] {
            let (got, body) = problem(change(&server, &token, current, new).await, 422).await;
            assert_eq!(got, kind, "{}: {body}", b.label);
        }
        // Five changes: the first password is then the sixth back, allowed again, but none of
        // the last five is.
        let mut current = original.clone();
        let news: Vec<String> = (1..=5).map(|i| format!("rotation-number-{i}-ok")).collect();
        for new in &news {
            let resp = change(&server, &token, &current, new).await;
            assert_eq!(resp.status(), 204, "{}: {new}", b.label);
            current.clone_from(new);
        }
        for old in &news[1..4] {
            let (kind, _) = problem(change(&server, &token, &current, old).await, 422).await;
            assert_eq!(kind, "password-reused", "{}: {old}", b.label);
        }
        let resp = change(&server, &token, &current, &news[0]).await;
        assert_eq!(resp.status(), 422, "{}: news[0] is the fifth back", b.label);
        let resp = change(&server, &token, &current, &original).await;
        assert_eq!(resp.status(), 204, "{}: the sixth back is allowed", b.label);

        let refused = audited(&server, AuditAction::PasswordChangeRefused).await;
        assert_eq!(refused.len(), 8, "{}", b.label);
        assert_eq!(refused[0].detail["reasons"], json!(["password-too-short"]));
        assert_eq!(
            audited(&server, AuditAction::PasswordChanged).await.len(),
            6
        );

        // The console's form says what is wrong, field by field.
        let mut browser = Browser::new(&server);
        assert_eq!(browser.sign_in("manager", &original).await.status, 303);
        let form = browser.get("/password").await;
        assert_eq!(form.status, 200, "{}: changed voluntarily", b.label);
        let csrf = form.csrf();
        let page = browser
            .post(
                "/password",
                &[
                    ("csrf", &csrf),
                    ("current", "wrong-current"),
                    ("new", "manager-1"),
                    ("confirm", "manager-1"),
                ],
            )
            .await;
        assert_eq!(page.status, 422);
        assert!(page.body.contains("当前密码不正确。"), "{}", page.body);
        assert!(page.body.contains("新密码太短"), "{}", page.body);
        assert!(
            page.body.contains("新密码不能包含用户名。"),
            "{}",
            page.body
        );
        let mismatch = browser
            .post(
                "/password",
                &[
                    ("csrf", &csrf),
                    ("current", &original),
                    ("new", "one-long-password"),
                    ("confirm", "another-long-password"),
                ],
            )
            .await;
        assert!(mismatch.body.contains("两次输入的新密码不一致。"));
        // Actor: a malicious web page posting the form for a signed-in user.
        let forged = browser
            .post(
                "/password",
                &[
                    ("csrf", "guess"),
                    ("current", &original),
                    ("new", "attackers-choice-pw"),
                    ("confirm", "attackers-choice-pw"),
                ],
            )
            .await;
        assert_eq!(forged.status, 403, "{}", b.label);
        assert_eq!(login(&server, "manager", &original).await.status(), 200);
    }
}

#[tokio::test]
async fn a01_a_changed_password_replaces_the_old_one_and_sign_out_is_audited() {
    for b in common::backends().await {
        let (server, demo, _clock) = server(&b).await;
        let password = demo.password("admin");
        let token = server.login("admin", password).await;
        let resp = change(&server, &token, password, "admin-is-not-in-here?").await;
        let (kind, _) = problem(resp, 422).await;
        assert_eq!(kind, "password-contains-login");
        let resp = change(&server, &token, password, "a-perfectly-fine-one").await;
        assert_eq!(resp.status(), 204, "{}", b.label);
        let resp = server
            .http
            .post(server.url("/v1/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let out = audited(&server, AuditAction::SignOut).await;
        assert_eq!(out.len(), 1, "{}", b.label);
        assert_eq!(out[0].detail["via"], "api");
        // Actor: a thief of the old password: it no longer signs in.
        assert_eq!(login(&server, "admin", password).await.status(), 401);
        assert_eq!(
            login(&server, "admin", "a-perfectly-fine-one")
                .await
                .status(),
            200
        );
    }
}
