//! Visit management (DESIGN.md §9): case import, visit requests and their approval into a
//! server-signed approval and visit ticket, receipt-number ranges, and each bank's policy.
//!
//! Everything a phone needs is signed once, when it is decided, and stored with its exact
//! bytes in the sync feed (`crate::sync`).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tandem_core::model::{
    ApprovedAddress, Case, CaseStatus, Debtor, Entrustment, Fen, HealthFlag, HoldReason,
};
use tandem_core::rules::Unworkable;
use utoipa::OpenApi;

use crate::AppState;
use crate::db::visits::CaseRecord;
use crate::error::AppError;

pub mod approve;
pub mod cases;
pub mod complaints;
pub mod import;
pub mod policy;
pub mod ranges;
pub mod requests;
mod rows;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/banks/{bank}/cases/import",
            post(cases::import_cases).layer(DefaultBodyLimit::max(import::IMPORT_BODY_LIMIT)),
        )
        .route("/v1/banks/{bank}/cases", get(cases::list_cases))
        .route("/v1/cases/{id}", get(cases::get_case))
        .route(
            "/v1/visit-requests",
            post(requests::create_request).get(requests::list_requests),
        )
        .route("/v1/visit-requests/{id}/approve", post(approve::approve))
        .route("/v1/visit-requests/{id}/reject", post(requests::reject))
        .route("/v1/devices/{id}/serial-ranges", post(ranges::allocate))
        .route(
            "/v1/banks/{bank}/policy",
            get(policy::get_policy).put(policy::put_policy),
        )
}

/// The OpenAPI part of this module.
#[derive(OpenApi)]
#[openapi(
    paths(
        cases::import_cases,
        cases::list_cases,
        cases::get_case,
        requests::create_request,
        requests::list_requests,
        requests::reject,
        approve::approve,
        ranges::allocate,
        policy::get_policy,
        policy::put_policy
    ),
    components(schemas(
        import::RowError,
        cases::ImportResponse,
        cases::CaseView,
        cases::AddressView,
        requests::CreateRequest,
        requests::RequestView,
        requests::RejectRequest,
        approve::ApproveRequest,
        approve::TeamChoice,
        approve::CashTerms,
        approve::ApproveResponse,
        ranges::RangeRequest,
        ranges::RangeResponse,
        policy::PolicyView
    ))
)]
pub struct VisitsDoc;

/// A fresh random nonce, lowercase hex of 16 bytes.
pub(crate) fn nonce() -> Result<String, AppError> {
    let bytes = tandem_core::crypto::random_bytes::<16>()
        .map_err(|e| AppError::Internal(format!("random: {e}")))?;
    Ok(tandem_core::crypto::to_hex(&bytes))
}

/// A stored case status as core's.
pub(crate) fn case_status(s: &str) -> Result<CaseStatus, AppError> {
    Ok(match s {
        "active" | "open" => CaseStatus::Active,
        "settled" => CaseStatus::Settled,
        "dispute" => CaseStatus::OnHold {
            reason: HoldReason::Dispute,
        },
        "complaint" => CaseStatus::OnHold {
            reason: HoldReason::Complaint,
        },
        "vulnerability_review" => CaseStatus::OnHold {
            reason: HoldReason::VulnerabilityReview,
        },
        _ => return Err(AppError::Internal("unknown stored case status".into())),
    })
}

/// The case as the phone holds it (signed into each assignment).
pub(crate) fn case_document(c: &CaseRecord) -> Result<Case, AppError> {
    let health_flag = match c.health_flag.as_deref() {
        None => None,
        Some("serious_illness") => Some(HealthFlag::SeriousIllness),
        Some("pregnancy") => Some(HealthFlag::Pregnancy),
        Some(_) => return Err(AppError::Internal("unknown stored health flag".into())),
    };
    Ok(Case {
        id: c.id,
        bank_id: c.bank_id,
        case_ref: c.case_ref.clone(),
        card: c.card.clone(),
        debtor: Debtor {
            name: c.debtor_name.clone(),
            id_number: c.id_number.clone(),
            phone: c.debtor_phone.clone(),
        },
        addresses: c
            .addresses
            .iter()
            .map(|a| ApprovedAddress {
                id: a.id,
                text: a.text.clone(),
                position: a.position,
            })
            .collect(),
        entrustment: Entrustment {
            start_ms: c.entrustment_start_ms,
            end_ms: c.entrustment_end_ms,
            extended_until_ms: c.extended_until_ms,
        },
        status: case_status(&c.status)?,
        outstanding: Fen(c.outstanding_fen),
        health_flag,
    })
}

/// V01 (decided by core): the case is workable at `at_ms` (entrusted, not settled, not on
/// hold); the first reason it is not answers 422.
pub(crate) fn check_case_active(case: &Case, at_ms: i64) -> Result<(), AppError> {
    let Some(why) = tandem_core::rules::case_unworkable(case, at_ms)
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let (kind, detail) = match why {
        Unworkable::Settled => ("case-settled", "The case is settled."),
        Unworkable::OnHold(_) => ("case-on-hold", "The case is on hold."),
        Unworkable::NotEntrusted => (
            "case-not-entrusted",
            "The case is outside the bank's entrustment period.",
        ),
    };
    Err(AppError::problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        kind,
        "Case not workable",
        detail,
    )
    .with_rule("V01"))
}
