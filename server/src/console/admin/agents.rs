//! Agents of the admin's banks and their phones: the list with the form that creates one,
//! and each agent's page — their phones (enrolled when, which key, revoked or not, each
//! revocable with a reason) and the one-time enrollment code, shown once with a QR code
//! the phone can scan (`tandem-enroll:?server=…&code=…`, docs/enrollment.md).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use qrcode::{EcLevel, QrCode};
use tandem_core::model::{AgentId, BankId, DeviceId};

use super::{AdminPage, AdminPost, BankOption, account_problem_text, bank_list, bank_options};
use crate::AppState;
use crate::auth::sessions::secure_cookie;
use crate::auth::users::{AccountProblem, NewAgentForm, create_agent, new_agent_problems};
use crate::auth::{UserAuth, issue_enrollment_code, revoke_device};
use crate::console::frame::{Page, bank_zone, error_page, local_time, problem_text, render};
use crate::console::i18n::Lang;
use crate::db::admin::{AgentRecord, BankName, PhoneRecord};
use crate::error::AppError;

/// One phone as the pages show it.
pub struct PhoneRow {
    id: String,
    enrolled: String,
    alg: String,
    kid: String,
    revoked: Option<String>,
}

/// One row of the agents' list.
pub struct AgentRow {
    href: String,
    employee_no: String,
    name: String,
    banks: String,
    disabled: bool,
    phones: Vec<PhoneRow>,
}

