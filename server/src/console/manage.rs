//! The manager's visit requests: the queue awaiting a decision, and each request's page —
//! the case, the debtor's earlier visits, the warnings the rules raise (V01, V11, V14) —
//! with the approval form (team, window, letter, cash and promise authorisations) and the
//! rejection form. Both forms call the JSON API's own services, so a refusal names the same
//! rule as the API would.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use tandem_core::model::PromiseAuthorisation;
use tandem_core::rules::{Unworkable, case_unworkable, debtor_day_full};
use tandem_core::text::visible;

use super::frame::{
    Page, Zones, bank_zone, error_page, input_day, input_time, local_time, parse_local_day_end,
    parse_local_time, parse_yuan, problem_text, render, to_sign_in, yuan,
};
use super::i18n::Lang;
use super::session::{ConsoleForm, HasCsrf, PageLang, Posted, Viewer, form_body};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::console::{BankAgent, DebtorVisit};
use crate::db::visits::{CaseRecord, VisitRequestRecord};
use crate::error::AppError;
use crate::visits::approve::{ApproveRequest, CashTerms, TeamChoice, approve_request};
use crate::visits::policy::current;
use crate::visits::requests::{decidable_request, queue, reject_request, visible_request};
use crate::visits::{case_document, case_status};

/// One row of the requests queue, formatted for the page.
pub struct RequestRow {
    href: String,
    requested: String,
    case_ref: String,
    debtor: String,
    card: String,
    outstanding: String,
    window_from: String,
    window_until: String,
    purpose: String,
    requested_by: String,
    /// Rule ids the request raises that the queue can tell without reading more (V01, V11).
    rules: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "console/requests.html")]
struct RequestsPage {
    page: Page,
    count_text: String,
    rows: Vec<RequestRow>,
    notice: Option<String>,
}

/// What the queue page was sent back with after a decision.
#[derive(Debug, serde::Deserialize)]
pub struct QueueQuery {
    /// `approved` or `rejected`.
    #[serde(default)]
    done: Option<String>,
}

