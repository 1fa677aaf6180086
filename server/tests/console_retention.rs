//! Retention, legal hold and destruction (E04) through the console over real HTTP, on every
//! backend, with evidence that real core phones sealed and the server's ingest committed:
//! a destruction inside retention, under a visit's or a case's hold, or approved by the
//! person who asked is refused naming E04; after retention a second administrator's
//! approval removes the visit's blobs from the blob store (a photo another visit also
//! lists stays), keeps the bundle rows and the transparency log, and signs a certificate
//! the real `openssl` binary verifies against the server key; the managers' visit page says
//! what was destroyed and when; another bank's staff get the "not found" of a random id;
//! every action is in the audit log. Negative tests name the actor they stop (THREATS.md).

mod common;

use std::sync::Arc;

use reqwest::header::{self, HeaderMap};
use tandem_core::bundle::Manifest;
use tandem_core::crypto::Digest;
use tandem_core::model::{CaseId, VisitId};
use tandem_core::testing::co_sign;
use tandem_server::audit::{AuditAction, AuditFilter};
use tandem_server::clock::{ServerClock as _, ShiftedClock};
use tandem_server::db::{NewUser, Role};
use tandem_server::testing::console::Console;

use common::handset::Handset;
use common::{TestServer, seed_demo};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// How long before now the visits happen: past the two years of E04 by ten days.
const AGO_MS: i64 = 740 * DAY_MS;
/// The second administrator's sign-in.
const SECOND_ADMIN: &str = "admin2";

const PHOTO_SHARED: &[u8] = include_bytes!("../../core/tests/fixtures/photos/gps-DSCN0010.jpg");
const PHOTO_OWN: &[u8] =
    include_bytes!("../../core/tests/fixtures/photos/orientation-portrait_6.jpg");

/// The shift that puts a clock at 10:00 in Shanghai (02:00 UTC) of a day 740 days ago.
fn ten_oclock_long_ago_offset_ms() -> i64 {
    let now = tandem_server::clock::system_now_ms();
    let tomorrow = now - now.rem_euclid(DAY_MS) + DAY_MS;
    tomorrow + 2 * HOUR_MS - AGO_MS - now
}

/// A browser without JavaScript: keeps its cookies by hand, never follows redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
    bytes: Vec<u8>,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }

    /// The id in the first `id="<prefix>…"` of the page.
    fn first_id(&self, prefix: &str) -> String {
        let needle = format!("id=\"{prefix}");
        let at = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {prefix}: {}", self.body))
            + needle.len();
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
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookies = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let resp = req.header(header::COOKIE, cookies).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let bytes = resp.bytes().await.unwrap().to_vec();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
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

    /// Signs in; a password that expired meanwhile (A01: 30 days) is changed to `renewed`.
    async fn sign_in(server: &TestServer, login: &str, password: &str, renewed: &str) -> Self {
        let mut b = Self::new(server);
        let form = b.get("/login").await;
        let csrf = form.csrf();
        let done = b
            .post(
                "/login",
                &[("csrf", &csrf), ("login", login), ("password", password)],
            )
            .await;
        let done = if done.status == 303 {
            done
        } else {
            // Changed already by an earlier sign-in of this test.
            let csrf = b.get("/login").await.csrf();
            b.post(
                "/login",
                &[("csrf", &csrf), ("login", login), ("password", renewed)],
            )
            .await
        };
        assert_eq!(done.status, 303, "sign-in of {login}: {}", done.body);
        let home = b.get("/retention").await;
        if home.status == 303 && home.location() == "/password" {
            let form = b.get("/password").await;
            let csrf = form.csrf();
            let changed = b
                .post(
                    "/password",
                    &[
                        ("csrf", &csrf),
                        ("current", password),
                        ("new", renewed),
                        ("confirm", renewed),
                    ],
                )
                .await;
            assert_eq!(changed.status, 303, "{login}: {}", changed.body);
        }
        b
    }

    /// Sends a retention form as the overview shows it.
    async fn retention_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get("/retention").await.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(path, &form).await
    }

    async fn hold(&mut self, kind: &str, subject: &str, reference: &str) -> Page {
        self.retention_form(
            "/retention/holds",
            &[
                ("kind", kind),
                ("subject", subject),
                ("reference", reference),
                ("reason", "诉讼中，证据须保全"),
            ],
        )
        .await
    }

    async fn ask_destruction(&mut self, kind: &str, subject: &str) -> Page {
        self.retention_form(
            "/retention/destructions",
            &[
                ("kind", kind),
                ("subject", subject),
                ("reference", "浦银信函〔2029〕17号"),
                ("reason", "银行书面要求销毁已结清案件的外访证据"),
            ],
        )
        .await
    }
}

