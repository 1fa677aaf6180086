//! The audit log of the admin's banks, read-only: newest first, filtered by action and
//! day, fifty to a page (keyset pagination by position, so a page never shifts as entries
//! arrive), each time in its bank's zone. No personal data: accounts and records are named
//! by a short id, never by a name, and no client address is shown.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use tandem_core::crypto::Signer as _;
use tandem_core::model::BankId;

use axum::http::Uri;
use fluent_bundle::FluentValue;

use super::{AdminPage, AdminPost};
use crate::AppState;
use crate::audit::verify::{Finding, Verification};
use crate::audit::{AuditAction, AuditRecord};
use crate::auth::UserAuth;
use crate::console::frame::{Page, bank_zone, error_page, local_time, parse_local_day_end, render};
use crate::console::i18n::Lang;
use crate::db::admin::BankAuditQuery;
use crate::error::AppError;

/// Entries on one page.
const PAGE_LEN: u32 = 50;

/// The filters, as the form sends them.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    /// An action's stored name, or empty for all.
    #[serde(default)]
    action: String,
    /// First day shown (`2026-12-01`), in the first bank's zone.
    #[serde(default)]
    from: String,
    /// Last day shown.
    #[serde(default)]
    to: String,
    /// Entries before this position (the next page).
    #[serde(default)]
    before: Option<i64>,
}

/// An action the filter offers.
pub struct ActionOption {
    value: &'static str,
    label: String,
    selected: bool,
}

/// One entry as the page shows it.
pub struct EntryRow {
    at: String,
    bank: String,
    action: String,
    actor: String,
    subject: String,
    subject_href: Option<String>,
    detail: String,
    purpose: String,
}

