//! The web console over real HTTP on every backend: the sign-in form in both languages,
//! the session cookie, CSRF tokens on every form, the headers every page carries, the
//! requests queue of a manager's banks. Negative tests name the actor they stop
//! (THREATS.md). (Browser tests drive the same pages in Chromium.)

mod common;

use common::{Demo, TestServer, seed_demo};
use reqwest::header::{self, HeaderMap};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

/// A browser without JavaScript: keeps its cookies by hand, never follows redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
    lang: Option<&'static str>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: Vec::new(),
            lang: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let mut req = req.header(header::COOKIE, self.cookie_header());
        if let Some(lang) = self.lang {
            req = req.header(header::ACCEPT_LANGUAGE, lang);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.keep_cookies(&headers);
        Page {
            status,
            headers,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Fills and sends the sign-in form.
    async fn sign_in(&mut self, login: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = form.csrf();
        self.post(
            "/login",
            &[("csrf", &csrf), ("login", login), ("password", password)],
        )
        .await
    }
}

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
