//! The money side of the console over real HTTP, on every backend: receipts a real sealed
//! visit carried (two core phones co-signing, pushed through core's sync client, committed
//! by the server's ingest) appear on the manager's receipts page; a deposit is marked once,
//! for the receipt's amount; the deposit check flags exactly the receipts not deposited by
//! the end of the next business day in the bank's zone (a weekend skipped); reports
//! download as CSV with formula text made plain. Negative tests name the actor they stop
//! (THREATS.md).

mod common;

use std::sync::Arc;

use common::browser::{Browser, Page};
use common::handset::Handset;
use common::{TestServer, seed_demo};
use reqwest::header::{self};
use tandem_core::model::{Fen, Payer, PaymentMethod, PersonMet, ReceiptSerial, VisitId};
use tandem_core::phone::{ReceiptRequest, VisitAction};
use tandem_core::testing::{co_sign, signature_png};
use tandem_server::clock::{ServerClock as _, ShiftedClock};
use tandem_server::db::Role;
use tandem_server::testing::console::Console;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A payer's name a spreadsheet would run as a formula.
const FORMULA_NAME: &str = "=HYPERLINK(\"http://evil.example\",\"点我\")";

/// The shift that puts a clock at the next Friday, 10:00 in Shanghai (02:00 UTC).
fn next_friday_ten_offset_ms() -> i64 {
    let now = tandem_server::clock::system_now_ms();
    let today = now - now.rem_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: day n is a Friday when (n + 3) % 7 == 0… counted from
    // Monday = 0, day n's weekday is (n + 3) % 7.
    let mut day = today / DAY_MS + 1;
    while (day + 3).rem_euclid(7) != 4 {
        day += 1;
    }
    day * DAY_MS + 2 * HOUR_MS - now
}

impl Page {
    /// The HTML of the receipt row of `serial`.
    fn receipt_row(&self, serial: u64) -> &str {
        let id = format!("id=\"receipt-{}\"", ReceiptSerial(serial));
        let at = self
            .body
            .find(&id)
            .unwrap_or_else(|| panic!("no row of {serial}: {}", self.body));
        let end = self.body[at..].find("</tr>").unwrap() + at;
        &self.body[at..end]
    }
}

impl Browser {
    /// Sends the deposit form of `serial` as the receipts page shows it.
    async fn deposit(&mut self, serial: u64, reference: &str, day: &str, amount: &str) -> Page {
        let list = self.get("/receipts").await;
        let csrf = list.csrf();
        self.post(
            &format!("/receipts/{serial}/deposit"),
            &[
                ("csrf", &csrf),
                ("back", ""),
                ("reference", reference),
                ("day", day),
                ("amount", amount),
            ],
        )
        .await
    }
}

/// A payment as the phone records it.
fn payment(name: &str, amount: i64) -> ReceiptRequest {
    ReceiptRequest {
        payer: Payer {
            role: PersonMet::Debtor,
            name: name.into(),
        },
        amount: Fen(amount),
        method: PaymentMethod::Cash,
        payer_signature_png: signature_png(),
    }
}

/// The demo bank on a server whose clock stands on a Friday at 10:00 in Shanghai, its
/// manager, and two phones of its agents.
struct Money {
    server: TestServer,
    clock: Arc<ShiftedClock>,
    manager: (String, String),
    lead: Handset,
    partner: Handset,
    /// A complaint the next visit records (P01), if any.
    complaint: Option<&'static str>,
    _phones: tempfile::TempDir,
    _backend: common::TestBackend,
}

