//! Approving a visit request (审批): the manager names a team of two or more agents of the
//! bank, each with an enrolled, unrevoked phone (V03, A02), a validity window, the
//! authorisation letter (V06) and optional cash (C01) and promise (V13) authorisations.
//! The server signs the approval, the case as it stands and a visit ticket with a fresh
//! nonce, and stores them once, as the team's phones will pull them.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tandem_core::model::{
    AgentId, Appointment, Approval, ApprovalId, AuthorisationLetter, Case, CashAuthorisation,
    DeviceId, Fen, PaymentMethod, PromiseAuthorisation, Signed, TeamMember, VisitId, VisitTicket,
};
use utoipa::ToSchema;

use super::requests::{decidable_request, decided};
use super::{case_document, check_case_active};
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::visits::{ApprovalWrite, VisitRequestRecord};
use crate::error::{AppError, Problem};
use crate::sync::Assignment;
use crate::{AppState, input};

/// Largest team on one visit.
pub const MAX_TEAM: usize = 6;
/// Longest validity of an approval.
pub const MAX_VALIDITY_MS: i64 = 30 * 86_400_000;

/// One member of the team: the agent, and the phone when the agent has several.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamChoice {
    /// The agent.
    pub agent_id: String,
    /// The agent's enrolled phone; may be left out when the agent has exactly one.
    #[serde(default)]
    pub device_id: Option<String>,
}

/// The bank's cash-collection authorisation for the visit (C01).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashTerms {
    /// Most that may be collected, fen.
    pub limit_fen: i64,
    /// ISO 4217 code (`CNY`).
    pub currency: String,
    /// The account the money must be deposited into.
    pub designated_account: String,
    /// `cash` and/or `cheque`.
    pub methods: Vec<String>,
}

/// What the manager decides.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// Two or more agents of the bank (V03, A02).
    pub team: Vec<TeamChoice>,
    /// Valid from, UTC ms.
    pub valid_from_ms: i64,
    /// Valid until, UTC ms (exclusive); at most 30 days after the start.
    pub valid_until_ms: i64,
    /// The authorisation letter's number (V06).
    pub letter_number: String,
    /// The letter is valid until, UTC ms (V06).
    pub letter_valid_until_ms: i64,
    /// Cash collection, if the bank authorised it (C01).
    #[serde(default)]
    pub cash: Option<CashTerms>,
    /// What may be promised (V13): `{waiver, instalments, reinstatement}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub promise: Option<PromiseAuthorisation>,
    /// A recorded appointment with the debtor (V04): `{from_ms, until_ms}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub appointment: Option<Appointment>,
    /// The manager reviewed the case's health flag (V11).
    #[serde(default)]
    pub health_review_done: bool,
}

/// The approval and ticket as signed (the team's phones pull the same bytes).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApproveResponse {
    /// Approval id.
    pub approval_id: String,
    /// The visit.
    pub visit_id: String,
    /// Signed approval `{body, signature}`.
    #[schema(value_type = Object)]
    pub approval: Signed<Approval>,
    /// Signed visit ticket `{body, signature}`.
    #[schema(value_type = Object)]
    pub ticket: Signed<VisitTicket>,
}

fn refuse(kind: &'static str, rule: &'static str, detail: impl Into<String>) -> AppError {
    AppError::problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        kind,
        "Approval refused",
        detail,
    )
    .with_rule(rule)
}

/// Resolves the team to agents with enrolled, unrevoked phones of the bank.
async fn resolve_team(
    state: &AppState,
    bank: tandem_core::model::BankId,
    team: &[TeamChoice],
) -> Result<Vec<TeamMember>, AppError> {
    let mut members: Vec<TeamMember> = Vec::new();
    for (i, choice) in team.iter().enumerate() {
        let n = i + 1;
        let not_of_bank = || {
            refuse(
                "team-agent-not-of-bank",
                "A02",
                format!("Team member {n} is not an agent registered with this bank."),
            )
        };
        let agent: AgentId = choice.agent_id.parse().map_err(|_| not_of_bank())?;
        let banks = state.db.agent_banks(agent).await?;
        if !banks.is_some_and(|b| b.contains(&bank)) {
            return Err(not_of_bank());
        }
        let devices = state.db.agent_devices(agent).await?;
        let device = match &choice.device_id {
            Some(id) => {
                let id: Option<DeviceId> = id.parse().ok();
                let device = devices
                    .into_iter()
                    .find(|d| Some(d.device_id) == id)
                    .ok_or_else(|| {
                        refuse(
                            "team-device-not-enrolled",
                            "A02",
                            format!("Team member {n}: that phone is not enrolled for the agent."),
                        )
                    })?;
                if device.revoked_at_ms.is_some() {
                    return Err(refuse(
                        "team-device-revoked",
                        "A02",
                        format!("Team member {n}: that phone was revoked."),
                    ));
                }
                device
            }
            None => {
                let mut live: Vec<_> = devices
                    .into_iter()
                    .filter(|d| d.revoked_at_ms.is_none())
                    .collect();
                match live.len() {
                    1 => live.remove(0),
                    0 => {
                        return Err(refuse(
                            "team-device-not-enrolled",
                            "A02",
                            format!("Team member {n} has no enrolled, unrevoked phone."),
                        ));
                    }
                    _ => {
                        return Err(AppError::invalid(
                            "team-device-ambiguous",
                            format!("Team member {n} has several phones: name the device."),
                        ));
                    }
                }
            }
        };
        members.push(TeamMember {
            agent_id: agent,
            device_id: device.device_id,
            public_key: device.public_key,
        });
    }
    Ok(members)
}

