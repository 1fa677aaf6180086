//! The review queue: open complaints (P01) with their 24-hour deadline and the form to
//! resolve each, the latest resolved, and the flags raised on received evidence
//! (quarantines, equivocations, rule flags). Complaints are recorded from a case's page.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use tandem_core::text::visible;

use super::frame::{Page, Zones, error_page, local_time, problem_text, render, to_sign_in, yuan};
use super::i18n::Lang;
use super::session::{HasCsrf, PageLang, Posted, Viewer};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::complaints::ComplaintRecord;
use crate::db::receipts::{ReceiptQuery, ReceiptState};
use crate::error::AppError;
use crate::visits::complaints;

/// One complaint in the queue.
pub struct ComplaintRow {
    id: String,
    case_href: String,
    /// The visit's evidence, open to quality review for 24 hours after the complaint
    /// (P01), while it is.
    review_href: Option<String>,
    case_ref: String,
    source: String,
    note: String,
    opened: String,
    due: String,
    overdue: bool,
    resolved: String,
    resolution: String,
}

/// One flag on received evidence.
pub struct FlagRow {
    raised: String,
    case_ref: String,
    visit_href: String,
    kind: String,
    badge: &'static str,
    detail: String,
}

/// A receipt not deposited by its deadline (C03).
pub struct OverdueRow {
    serial: String,
    case_ref: String,
    amount: String,
    due: String,
    visit_href: String,
}

#[derive(Template)]
#[template(path = "console/flags.html")]
struct FlagsPage {
    page: Page,
    overdue: Vec<OverdueRow>,
    open: Vec<ComplaintRow>,
    resolved: Vec<ComplaintRow>,
    flags: Vec<FlagRow>,
    may_resolve: bool,
    error: Option<String>,
    notice: Option<String>,
}

/// `GET /flags`: what a manager must look at.
pub async fn flags(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match load(&state, &user, lang, &uri).await {
        Ok(mut page) => {
            if query.done.as_deref() == Some("resolved") {
                page.notice = Some(lang.t("complaint-resolved-notice"));
            }
            render(StatusCode::OK, &page)
        }
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// What the queue was sent back with.
#[derive(Debug, serde::Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

async fn load(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    uri: &Uri,
) -> Result<FlagsPage, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let banks = &user.user.bank_ids;
    let now = state.now_ms();
    let open = state.db.complaints(banks, true, 200).await?;
    let resolved = state.db.complaints(banks, false, 50).await?;
    let queued = state.db.flag_queue(banks, 200).await?;
    let late = state
        .db
        .receipts(&ReceiptQuery {
            banks: banks.clone(),
            state: Some(ReceiptState::Overdue),
            from_day: None,
            to_day: None,
            before: None,
            visit: None,
            limit: 100,
        })
        .await?;
    let mut zones = Zones::default();
    let all_banks = open
        .iter()
        .chain(&resolved)
        .map(|k| k.bank_id)
        .chain(queued.iter().map(|f| f.bank_id))
        .chain(late.iter().map(|r| r.bank_id));
    for bank in all_banks {
        zones.of(state, bank).await?;
    }
    let zone = |bank| zones.read(bank);
    let flags = queued
        .iter()
        .map(|f| FlagRow {
            raised: local_time(f.created_ms, zone(f.bank_id)),
            case_ref: f
                .case_ref
                .as_deref()
                .map(|r| visible(r).into_owned())
                .unwrap_or_default(),
            visit_href: format!("/visits/{}", f.visit_id),
            kind: lang.t(&format!("flag-kind-{}", f.kind)),
            badge: match f.kind.as_str() {
                "quarantine" | "equivocation" => "bad",
                _ => "warn",
            },
            detail: visible(&f.detail).into_owned(),
        })
        .collect();
    let overdue = late
        .iter()
        .map(|r| OverdueRow {
            serial: format!("{:010}", r.serial),
            case_ref: visible(&r.case_ref).into_owned(),
            amount: yuan(r.amount_fen),
            // The deadline is the end of its last day: shown as that day.
            due: crate::receipts::local_day(r.due_ms - 1, zone(r.bank_id)).unwrap_or_default(),
            visit_href: format!("/visits/{}", r.visit_id),
        })
        .collect();
    Ok(FlagsPage {
        page: Page::new(lang, "flags-title", uri).signed_in(user, "flags"),
        overdue,
        open: open
            .iter()
            .map(|k| complaint_row(lang, k, zone(k.bank_id), now))
            .collect(),
        resolved: resolved
            .iter()
            .map(|k| complaint_row(lang, k, zone(k.bank_id), now))
            .collect(),
        flags,
        may_resolve: user.user.role == Role::Manager,
        error: None,
        notice: None,
    })
}

fn complaint_row(lang: Lang, k: &ComplaintRecord, zone: chrono_tz::Tz, now: i64) -> ComplaintRow {
    ComplaintRow {
        id: k.id.to_string(),
        case_href: format!("/cases/{}", k.case_id),
        review_href: k
            .visit_id
            .filter(|_| now < k.opened_ms + crate::db::dossier::COMPLAINT_REVIEW_MS)
            .map(|v| format!("/evidence/visits/{v}")),
        case_ref: visible(&k.case_ref).into_owned(),
        source: lang.t(&format!("complaint-source-{}", k.source)),
        note: visible(&k.note).into_owned(),
        opened: local_time(k.opened_ms, zone),
        due: local_time(k.due_ms, zone),
        overdue: k.resolved_ms.is_none() && now >= k.due_ms,
        resolved: k
            .resolved_ms
            .map(|t| local_time(t, zone))
            .unwrap_or_default(),
        resolution: k
            .resolution
            .as_deref()
            .map(|r| visible(r).into_owned())
            .unwrap_or_default(),
    }
}

/// A form with a note.
#[derive(serde::Deserialize)]
pub struct NoteForm {
    csrf: String,
    #[serde(default)]
    note: String,
}

impl HasCsrf for NoteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /complaints/{id}/resolve`: resolves an open complaint with the manager's note.
pub async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        form,
        lang,
        uri,
        ..
    }: Posted<NoteForm>,
) -> Response {
    let page_uri: Uri = "/flags".parse().unwrap_or(uri);
    let outcome = async {
        let complaint = complaints::visible(&state, &user, &id).await?;
        let error = match complaints::resolve(&state, &user, &complaint, &form.note).await {
            Ok(()) => return Ok(None),
            Err(e @ AppError::Problem { .. }) => problem_text(lang, &e),
            Err(e) => return Err(e),
        };
        let mut page = load(&state, &user, lang, &page_uri).await?;
        page.error = Some(error);
        Ok::<_, AppError>(Some(page))
    };
    match outcome.await {
        Ok(None) => Redirect::to("/flags?done=resolved").into_response(),
        Ok(Some(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &page_uri, Some(&user), &e),
    }
}