/// The `<main>` of a page: what it says, without the frame (whose language switch names
/// the page's own address).
fn main_of(body: &str) -> &str {
    let start = body.find("<main").unwrap_or(0);
    let end = body.find("</main>").unwrap_or(body.len());
    &body[start..end]
}

/// A visit the phones sealed and the server committed.
struct Visited {
    case: CaseId,
    visit: VisitId,
}

/// Bank A (the demo bank, with a second administrator) on a server whose clock stands 740
/// days ago at 10:00 in Shanghai: two visits were made then, the first with a photo of its
/// own and one the second visit took too (content addressing stores it once).
struct Evidence {
    server: TestServer,
    clock: Arc<ShiftedClock>,
    passwords: std::collections::HashMap<String, String>,
    first: Visited,
    second: Visited,
    _phones: tempfile::TempDir,
    _backend: common::TestBackend,
}

impl Evidence {
    async fn start(backend: common::TestBackend) -> Self {
        let clock = Arc::new(ShiftedClock::new(ten_oclock_long_ago_offset_ms()));
        let state = backend.state().await.with_clock(clock.clone());
        let now = clock.now_ms();
        let (mut seed, creds) =
            tokio::task::spawn_blocking(move || tandem_server::demo::build(now).unwrap())
                .await
                .unwrap();
        let second_password = "另一位管理员-Retention-2027!".to_owned();
        seed.users.push(NewUser {
            id: uuid::Uuid::now_v7(),
            login: SECOND_ADMIN.to_owned(),
            display_name: "第二管理员".to_owned(),
            role: Role::Admin,
            password_hash: Some(tandem_server::secrets::hash_password(&second_password).unwrap()),
            bank_ids: vec![seed.bank.id],
        });
        assert!(state.db.seed_org(&seed).await.unwrap());
        let mut passwords: std::collections::HashMap<String, String> = creds
            .users
            .iter()
            .map(|(l, _, p)| (l.clone(), p.clone()))
            .collect();
        passwords.insert(SECOND_ADMIN.to_owned(), second_password);
        let manager = creds
            .users
            .iter()
            .find(|(_, role, _)| *role == Role::Manager)
            .map(|(l, _, p)| (l.clone(), p.clone()))
            .unwrap();
        let server = TestServer::start(state).await;
        let phones = tempfile::tempdir().unwrap();
        let (base, dir) = (server.base.clone(), phones.path().to_owned());
        let codes = (creds.agents[0].2.clone(), creds.agents[1].2.clone());
        let (first, second) = tokio::task::spawn_blocking(move || {
            let lead = Handset::enrolled(&dir.join("lead"), &base, now, &codes.0);
            let partner = Handset::enrolled(&dir.join("partner"), &base, now, &codes.1);
            let manager = Console::sign_in(&base, &manager.0, &manager.1);
            let first = visit(
                &manager,
                &lead,
                &partner,
                "PJ-2026-0001",
                now,
                &[PHOTO_SHARED, PHOTO_OWN],
            );
            let second = visit(
                &manager,
                &lead,
                &partner,
                "PJ-2026-0002",
                now,
                &[PHOTO_SHARED],
            );
            (first, second)
        })
        .await
        .unwrap();
        Self {
            server,
            clock,
            passwords,
            first,
            second,
            _phones: phones,
            _backend: backend,
        }
    }

    /// The server's clock moves on past the two years.
    fn after_retention(&self) {
        self.clock.advance_ms(AGO_MS);
    }