/// Builds the cash authorisation from the manager's terms.
fn cash_authorisation(c: &CashTerms) -> Result<CashAuthorisation, AppError> {
    let bad = |detail: &str| refuse("cash-terms-invalid", "C01", detail);
    if c.limit_fen <= 0 {
        return Err(bad("The cash limit must be more than zero fen."));
    }
    input::amount_fen("cash.limit_fen", c.limit_fen).map_err(|e| e.with_rule("C01"))?;
    if c.currency.len() != 3 || !c.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad(
            "The currency is a three-letter ISO 4217 code, like CNY.",
        ));
    }
    let account = c.designated_account.trim();
    if account.is_empty() || account.chars().count() > 64 {
        return Err(bad(
            "Name the designated deposit account (1 to 64 characters).",
        ));
    }
    let mut methods = Vec::new();
    for m in &c.methods {
        let method = match m.as_str() {
            "cash" => PaymentMethod::Cash,
            "cheque" => PaymentMethod::Cheque,
            _ => return Err(bad("Methods are cash and cheque.")),
        };
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    if methods.is_empty() {
        return Err(bad("Name at least one accepted method."));
    }
    Ok(CashAuthorisation {
        limit: Fen(c.limit_fen),
        currency: c.currency.clone(),
        designated_account: account.to_owned(),
        methods,
    })
}