/// `GET /requests`: the visit requests of the manager's banks awaiting a decision, oldest
/// first, with each case's summary (card masked), times in the bank's zone, the bank's text
/// with its direction controls shown as codes, and the rules each one raises.
pub async fn requests(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    axum::extract::Query(query): axum::extract::Query<QueueQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match request_rows(&state, &user, lang).await {
        Ok((rows, more)) => {
            let count_text = if more {
                lang.t_args("requests-count-oldest", &[("count", rows.len().into())])
            } else {
                lang.t_args("requests-count", &[("count", rows.len().into())])
            };
            let page = Page::new(lang, "requests-title", &uri).signed_in(&user, "requests");
            let notice = match query.done.as_deref() {
                Some("approved") => Some(lang.t("request-approved-notice")),
                Some("rejected") => Some(lang.t("request-rejected-notice")),
                _ => None,
            };
            render(
                StatusCode::OK,
                &RequestsPage {
                    page,
                    count_text,
                    rows,
                    notice,
                },
            )
        }
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// Most requests the queue shows at once, oldest first (the page stays small).
const QUEUE_PAGE: usize = 100;

async fn request_rows(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
) -> Result<(Vec<RequestRow>, bool), AppError> {
    let limit = i64::try_from(QUEUE_PAGE + 1).unwrap_or(i64::MAX);
    let mut pending = queue(state, user, &user.user.bank_ids, Some("pending"), limit).await?;
    pending.sort_by_key(|r| (r.request.created_ms, r.request.id));
    let more = pending.len() > QUEUE_PAGE;
    pending.truncate(QUEUE_PAGE);
    // The requests' cases in one query, not one per row.
    let ids: Vec<_> = pending.iter().map(|r| r.request.case_id).collect();
    let cases: std::collections::HashMap<_, _> = state
        .db
        .cases_by_ids(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut zones = Zones::default();
    let now = state.now_ms();
    let mut rows = Vec::with_capacity(pending.len());
    for r in pending {
        let zone = zones.of(state, r.request.bank_id).await?;
        let Some(case) = cases.get(&r.request.case_id) else {
            continue;
        };
        let mut rules = Vec::new();
        if !case_unworkable(&case_document(case)?, now).is_empty() {
            rules.push("V01");
        }
        if case.health_flag.is_some() {
            rules.push("V11");
        }
        rows.push(RequestRow {
            href: format!("/requests/{}", r.request.id),
            requested: local_time(r.request.created_ms, zone),
            case_ref: visible(&case.case_ref).into_owned(),
            debtor: visible(&case.debtor_name).into_owned(),
            card: case.card.as_str().to_owned(),
            outstanding: yuan(case.outstanding_fen),
            window_from: local_time(r.request.wanted_from_ms, zone),
            window_until: local_time(r.request.wanted_until_ms, zone),
            purpose: visible(&r.request.purpose).into_owned(),
            requested_by: lang.t(if r.request.requested_device.is_some() {
                "requested-by-phone"
            } else {
                "requested-by-console"
            }),
            rules,
        });
    }
    Ok((rows, more))
}

/// A warning the rules raise about a request: its rule id and what it means.
pub struct Warning {
    rule: &'static str,
    text: String,
}

/// The case as the request page shows it.
pub struct CaseSummary {
    pub(super) href: String,
    pub(super) case_ref: String,
    pub(super) debtor: String,
    pub(super) card: String,
    pub(super) id_number: String,
    pub(super) outstanding: String,
    pub(super) status: String,
    pub(super) entrusted_until: String,
    pub(super) health: Option<String>,
    pub(super) addresses: Vec<String>,
}

/// One earlier request to the same debtor.
pub struct HistoryRow {
    pub(super) requested: String,
    pub(super) case_ref: String,
    pub(super) window: String,
    pub(super) status: String,
    pub(super) outcome: String,
    pub(super) current: bool,
}

/// An agent the approval form offers.
pub struct AgentOption {
    id: String,
    label: String,
    /// No enrolled, unrevoked phone: cannot be on a team (A02).
    no_phone: bool,
    checked: bool,
}

/// The approval form's values (as typed, kept when the form comes back with an error).
#[derive(Default)]
pub struct ApproveValues {
    valid_from: String,
    valid_until: String,
    letter_number: String,
    letter_until: String,
    health_review: bool,
    cash: bool,
    cash_limit: String,
    cash_account: String,
    cash_by_cash: bool,
    cash_by_cheque: bool,
    promise_waiver: bool,
    promise_instalments: bool,
    promise_reinstatement: bool,
}

#[derive(Template)]
#[template(path = "console/request.html")]
struct RequestPage {
    page: Page,
    action: String,
    pending: bool,
    decision: Option<String>,
    requested: String,
    requested_by: String,
    window: String,
    purpose: String,
    case: CaseSummary,
    warnings: Vec<Warning>,
    history: Vec<HistoryRow>,
    agents: Vec<AgentOption>,
    values: ApproveValues,
    approve_error: Option<String>,
    reject_error: Option<String>,
    reject_reason: String,
}

/// `GET /requests/{id}`: one request of the manager's banks (any other id, or another
/// bank's, is the same "not found").
pub async fn request_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    let shown = async {
        let request = visible_request(&state, &user, &id).await?;
        let mut page = RequestPage::load(&state, &user, lang, &uri, &request).await?;
        page.values = page.default_values(&state, &request).await?;
        Ok::<_, AppError>(page)
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

impl RequestPage {
    async fn load(
        state: &AppState,
        user: &UserAuth,
        lang: Lang,
        uri: &Uri,
        request: &VisitRequestRecord,
    ) -> Result<Self, AppError> {
        let q = &request.request;
        let zone = bank_zone(state, q.bank_id).await?;
        let case = state
            .db
            .case(q.case_id)
            .await?
            .ok_or_else(|| AppError::Internal("request for a missing case".into()))?;
        let history = state.db.debtor_visits(&case, 50).await?;
        let warnings = warnings(state, lang, request, &case, &history).await?;
        let agents = state.db.bank_agents(q.bank_id).await?;
        let decision = match request.status.as_str() {
            "approved" => Some(lang.t_args(
                "request-decided-approved",
                &[(
                    "at",
                    local_time(request.decided_ms.unwrap_or_default(), zone).into(),
                )],
            )),
            "rejected" => Some(
                lang.t_args(
                    "request-decided-rejected",
                    &[
                        (
                            "at",
                            local_time(request.decided_ms.unwrap_or_default(), zone).into(),
                        ),
                        (
                            "reason",
                            visible(request.reject_reason.as_deref().unwrap_or_default())
                                .into_owned()
                                .into(),
                        ),
                    ],
                ),
            ),
            _ => None,
        };
        Ok(Self {
            page: Page::new(lang, "request-title", uri).signed_in(user, "requests"),
            action: format!("/requests/{}", q.id),
            pending: request.status == "pending",
            decision,
            requested: local_time(q.created_ms, zone),
            requested_by: lang.t(if q.requested_device.is_some() {
                "requested-by-phone"
            } else {
                "requested-by-console"
            }),
            window: window_text(lang, q.wanted_from_ms, q.wanted_until_ms, zone),
            purpose: visible(&q.purpose).into_owned(),
            case: case_summary(lang, &case, zone),
            warnings,
            history: history
                .iter()
                .map(|h| history_row(lang, h, q.id, zone))
                .collect(),
            agents: agents.iter().map(|a| agent_option(lang, a)).collect(),
            values: ApproveValues::default(),
            approve_error: None,
            reject_error: None,
            reject_reason: String::new(),
        })
    }

    /// The form as first shown: the wanted window, the letter valid to its end, cash and
    /// promises left off.
    async fn default_values(
        &self,
        state: &AppState,
        request: &VisitRequestRecord,
    ) -> Result<ApproveValues, AppError> {
        let zone = bank_zone(state, request.request.bank_id).await?;
        let q = &request.request;
        let from = q.wanted_from_ms.max(state.now_ms());
        Ok(ApproveValues {
            valid_from: input_time(from, zone),
            valid_until: input_time(q.wanted_until_ms, zone),
            letter_until: input_day(q.wanted_until_ms, zone),
            cash_by_cash: true,
            ..ApproveValues::default()
        })
    }
}

fn window_text(lang: Lang, from: i64, until: i64, zone: chrono_tz::Tz) -> String {
    format!(
        "{} {} {}",
        local_time(from, zone),
        lang.t("window-to"),
        local_time(until, zone)
    )
}

/// The case's status as a sentence (the seed's `open` reads as active).
fn status_text(lang: Lang, status: &str) -> String {
    let id = match status {
        "active" | "open" => "case-status-active",
        "settled" => "case-status-settled",
        "dispute" => "case-status-dispute",
        "complaint" => "case-status-complaint",
        "vulnerability_review" => "case-status-vulnerability_review",
        _ => "case-status-other",
    };
    lang.t(id)
}

fn health_text(lang: Lang, flag: &str) -> String {
    lang.t(match flag {
        "serious_illness" => "health-serious_illness",
        "pregnancy" => "health-pregnancy",
        _ => "health-other",
    })
}

pub(super) fn case_summary(lang: Lang, case: &CaseRecord, zone: chrono_tz::Tz) -> CaseSummary {
    let until = case
        .extended_until_ms
        .unwrap_or(case.entrustment_end_ms)
        .max(case.entrustment_end_ms);
    CaseSummary {
        href: format!("/cases/{}", case.id),
        case_ref: visible(&case.case_ref).into_owned(),
        debtor: visible(&case.debtor_name).into_owned(),
        card: case.card.as_str().to_owned(),
        id_number: case.id_number.as_str().to_owned(),
        outstanding: yuan(case.outstanding_fen),
        status: status_text(lang, &case.status),
        entrusted_until: local_time(until, zone),
        health: case.health_flag.as_deref().map(|f| health_text(lang, f)),
        addresses: case
            .addresses
            .iter()
            .map(|a| visible(&a.text).into_owned())
            .collect(),
    }
}

pub(super) fn history_row(
    lang: Lang,
    h: &DebtorVisit,
    current: uuid::Uuid,
    zone: chrono_tz::Tz,
) -> HistoryRow {
    let outcome = match (h.status.as_str(), h.bundle_status.as_deref()) {
        ("rejected", _) => visible(h.reject_reason.as_deref().unwrap_or_default()).into_owned(),
        ("approved", Some(s)) => lang.t(&format!("bundle-{s}")),
        ("approved", None) => lang.t("visit-no-evidence-yet"),
        _ => String::new(),
    };
    HistoryRow {
        requested: local_time(h.created_ms, zone),
        case_ref: visible(&h.case_ref).into_owned(),
        window: window_text(lang, h.wanted_from_ms, h.wanted_until_ms, zone),
        status: lang.t(&format!("request-status-{}", h.status)),
        outcome,
        current: h.request_id == current,
    }
}

fn agent_option(lang: Lang, a: &BankAgent) -> AgentOption {
    let name = visible(&a.display_name).into_owned();
    let label = if a.live_devices == 0 {
        lang.t_args(
            "agent-no-phone",
            &[("name", name.into()), ("no", a.employee_no.clone().into())],
        )
    } else {
        lang.t_args(
            "agent-option",
            &[("name", name.into()), ("no", a.employee_no.clone().into())],
        )
    };
    AgentOption {
        id: a.agent_id.to_string(),
        label,
        no_phone: a.live_devices == 0,
        checked: false,
    }
}

/// The warnings the rules raise about approving `request` now: V01 (the case is not
/// workable: approval is refused), V11 (a health flag: approval needs the manager's
/// explicit review), V14 (the debtor already has as many visits that day as the bank's
/// policy allows).
async fn warnings(
    state: &AppState,
    lang: Lang,
    request: &VisitRequestRecord,
    case: &CaseRecord,
    history: &[DebtorVisit],
) -> Result<Vec<Warning>, AppError> {
    let mut out = Vec::new();
    let now = state.now_ms();
    for why in case_unworkable(&case_document(case)?, now) {
        let text = match why {
            Unworkable::Settled => lang.t("warn-v01-settled"),
            Unworkable::OnHold(_) => lang.t_args(
                "warn-v01-hold",
                &[("status", status_text(lang, &case.status).into())],
            ),
            Unworkable::NotEntrusted => lang.t("warn-v01-not-entrusted"),
        };
        out.push(Warning { rule: "V01", text });
    }
    // The stored status must read (a corrupt one is an internal error, not a warning).
    case_status(&case.status)?;
    if let Some(flag) = case.health_flag.as_deref() {
        out.push(Warning {
            rule: "V11",
            text: lang.t_args("warn-v11", &[("flag", health_text(lang, flag).into())]),
        });
    }
    let q = &request.request;
    let policy = match current(state, q.bank_id).await {
        Ok(view) => Some(view.policy),
        Err(AppError::NotFound) => None,
        Err(e) => return Err(e),
    };
    if let Some(policy) = policy {
        let others: Vec<(i64, i64)> = history
            .iter()
            .filter(|h| h.request_id != q.id && h.status != "rejected")
            .map(|h| (h.wanted_from_ms, h.wanted_until_ms))
            .collect();
        if let Some(count) = debtor_day_full(&policy, q.wanted_from_ms, &others) {
            out.push(Warning {
                rule: "V14",
                text: lang.t_args(
                    "warn-v14",
                    &[
                        ("count", count.into()),
                        ("allowed", policy.max_visits_per_debtor_per_day.into()),
                    ],
                ),
            });
        }
    }
    Ok(out)
}

/// The approval form as posted: repeated `agent` fields, so read as pairs.
pub struct ApproveForm {
    csrf: String,
    agents: Vec<String>,
    values: ApproveValues,
}

impl ConsoleForm for ApproveForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    async fn read(req: Request, state: &AppState) -> Result<Option<Self>, Response> {
        Ok(Some(approve_form(&form_body(req, state).await?)))
    }
}

fn approve_form(body: &[u8]) -> ApproveForm {
    let mut form = ApproveForm {
        csrf: String::new(),
        agents: Vec::new(),
        values: ApproveValues::default(),
    };
    let v = &mut form.values;
    for (key, value) in form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "csrf" => form.csrf = value,
            "agent" => form.agents.push(value),
            "valid_from" => v.valid_from = value,
            "valid_until" => v.valid_until = value,
            "letter_number" => v.letter_number = value,
            "letter_until" => v.letter_until = value,
            "health_review" => v.health_review = true,
            "cash" => v.cash = true,
            "cash_limit" => v.cash_limit = value,
            "cash_account" => v.cash_account = value,
            "cash_method" if value == "cash" => v.cash_by_cash = true,
            "cash_method" if value == "cheque" => v.cash_by_cheque = true,
            "promise_waiver" => v.promise_waiver = true,
            "promise_instalments" => v.promise_instalments = true,
            "promise_reinstatement" => v.promise_reinstatement = true,
            _ => {}
        }
    }
    form
}

/// A form value the page could not read: the message id saying which.
struct Unreadable(&'static str);

/// The JSON API's request from the form, its times read in the bank's zone.
fn approve_request_of(
    form: &ApproveForm,
    zone: chrono_tz::Tz,
) -> Result<ApproveRequest, Unreadable> {
    let v = &form.values;
    let valid_from_ms =
        parse_local_time(&v.valid_from, zone).ok_or(Unreadable("form-bad-valid-from"))?;
    let valid_until_ms =
        parse_local_time(&v.valid_until, zone).ok_or(Unreadable("form-bad-valid-until"))?;
    let letter_valid_until_ms =
        parse_local_day_end(&v.letter_until, zone).ok_or(Unreadable("form-bad-letter-until"))?;
    let cash = if v.cash {
        let limit_fen = parse_yuan(&v.cash_limit).ok_or(Unreadable("form-bad-cash-limit"))?;
        let mut methods = Vec::new();
        if v.cash_by_cash {
            methods.push("cash".to_owned());
        }
        if v.cash_by_cheque {
            methods.push("cheque".to_owned());
        }
        Some(CashTerms {
            limit_fen,
            currency: "CNY".to_owned(),
            designated_account: v.cash_account.clone(),
            methods,
        })
    } else {
        None
    };
    Ok(ApproveRequest {
        team: form
            .agents
            .iter()
            .map(|a| TeamChoice {
                agent_id: a.clone(),
                device_id: None,
            })
            .collect(),
        valid_from_ms,
        valid_until_ms,
        letter_number: v.letter_number.clone(),
        letter_valid_until_ms,
        cash,
        promise: Some(PromiseAuthorisation {
            waiver: v.promise_waiver,
            instalments: v.promise_instalments,
            reinstatement: v.promise_reinstatement,
        }),
        appointment: None,
        health_review_done: v.health_review,
    })
}

/// `POST /requests/{id}/approve`: approves on the form's terms through the JSON API's
/// service; a refusal shows the form again, as typed, with the reason and its rule.
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        form,
        lang,
        uri,
        ..
    }: Posted<ApproveForm>,
) -> Response {
    let page_uri: Uri = format!("/requests/{id}").parse().unwrap_or(uri);
    let outcome = async {
        let request = visible_request(&state, &user, &id).await?;
        let decided = async {
            let request = decidable_request(&state, &user, &id).await?;
            let zone = bank_zone(&state, request.request.bank_id).await?;
            let req = match approve_request_of(&form, zone) {
                Ok(req) => req,
                Err(Unreadable(message)) => return Ok(Err(lang.t(message))),
            };
            approve_request(&state, &user, &request, &req).await?;
            Ok::<_, AppError>(Ok(()))
        };
        let error = match decided.await {
            Ok(Ok(())) => return Ok(None),
            Ok(Err(text)) => text,
            Err(e @ (AppError::Problem { .. } | AppError::Malformed(_))) => problem_text(lang, &e),
            Err(e) => return Err(e),
        };
        let mut page = RequestPage::load(&state, &user, lang, &page_uri, &request).await?;
        page.values = form.values;
        for agent in &mut page.agents {
            agent.checked = form.agents.contains(&agent.id);
        }
        page.approve_error = Some(error);
        Ok::<_, AppError>(Some(page))
    };
    match outcome.await {
        Ok(None) => Redirect::to("/requests?done=approved").into_response(),
        Ok(Some(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &page_uri, Some(&user), &e),
    }
}

/// The rejection form.
#[derive(serde::Deserialize)]
pub struct RejectForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

impl HasCsrf for RejectForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /requests/{id}/reject`: rejects with the manager's reason.
pub async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        form,
        lang,
        uri,
        ..
    }: Posted<RejectForm>,
) -> Response {
    let page_uri: Uri = format!("/requests/{id}").parse().unwrap_or(uri);
    let outcome = async {
        let request = visible_request(&state, &user, &id).await?;
        let decided = async {
            let request = decidable_request(&state, &user, &id).await?;
            reject_request(&state, &user, &request, &form.reason).await
        };
        let error = match decided.await {
            Ok(_) => return Ok(None),
            Err(e @ AppError::Problem { .. }) => problem_text(lang, &e),
            Err(e) => return Err(e),
        };
        let mut page = RequestPage::load(&state, &user, lang, &page_uri, &request).await?;
        page.values = page.default_values(&state, &request).await?;
        page.reject_error = Some(error);
        page.reject_reason = form.reason.clone();
        Ok::<_, AppError>(Some(page))
    };
    match outcome.await {
        Ok(None) => Redirect::to("/requests?done=rejected").into_response(),
        Ok(Some(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &page_uri, Some(&user), &e),
    }
}
