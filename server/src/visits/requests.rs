//! Visit requests (外访申请): made by an agent's phone or a manager, listed for the bank's
//! managers, rejected with a reason (approval is in `approve.rs`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tandem_core::model::{AddressId, BankId, CaseId};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{case_document, check_case_active};
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::{DEVICE_TOKEN_PREFIX, DeviceAuth, UserAuth};
use crate::db::Role;
use crate::db::visits::{NewVisitRequest, VisitRequestRecord};
use crate::error::{AppError, Problem};
use crate::{AppState, input};

/// Longest wanted window a request may ask for.
pub const MAX_WINDOW_MS: i64 = 30 * 86_400_000;

/// Who asks for a visit: an agent's enrolled phone or a console user.
pub enum Requester {
    /// An enrolled, unrevoked phone.
    Device(DeviceAuth),
    /// A signed-in console user.
    User(UserAuth),
}

impl FromRequestParts<AppState> for Requester {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let is_device = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer")
                    && token.trim().starts_with(DEVICE_TOKEN_PREFIX)
            });
        if is_device {
            Ok(Self::Device(
                DeviceAuth::from_request_parts(parts, state).await?,
            ))
        } else {
            Ok(Self::User(
                UserAuth::from_request_parts(parts, state).await?,
            ))
        }
    }
}

/// A request for a visit to a case.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The case.
    pub case_id: String,
    /// Addresses to visit; all of the case's when left out.
    #[serde(default)]
    pub address_ids: Option<Vec<String>>,
    /// Wanted from, UTC ms.
    pub wanted_from_ms: i64,
    /// Wanted until, UTC ms (exclusive); at most 30 days after the start.
    pub wanted_until_ms: i64,
    /// Why (1 to 500 characters).
    pub purpose: String,
}

/// A visit request as managers see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    /// Request id.
    pub id: String,
    /// Bank.
    pub bank_id: String,
    /// Case.
    pub case_id: String,
    /// Addresses to visit.
    pub address_ids: Vec<String>,
    /// Wanted from, UTC ms.
    pub wanted_from_ms: i64,
    /// Wanted until, UTC ms.
    pub wanted_until_ms: i64,
    /// Why.
    pub purpose: String,
    /// The phone that asked, if an agent did.
    pub requested_device: Option<String>,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// When asked, UTC ms.
    pub created_ms: i64,
    /// When decided, UTC ms.
    pub decided_ms: Option<i64>,
    /// Why rejected.
    pub reject_reason: Option<String>,
    /// The approval, when approved.
    pub approval_id: Option<String>,
}

impl From<&VisitRequestRecord> for RequestView {
    fn from(r: &VisitRequestRecord) -> Self {
        let q = &r.request;
        Self {
            id: q.id.to_string(),
            bank_id: q.bank_id.to_string(),
            case_id: q.case_id.to_string(),
            address_ids: q.address_ids.iter().map(ToString::to_string).collect(),
            wanted_from_ms: q.wanted_from_ms,
            wanted_until_ms: q.wanted_until_ms,
            purpose: q.purpose.clone(),
            requested_device: q.requested_device.map(|d| d.to_string()),
            status: r.status.clone(),
            created_ms: q.created_ms,
            decided_ms: r.decided_ms,
            reject_reason: r.reject_reason.clone(),
            approval_id: r.approval_id.map(|a| a.to_string()),
        }
    }
}

