//! The manager's visits: every approved visit of their banks with its state (approved and
//! awaiting evidence, evidence uploading, accepted, quarantined, or its window passed
//! without evidence), team and flags; and each visit's page — the approval as the team's
//! phones received it, and every bundle the server received with the checks that failed
//! and the flags raised (quarantines, equivocations).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use tandem_core::model::{Approval, PaymentMethod, Signed, VisitId};
use tandem_core::text::visible;

use super::frame::{Page, Zones, bank_zone, error_page, local_time, render, to_sign_in, yuan};
use super::i18n::Lang;
use super::session::{PageLang, Viewer};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::console::VisitSummary;
use crate::db::receipts::{ReceiptQuery, ReceiptState};
use crate::error::AppError;
use crate::ingest::checks::StoredReport;

/// Visits shown per page.
const PAGE_SIZE: i64 = 50;

/// A visit's state as the console names it: the message id's suffix and the badge's
/// style.
fn visit_state(v: &VisitSummary, now: i64) -> (&'static str, &'static str) {
    match v.bundle_status.as_deref() {
        Some("accepted") if v.flags > 0 => ("accepted-flagged", "warn"),
        Some("accepted") => ("accepted", "ok"),
        Some("quarantined") => ("quarantined", "bad"),
        Some(_) => ("uploading", "info"),
        None if now >= v.wanted_until_ms => ("no-evidence", "warn"),
        None => ("approved", "info"),
    }
}

/// One visit in the list.
pub struct VisitRow {
    href: String,
    approved: String,
    case_ref: String,
    debtor: String,
    team: String,
    window: String,
    state: String,
    badge: &'static str,
}

#[derive(Template)]
#[template(path = "console/visits.html")]
struct VisitsPage {
    page: Page,
    rows: Vec<VisitRow>,
    next_href: Option<String>,
}

/// The list's keyset.
#[derive(Debug, Deserialize)]
pub struct VisitsQuery {
    #[serde(default)]
    before_ms: Option<i64>,
    #[serde(default)]
    before_id: Option<String>,
}

/// `GET /visits`: the visits of the user's banks, newest approval first, 50 a page.
pub async fn visits(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Query(query): Query<VisitsQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match visits_page(&state, &user, lang, &uri, query).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

async fn visits_page(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    uri: &Uri,
    query: VisitsQuery,
) -> Result<VisitsPage, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let before = match (query.before_ms, query.before_id) {
        (Some(t), Some(i)) => Some((t, i)),
        _ => None,
    };
    let mut found = state
        .db
        .visits(&user.user.bank_ids, before, PAGE_SIZE + 1)
        .await?;
    let more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let next_href = match (more, found.last()) {
        (true, Some(last)) => Some(format!(
            "/visits?before_ms={}&before_id={}",
            last.approved_ms, last.approval_id
        )),
        _ => None,
    };
    let now = state.now_ms();
    let mut zones = Zones::default();
    let mut rows = Vec::with_capacity(found.len());
    for v in &found {
        let zone = zones.of(state, v.bank_id).await?;
        let (state_id, badge) = visit_state(v, now);
        rows.push(VisitRow {
            href: format!("/visits/{}", v.visit_id),
            approved: local_time(v.approved_ms, zone),
            case_ref: visible(&v.case_ref).into_owned(),
            debtor: visible(&v.debtor_name).into_owned(),
            team: team_text(lang, &v.team),
            window: format!(
                "{} {} {}",
                local_time(v.wanted_from_ms, zone),
                lang.t("window-to"),
                local_time(v.wanted_until_ms, zone)
            ),
            state: lang.t(&format!("visit-state-{state_id}")),
            badge,
        });
    }
    Ok(VisitsPage {
        page: Page::new(lang, "visits-title", uri).signed_in(user, "visits"),
        rows,
        next_href,
    })
}

fn team_text(lang: Lang, team: &[String]) -> String {
    team.iter()
        .map(|n| visible(n).into_owned())
        .collect::<Vec<_>>()
        .join(lang.list_separator())
}

/// One bundle the server received for the visit.
pub struct BundleRow {
    id: String,
    state: String,
    badge: &'static str,
    log_index: String,
    failed: Vec<String>,
    flags: Vec<String>,
}

/// One receipt the visit issued.
pub struct ReceiptRow {
    serial: String,
    issued: String,
    amount: String,
    payer: String,
    state: String,
    badge: &'static str,
}

/// The approval's terms as the phones received them.
pub struct Terms {
    valid: String,
    letter: String,
    cash: String,
    promise: String,
}

#[derive(Template)]
#[template(path = "console/visit.html")]
struct VisitPage {
    page: Page,
    case_href: String,
    case_ref: String,
    debtor: String,
    approved: String,
    team: String,
    state: String,
    badge: &'static str,
    terms: Option<Terms>,
    bundles: Vec<BundleRow>,
    receipts: Vec<ReceiptRow>,
    /// Evidence destroyed, legal holds in force (E04).
    retention_notes: Vec<String>,
}