    async fn browser(&self, login: &str) -> Browser {
        let renewed = "Tandem-Renewed-2029-Strong!".to_owned();
        let password = self.passwords[login].clone();
        Browser::sign_in(&self.server, login, &password, &renewed).await
    }

    async fn audit(&self, action: AuditAction) -> Vec<tandem_server::audit::AuditRecord> {
        self.server
            .state
            .db
            .audit_entries(
                &AuditFilter {
                    action: Some(action),
                    ..AuditFilter::default()
                },
                100,
            )
            .await
            .unwrap()
    }

    /// Every blob the bundles of `v` list.
    async fn blobs_of(&self, v: &Visited) -> Vec<Digest> {
        let mut out = Vec::new();
        for b in self
            .server
            .state
            .db
            .evidence(v.case, Some(v.visit))
            .await
            .unwrap()
        {
            let m = Manifest::parse(&b.manifest).unwrap();
            out.extend(m.blobs.iter().map(|e| e.sha256));
        }
        out
    }

    /// When the retention of `v` ends, as the page names it (its last day).
    async fn kept_through(&self, v: &Visited) -> String {
        let committed = self
            .server
            .state
            .db
            .evidence(v.case, Some(v.visit))
            .await
            .unwrap()
            .iter()
            .filter_map(|b| b.committed_ms)
            .max()
            .unwrap();
        tandem_server::retention::retention_end(committed, 730, chrono_tz::Asia::Shanghai)
            .unwrap()
            .last_day
            .to_string()
    }
}