/// Asks for a visit (an agent's phone, or a manager of the case's bank).
#[utoipa::path(post, path = "/v1/visit-requests", tag = "visits", request_body = CreateRequest,
    security(("device_token" = []), ("session" = [])),
    responses(
        (status = 201, description = "Request pending", body = RequestView),
        (status = 404, description = "No such case for this caller", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad window, addresses, or case not workable (V01)",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_request(
    State(state): State<AppState>,
    who: Requester,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<RequestView>), AppError> {
    let Json(req) = body?;
    let (banks, device, user) = match &who {
        Requester::Device(DeviceAuth(d)) => (d.bank_ids.clone(), Some(d.device_id), None),
        Requester::User(u) => {
            u.require(&[Role::Manager])?;
            (u.user.bank_ids.clone(), None, Some(u.user.user_id))
        }
    };
    let stored = new_request(&state, &banks, device, user, req).await?;
    Ok((StatusCode::CREATED, Json(RequestView::from(&stored))))
}

/// Stores a pending request for a case of `banks`, asked by `device` or `user`, and reads
/// it back: what the JSON API and the console's case page share.
pub(crate) async fn new_request(
    state: &AppState,
    banks: &[BankId],
    device: Option<tandem_core::model::DeviceId>,
    user: Option<Uuid>,
    req: CreateRequest,
) -> Result<VisitRequestRecord, AppError> {
    let case_id: CaseId = req.case_id.parse().map_err(|_| AppError::NotFound)?;
    let case = state.db.case(case_id).await?.ok_or(AppError::NotFound)?;
    if !banks.contains(&case.bank_id) {
        return Err(AppError::NotFound);
    }
    let now = state.now_ms();
    check_case_active(&case_document(&case)?, now)?;
    let window = input::span_ms(
        "wanted_from_ms",
        req.wanted_from_ms,
        "wanted_until_ms",
        req.wanted_until_ms,
    )?;
    if window <= 0 || window > MAX_WINDOW_MS || req.wanted_until_ms <= now {
        return Err(AppError::invalid(
            "visit-window-invalid",
            "The wanted window must end after it starts, in the future, within 30 days.",
        ));
    }
    let purpose = req.purpose.trim();
    if purpose.is_empty() || purpose.chars().count() > 500 {
        return Err(AppError::invalid(
            "visit-purpose-invalid",
            "Give a purpose of 1 to 500 characters.",
        ));
    }
    let known: Vec<AddressId> = case.addresses.iter().map(|a| a.id).collect();
    let address_ids = match req.address_ids {
        None => known,
        Some(ids) => {
            let ids: Vec<AddressId> = ids.iter().filter_map(|s| s.parse().ok()).collect();
            let all_known = !ids.is_empty() && ids.iter().all(|i| known.contains(i));
            if !all_known {
                return Err(AppError::invalid(
                    "visit-addresses-invalid",
                    "Name one or more of the case's own addresses.",
                ));
            }
            ids
        }
    };
    let request = NewVisitRequest {
        id: Uuid::now_v7(),
        bank_id: case.bank_id,
        case_id,
        address_ids,
        wanted_from_ms: req.wanted_from_ms,
        wanted_until_ms: req.wanted_until_ms,
        purpose: purpose.to_owned(),
        requested_device: device,
        requested_user: user,
        created_ms: now,
    };
    state.db.create_visit_request(&request).await?;
    tracing::info!(request = %request.id, case = %case_id, "visit requested");
    if let Some(by) = user {
        let entry = AuditEntry::new(
            now,
            AuditAction::VisitRequested,
            "visit-request",
            Some(request.id.to_string()),
        )
        .by(by)
        .bank(case.bank_id);
        state.db.append_audit(&entry).await?;
    }
    let stored = state
        .db
        .visit_request(request.id)
        .await?
        .ok_or_else(|| AppError::Internal("visit request vanished".into()))?;
    Ok(stored)
}

/// Which requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `pending`, `approved` or `rejected`; all when left out.
    pub status: Option<String>,
    /// One bank of the user's; all of them when left out.
    pub bank: Option<String>,
    /// At most this many per bank (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Visit requests of the manager's banks, oldest first.
#[utoipa::path(get, path = "/v1/visit-requests", tag = "visits", params(ListParams),
    security(("session" = [])),
    responses(
        (status = 200, description = "Requests", body = [RequestView]),
        (status = 404, description = "`bank` names no bank of this user", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn list_requests(
    State(state): State<AppState>,
    user: UserAuth,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<RequestView>>, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    if let Some(s) = params.status.as_deref()
        && !matches!(s, "pending" | "approved" | "rejected")
    {
        return Err(AppError::invalid(
            "visit-request-status",
            "status is pending, approved or rejected.",
        ));
    }
    let banks: Vec<BankId> = match params.bank.as_deref() {
        Some(b) => vec![super::cases::bank_param(&user, b)?],
        None => user.user.bank_ids.clone(),
    };
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let rows = queue(&state, &user, &banks, params.status.as_deref(), limit).await?;
    Ok(Json(rows.iter().map(RequestView::from).collect()))
}

/// The visit requests of `banks` (of the user's own), oldest first per bank, `status`
/// only when given: what managers and admins read, in the JSON API and the console.
pub(crate) async fn queue(
    state: &AppState,
    user: &UserAuth,
    banks: &[BankId],
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<VisitRequestRecord>, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let mut out = Vec::new();
    for bank in banks {
        user.check_bank(*bank)?;
        out.extend(state.db.visit_requests(*bank, status, limit).await?);
    }
    Ok(out)
}

/// The request, in any state, if it is of one of the user's banks (404 otherwise, the
/// same as for a random id).
pub(crate) async fn visible_request(
    state: &AppState,
    user: &UserAuth,
    id: &str,
) -> Result<VisitRequestRecord, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let request = state
        .db
        .visit_request(id)
        .await?
        .ok_or(AppError::NotFound)?;
    user.check_bank(request.request.bank_id)?;
    Ok(request)
}

/// The request, if the user's role and banks let them decide it (404 otherwise).
pub(crate) async fn decidable_request(
    state: &AppState,
    user: &UserAuth,
    id: &str,
) -> Result<VisitRequestRecord, AppError> {
    user.require(&[Role::Manager])?;
    let request = visible_request(state, user, id).await?;
    if request.status != "pending" {
        return Err(decided());
    }
    Ok(request)
}

/// 409: a request is decided once.
pub(crate) fn decided() -> AppError {
    AppError::conflict(
        "visit-request-decided",
        "This request was decided already; make a new request.",
    )
}

/// Why a request is rejected.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Shown to the requester (1 to 500 characters).
    pub reason: String,
}

/// Rejects a pending request (a manager of its bank).
#[utoipa::path(post, path = "/v1/visit-requests/{id}/reject", tag = "visits",
    params(("id" = String, Path, description = "Request id")),
    request_body = RejectRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Rejected", body = RequestView),
        (status = 404, description = "No such request for this manager", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Decided already", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one over 500 characters", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn reject(
    State(state): State<AppState>,
    user: UserAuth,
    Path(id): Path<String>,
    body: Result<Json<RejectRequest>, JsonRejection>,
) -> Result<Json<RequestView>, AppError> {
    let request = decidable_request(&state, &user, &id).await?;
    let Json(req) = body?;
    let stored = reject_request(&state, &user, &request, &req.reason).await?;
    Ok(Json(RequestView::from(&stored)))
}

/// Rejects `request` (found by [`decidable_request`]) with the manager's reason, and reads
/// it back: what the JSON API and the console's form share.
pub(crate) async fn reject_request(
    state: &AppState,
    user: &UserAuth,
    request: &VisitRequestRecord,
    reason: &str,
) -> Result<VisitRequestRecord, AppError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::invalid(
            "reject-reason-invalid",
            "Give a reason of 1 to 500 characters.",
        ));
    }
    let id = request.request.id;
    if !state
        .db
        .reject_visit(id, user.user.user_id, reason, state.now_ms())
        .await?
    {
        return Err(decided());
    }
    tracing::info!(request = %id, "visit request rejected");
    let entry = AuditEntry::new(
        state.now_ms(),
        AuditAction::VisitRejected,
        "visit-request",
        Some(id.to_string()),
    )
    .by(user.user.user_id)
    .bank(request.request.bank_id);
    state.db.append_audit(&entry).await?;
    state.db.visit_request(id).await?.ok_or(AppError::NotFound)
}
