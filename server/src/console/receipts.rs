//! The manager's receipts (C03): every receipt of the manager's banks with its deposit —
//! awaiting (with a small form to mark it deposited), deposited, OVERDUE, voided — filtered
//! by state and days, newest first, a page at a time (keyset); the voided serials with
//! their reasons; and the receipt numbers each phone holds. The form calls the same
//! service as any other caller would (`crate::receipts::mark_deposited`).
//!
//! Threats: a user of another bank (every list scoped to the user's banks, another bank's
//! receipt the "not found" of an unknown serial, D03); a web attacker forging a deposit
//! (the session's CSRF token); a payer's name carrying markup (escaped like every value).

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tandem_core::model::{BankId, ReceiptSerial};
use tandem_core::text::visible;

use super::frame::{
    Page, Zones, bank_zone, error_page, local_time, parse_yuan, render, to_sign_in, yuan,
};
use super::i18n::Lang;
use super::session::{ConsoleForm, PageLang, Posted, Viewer, form_body};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::receipts::{ReceiptQuery, ReceiptRecord, ReceiptState};
use crate::error::AppError;
use crate::receipts::{DepositInput, local_day, mark_deposited, visible_receipt};

/// Receipts on one page.
const PAGE_SIZE: i64 = 50;
/// Voided serials shown.
const VOIDS_SHOWN: i64 = 100;

/// A bank the user may pick.
pub struct BankOption {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) selected: bool,
}

/// The banks of the page: the one picked (`None`: all the user's), and the options.
pub(super) async fn bank_choice(
    state: &AppState,
    user: &UserAuth,
    picked: Option<&str>,
) -> Result<(Option<BankId>, Vec<BankOption>), AppError> {
    let picked = match picked.filter(|p| !p.is_empty()) {
        Some(p) => {
            let bank: BankId = p.parse().map_err(|_| AppError::NotFound)?;
            user.check_bank(bank)?;
            Some(bank)
        }
        None => None,
    };
    let names = state.db.bank_names(&user.user.bank_ids).await?;
    let options = names
        .into_iter()
        .map(|b| BankOption {
            id: b.id.to_string(),
            name: visible(&b.name).into_owned(),
            selected: picked == Some(b.id),
        })
        .collect();
    Ok((picked, options))
}

/// A date field's value if it is a date (`YYYY-MM-DD`), normalised.
pub(super) fn day_value(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// The list's filters, as the query string carries them.
#[derive(Debug, Default, Deserialize)]
pub struct ReceiptsQuery {
    #[serde(default)]
    bank: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    /// Keyset: `issued_ms.serial` of the last receipt of the page before.
    #[serde(default)]
    before: Option<String>,
    /// The serial just marked deposited.
    #[serde(default)]
    done: Option<String>,
}

impl ReceiptsQuery {
    fn from_query_string(query: &str) -> Self {
        let mut q = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = Some(value.into_owned());
            match key.as_ref() {
                "bank" => q.bank = value,
                "state" => q.state = value,
                "from" => q.from = value,
                "to" => q.to = value,
                "before" => q.before = value,
                _ => {}
            }
        }
        q
    }

    /// The filters (not the page) as a query string.
    fn filters(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("bank", &self.bank),
            ("state", &self.state),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                out.append_pair(key, v);
            }
        }
        out.finish()
    }

    fn before(&self) -> Option<(i64, i64)> {
        let (ms, serial) = self.before.as_deref()?.split_once('.')?;
        Some((ms.parse().ok()?, serial.parse().ok()?))
    }
}

/// A state the filter offers.
pub struct StateOption {
    value: &'static str,
    label: String,
    selected: bool,
}

/// The deposit form's values as typed, with the refusal, for the receipt it was sent for.
#[derive(Default, Clone)]
pub struct DepositValues {
    reference: String,
    day: String,
    amount: String,
    error: Option<String>,
}

/// One receipt as the page shows it.
pub struct ReceiptRow {
    serial: String,
    action: String,
    issued: String,
    case_ref: String,
    payer: String,
    amount: String,
    method: String,
    visit: String,
    state_text: String,
    /// `awaiting`, `overdue`, `deposited` or `voided` (the row's class).
    state: &'static str,
    quarantined: bool,
    form_label: String,
    form: Option<DepositValues>,
}