/// `GET /visits/{id}`: one visit of the user's banks (another bank's, or a random id, is
/// the same "not found").
pub async fn visit_page(
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
    match load_visit(&state, &user, lang, &uri, &id).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

async fn load_visit(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    uri: &Uri,
    id: &str,
) -> Result<VisitPage, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let visit = state
        .db
        .visit_summary(id)
        .await?
        .ok_or(AppError::NotFound)?;
    user.check_bank(visit.bank_id)?;
    let zone = bank_zone(state, visit.bank_id).await?;
    let terms = match state.db.assignment_payload(visit.approval_id).await? {
        Some(payload) => Some(terms(lang, &payload, zone)?),
        None => None,
    };
    let mut bundles = Vec::new();
    for b in state.db.visit_bundles(VisitId(id)).await? {
        let report: Option<StoredReport> = b
            .report
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| AppError::Internal(format!("stored report: {e}")))?;
        let (state_id, badge) = match b.status.as_str() {
            "accepted" => ("accepted", "ok"),
            "quarantined" => ("quarantined", "bad"),
            _ => ("uploading", "info"),
        };
        let flags = state
            .db
            .flags(b.id)
            .await?
            .into_iter()
            .map(|f| {
                let kind = lang.t(&format!("flag-kind-{}", f.kind));
                match f.other_digest {
                    Some(other) => format!("{kind}: {} ({other})", visible(&f.detail)),
                    None => format!("{kind}: {}", visible(&f.detail)),
                }
            })
            .collect();
        bundles.push(BundleRow {
            id: b.id.to_string(),
            state: lang.t(&format!("visit-state-{state_id}")),
            badge,
            log_index: b.log_index.map(|i| i.to_string()).unwrap_or_default(),
            failed: report.map(|r| r.failed_checks).unwrap_or_default(),
            flags,
        });
    }
    let receipts = state
        .db
        .receipts(&ReceiptQuery {
            banks: vec![visit.bank_id],
            state: None,
            from_day: None,
            to_day: None,
            before: None,
            visit: Some(VisitId(id)),
            limit: 200,
        })
        .await?
        .iter()
        .rev()
        .map(|r| {
            let (state_id, badge) = match r.state() {
                ReceiptState::Voided => ("voided", "info"),
                ReceiptState::Deposited => ("deposited", "ok"),
                ReceiptState::Overdue => ("overdue", "bad"),
                ReceiptState::Awaiting => ("awaiting", "warn"),
            };
            ReceiptRow {
                serial: format!("{:010}", r.serial),
                issued: local_time(r.issued_ms, zone),
                amount: yuan(r.amount_fen),
                payer: visible(&r.payer_name).into_owned(),
                state: lang.t(&format!("visit-receipt-{state_id}")),
                badge,
            }
        })
        .collect();
    let (state_id, badge) = visit_state(&visit, state.now_ms());
    let retention_notes = super::retention::evidence_notes(
        state,
        lang,
        visit.bank_id,
        visit.case_id,
        Some(VisitId(id)),
    )
    .await;
    Ok(VisitPage {
        retention_notes,
        page: Page::new(lang, "visit-title", uri).signed_in(user, "visits"),
        case_href: format!("/cases/{}", visit.case_id),
        case_ref: visible(&visit.case_ref).into_owned(),
        debtor: visible(&visit.debtor_name).into_owned(),
        approved: local_time(visit.approved_ms, zone),
        team: team_text(lang, &visit.team),
        state: lang.t(&format!("visit-state-{state_id}")),
        badge,
        terms,
        bundles,
        receipts,
    })
}

/// The approval's terms, read from the signed assignment as stored.
fn terms(lang: Lang, payload: &str, zone: chrono_tz::Tz) -> Result<Terms, AppError> {
    #[derive(Deserialize)]
    struct Stored {
        approval: Signed<Approval>,
    }
    let bad = |e: String| AppError::Internal(format!("stored assignment: {e}"));
    let stored: Stored = serde_json::from_str(payload).map_err(|e| bad(e.to_string()))?;
    let approval: Approval =
        serde_json::from_str(&stored.approval.body).map_err(|e| bad(e.to_string()))?;
    let cash = match &approval.cash {
        None => lang.t("terms-no-cash"),
        Some(c) => {
            let methods: Vec<String> = c
                .methods
                .iter()
                .map(|m| {
                    lang.t(match m {
                        PaymentMethod::Cash => "method-cash",
                        PaymentMethod::Cheque => "method-cheque",
                    })
                })
                .collect();
            lang.t_args(
                "terms-cash",
                &[
                    ("limit", yuan(c.limit.0).into()),
                    (
                        "account",
                        visible(&c.designated_account).into_owned().into(),
                    ),
                    ("methods", methods.join(lang.list_separator()).into()),
                ],
            )
        }
    };
    let p = approval.promise;
    let promises: Vec<String> = [
        (p.waiver, "promise-waiver"),
        (p.instalments, "promise-instalments"),
        (p.reinstatement, "promise-reinstatement"),
    ]
    .into_iter()
    .filter(|(allowed, _)| *allowed)
    .map(|(_, id)| lang.t(id))
    .collect();
    Ok(Terms {
        valid: format!(
            "{} {} {}",
            local_time(approval.valid_from_ms, zone),
            lang.t("window-to"),
            local_time(approval.valid_until_ms, zone)
        ),
        letter: lang.t_args(
            "terms-letter",
            &[
                (
                    "number",
                    visible(&approval.letter.number).into_owned().into(),
                ),
                (
                    "until",
                    // Valid through the day before the stored (exclusive) end.
                    crate::receipts::local_day(approval.letter.valid_until_ms - 1, zone)
                        .unwrap_or_default()
                        .into(),
                ),
            ],
        ),
        cash,
        promise: if promises.is_empty() {
            lang.t("terms-no-promise")
        } else {
            promises.join(lang.list_separator())
        },
    })
}