impl Money {
    async fn start(backend: common::TestBackend) -> Self {
        let clock = Arc::new(ShiftedClock::new(next_friday_ten_offset_ms()));
        let state = backend.state().await.with_clock(clock.clone());
        let demo = tandem_server::demo::seed(state.db.as_ref(), clock.now_ms())
            .await
            .unwrap()
            .unwrap();
        let manager = demo
            .users
            .iter()
            .find(|(_, role, _)| *role == Role::Manager)
            .map(|(l, _, p)| (l.clone(), p.clone()))
            .unwrap();
        let server = TestServer::start(state).await;
        let phones = tempfile::tempdir().unwrap();
        let (base, now) = (server.base.clone(), clock.now_ms());
        let (dir, codes) = (
            phones.path().to_owned(),
            (demo.agents[0].2.clone(), demo.agents[1].2.clone()),
        );
        let (lead, partner) = tokio::task::spawn_blocking(move || {
            (
                Handset::enrolled(&dir.join("lead"), &base, now, &codes.0),
                Handset::enrolled(&dir.join("partner"), &base, now, &codes.1),
            )
        })
        .await
        .unwrap();
        Self {
            server,
            clock,
            manager,
            lead,
            partner,
            complaint: None,
            _phones: phones,
            _backend: backend,
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Time passes for the server and both phones.
    fn wait(&self, ms: i64) {
        self.clock.advance_ms(ms);
        self.lead.clock.advance_ms(ms);
        self.partner.clock.advance_ms(ms);
    }

    /// A whole visit to the demo's first case: the manager approves it (cash up to
    /// ¥10,000) and gives the lead's phone receipt numbers, both phones sync, check in,
    /// the lead co-signs `payments` (and voids the serials of `void`), checks out, seals
    /// and pushes. Returns the visit.
    async fn visit(&mut self, payments: Vec<(&'static str, i64)>, void: Vec<u64>) -> VisitId {
        let (base, now) = (self.server.base.clone(), self.now_ms());
        let (login, password) = self.manager.clone();
        let lead = &self.lead;
        let partner = &self.partner;
        let complaint = self.complaint.take();
        // The phones and the console client block (core is synchronous): off the workers.
        tokio::task::block_in_place(|| {
            let manager = Console::sign_in(&base, &login, &password);
            let (visit, _) = common::handset::checked_in_visit(
                &manager,
                (lead, partner),
                "PJ-2026-0001",
                now,
                Some(1_000_000),
                50,
            );
            if let Some(note) = complaint {
                lead.phone
                    .record(
                        visit,
                        &VisitAction::Complaint {
                            note: note.to_owned(),
                        },
                    )
                    .unwrap();
            }
            for (name, amount) in payments {
                let shown = lead
                    .phone
                    .begin_receipt(visit, &payment(name, amount))
                    .unwrap();
                co_sign(&lead.phone, &partner.phone, shown).unwrap();
            }
            for serial in void {
                let shown = lead
                    .phone
                    .begin_void(visit, ReceiptSerial(serial), "金额写错，重新开具")
                    .unwrap();
                co_sign(&lead.phone, &partner.phone, shown).unwrap();
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
            visit
        })
    }

    /// The manager, signed in to the console in a browser.
    async fn manager_browser(&self) -> Browser {
        let mut browser = Browser::new(&self.server);
        browser.sign_in_ok(&self.manager.0, &self.manager.1).await;
        browser
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_of_an_ingested_visit_appear_for_their_banks_manager_only() {
    for b in common::backends().await {
        let label = b.label;
        let mut m = Money::start(b).await;
        m.visit(
            vec![("林晓虹", 50_000), ("<img src=x onerror=alert(1)>", 12_345)],
            vec![2],
        )
        .await;
        let mut browser = m.manager_browser().await;
        let page = browser.get("/receipts").await;
        assert_eq!(page.status, 200, "{label}");
        assert!(page.body.contains("<html lang=\"zh-CN\">"), "{label}");
        let first = page.receipt_row(1);
        assert!(first.contains("林晓虹"), "{label}: {first}");
        assert!(first.contains("¥500.00"), "{label}: {first}");
        assert!(first.contains("PJ-2026-0001"), "{label}: {first}");
        assert!(first.contains("现金"), "{label}: {first}");
        assert!(first.contains("待缴存"), "{label}: {first}");
        assert!(
            page.body.contains("action=\"/receipts/1/deposit\""),
            "{label}: a deposit form"
        );
        // Actor: anyone writing markup into a receipt: shown as text.
        let second = page.receipt_row(2);
        assert!(
            second.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{label}: {second}"
        );
        assert!(!page.body.contains("<img src=x"), "{label}");
        // The void, with its reason; nothing to deposit for it.
        assert!(second.contains("已作废"), "{label}: {second}");
        assert!(
            !page.body.contains("id=\"deposit-0000000002\""),
            "{label}: a voided receipt has no deposit form"
        );
        assert!(page.body.contains("id=\"deposit-0000000001\""), "{label}");
        assert!(page.body.contains("金额写错，重新开具"), "{label}");
        // Times in the bank's zone: the visit was at 10:00 in Shanghai.
        assert!(first.contains("10:0"), "{label}: {first}");

        // The phone syncs again: the server keeps each receipt once.
        tokio::task::block_in_place(|| m.lead.sync());
        let again = browser.get("/receipts").await;
        assert_eq!(
            again.body.matches("id=\"receipt-").count(),
            2,
            "{label}: each receipt once"
        );

        // The ranges: the lead's phone holds ten numbers, two used (one voided), eight left.
        let ranges = browser.get("/receipts/ranges").await;
        assert_eq!(ranges.status, 200, "{label}");
        assert!(
            ranges.body.contains("0000000001–0000000010"),
            "{label}: {}",
            ranges.body
        );
        let row = &ranges.body[ranges.body.find("0000000001–").unwrap()..];
        let cells: Vec<&str> = row
            .split("<td class=\"num\">")
            .skip(1)
            .take(3)
            .map(|c| c.split('<').next().unwrap())
            .collect();
        assert_eq!(cells, ["2", "1", "8"], "{label}");

        // Actor: a manager of another bank guessing serials: the same "not found" as a
        // serial never issued, and no receipt of the first bank on their page.
        let other = seed_demo(m.server.state.db.as_ref(), "other-bank").await;
        let mut stranger = Browser::new(&m.server);
        stranger
            .sign_in_ok("other-bank-manager", other.password("other-bank-manager"))
            .await;
        let theirs = stranger.get("/receipts").await;
        assert_eq!(theirs.status, 200, "{label}");
        assert!(!theirs.body.contains("id=\"receipt-"), "{label}");
        assert!(!theirs.body.contains("林晓虹"), "{label}");
        let today =
            tandem_server::receipts::local_day(m.now_ms(), chrono_tz::Asia::Shanghai).unwrap();
        let foreign = stranger.deposit(1, "SLIP-1", &today, "500").await;
        let random = stranger.deposit(987_654, "SLIP-1", &today, "500").await;
        assert_eq!(foreign.status, 404, "{label}");
        assert_eq!(foreign.body, random.body, "{label}: one answer for both");
        let bank = m.server.state.db.receipt(1).await.unwrap().unwrap().bank_id;
        let reports = stranger.get(&format!("/reports?bank={bank}")).await;
        assert_eq!(reports.status, 404, "{label}");
        let still = m.server.state.db.receipt(1).await.unwrap().unwrap();
        assert_eq!(still.deposited_ms, None, "{label}: nothing written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_marks_a_receipt_deposited_once_for_its_amount() {
    for b in common::backends().await {
        let label = b.label;
        let mut m = Money::start(b).await;
        m.visit(vec![("林晓虹", 50_000)], vec![]).await;
        let mut browser = m.manager_browser().await;
        let today =
            tandem_server::receipts::local_day(m.now_ms(), chrono_tz::Asia::Shanghai).unwrap();
        // Actor: an agent who pockets part of the cash: a deposit of less is refused.
        let short = browser.deposit(1, "GH-20261204-01", &today, "400").await;
        assert_eq!(short.status, 422, "{label}");
        assert!(
            short.body.contains("缴存金额须与收据金额一致"),
            "{label}: {}",
            short.body
        );
        assert!(
            short.body.contains("value=\"GH-20261204-01\""),
            "{label}: kept"
        );
        browser.lang = Some("en");
        let future = browser.deposit(1, "GH-1", "2999-01-01", "500").await;
        assert_eq!(future.status, 422, "{label}");
        assert!(
            future.body.contains("day and today"),
            "{label}: {}",
            future.body
        );
        // Actor: a web page forging the form: no token, no deposit.
        let forged = browser
            .post(
                "/receipts/1/deposit",
                &[
                    ("reference", "X"),
                    ("day", today.as_str()),
                    ("amount", "500"),
                ],
            )
            .await;
        assert_eq!(forged.status, 403, "{label}");

        let done = browser
            .deposit(1, "GH-20261204-01", &today, "¥500.00")
            .await;
        assert_eq!(done.status, 303, "{label}: {}", done.body);
        assert_eq!(done.location(), "/receipts?done=1", "{label}");
        let page = browser.get(done.location()).await;
        assert!(
            page.body
                .contains("Receipt 0000000001 is marked deposited."),
            "{label}"
        );
        let row = page.receipt_row(1);
        assert!(
            row.contains(&format!("Deposited: slip GH-20261204-01, {today}")),
            "{label}: {row}"
        );
        assert!(!page.body.contains("id=\"deposit-0000000001\""), "{label}");
        // Marked once: a second deposit (a replayed form) is refused and changes nothing.
        let again = browser.deposit(1, "GH-2", &today, "500").await;
        assert_eq!(again.status, 422, "{label}");
        assert!(
            again.body.contains("marked deposited already"),
            "{label}: {}",
            again.body
        );
        let stored = m.server.state.db.receipt(1).await.unwrap().unwrap();
        assert_eq!(
            stored.deposit_ref.as_deref(),
            Some("GH-20261204-01"),
            "{label}"
        );
        assert_eq!(
            stored.deposit_day.as_deref(),
            Some(today.as_str()),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deposit_check_flags_exactly_the_late_receipts_after_the_weekend() {
    for b in common::backends().await {
        let label = b.label;
        let mut m = Money::start(b).await;
        // Friday 10:00: three receipts; the second is deposited the same day, the third
        // voided.
        m.visit(
            vec![("林晓虹", 50_000), ("王建国", 30_000), ("李四", 100)],
            vec![3],
        )
        .await;
        let mut browser = m.manager_browser().await;
        let friday =
            tandem_server::receipts::local_day(m.now_ms(), chrono_tz::Asia::Shanghai).unwrap();
        let done = browser.deposit(2, "GH-2", &friday, "300").await;
        assert_eq!(done.status, 303, "{label}");
        let state = m.server.state.clone();
        // Saturday, Sunday, and Monday until 23:59 Shanghai: inside the deadline.
        m.wait(3 * DAY_MS + 13 * HOUR_MS + 59 * 60_000);
        let flagged = tandem_server::receipts::flag_overdue(&state).await.unwrap();
        assert!(flagged.is_empty(), "{label}: {flagged:?}");
        // Tuesday 00:01 in Shanghai: receipt 1 is late; 2 was deposited, 3 voided.
        m.wait(2 * 60_000);
        let flagged = tandem_server::receipts::flag_overdue(&state).await.unwrap();
        let serials: Vec<i64> = flagged.iter().map(|f| f.serial).collect();
        assert_eq!(serials, [1], "{label}");
        // Another run (another server, the next tick) flags nothing again.
        let again = tandem_server::receipts::flag_overdue(&state).await.unwrap();
        assert!(again.is_empty(), "{label}");
        let late = state.db.receipt(1).await.unwrap().unwrap();
        assert!(
            late.overdue_ms
                .is_some_and(|ms| ms >= late.due_ms && ms <= m.now_ms()),
            "{label}: flagged when the check ran"
        );
        assert_eq!(state.db.receipt(2).await.unwrap().unwrap().overdue_ms, None);
        assert_eq!(state.db.receipt(3).await.unwrap().unwrap().overdue_ms, None);

        // Days later: the manager signs in again (sessions are short).
        let mut browser = m.manager_browser().await;
        let page = browser.get("/receipts?state=overdue").await;
        let row = page.receipt_row(1);
        assert!(
            page.body
                .contains("<tr class=\"receipt-overdue\" id=\"receipt-0000000001\">"),
            "{label}: highlighted"
        );
        assert!(row.contains("逾期未缴存"), "{label}: {row}");
        assert_eq!(page.body.matches("id=\"receipt-").count(), 1, "{label}");
        // The report lists it.
        let reports = browser.get("/reports").await;
        assert_eq!(reports.status, 200, "{label}");
        assert!(
            reports.body.contains("<svg aria-hidden=\"true\""),
            "{label}"
        );
        assert!(reports.body.contains("逾期未缴存的收据"), "{label}");
        // The review queue lists it among what a manager must look at, and the visit's
        // page shows each of its receipts with its state.
        let queue = browser.get("/flags").await;
        assert!(queue.body.contains("逾期未缴存的收据（C03）"), "{label}");
        assert!(
            queue.body.contains(">0000000001</a>"),
            "{label}: {}",
            queue.body
        );
        let at = queue.body.find("href=\"/visits/").unwrap() + 6;
        let visit_href = queue.body[at..].split('"').next().unwrap().to_owned();
        let visit = browser.get(&visit_href).await;
        assert!(visit.body.contains("本次外访的收据"), "{label}");
        for (serial, state) in [
            ("0000000001", "逾期未缴存"),
            ("0000000002", "已缴存"),
            ("0000000003", "已作废"),
        ] {
            let row = visit
                .body
                .split("<tr>")
                .find(|r| r.contains(serial))
                .unwrap_or_default();
            assert!(row.contains(state), "{label}: {serial} {row}");
        }
        // A late deposit is still taken, and says it was late.
        let tuesday =
            tandem_server::receipts::local_day(m.now_ms(), chrono_tz::Asia::Shanghai).unwrap();
        let late_deposit = browser.deposit(1, "GH-1", &tuesday, "500").await;
        assert_eq!(late_deposit.status, 303, "{label}");
        let page = browser.get("/receipts").await;
        assert!(page.receipt_row(1).contains("逾期后缴存"), "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_download_as_csv_and_xlsx_with_formula_text_made_plain() {
    for b in common::backends().await {
        let label = b.label;
        let mut m = Money::start(b).await;
        m.visit(vec![(FORMULA_NAME, 50_000), ("林晓虹", 20_000)], vec![])
            .await;
        let mut browser = m.manager_browser().await;
        let friday =
            tandem_server::receipts::local_day(m.now_ms(), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(
            browser
                .deposit(2, "=cmd|'/c calc'!A1", &friday, "200")
                .await
                .status,
            303,
            "{label}"
        );
        m.wait(5 * DAY_MS);
        let state = m.server.state.clone();
        assert_eq!(
            tandem_server::receipts::flag_overdue(&state)
                .await
                .unwrap()
                .len(),
            1,
            "{label}"
        );
        let mut browser = m.manager_browser().await;
        let page = browser.get("/reports").await;
        let href = |file: &str| {
            let at = page
                .body
                .find(&format!("/reports/{file}?"))
                .unwrap_or_else(|| panic!("no link to {file}: {}", page.body));
            page.body[at..]
                .split('"')
                .next()
                .unwrap()
                .replace("&amp;", "&")
        };
        let (answer, bytes) = browser.download(&href("overdue.csv")).await;
        assert_eq!(answer.status, 200, "{label}");
        assert!(
            answer.headers[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=\"tandem-overdue-"),
            "{label}"
        );
        let text = String::from_utf8(bytes).unwrap();
        let text = text
            .strip_prefix('\u{feff}')
            .expect("a BOM for spreadsheets");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header,
            [
                "收据编号",
                "开具时间",
                "案件编号",
                "付款人",
                "金额",
                "最迟缴存日",
                "上报时间"
            ],
            "{label}"
        );
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(rows.len(), 1, "{label}: {rows:?}");
        assert_eq!(rows[0][0], "0000000001", "{label}");
        assert!(rows[0][1].ends_with("10:00"), "{label}: {:?}", rows[0]);
        assert_eq!(rows[0][2], "PJ-2026-0001", "{label}");
        // Actor: a web attacker putting a formula into a name the manager downloads.
        assert_eq!(rows[0][3], format!("'{FORMULA_NAME}"), "{label}");
        assert_eq!(rows[0][4], "500.00", "{label}: a number, not ¥ text");

        let (_, bytes) = browser.download(&href("receipts.csv")).await;
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(
            lines,
            [
                "日期,收款笔数,收款金额,已缴存笔数,已缴存金额,逾期笔数",
                &format!("{friday},2,700.00,1,200.00,1"),
                "合计,2,700.00,1,200.00,1",
            ],
            "{label}"
        );
        let (answer, bytes) = browser.download(&href("reports.xlsx")).await;
        assert_eq!(answer.status, 200, "{label}");
        assert!(bytes.starts_with(b"PK"), "{label}: an XLSX is a ZIP");
        // Another bank's figures are not there to download.
        let other = format!(
            "/reports/overdue.csv?bank={}",
            tandem_core::model::BankId::new()
        );
        assert_eq!(browser.get(&other).await.status, 404, "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_recorded_in_the_field_puts_the_case_on_hold_when_the_visit_arrives() {
    for b in common::backends().await {
        let label = b.label;
        let mut money = Money::start(b).await;
        money.complaint = Some("债务人称外访人员态度恶劣，要求投诉");
        money.visit(vec![], vec![]).await;
        let mut browser = money.manager_browser().await;
        let queue = browser.get("/flags").await;
        assert!(
            queue.body.contains("债务人称外访人员态度恶劣，要求投诉"),
            "{label}: {}",
            queue.body
        );
        assert!(queue.body.contains("外访组现场记录"));
        // The case is on hold: a new request for it is refused, naming V01.
        let cases = browser.get("/cases?q=PJ-2026-0001").await;
        assert!(cases.body.contains("暂停：投诉"), "{label}: {}", cases.body);
        let filter = tandem_server::audit::AuditFilter {
            action: Some(tandem_server::audit::AuditAction::ComplaintRecorded),
            ..Default::default()
        };
        let recorded = money
            .server
            .state
            .db
            .audit_entries(&filter, 10)
            .await
            .unwrap();
        assert_eq!(recorded.len(), 1, "{label}: opened once");
    }
}