/// The create form as typed, with what is wrong with each field.
#[derive(Default)]
pub struct AgentValues {
    employee_no: String,
    name: String,
    employee_no_error: Option<String>,
    name_error: Option<String>,
    banks_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/admin_agents.html")]
struct AgentsPage {
    page: Page,
    rows: Vec<AgentRow>,
    banks: Vec<BankOption>,
    values: AgentValues,
}

/// The zone the agent's times are shown in: their first bank the admin serves.
async fn agent_zone(
    state: &AppState,
    admin: &UserAuth,
    agent: &AgentRecord,
) -> Result<chrono_tz::Tz, AppError> {
    let bank = agent
        .user
        .bank_ids
        .iter()
        .copied()
        .find(|b| admin.sees(*b))
        .ok_or(AppError::NotFound)?;
    bank_zone(state, bank).await
}

fn phone_row(lang: Lang, p: &PhoneRecord, zone: chrono_tz::Tz) -> PhoneRow {
    PhoneRow {
        id: p.id.to_string(),
        enrolled: local_time(p.enrolled_ms, zone),
        alg: p.alg.clone(),
        kid: p.kid.chars().take(12).collect(),
        revoked: p.revoked_at_ms.map(|at| {
            lang.t_args(
                "admin-phone-revoked-at",
                &[
                    ("at", local_time(at, zone).into()),
                    (
                        "reason",
                        tandem_core::text::visible(p.revoked_reason.as_deref().unwrap_or_default())
                            .into_owned()
                            .into(),
                    ),
                ],
            )
        }),
    }
}

async fn agent_row(
    state: &AppState,
    admin: &UserAuth,
    lang: Lang,
    names: &[BankName],
    a: &AgentRecord,
) -> Result<AgentRow, AppError> {
    let zone = agent_zone(state, admin, a).await?;
    let phones = state.db.agent_phones(a.id).await?;
    Ok(AgentRow {
        href: format!("/admin/agents/{}", a.id),
        employee_no: a.employee_no.clone(),
        name: a.user.display_name.clone(),
        banks: bank_list(lang, names, &a.user.bank_ids),
        disabled: a.user.disabled_ms.is_some(),
        phones: phones.iter().map(|p| phone_row(lang, p, zone)).collect(),
    })
}

impl AgentsPage {
    async fn load(
        state: &AppState,
        admin: &UserAuth,
        lang: Lang,
        uri: &Uri,
    ) -> Result<Self, AppError> {
        let names = state.db.bank_names(&admin.user.bank_ids).await?;
        let mut rows = Vec::new();
        for a in state.db.agents_of_banks(&admin.user.bank_ids).await? {
            rows.push(agent_row(state, admin, lang, &names, &a).await?);
        }
        let preset: Vec<BankId> = match admin.user.bank_ids.as_slice() {
            [only] => vec![*only],
            _ => Vec::new(),
        };
        Ok(Self {
            page: Page::new(lang, "admin-agents-title", uri).signed_in(admin, "admin-agents"),
            rows,
            banks: bank_options(state, admin, &preset).await?,
            values: AgentValues::default(),
        })
    }
}

/// `GET /admin/agents`: the agents of the admin's banks with their phones, and the form to
/// add one.
pub async fn list(
    State(state): State<AppState>,
    AdminPage { admin, lang, uri }: AdminPage,
) -> Response {
    match AgentsPage::load(&state, &admin, lang, &uri).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// `POST /admin/agents`: creates the agent and opens their page, where a code is issued.
pub async fn create(
    State(state): State<AppState>,
    AdminPost {
        user: admin,
        form,
        lang,
        client,
        uri,
        ..
    }: AdminPost,
) -> Response {
    let new = NewAgentForm {
        employee_no: form.get("employee_no").trim().to_owned(),
        display_name: form.get("name").trim().to_owned(),
        banks: form.banks(),
    };
    let outcome = async {
        let mut problems = new_agent_problems(&admin, &new);
        if problems.is_empty() {
            match create_agent(&state, &admin, &new, client).await {
                Ok(id) => return Ok(Ok(format!("/admin/agents/{id}?done=created"))),
                Err(AppError::Problem { kind, .. })
                    if kind == AccountProblem::EmployeeNoTaken.kind() =>
                {
                    problems.push(AccountProblem::EmployeeNoTaken);
                }
                Err(e) => return Err(e),
            }
        }
        let mut page = AgentsPage::load(&state, &admin, lang, &uri).await?;
        page.banks = bank_options(&state, &admin, &new.banks).await?;
        let mut values = AgentValues {
            employee_no: new.employee_no.clone(),
            name: new.display_name.clone(),
            ..AgentValues::default()
        };
        for p in problems {
            let text = Some(account_problem_text(lang, p));
            match p.field() {
                "employee_no" => values.employee_no_error = text,
                "name" => values.name_error = text,
                _ => values.banks_error = text,
            }
        }
        page.values = values;
        Ok::<_, AppError>(Err(page))
    };
    match outcome.await {
        Ok(Ok(to)) => Redirect::to(&to).into_response(),
        Ok(Err(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// A code just issued, as the agent's page shows it once.
pub struct IssuedCode {
    /// The code in its groups (`7KQ2`, `M9XD`, `4HFA`).
    groups: Vec<String>,
    /// The code as typed.
    code: String,
    expires: String,
    /// The QR code (inline SVG markup made here, no value from the request in it but the
    /// payload it encodes).
    svg: String,
    /// What the QR code holds.
    payload: String,
}

#[derive(Template)]
#[template(path = "console/admin_agent.html")]
struct AgentPage {
    page: Page,
    id: String,
    row: AgentRow,
    issued: Option<IssuedCode>,
    notice: Option<String>,
    /// The phone whose revocation was refused, and why.
    revoke_device: String,
    revoke_error: Option<String>,
}

impl AgentPage {
    async fn load(
        state: &AppState,
        admin: &UserAuth,
        lang: Lang,
        agent: &AgentRecord,
    ) -> Result<Self, AppError> {
        let names = state.db.bank_names(&admin.user.bank_ids).await?;
        let row = agent_row(state, admin, lang, &names, agent).await?;
        let uri: Uri = row.href.parse().unwrap_or_default();
        Ok(Self {
            page: Page::new(lang, "admin-agent-title", &uri).signed_in(admin, "admin-agents"),
            id: agent.id.to_string(),
            row,
            issued: None,
            notice: None,
            revoke_device: String::new(),
            revoke_error: None,
        })
    }
}

/// An agent of the admin's banks; anything else is "not found".
async fn visible_agent(
    state: &AppState,
    admin: &UserAuth,
    id: &str,
) -> Result<AgentRecord, AppError> {
    let id: AgentId = id.parse().map_err(|_| AppError::NotFound)?;
    let agent = state.db.agent_record(id).await?.ok_or(AppError::NotFound)?;
    admin.check_any_bank(&agent.user.bank_ids)?;
    Ok(agent)
}

/// What an agent's page was sent back with after a change.
#[derive(Debug, serde::Deserialize)]
pub struct DoneQuery {
    /// `created` or `revoked`.
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin/agents/{id}`: an agent of the admin's banks with their phones.
pub async fn agent_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
    AdminPage { admin, lang, uri }: AdminPage,
) -> Response {
    let shown = async {
        let agent = visible_agent(&state, &admin, &id).await?;
        let mut page = AgentPage::load(&state, &admin, lang, &agent).await?;
        page.notice = match query.done.as_deref() {
            Some("created") => Some(lang.t("admin-agent-created-notice")),
            Some("revoked") => Some(lang.t("admin-phone-revoked-notice")),
            _ => None,
        };
        Ok::<_, AppError>(page)
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// The server's address as a phone reaches it: as the admin's browser did (its `Host`,
/// over TLS when the session cookie is `Secure`).
fn public_base(state: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let scheme = if secure_cookie(&state.config, headers, uri) {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// The enrolment URI a phone scans: `tandem-enroll:?server=<base URL>&code=<code>`.
pub(crate) fn enrollment_uri(base: &str, code: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("server", base)
        .append_pair("code", code)
        .finish();
    format!("tandem-enroll:?{query}")
}

/// `payload` as an inline SVG QR code (no XML declaration; hidden from screen readers,
/// which read the code printed beside it).
pub(crate) fn qr_svg(payload: &str) -> Result<String, AppError> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .map_err(|e| AppError::Internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(232, 232)
        .quiet_zone(true)
        .build();
    let start = svg
        .find("<svg")
        .ok_or_else(|| AppError::Internal("QR code: no svg".into()))?;
    Ok(svg[start..].replacen(
        "<svg ",
        "<svg class=\"qr\" aria-hidden=\"true\" focusable=\"false\" ",
        1,
    ))
}

/// `POST /admin/agents/{id}/code`: issues a one-time enrollment code and shows it once.
pub async fn issue_code(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminPost {
        user: admin,
        form: _,
        lang,
        client,
        headers,
        uri,
        ..
    }: AdminPost,
) -> Response {
    let base = public_base(&state, &headers, &uri);
    let shown = async {
        let agent = visible_agent(&state, &admin, &id).await?;
        let issued = issue_enrollment_code(&state, &admin, agent.id, client).await?;
        let zone = agent_zone(&state, &admin, &agent).await?;
        let mut page = AgentPage::load(&state, &admin, lang, &agent).await?;
        let payload = enrollment_uri(&base, &issued.code);
        page.issued = Some(IssuedCode {
            groups: issued.code.split('-').map(str::to_owned).collect(),
            svg: qr_svg(&payload)?,
            expires: local_time(issued.expires_ms, zone),
            code: issued.code,
            payload,
        });
        Ok::<_, AppError>(page)
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

/// `POST /admin/devices/{id}/revoke`: revokes a phone of the admin's banks with a reason.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminPost {
        user: admin,
        form,
        lang,
        client,
        uri,
        ..
    }: AdminPost,
) -> Response {
    let outcome = async {
        let device: DeviceId = id.parse().map_err(|_| AppError::NotFound)?;
        let record = state.db.device(device).await?.ok_or(AppError::NotFound)?;
        admin.check_any_bank(&record.bank_ids)?;
        let agent = visible_agent(&state, &admin, &record.agent_id.to_string()).await?;
        match revoke_device(&state, &admin, device, form.get("reason"), client).await {
            Ok(_) => Ok(Ok(format!("/admin/agents/{}?done=revoked", agent.id))),
            Err(e @ AppError::Problem { .. }) => {
                let mut page = AgentPage::load(&state, &admin, lang, &agent).await?;
                page.revoke_device = device.to_string();
                page.revoke_error = Some(problem_text(lang, &e));
                Ok(Err(page))
            }
            Err(e) => Err(e),
        }
    };
    match outcome.await {
        Ok(Ok(to)) => Redirect::to(&to).into_response(),
        Ok(Err(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &uri, Some(&admin), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enrollment_uri_carries_the_server_and_the_code() {
        assert_eq!(
            enrollment_uri("https://tandem.example:8443", "7KQ2-M9XD-4HFA"),
            "tandem-enroll:?server=https%3A%2F%2Ftandem.example%3A8443&code=7KQ2-M9XD-4HFA"
        );
        let svg = qr_svg("tandem-enroll:?server=x&code=y").unwrap();
        assert!(svg.starts_with("<svg class=\"qr\""), "{svg}");
        assert!(svg.contains("<path"));
    }
}