/// Approves a pending request (a manager of its bank) and signs the visit's documents.
#[utoipa::path(post, path = "/v1/visit-requests/{id}/approve", tag = "visits",
    params(("id" = String, Path, description = "Request id")),
    request_body = ApproveRequest,
    security(("session" = [])),
    responses(
        (status = 201, description = "Approved; the signed approval and ticket",
            body = ApproveResponse),
        (status = 404, description = "No such request for this manager", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Decided already", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Refused; `rule` names V01, V03, V06, V11, A02 or C01",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    user: UserAuth,
    Path(id): Path<String>,
    body: Result<Json<ApproveRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ApproveResponse>), AppError> {
    let request = decidable_request(&state, &user, &id).await?;
    let Json(req) = body?;
    let approved = approve_request(&state, &user, &request, &req).await?;
    Ok((StatusCode::CREATED, Json(approved)))
}

/// Approves `request` (found by [`decidable_request`]) on the manager's terms and signs the
/// visit's documents: what the JSON API and the console's form share.
pub(crate) async fn approve_request(
    state: &AppState,
    user: &UserAuth,
    request: &VisitRequestRecord,
    req: &ApproveRequest,
) -> Result<ApproveResponse, AppError> {
    let now = state.now_ms();
    let terms = check_terms(req, now)?;
    let (case_doc, approval) = draft_approval(state, request, req, terms, now).await?;
    let (ticket, assignment) = sign_assignment(state, &case_doc, &approval, now)?;
    let payload = serde_json::to_string(&assignment)
        .map_err(|e| AppError::Internal(format!("assignment JSON: {e}")))?;
    let write = ApprovalWrite {
        id: approval.id,
        request_id: request.request.id,
        bank_id: approval.bank_id,
        case_id: approval.case_id,
        visit_id: ticket.visit_id,
        approved_by: user.user.user_id,
        approved_ms: now,
        team: approval
            .team
            .iter()
            .map(|m| (m.agent_id, m.device_id))
            .collect(),
        payload,
    };
    if !state.db.approve_visit(&write).await? {
        return Err(decided());
    }
    tracing::info!(request = %request.request.id, approval = %approval.id,
        visit = %ticket.visit_id, "visit approved");
    let entry = AuditEntry::new(
        now,
        AuditAction::VisitApproved,
        "visit-request",
        Some(request.request.id.to_string()),
    )
    .by(user.user.user_id)
    .bank(approval.bank_id)
    .detail(serde_json::json!({
        "approval": approval.id.to_string(),
        "visit": ticket.visit_id.to_string(),
        "team": approval.team.len(),
        "cash": approval.cash.is_some(),
    }));
    state.db.append_audit(&entry).await?;
    Ok(ApproveResponse {
        approval_id: approval.id.to_string(),
        visit_id: ticket.visit_id.to_string(),
        approval: assignment.approval,
        ticket: assignment.ticket,
    })
}

/// The manager's terms, checked on their own before anything is read.
struct Terms {
    /// The authorisation letter's number, trimmed (V06).
    letter: String,
    /// The cash authorisation, if any (C01).
    cash: Option<CashAuthorisation>,
}

/// Checks what the manager asks for on its own: two to [`MAX_TEAM`] different agents
/// (V03), the validity window, the letter (V06), the appointment and the cash terms (C01).
fn check_terms(req: &ApproveRequest, now: i64) -> Result<Terms, AppError> {
    let mut agents: Vec<&str> = req.team.iter().map(|t| t.agent_id.as_str()).collect();
    agents.sort_unstable();
    agents.dedup();
    if agents.len() < 2 || agents.len() != req.team.len() {
        return Err(refuse(
            "team-too-small",
            "V03",
            "A visit needs two or more different agents.",
        ));
    }
    if req.team.len() > MAX_TEAM {
        return Err(AppError::invalid(
            "team-too-large",
            format!("A team has at most {MAX_TEAM} agents."),
        ));
    }
    let validity = input::span_ms(
        "valid_from_ms",
        req.valid_from_ms,
        "valid_until_ms",
        req.valid_until_ms,
    )?;
    input::time_ms("letter_valid_until_ms", req.letter_valid_until_ms)?;
    if let Some(a) = req.appointment {
        input::span_ms(
            "appointment.from_ms",
            a.from_ms,
            "appointment.until_ms",
            a.until_ms,
        )?;
    }
    if validity <= 0 || validity > MAX_VALIDITY_MS || req.valid_until_ms <= now {
        return Err(AppError::invalid(
            "approval-window-invalid",
            "The validity must end after it starts, in the future, within 30 days.",
        ));
    }
    let letter = req.letter_number.trim();
    if letter.is_empty() || letter.chars().count() > 64 {
        return Err(refuse(
            "letter-invalid",
            "V06",
            "Give the authorisation letter's number (1 to 64 characters).",
        ));
    }
    if req.letter_valid_until_ms <= req.valid_from_ms || req.letter_valid_until_ms <= now {
        return Err(refuse(
            "letter-expired",
            "V06",
            "The authorisation letter has expired before the visit's validity.",
        ));
    }
    if req.appointment.is_some_and(|a| a.until_ms <= a.from_ms) {
        return Err(AppError::invalid(
            "appointment-invalid",
            "An appointment ends after it starts.",
        ));
    }
    Ok(Terms {
        letter: letter.to_owned(),
        cash: req.cash.as_ref().map(cash_authorisation).transpose()?,
    })
}

/// The approval the terms make, against what the server holds: the case as it stands
/// (active, V01; its health flag reviewed, V11), the team's phones (V03, A02) and the
/// bank's current policy. Returns the case document with it, to be signed alongside.
async fn draft_approval(
    state: &AppState,
    request: &VisitRequestRecord,
    req: &ApproveRequest,
    terms: Terms,
    now: i64,
) -> Result<(Case, Approval), AppError> {
    let bank = request.request.bank_id;
    let case = state
        .db
        .case(request.request.case_id)
        .await?
        .ok_or_else(|| AppError::Internal("request for a missing case".into()))?;
    let case_doc = case_document(&case)?;
    check_case_active(&case_doc, now)?;
    if case_doc.health_flag.is_some() && !req.health_review_done {
        return Err(refuse(
            "health-review-required",
            "V11",
            "The case is flagged for health: confirm the manager's review first.",
        ));
    }
    let team = resolve_team(state, bank, &req.team).await?;
    let policy = state.db.latest_policy(bank).await?.ok_or_else(|| {
        AppError::conflict(
            "policy-missing",
            "Set the bank's policy before approving visits.",
        )
    })?;
    let policy_version = u32::try_from(policy.version)
        .map_err(|_| AppError::Internal("policy version out of range".into()))?;
    let approval = Approval {
        id: ApprovalId::new(),
        bank_id: bank,
        case_id: case.id,
        address_ids: request.request.address_ids.clone(),
        team,
        valid_from_ms: req.valid_from_ms,
        valid_until_ms: req.valid_until_ms,
        letter: AuthorisationLetter {
            number: terms.letter,
            valid_until_ms: req.letter_valid_until_ms,
        },
        cash: terms.cash,
        promise: req.promise.unwrap_or_default(),
        appointment: req.appointment,
        templates: Vec::new(),
        health_review_done: req.health_review_done,
        policy_version,
        approved_at_ms: now,
    };
    Ok((case_doc, approval))
}

/// A fresh visit ticket for the approval, and the case, approval and ticket signed by the
/// server: the assignment the team's phones pull.
fn sign_assignment(
    state: &AppState,
    case_doc: &Case,
    approval: &Approval,
    now: i64,
) -> Result<(VisitTicket, Assignment), AppError> {
    let ticket = VisitTicket {
        visit_id: VisitId::new(),
        approval_id: approval.id,
        nonce: super::nonce()?,
        issued_at_ms: now,
    };
    let sign_err = |e: tandem_core::model::ModelError| AppError::Internal(format!("sign: {e}"));
    let signer = state.signer.as_ref();
    let assignment = Assignment {
        case: Signed::sign(case_doc, signer).map_err(sign_err)?,
        approval: Signed::sign(approval, signer).map_err(sign_err)?,
        ticket: Signed::sign(&ticket, signer).map_err(sign_err)?,
    };
    Ok((ticket, assignment))
}