/// The outcome of "verify the log now", as the page shows it.
pub struct VerificationView {
    holds: bool,
    summary: String,
    findings: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/admin_audit.html")]
struct AuditPage {
    page: Page,
    verification: Option<VerificationView>,
    actions: Vec<ActionOption>,
    from: String,
    to: String,
    filter_error: Option<String>,
    rows: Vec<EntryRow>,
    next_href: Option<String>,
}

/// The last eight characters of an id: enough to tell records apart on a page (the first
/// ones of a time-ordered UUID are its time, alike for records made together).
fn short(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    chars[chars.len().saturating_sub(8)..].iter().collect()
}

fn action_label(lang: Lang, action: AuditAction) -> String {
    lang.t(&format!("admin-action-{}", action.as_str()))
}

/// What an entry's detail says that is no one's personal data: a version, a role, counts.
fn detail_text(lang: Lang, r: &AuditRecord) -> String {
    let d = &r.entry.detail;
    let role = |key: &str| {
        d.get(key)
            .and_then(|v| v.as_str())
            .and_then(crate::db::Role::parse)
            .map(|role| crate::console::frame::role_name(lang, role))
    };
    match r.entry.action {
        AuditAction::PolicyChanged => d
            .get("version")
            .and_then(serde_json::Value::as_i64)
            .map(|v| lang.t_args("admin-audit-version", &[("version", v.into())]))
            .unwrap_or_default(),
        AuditAction::UserCreated => role("role").unwrap_or_default(),
        AuditAction::UserAccessChanged => match (role("role_before"), role("role")) {
            (Some(before), Some(after)) if before != after => format!("{before} → {after}"),
            (_, Some(after)) => after,
            _ => String::new(),
        },
        AuditAction::CasesImported => d
            .get("count")
            .and_then(serde_json::Value::as_i64)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn query_href(q: &AuditQuery, before: i64) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if !q.action.is_empty() {
        s.append_pair("action", &q.action);
    }
    if !q.from.is_empty() {
        s.append_pair("from", &q.from);
    }
    if !q.to.is_empty() {
        s.append_pair("to", &q.to);
    }
    s.append_pair("before", &before.to_string());
    format!("/admin/audit?{}", s.finish())
}

/// `GET /admin/audit`: the latest audit entries of the admin's banks.
pub async fn audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
    AdminPage { admin, lang, uri }: AdminPage,
) -> Response {
    match load(&state, &admin, lang, &uri, &query).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// `POST /admin/audit/verify`: checks the whole log now — its chain, head and anchors in
/// the transparency log (`crate::audit::verify`) — and shows the outcome above the latest
/// entries.
pub async fn verify(
    State(state): State<AppState>,
    AdminPost {
        user: admin,
        lang,
        uri,
        ..
    }: AdminPost,
) -> Response {
    let shown = async {
        let outcome =
            crate::audit::verify::verify(state.db.as_ref(), &state.signer.public_key(), &[])
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
        let mut page = load(&state, &admin, lang, &uri, &AuditQuery::default()).await?;
        page.verification = Some(view(lang, &outcome));
        Ok::<_, AppError>(page)
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

fn view(lang: Lang, v: &Verification) -> VerificationView {
    let n = |x: i64| FluentValue::from(x);
    let mut summary = lang.t_args(
        "admin-audit-verified-summary",
        &[
            ("entries", n(i64::try_from(v.entries).unwrap_or(i64::MAX))),
            ("anchors", n(i64::try_from(v.anchors).unwrap_or(i64::MAX))),
            (
                "unanchored",
                n(i64::try_from(v.unanchored).unwrap_or(i64::MAX)),
            ),
        ],
    );
    if let Some(a) = &v.newest_anchor {
        summary.push(' ');
        summary.push_str(&lang.t_args(
            "admin-audit-verified-anchor",
            &[
                ("seq", n(a.audit_seq)),
                ("index", n(i64::try_from(a.log_index).unwrap_or(i64::MAX))),
            ],
        ));
    }
    let findings = v
        .findings
        .iter()
        .map(|f| {
            let u = |x: u64| n(i64::try_from(x).unwrap_or(i64::MAX));
            match f {
                Finding::Altered { seq } => {
                    lang.t_args("admin-audit-finding-altered", &[("seq", n(*seq))])
                }
                Finding::Missing { from, to } => lang.t_args(
                    "admin-audit-finding-missing",
                    &[("from", n(*from)), ("to", n(*to))],
                ),
                Finding::Head { head_seq, last_seq } => lang.t_args(
                    "admin-audit-finding-head",
                    &[("head", n(*head_seq)), ("last", n(*last_seq))],
                ),
                Finding::Cut {
                    log_index,
                    seq,
                    first_missing,
                    ..
                } => lang.t_args(
                    "admin-audit-finding-cut",
                    &[
                        ("index", u(*log_index)),
                        ("seq", n(*seq)),
                        ("from", n(*first_missing)),
                    ],
                ),
                Finding::Rewritten { log_index, seq } => lang.t_args(
                    "admin-audit-finding-rewritten",
                    &[("index", u(*log_index)), ("seq", n(*seq))],
                ),
                Finding::LogEntry { index, .. } => {
                    lang.t_args("admin-audit-finding-log-entry", &[("index", u(*index))])
                }
                Finding::Checkpoint(_) => lang.t("admin-audit-finding-checkpoint"),
            }
        })
        .collect();
    VerificationView {
        holds: v.holds(),
        summary,
        findings,
    }
}

/// The page: the latest entries of the admin's banks matching `query`.
async fn load(
    state: &AppState,
    admin: &UserAuth,
    lang: Lang,
    uri: &Uri,
    query: &AuditQuery,
) -> Result<AuditPage, AppError> {
    let banks = &admin.user.bank_ids;
    let first_zone = match banks.first() {
        Some(b) => bank_zone(state, *b).await?,
        None => chrono_tz::Asia::Shanghai,
    };
    let action = AuditAction::parse(&query.action);
    let day_start = |value: &str| {
        let day = chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok()?;
        day.and_hms_opt(0, 0, 0)?
            .and_local_timezone(first_zone)
            .earliest()
            .map(|t| t.timestamp_millis())
    };
    let mut filter_error = None;
    let since_ms = if query.from.trim().is_empty() {
        None
    } else {
        let at = day_start(&query.from);
        if at.is_none() {
            filter_error = Some(lang.t("admin-audit-bad-day"));
        }
        at
    };
    let until_ms = if query.to.trim().is_empty() {
        None
    } else {
        let at = parse_local_day_end(&query.to, first_zone);
        if at.is_none() {
            filter_error = Some(lang.t("admin-audit-bad-day"));
        }
        at
    };
    let records = state
        .db
        .bank_audit(
            banks,
            &BankAuditQuery {
                action,
                since_ms,
                until_ms,
                before_seq: query.before,
            },
            PAGE_LEN,
        )
        .await?;
    let names: HashMap<BankId, String> = state
        .db
        .bank_names(banks)
        .await?
        .into_iter()
        .map(|b| (b.id, b.name))
        .collect();
    let mut zones: HashMap<BankId, chrono_tz::Tz> = HashMap::new();
    let mut rows = Vec::with_capacity(records.len());
    for r in &records {
        let e = &r.entry;
        let zone = match e.bank_id {
            Some(b) => match zones.get(&b) {
                Some(z) => *z,
                None => {
                    let z = bank_zone(state, b).await?;
                    zones.insert(b, z);
                    z
                }
            },
            None => first_zone,
        };
        let subject_id = e.subject_id.as_deref().unwrap_or_default();
        let subject_href = match e.subject_kind.as_str() {
            "user" if !subject_id.is_empty() => Some(format!("/admin/users/{subject_id}")),
            "agent" if !subject_id.is_empty() => Some(format!("/admin/agents/{subject_id}")),
            "policy" if !subject_id.is_empty() => Some(format!("/admin/policy/{subject_id}")),
            _ => None,
        };
        let kind_id = format!("admin-subject-{}", e.subject_kind);
        let kind = if lang.has(&kind_id) {
            lang.t(&kind_id)
        } else {
            lang.t("admin-subject-other")
        };
        rows.push(EntryRow {
            at: local_time(e.at_ms, zone),
            bank: e
                .bank_id
                .and_then(|b| names.get(&b).cloned())
                .unwrap_or_default(),
            action: action_label(lang, e.action),
            actor: e.actor.map(|a| short(&a.to_string())).unwrap_or_default(),
            subject: format!("{kind} {}", short(subject_id)).trim().to_owned(),
            subject_href,
            detail: detail_text(lang, r),
            purpose: e
                .purpose
                .as_deref()
                .map(|p| crate::console::dossier::purpose_shown(lang, p))
                .unwrap_or_default(),
        });
    }
    let next_href = (records.len() == PAGE_LEN as usize)
        .then(|| records.last().map(|r| query_href(query, r.seq)))
        .flatten();
    Ok::<_, AppError>(AuditPage {
        page: Page::new(lang, "admin-audit-title", uri).signed_in(admin, "admin-audit"),
        verification: None,
        actions: AuditAction::ALL
            .into_iter()
            .map(|a| ActionOption {
                value: a.as_str(),
                label: action_label(lang, a),
                selected: Some(a) == action,
            })
            .collect(),
        from: query.from.clone(),
        to: query.to.clone(),
        filter_error,
        rows,
        next_href,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_id_is_the_end_of_the_id() {
        assert_eq!(short("0190a3b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b"), "2e3f4a5b");
        assert_eq!(short("abc"), "abc");
    }

    /// A new action without its name in both languages would show a raw message id.
    #[test]
    fn every_audit_action_has_its_name_in_both_languages() {
        for action in AuditAction::ALL {
            for lang in Lang::ALL {
                let id = format!("admin-action-{}", action.as_str());
                assert!(lang.has(&id), "{} lacks {id}", lang.tag());
            }
        }
    }
}
