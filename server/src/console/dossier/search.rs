//! `GET /evidence`: visits with committed evidence in the user's banks (D03), by case
//! reference or debtor name (their start), bank, agent, visit day in the bank's zone, state,
//! flags and outcome; newest first, 50 a page, the next page by keyset. Every search is
//! audited: which filters were used and how many visits came back, never the text typed
//! (it may be a debtor's name).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use tandem_core::text::visible;

use super::super::frame::{Page, Zones, error_page, local_time, parse_local_day_end, render};
use super::super::i18n::Lang;
use super::super::session::PageLang;
use super::{Asker, READERS};
use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::dossier::{BankRange, EvidenceQuery, OutcomeKind};
use crate::db::ledger::BundleStatus;
use crate::error::AppError;

/// Visits shown per page.
const PAGE_SIZE: i64 = 50;
/// The longest text a prefix filter takes.
const MAX_PREFIX_CHARS: usize = 64;

/// The search form, as the browser sends it (every field optional).
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    case_ref: String,
    #[serde(default)]
    debtor: String,
    #[serde(default)]
    bank: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    flagged: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    before_ms: Option<i64>,
    #[serde(default)]
    before_id: String,
}

/// An option of a select.
pub struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// One visit found.
pub struct HitRow {
    href: String,
    case_ref: String,
    debtor: String,
    card: String,
    bank: String,
    agents: String,
    time: String,
    state: String,
    badge: &'static str,
    outcomes: Vec<String>,
    flags: String,
}

#[derive(Template)]
#[template(path = "console/dossier_search.html")]
struct SearchPage {
    page: Page,
    q: SearchQuery,
    banks: Vec<Choice>,
    agents: Vec<Choice>,
    states: Vec<Choice>,
    outcomes: Vec<Choice>,
    flagged: bool,
    rows: Vec<HitRow>,
    count_text: String,
    next_href: Option<String>,
}

fn choice(value: &str, label: String, chosen: &str) -> Choice {
    Choice {
        value: value.to_owned(),
        label,
        selected: value == chosen,
    }
}

fn prefix(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.chars().take(MAX_PREFIX_CHARS).collect())
}