/// One voided serial.
pub struct VoidRow {
    serial: String,
    voided: String,
    visit: String,
    kind: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/receipts.html")]
struct ReceiptsPage {
    page: Page,
    banks: Vec<BankOption>,
    states: Vec<StateOption>,
    from: String,
    to: String,
    count_text: String,
    rows: Vec<ReceiptRow>,
    next_href: Option<String>,
    first_href: Option<String>,
    back: String,
    notice: Option<String>,
    error: Option<String>,
    voids: Vec<VoidRow>,
}

/// The last eight hex digits of an id: enough to tell visits apart on a page (the first
/// ones of a UUIDv7 are its time, the same for ids made together).
pub(super) fn short_id(id: impl std::fmt::Display) -> String {
    let text = id.to_string();
    text[text.len().saturating_sub(8)..].to_owned()
}

/// The last day to deposit in: the day the deadline's end (the next midnight) closes.
pub(super) fn due_day(due_ms: i64, zone: chrono_tz::Tz) -> String {
    local_day(due_ms.saturating_sub(1), zone).unwrap_or_default()
}

pub(super) fn method_text(lang: Lang, method: &str) -> String {
    lang.t(match method {
        "cheque" => "money-method-cheque",
        _ => "money-method-cash",
    })
}

fn state_text(lang: Lang, r: &ReceiptRecord, zone: chrono_tz::Tz) -> String {
    let due = due_day(r.due_ms, zone);
    match r.state() {
        ReceiptState::Awaiting => lang.t_args("money-state-awaiting", &[("due", due.into())]),
        ReceiptState::Overdue => lang.t_args("money-state-overdue", &[("due", due.into())]),
        ReceiptState::Deposited => lang.t_args(
            if r.overdue_ms.is_some() {
                "money-state-deposited-late"
            } else {
                "money-state-deposited"
            },
            &[
                (
                    "ref",
                    visible(r.deposit_ref.as_deref().unwrap_or_default())
                        .into_owned()
                        .into(),
                ),
                ("day", r.deposit_day.clone().unwrap_or_default().into()),
            ],
        ),
        ReceiptState::Voided => lang.t_args(
            "money-state-voided",
            &[(
                "reason",
                visible(r.void_reason.as_deref().unwrap_or_default())
                    .into_owned()
                    .into(),
            )],
        ),
    }
}

/// What a refused form brings back to the page: its serial and values.
type Refused = (i64, DepositValues);

impl ReceiptsPage {
    async fn load(
        state: &AppState,
        user: &UserAuth,
        lang: Lang,
        uri: &Uri,
        query: &ReceiptsQuery,
        refused: Option<Refused>,
    ) -> Result<Self, AppError> {
        user.require(&[Role::Manager, Role::Admin])?;
        let (picked, banks) = bank_choice(state, user, query.bank.as_deref()).await?;
        let wanted = query.state.as_deref().and_then(ReceiptState::parse);
        let (from, to) = (
            day_value(query.from.as_deref()),
            day_value(query.to.as_deref()),
        );
        let mut receipts = state
            .db
            .receipts(&ReceiptQuery {
                banks: picked.map_or_else(|| user.user.bank_ids.clone(), |b| vec![b]),
                state: wanted,
                from_day: from.clone(),
                to_day: to.clone(),
                before: query.before(),
                visit: None,
                limit: PAGE_SIZE + 1,
            })
            .await?;
        let more = receipts.len() > PAGE_SIZE as usize;
        receipts.truncate(PAGE_SIZE as usize);
        let filters = query.filters();
        let next_href = match (more, receipts.last()) {
            (true, Some(last)) => Some(format!(
                "/receipts?{}{}before={}.{}",
                filters,
                if filters.is_empty() { "" } else { "&" },
                last.issued_ms,
                last.serial
            )),
            _ => None,
        };
        let first_href = query
            .before
            .is_some()
            .then(|| format!("/receipts?{filters}"));
        let mut zones = Zones::default();
        let mut rows = Vec::with_capacity(receipts.len());
        for r in &receipts {
            let zone = zones.of(state, r.bank_id).await?;
            let form = (r.state() == ReceiptState::Awaiting || r.state() == ReceiptState::Overdue)
                .then(|| match &refused {
                    Some((serial, values)) if *serial == r.serial => values.clone(),
                    _ => DepositValues {
                        day: local_day(state.now_ms(), zone).unwrap_or_default(),
                        ..DepositValues::default()
                    },
                });
            let serial = ReceiptSerial(u64::try_from(r.serial).unwrap_or_default()).to_string();
            rows.push(ReceiptRow {
                form_label: lang.t_args("deposit-form-label", &[("serial", serial.clone().into())]),
                serial,
                action: format!("/receipts/{}/deposit", r.serial),
                issued: local_time(r.issued_ms, zone),
                case_ref: visible(&r.case_ref).into_owned(),
                payer: visible(&r.payer_name).into_owned(),
                amount: yuan(r.amount_fen),
                method: method_text(lang, &r.method),
                visit: short_id(r.visit_id),
                state_text: state_text(lang, r, zone),
                state: r.state().as_str(),
                quarantined: r.bundle_status == "quarantined",
                form,
            });
        }
        let banks_seen = picked.map_or_else(|| user.user.bank_ids.clone(), |b| vec![b]);
        let mut voids = Vec::new();
        for v in state.db.receipt_voids(&banks_seen, VOIDS_SHOWN).await? {
            let zone = zones.of(state, v.bank_id).await?;
            voids.push(VoidRow {
                serial: ReceiptSerial(u64::try_from(v.serial).unwrap_or_default()).to_string(),
                voided: local_time(v.voided_ms, zone),
                visit: short_id(v.visit_id),
                kind: lang.t(if v.was_issued {
                    "money-void-issued"
                } else {
                    "money-void-abandoned"
                }),
                reason: visible(&v.reason).into_owned(),
            });
        }
        let states = [
            None,
            Some("awaiting"),
            Some("overdue"),
            Some("deposited"),
            Some("voided"),
        ]
        .into_iter()
        .map(|s| StateOption {
            value: s.unwrap_or(""),
            label: lang.t(&format!("money-filter-state-{}", s.unwrap_or("all"))),
            selected: wanted.map(ReceiptState::as_str) == s,
        })
        .collect();
        let back = match &query.before {
            Some(before) if !filters.is_empty() => format!("{filters}&before={before}"),
            Some(before) => format!("before={before}"),
            None => filters.clone(),
        };
        Ok(Self {
            page: Page::new(lang, "receipts-title", uri).signed_in(user, "receipts"),
            banks,
            states,
            from: from.unwrap_or_default(),
            to: to.unwrap_or_default(),
            count_text: lang.t_args("receipts-count", &[("count", rows.len().into())]),
            rows,
            next_href,
            first_href,
            back,
            notice: None,
            error: None,
            voids,
        })
    }
}

/// `GET /receipts`: the receipts of the manager's banks, newest first.
pub async fn receipts_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Query(query): Query<ReceiptsQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match ReceiptsPage::load(&state, &user, lang, &uri, &query, None).await {
        Ok(mut page) => {
            page.notice = query
                .done
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .map(|s| {
                    lang.t_args(
                        "deposit-done",
                        &[("serial", ReceiptSerial(s).to_string().into())],
                    )
                });
            render(StatusCode::OK, &page)
        }
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// The deposit form as posted.
pub struct DepositForm {
    csrf: String,
    back: String,
    values: DepositValues,
}

impl ConsoleForm for DepositForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    async fn read(req: Request, state: &AppState) -> Result<Option<Self>, Response> {
        Ok(Some(deposit_form(&form_body(req, state).await?)))
    }
}

fn deposit_form(body: &[u8]) -> DepositForm {
    let mut form = DepositForm {
        csrf: String::new(),
        back: String::new(),
        values: DepositValues::default(),
    };
    for (key, value) in form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "csrf" => form.csrf = value,
            "back" => form.back = value,
            "reference" => form.values.reference = value,
            "day" => form.values.day = value,
            "amount" => form.values.amount = value,
            _ => {}
        }
    }
    form
}