/// A whole visit to the case `case_ref`: approved, checked in, audio, identity, `photos`,
/// checked out, sealed and pushed (committed by the server).
fn visit(
    manager: &Console,
    lead: &Handset,
    partner: &Handset,
    case_ref: &str,
    now: i64,
    photos: &[&[u8]],
) -> Visited {
    let (visit, case) =
        common::handset::checked_in_visit(manager, (lead, partner), case_ref, now, None, 20);
    for photo in photos {
        lead.phone.capture_photo(visit, photo, false).unwrap();
    }
    lead.phone.stop_audio(visit).unwrap();
    co_sign(
        &lead.phone,
        &partner.phone,
        lead.phone.begin_check_out(visit).unwrap(),
    )
    .unwrap();
    co_sign(
        &lead.phone,
        &partner.phone,
        lead.phone.begin_seal(visit).unwrap(),
    )
    .unwrap();
    let pushed = lead.sync();
    assert_eq!(pushed.pushed.acknowledged, 1, "{pushed:?}");
    Visited {
        case: case.id.parse().unwrap(),
        visit,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e04_destruction_is_refused_inside_retention_under_hold_and_by_the_requester() {
    for b in common::backends().await {
        let label = b.label;
        let e = Evidence::start(b).await;
        let visit = e.first.visit.to_string();
        let mut legal = e.browser("legal").await;

        // Actor: an insider deleting evidence early: inside retention it is refused,
        // naming E04 and the last day it is kept, and audited.
        let early = legal.ask_destruction("visit", &visit).await;
        assert_eq!(early.status, 422, "{label}: {}", early.body);
        let until = e.kept_through(&e.first).await;
        assert!(
            early
                .body
                .contains(&format!("规则 E04：保存期至 {until}，期内不得销毁。")),
            "{label}: {}",
            early.body
        );
        let refused = e.audit(AuditAction::DestructionRefused).await;
        assert_eq!(refused.len(), 1, "{label}");
        assert_eq!(refused[0].entry.detail["reason"], "retention", "{label}");
        assert_eq!(refused[0].entry.subject_id.as_deref(), Some(visit.as_str()));

        e.after_retention();
        let mut legal = e.browser("legal").await;
        // Signs in once to renew the password that expired over the two years.
        e.browser("admin").await;
        let mut second = e.browser(SECOND_ADMIN).await;

        // The bank's period is its policy's, set by its administrator: never under two
        // years (E04), and every change audited with the days.
        let token = e.server.login("admin", "Tandem-Renewed-2029-Strong!").await;
        let bank = e
            .server
            .state
            .db
            .visit_case(e.first.visit)
            .await
            .unwrap()
            .unwrap()
            .0;
        let path = e.server.url(&format!("/v1/banks/{bank}/policy"));
        for (days, status) in [(729, 422), (731, 200)] {
            let policy = tandem_core::model::Policy {
                retention_days: days,
                ..tandem_core::model::Policy::defaults(bank)
            };
            let resp = e
                .server
                .http
                .put(&path)
                .bearer_auth(&token)
                .json(&policy)
                .send();
            let resp = resp.await.unwrap();
            assert_eq!(resp.status(), status, "{label}: {days} days");
            if status == 422 {
                let (_, body) = common::problem(resp, 422).await;
                assert_eq!(body["rule"], "E04", "{label}");
            }
        }
        let changed = e.audit(AuditAction::PolicyChanged).await;
        assert_eq!(changed[0].entry.detail["retention_days"], 731, "{label}");
        let overview = legal.get("/retention").await;
        assert!(overview.body.contains("至少 731 天"), "{label}");
        let mut admin = e.browser("admin").await;

        // A hold on the visit stops its destruction.
        let placed = legal.hold("visit", &visit, "(2029)沪0101民初123号").await;
        assert_eq!(placed.status, 303, "{label}: {}", placed.body);
        assert_eq!(placed.location(), "/retention?done=hold-placed");
        let held = legal.ask_destruction("visit", &visit).await;
        assert_eq!(held.status, 422, "{label}");
        assert!(
            held.body
                .contains("规则 E04：处于法律保全 (2029)沪0101民初123号，不得销毁。"),
            "{label}: {}",
            held.body
        );
        // Lifted by a person, with a reason.
        let overview = legal.get("/retention").await;
        let hold_id = overview.first_id("hold-row-");
        let no_reason = legal
            .retention_form(
                &format!("/retention/holds/{hold_id}/lift"),
                &[("reason", " ")],
            )
            .await;
        assert_eq!(no_reason.status, 422, "{label}");
        let lifted = legal
            .retention_form(
                &format!("/retention/holds/{hold_id}/lift"),
                &[("reason", "法院已结案")],
            )
            .await;
        assert_eq!(lifted.status, 303, "{label}: {}", lifted.body);

        // A hold on the case covers all its visits (placed by its case reference).
        let case_hold = admin
            .hold("case", "PJ-2026-0001", "(2029)沪0101民初456号")
            .await;
        assert_eq!(case_hold.status, 303, "{label}: {}", case_hold.body);
        let held = legal.ask_destruction("visit", &visit).await;
        assert_eq!(held.status, 422, "{label}");
        assert!(held.body.contains("(2029)沪0101民初456号"), "{label}");
        let manager_view = e
            .browser("manager")
            .await
            .get(&format!("/visits/{visit}"))
            .await;
        assert!(
            manager_view
                .body
                .contains("法律保全 (2029)沪0101民初456号：证据不得删除。"),
            "{label}: {}",
            manager_view.body
        );
        let case_view = e
            .browser("manager")
            .await
            .get(&format!("/cases/{}", e.first.case))
            .await;
        assert!(
            case_view.body.contains("法律保全 (2029)沪0101民初456号"),
            "{label}"
        );
        let overview = legal.get("/retention").await;
        let case_hold_id = overview.first_id("hold-row-");
        let lifted = legal
            .retention_form(
                &format!("/retention/holds/{case_hold_id}/lift"),
                &[("reason", "保全期满")],
            )
            .await;
        assert_eq!(lifted.status, 303, "{label}");
        let history = legal.get("/retention/holds").await;
        assert!(history.body.contains("法院已结案"), "{label}");
        assert!(history.body.contains("保全期满"), "{label}");

        // Actor: an insider destroying alone: the requester cannot approve.
        let asked = admin.ask_destruction("visit", &visit).await;
        assert_eq!(asked.status, 303, "{label}: {}", asked.body);
        let overview = admin.get("/retention").await;
        let request = overview.first_id("request-row-");
        assert!(
            !overview
                .body
                .contains(&format!("/retention/destructions/{request}/approve")),
            "{label}: no approve button for the requester"
        );
        let own = admin
            .retention_form(&format!("/retention/destructions/{request}/approve"), &[])
            .await;
        assert_eq!(own.status, 422, "{label}");
        assert!(
            own.body
                .contains("规则 E04：销毁须由第二人批准，申请人不能批准自己的申请。"),
            "{label}: {}",
            own.body
        );
        // Actor: a role without need: legal staff ask and hold but never approve, and a
        // manager does not reach the retention pages at all.
        let mut manager = e.browser("manager").await;
        assert_eq!(manager.get("/retention").await.status, 403, "{label}");
        let by_legal = legal
            .retention_form(&format!("/retention/destructions/{request}/approve"), &[])
            .await;
        assert_eq!(by_legal.status, 403, "{label}");

        // Actor: a user of another bank: holds, requests and approvals on bank A's ids get
        // the "not found" of a random id.
        let other = seed_demo(e.server.state.db.as_ref(), "other-bank").await;
        for login in ["other-bank-admin", "other-bank-legal"] {
            let mut stranger = Browser::sign_in(
                &e.server,
                login,
                other.password(login),
                "unused-Password-1!",
            )
            .await;
            let random = uuid::Uuid::now_v7().to_string();
            let theirs = stranger.hold("visit", &visit, "X-1").await;
            let unknown = stranger.hold("visit", &random, "X-1").await;
            assert_eq!(theirs.status, 404, "{label} {login}");
            assert_eq!(
                main_of(&theirs.body),
                main_of(&unknown.body),
                "{label} {login}: one answer"
            );
            let theirs = stranger.ask_destruction("visit", &visit).await;
            assert_eq!(theirs.status, 404, "{label} {login}");
            let approve = stranger
                .retention_form(&format!("/retention/destructions/{request}/approve"), &[])
                .await;
            let unknown = stranger
                .retention_form(&format!("/retention/destructions/{random}/approve"), &[])
                .await;
            assert_eq!(approve.status, 404, "{label} {login}");
            assert_eq!(
                main_of(&approve.body),
                main_of(&unknown.body),
                "{label} {login}"
            );
            let lift = stranger
                .retention_form(
                    &format!("/retention/holds/{hold_id}/lift"),
                    &[("reason", "x")],
                )
                .await;
            assert_eq!(lift.status, 404, "{label} {login}");
            let page = stranger.get("/retention").await;
            assert!(!page.body.contains(&visit), "{label} {login}");
            assert!(!page.body.contains("PJ-2026-0001"), "{label} {login}");
        }

        // Actor: a web page forging the form: no token, no hold.
        let forged = legal
            .post(
                "/retention/holds",
                &[
                    ("kind", "visit"),
                    ("subject", &visit),
                    ("reference", "F"),
                    ("reason", "F"),
                ],
            )
            .await;
        assert_eq!(forged.status, 403, "{label}");

        // Actor: an insider racing a hold: a hold placed after the request is seen by the
        // approval, which checks again in its own transaction and refuses.
        let late = legal
            .hold("case", "PJ-2026-0001", "(2029)沪0101民初789号")
            .await;
        assert_eq!(late.status, 303, "{label}");
        let approve = second
            .retention_form(&format!("/retention/destructions/{request}/approve"), &[])
            .await;
        assert_eq!(approve.status, 422, "{label}: {}", approve.body);
        assert!(approve.body.contains("(2029)沪0101民初789号"), "{label}");
        let stored = e
            .server
            .state
            .db
            .destruction_request(request.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, "refused", "{label}");
        for digest in e.blobs_of(&e.first).await {
            assert!(
                e.server.state.blobs.contains(&digest),
                "{label}: nothing deleted"
            );
        }

        // Every action is in the audit log.
        assert_eq!(
            e.audit(AuditAction::LegalHoldPlaced).await.len(),
            3,
            "{label}"
        );
        assert_eq!(
            e.audit(AuditAction::LegalHoldLifted).await.len(),
            2,
            "{label}"
        );
        assert_eq!(
            e.audit(AuditAction::DestructionRequested).await.len(),
            1,
            "{label}"
        );
        assert!(
            e.audit(AuditAction::DestructionApproved).await.is_empty(),
            "{label}"
        );
        let refused: Vec<String> = e
            .audit(AuditAction::DestructionRefused)
            .await
            .iter()
            .rev()
            .map(|r| {
                r.entry.detail["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            refused,
            ["retention", "hold", "hold", "same-person", "hold"],
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e04_a_second_administrator_destroys_evidence_after_retention_with_a_certificate_openssl_verifies()
 {
    for b in common::backends().await {
        let label = b.label;
        let e = Evidence::start(b).await;
        let visit = e.first.visit.to_string();
        let first_blobs = e.blobs_of(&e.first).await;
        let second_blobs = e.blobs_of(&e.second).await;
        let shared = tandem_core::crypto::sha256(PHOTO_SHARED);
        let own = tandem_core::crypto::sha256(PHOTO_OWN);
        assert!(first_blobs.contains(&shared) && second_blobs.contains(&shared));
        e.after_retention();

        let mut legal = e.browser("legal").await;
        let asked = legal.ask_destruction("visit", &visit).await;
        assert_eq!(asked.status, 303, "{label}: {}", asked.body);
        let request = legal.get("/retention").await.first_id("request-row-");
        let mut second = e.browser(SECOND_ADMIN).await;
        let done = second
            .retention_form(&format!("/retention/destructions/{request}/approve"), &[])
            .await;
        assert_eq!(done.status, 303, "{label}: {}", done.body);
        assert_eq!(done.location(), "/retention?done=destroyed");

        // The visit's blobs are gone from the blob store, but what the second visit lists
        // too (the photo both took, and its thumbnail) stays, and the second visit's
        // evidence is whole.
        for digest in &first_blobs {
            let path = e.server.state.blobs.path(digest);
            if second_blobs.contains(digest) {
                assert!(path.exists(), "{label}: a shared blob stays");
            } else {
                assert!(!path.exists(), "{label}: {digest} removed");
            }
        }
        assert!(!e.server.state.blobs.path(&own).exists(), "{label}");
        assert!(e.server.state.blobs.path(&shared).exists(), "{label}");
        for digest in &second_blobs {
            assert!(e.server.state.blobs.contains(digest), "{label}");
        }
        // The bundle rows (manifest digests, log entries) stay, marked destroyed.
        let kept = e
            .server
            .state
            .db
            .evidence(e.first.case, Some(e.first.visit))
            .await
            .unwrap();
        assert!(!kept.is_empty(), "{label}");
        for b in &kept {
            assert!(b.destroyed_ms.is_some() && b.log_index.is_some(), "{label}");
        }

        // The certificate, its signature and the server key, checked by openssl alone.
        let overview = second.get("/retention").await;
        let certificate = overview
            .body
            .split("/retention/certificates/")
            .nth(1)
            .and_then(|s| s.split(".json").next())
            .unwrap()
            .to_owned();
        let json = legal
            .get(&format!("/retention/certificates/{certificate}.json"))
            .await;
        assert_eq!(json.status, 200, "{label}");
        let sig = legal
            .get(&format!("/retention/certificates/{certificate}.sig"))
            .await;
        assert_eq!(sig.status, 200, "{label}");
        let pem = legal.get("/retention/server-key.pem").await;
        assert_eq!(pem.status, 200, "{label}");
        let doc: serde_json::Value = serde_json::from_slice(&json.bytes).unwrap();
        assert_eq!(
            doc["format"], "tandem.destruction-certificate/v1",
            "{label}"
        );
        assert_eq!(doc["bank_reference"], "浦银信函〔2029〕17号", "{label}");
        assert_eq!(doc["approved_by"]["name"], "第二管理员", "{label}");
        assert_eq!(doc["visits"][0]["visit_id"], visit, "{label}");
        let bundle = &doc["visits"][0]["bundles"][0];
        assert_eq!(
            bundle["manifest_digest"], kept[0].manifest_digest,
            "{label}"
        );
        let listed: Vec<(String, String)> = bundle["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                assert!(b["size"].as_u64().unwrap() > 0);
                (
                    b["sha256"].as_str().unwrap().to_owned(),
                    b["disposition"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            listed.contains(&(shared.to_hex(), "kept-shared".into())),
            "{label}"
        );
        assert!(
            listed.contains(&(own.to_hex(), "deleted".into())),
            "{label}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.json"), &json.bytes).unwrap();
        std::fs::write(dir.path().join("cert.sig"), &sig.bytes).unwrap();
        std::fs::write(dir.path().join("server.pem"), &pem.bytes).unwrap();
        let verify = || {
            std::process::Command::new("openssl")
                .args([
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-inkey",
                    "server.pem",
                    "-rawin",
                    "-in",
                    "cert.json",
                    "-sigfile",
                    "cert.sig",
                ])
                .current_dir(dir.path())
                .output()
                .expect("openssl")
        };
        let ok = verify();
        assert!(ok.status.success(), "{label}: {ok:?}");
        // Actor: a reader fooled by an altered certificate: one byte changed fails.
        let mut altered = json.bytes.clone();
        let at = altered.len() / 2;
        altered[at] ^= 0x01;
        std::fs::write(dir.path().join("cert.json"), &altered).unwrap();
        assert!(!verify().status.success(), "{label}: altered certificate");

        // The managers' visit page says what was destroyed, when and by which certificate.
        let mut manager = e.browser("manager").await;
        let page = manager.get(&format!("/visits/{visit}")).await;
        assert_eq!(page.status, 200, "{label}");
        let destroyed_on =
            tandem_server::receipts::local_day(e.server.state.now_ms(), chrono_tz::Asia::Shanghai)
                .unwrap();
        assert!(
            page.body.contains(&format!("证据已于 {destroyed_on}"))
                && page.body.contains(&format!("销毁证书 {certificate}。")),
            "{label}: {}",
            page.body
        );
        let other_page = manager.get(&format!("/visits/{}", e.second.visit)).await;
        assert!(!other_page.body.contains("销毁证书"), "{label}");
        let case_page = manager.get(&format!("/cases/{}", e.first.case)).await;
        assert!(case_page.body.contains(&certificate), "{label}");

        // The same page in English: every string from the message files.
        let switched = legal.get("/lang/en?back=/retention").await;
        assert_eq!(switched.status, 303, "{label}");
        let english = legal.get("/retention").await;
        assert!(english.body.contains("<html lang=\"en\">"), "{label}");
        for text in [
            "Retention, legal hold and destruction",
            "Destruction requests",
            "Destroyed",
            "Server key fingerprint:",
        ] {
            assert!(english.body.contains(text), "{label}: {text}");
        }
        assert!(
            !english.body.contains(">retention-"),
            "{label}: a raw message id"
        );

        // Decided once: approving again changes nothing.
        let again = second
            .retention_form(&format!("/retention/destructions/{request}/approve"), &[])
            .await;
        assert_eq!(again.status, 422, "{label}");
        assert!(again.body.contains("该申请已处理。"), "{label}");

        // Audited, the certificate's id in the approval's detail.
        let approved = e.audit(AuditAction::DestructionApproved).await;
        assert_eq!(approved.len(), 1, "{label}");
        assert_eq!(
            approved[0].entry.detail["certificate"], certificate,
            "{label}"
        );
        assert_eq!(
            e.audit(AuditAction::DestructionRequested).await.len(),
            1,
            "{label}"
        );

        // A whole case, by its reference: once the last evidence listing the shared photo
        // is destroyed, the photo goes too.
        let mut legal = e.browser("legal").await;
        let asked = legal.ask_destruction("case", "PJ-2026-0002").await;
        assert_eq!(asked.status, 303, "{label}: {}", asked.body);
        let request = legal.get("/retention").await.first_id("request-row-");
        let mut second = e.browser(SECOND_ADMIN).await;
        let done = second
            .retention_form(&format!("/retention/destructions/{request}/approve"), &[])
            .await;
        assert_eq!(done.status, 303, "{label}: {}", done.body);
        for digest in &second_blobs {
            assert!(!e.server.state.blobs.path(digest).exists(), "{label}");
        }
        assert_eq!(
            e.audit(AuditAction::DestructionApproved).await.len(),
            2,
            "{label}"
        );
        let nothing = legal.ask_destruction("case", "PJ-2026-0002").await;
        assert_eq!(nothing.status, 422, "{label}");
        assert!(nothing.body.contains("已没有可销毁的证据"), "{label}");
    }
}