/// `GET /evidence`.
pub async fn search(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    asker: Asker,
    Query(q): Query<SearchQuery>,
    uri: Uri,
) -> Response {
    let Asker { user, client } = asker;
    let user = match user {
        Ok(u) => u,
        Err(r) => return r,
    };
    match search_page(&state, &user, lang, &uri, client, q).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

async fn search_page(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    uri: &Uri,
    client: Option<std::net::IpAddr>,
    q: SearchQuery,
) -> Result<SearchPage, AppError> {
    user.require(READERS)?;
    let bank_names = state.db.bank_names(&user.user.bank_ids).await?;
    // Only the user's own banks, whatever the form says (D03).
    let chosen_banks: Vec<_> = user
        .user
        .bank_ids
        .iter()
        .copied()
        .filter(|b| q.bank.is_empty() || b.to_string() == q.bank)
        .collect();
    let agent_records = state.db.agents_of_banks(&user.user.bank_ids).await?;
    let agent = agent_records
        .iter()
        .find(|a| a.id.to_string() == q.agent)
        .map(|a| a.id);
    let mut zones = Zones::default();
    let mut banks = Vec::new();
    for b in &chosen_banks {
        let zone = zones.of(state, *b).await?;
        let from_ms = parse_local_day_end(&q.from, zone).map(|end| end - 24 * 3_600_000);
        let until_ms = parse_local_day_end(&q.to, zone);
        banks.push(BankRange {
            bank: *b,
            from_ms,
            until_ms,
        });
    }
    let status = match q.state.as_str() {
        "accepted" => Some(BundleStatus::Accepted),
        "quarantined" => Some(BundleStatus::Quarantined),
        _ => None,
    };
    let outcome = OutcomeKind::parse(&q.outcome);
    let flagged = !q.flagged.is_empty();
    let before = q
        .before_ms
        .zip(uuid::Uuid::parse_str(&q.before_id).ok())
        .map(|(t, id)| (t, id.to_string()));
    let query = EvidenceQuery {
        banks,
        case_ref: prefix(&q.case_ref),
        debtor: prefix(&q.debtor),
        agent,
        status,
        flagged,
        outcome,
        before,
        limit: PAGE_SIZE + 1,
    };
    let mut found = state.db.search_evidence(&query).await?;
    let more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);

    // Which filters were used and the count; never what was typed.
    let used: Vec<&str> = [
        ("case_ref", query.case_ref.is_some()),
        ("debtor", query.debtor.is_some()),
        ("bank", !q.bank.is_empty()),
        ("agent", agent.is_some()),
        ("from", query.banks.iter().any(|b| b.from_ms.is_some())),
        ("to", query.banks.iter().any(|b| b.until_ms.is_some())),
        ("state", status.is_some()),
        ("flagged", flagged),
        ("outcome", outcome.is_some()),
        ("page", query.before.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let mut entry = AuditEntry::new(
        state.now_ms(),
        AuditAction::EvidenceSearched,
        "search",
        None,
    )
    .by(user.user.user_id)
    .from_addr(client)
    .detail(serde_json::json!({"filters": used, "count": found.len()}));
    if let [only] = chosen_banks.as_slice() {
        entry = entry.bank(*only);
    }
    state.db.append_audit(&entry).await?;

    let next_href = match (more, found.last()) {
        (true, Some(last)) => {
            let mut params = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("case_ref", &q.case_ref),
                ("debtor", &q.debtor),
                ("bank", &q.bank),
                ("agent", &q.agent),
                ("from", &q.from),
                ("to", &q.to),
                ("state", &q.state),
                ("flagged", &q.flagged),
                ("outcome", &q.outcome),
            ] {
                if !v.is_empty() {
                    params.append_pair(k, v);
                }
            }
            params.append_pair("before_ms", &last.visit_ms.to_string());
            params.append_pair("before_id", &last.visit_id.to_string());
            Some(format!("/evidence?{}", params.finish()))
        }
        _ => None,
    };
    let mut rows = Vec::with_capacity(found.len());
    for h in &found {
        let zone = zones.of(state, h.bank_id).await?;
        let (state_id, badge) = match (h.status, h.flags > 0) {
            (BundleStatus::Quarantined, _) => ("quarantined", "bad"),
            (_, true) => ("accepted-flagged", "warn"),
            _ => ("accepted", "ok"),
        };
        let o = h.outcome;
        let outcomes = [
            (o.receipt, OutcomeKind::Receipt),
            (o.promise, OutcomeKind::Promise),
            (o.dispute, OutcomeKind::Dispute),
            (o.complaint, OutcomeKind::Complaint),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, k)| lang.t(&format!("dossier-outcome-{}", k.as_str())))
        .collect();
        rows.push(HitRow {
            href: format!("/evidence/visits/{}", h.visit_id),
            case_ref: h
                .case_ref
                .as_deref()
                .map(|r| visible(r).into_owned())
                .unwrap_or_default(),
            debtor: h
                .debtor_name
                .as_deref()
                .map(|n| visible(n).into_owned())
                .unwrap_or_default(),
            card: h.card_masked.clone().unwrap_or_default(),
            bank: bank_names
                .iter()
                .find(|b| b.id == h.bank_id)
                .map(|b| visible(&b.name).into_owned())
                .unwrap_or_default(),
            agents: [&h.lead_name, &h.partner_name]
                .into_iter()
                .flatten()
                .map(|n| visible(n).into_owned())
                .collect::<Vec<_>>()
                .join(lang.list_separator()),
            time: local_time(h.visit_ms, zone),
            state: lang.t(&format!("visit-state-{state_id}")),
            badge,
            outcomes,
            flags: if h.flags > 0 {
                h.flags.to_string()
            } else {
                String::new()
            },
        });
    }
    let banks = bank_names
        .iter()
        .map(|b| choice(&b.id.to_string(), visible(&b.name).into_owned(), &q.bank))
        .collect();
    let agents = agent_records
        .iter()
        .map(|a| {
            choice(
                &a.id.to_string(),
                format!(
                    "{} ({})",
                    visible(&a.user.display_name),
                    visible(&a.employee_no)
                ),
                &q.agent,
            )
        })
        .collect();
    let states = ["accepted", "quarantined"]
        .into_iter()
        .map(|s| choice(s, lang.t(&format!("visit-state-{s}")), &q.state))
        .collect();
    let outcomes = OutcomeKind::ALL
        .into_iter()
        .map(|k| {
            choice(
                k.as_str(),
                lang.t(&format!("dossier-outcome-{}", k.as_str())),
                &q.outcome,
            )
        })
        .collect();
    Ok(SearchPage {
        page: Page::new(lang, "dossier-search-title", uri).signed_in(user, "evidence"),
        count_text: lang.t_args("dossier-search-count", &[("count", rows.len().into())]),
        q,
        banks,
        agents,
        states,
        outcomes,
        flagged,
        rows,
        next_href,
    })
}