/// The list's query string to go back to, if it is one this page wrote (only the filter
/// and page characters: never a path or another site).
fn safe_back(back: &str) -> &str {
    let ok = back.len() <= 512
        && back
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=&%.-_+".contains(&b));
    if ok { back } else { "" }
}

/// `POST /receipts/{serial}/deposit`: marks a receipt of the manager's banks deposited
/// (reference, day, amount), once; a refusal shows the list again with the reason in the
/// page's language and the values as typed.
pub async fn deposit(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    Posted {
        user,
        form,
        lang,
        uri,
        ..
    }: Posted<DepositForm>,
) -> Response {
    let back = safe_back(&form.back).to_owned();
    let list_uri: Uri = format!("/receipts?{back}").parse().unwrap_or(uri);
    let outcome = async {
        let receipt = visible_receipt(&state, &user, &serial).await?;
        let zone = bank_zone(&state, receipt.bank_id).await?;
        let refusal = match parse_yuan(&form.values.amount) {
            None => Some(lang.t("deposit-bad-amount")),
            Some(amount_fen) => {
                let input = DepositInput {
                    reference: form.values.reference.clone(),
                    day: form.values.day.clone(),
                    amount_fen,
                };
                mark_deposited(&state, &user, &receipt, &input, zone)
                    .await?
                    .err()
                    .map(|r| lang.t(r.message_id()))
            }
        };
        let Some(reason) = refusal else {
            return Ok(None);
        };
        let query = ReceiptsQuery::from_query_string(&back);
        let mut values = form.values.clone();
        let serial_text =
            ReceiptSerial(u64::try_from(receipt.serial).unwrap_or_default()).to_string();
        let error = lang.t_args(
            "deposit-refused",
            &[
                ("serial", serial_text.into()),
                ("reason", reason.clone().into()),
            ],
        );
        values.error = Some(reason);
        let mut page = ReceiptsPage::load(
            &state,
            &user,
            lang,
            &list_uri,
            &query,
            Some((receipt.serial, values)),
        )
        .await?;
        page.error = Some(error);
        Ok::<_, AppError>(Some(page))
    };
    match outcome.await {
        Ok(None) => {
            let sep = if back.is_empty() { "" } else { "&" };
            Redirect::to(&format!("/receipts?{back}{sep}done={serial}")).into_response()
        }
        Ok(Some(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &list_uri, Some(&user), &e),
    }
}

/// One range as the ranges page shows it.
pub struct RangeRow {
    device: String,
    revoked: bool,
    agent: String,
    range: String,
    issued_at: String,
    issued: i64,
    voided: i64,
    left: i64,
}

#[derive(Template)]
#[template(path = "console/ranges.html")]
struct RangesPage {
    page: Page,
    banks: Vec<BankOption>,
    rows: Vec<RangeRow>,
}

/// Which bank's ranges.
#[derive(Debug, Default, Deserialize)]
pub struct RangesQuery {
    #[serde(default)]
    bank: Option<String>,
}

/// `GET /receipts/ranges`: the receipt-number ranges of the phones of a bank's agents, how
/// many numbers each has used (issued, voided) and how many it has left.
pub async fn ranges_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Query(query): Query<RangesQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    let shown = async {
        user.require(&[Role::Manager, Role::Admin])?;
        let (picked, mut banks) = bank_choice(&state, &user, query.bank.as_deref()).await?;
        let bank = match picked.or_else(|| user.user.bank_ids.first().copied()) {
            Some(bank) => bank,
            None => return Err(AppError::NotFound),
        };
        for b in &mut banks {
            b.selected = b.id == bank.to_string();
        }
        let zone = bank_zone(&state, bank).await?;
        let rows = state
            .db
            .serial_range_use(bank)
            .await?
            .into_iter()
            .map(|r| {
                let size = r.last - r.first + 1;
                let left = r.highest_used.map_or(size, |top| r.last - top);
                let serial = |n: i64| ReceiptSerial(u64::try_from(n).unwrap_or_default());
                RangeRow {
                    device: short_id(r.device_id),
                    revoked: r.revoked,
                    agent: lang.t_args(
                        "money-agent",
                        &[
                            ("name", visible(&r.agent_name).into_owned().into()),
                            ("no", visible(&r.employee_no).into_owned().into()),
                        ],
                    ),
                    range: format!("{}–{}", serial(r.first), serial(r.last)),
                    issued_at: local_time(r.issued_ms, zone),
                    issued: r.issued,
                    voided: r.voided,
                    left,
                }
            })
            .collect();
        Ok(RangesPage {
            page: Page::new(lang, "ranges-title", &uri).signed_in(&user, "receipts"),
            banks,
            rows,
        })
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}
