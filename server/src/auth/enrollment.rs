//! Enrolment and the devices it makes: a phone enrols with a one-time code and a proof of
//! its key, reads itself back; an admin revokes a device or issues an agent a new code.

use std::net::IpAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tandem_core::crypto::{PublicKey, SignatureRecord};
use tandem_core::model::{AgentId, BankId, DeviceId};
use tandem_core::phone::Enrollment;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{DEVICE_TOKEN_PREFIX, DeviceAuth, ENROLL_PURPOSE, ENROLLMENT_CODE_TTL_MS, UserAuth};
use crate::audit::{AuditAction, AuditEntry};
use crate::db::auth::{EnrollOutcome, NewDevice};
use crate::db::{NewEnrollmentCode, Role};
use crate::error::{AppError, Problem};
use crate::throttle::ClientAddr;
use crate::{AppState, secrets};

/// A phone's enrollment: the one-time code, its public key, and a signature with that key
/// proving the phone holds it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time code as the agent typed or scanned it (dashes and case do not matter).
    pub code: String,
    /// The device's public key `{alg, key}` (`ed25519` or `ecdsa-p256-sha256`, raw key in
    /// standard base64).
    #[schema(value_type = Object)]
    pub public_key: PublicKey,
    /// `{kid, alg, sig}`: the device key's signature for purpose `enroll` over the code's
    /// stored form (SHA-256 hex of its symbols, uppercase, without dashes).
    #[schema(value_type = Object)]
    pub proof: SignatureRecord,
}

/// What an enrolled phone keeps.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    /// Device id, agent id and the server's key to pin.
    #[schema(value_type = Object)]
    pub enrollment: Enrollment,
    /// Banks the agent works for (UUIDs).
    pub bank_ids: Vec<String>,
    /// The device's bearer token, shown once (`tdv_…`).
    pub token: String,
}

/// Enrols a phone with a one-time code.
#[utoipa::path(post, path = "/v1/enroll", tag = "devices", request_body = EnrollRequest,
    responses(
        (status = 201, description = "Enrolled", body = EnrollResponse),
        (status = 400, description = "Malformed body or proof", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "Unknown, expired or used code", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Key already enrolled", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn enroll(
    State(state): State<AppState>,
    body: Result<Json<EnrollRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<EnrollResponse>), AppError> {
    let Json(req) = body?;
    let code_hash = secrets::enrollment_code_hash(&req.code);
    if req.code.len() > 64 || code_hash.is_empty() {
        return Err(AppError::Unauthorized);
    }
    if req
        .proof
        .verify(&req.public_key, ENROLL_PURPOSE, code_hash.as_bytes())
        .is_err()
    {
        return Err(AppError::problem(
            StatusCode::BAD_REQUEST,
            "enrollment-proof-invalid",
            "Enrollment proof invalid",
            "The proof is not a signature by the given key over this code.",
        ));
    }
    let token =
        secrets::new_token(DEVICE_TOKEN_PREFIX).map_err(|e| AppError::Internal(e.to_string()))?;
    let device = NewDevice {
        id: DeviceId::new(),
        public_key: req.public_key,
        token_hash: secrets::token_hash(&token),
    };
    let code_problem = |kind, detail: &str| {
        AppError::problem(
            StatusCode::UNAUTHORIZED,
            kind,
            "Enrollment code not accepted",
            detail,
        )
    };
    match state
        .db
        .enroll_device(&code_hash, &device, state.now_ms())
        .await?
    {
        EnrollOutcome::Enrolled { agent_id, bank_ids } => {
            tracing::info!(device = %device.id, agent = %agent_id, "device enrolled");
            let server_key = tandem_core::crypto::Signer::public_key(state.signer.as_ref());
            Ok((
                StatusCode::CREATED,
                Json(EnrollResponse {
                    enrollment: Enrollment {
                        device_id: device.id,
                        agent_id,
                        server_key,
                    },
                    bank_ids: bank_ids.iter().map(ToString::to_string).collect(),
                    token,
                }),
            ))
        }
        EnrollOutcome::UnknownCode => Err(code_problem(
            "enrollment-code-unknown",
            "No such enrollment code.",
        )),
        EnrollOutcome::Expired => Err(code_problem(
            "enrollment-code-expired",
            "The enrollment code has expired; ask for a new one.",
        )),
        EnrollOutcome::Used => Err(code_problem(
            "enrollment-code-used",
            "The enrollment code was used already; ask for a new one.",
        )),
        EnrollOutcome::KeyTaken => Err(AppError::conflict(
            "device-key-enrolled",
            "This public key is enrolled already; a phone makes a new key to enrol again.",
        )),
    }
}

/// An enrolled device, as it sees itself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceInfo {
    /// Device id.
    pub device_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Banks (UUIDs).
    pub bank_ids: Vec<String>,
    /// Key id (hex SHA-256 of the raw key).
    pub kid: String,
    /// When enrolled, UTC ms.
    pub enrolled_ms: i64,
}

/// The calling device.
#[utoipa::path(get, path = "/v1/device", tag = "devices",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The device", body = DeviceInfo),
        (status = 401, description = "No valid device token, or revoked", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn device_self(DeviceAuth(d): DeviceAuth) -> Json<DeviceInfo> {
    Json(DeviceInfo {
        device_id: d.device_id.to_string(),
        agent_id: d.agent_id.to_string(),
        bank_ids: d.bank_ids.iter().map(ToString::to_string).collect(),
        kid: d.public_key.kid().to_string(),
        enrolled_ms: d.enrolled_ms,
    })
}

/// Why a device is revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Shown to admins (lost, stolen, left the company); no personal data.
    pub reason: String,
}

/// A revoked device.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokeResponse {
    /// Device id.
    pub device_id: String,
    /// When it was revoked, UTC ms: its signatures from then on are rejected.
    pub revoked_at_ms: i64,
}

/// Revokes a device (admin): its token stops working at once, and bundles it signs from
/// now on are rejected at ingest.
#[utoipa::path(post, path = "/v1/devices/{id}/revoke", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    request_body = RevokeRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Revoked (or revoked already)", body = RevokeResponse),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such device in the admin's banks", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one over 200 characters", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    user: UserAuth,
    Path(id): Path<String>,
    body: Result<Json<RevokeRequest>, JsonRejection>,
) -> Result<Json<RevokeResponse>, AppError> {
    user.require(&[Role::Admin])?;
    let id: DeviceId = id.parse().map_err(|_| AppError::NotFound)?;
    let Json(req) = body?;
    Ok(Json(
        revoke_device(&state, &user, id, &req.reason, client).await?,
    ))
}

/// Revokes a device of the admin's banks (another bank's device is "not found"): its token
/// stops working at once, and bundles it signs from now on are rejected at ingest. Written
/// to the audit log, once for each bank of the admin's the agent works for. What the JSON
/// API and the console's form share.
pub(crate) async fn revoke_device(
    state: &AppState,
    user: &UserAuth,
    id: DeviceId,
    reason: &str,
    client: Option<IpAddr>,
) -> Result<RevokeResponse, AppError> {
    user.require(&[Role::Admin])?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(AppError::invalid(
            "revocation-reason",
            "Give a reason of 1 to 200 characters.",
        ));
    }
    let device = state.db.device(id).await?.ok_or(AppError::NotFound)?;
    user.check_any_bank(&device.bank_ids)?;
    let now = state.now_ms();
    if state.db.revoke_device(id, now, reason).await? {
        let banks = shared_banks(user, &device.bank_ids);
        let entry = AuditEntry::new(
            now,
            AuditAction::DeviceRevoked,
            "device",
            Some(id.to_string()),
        )
        .by(user.user.user_id)
        .from_addr(client)
        .detail(json!({ "agent": device.agent_id.to_string(), "reason": reason }));
        for entry in entry.per_bank(&banks) {
            state.db.append_audit(&entry).await?;
        }
    }
    let revoked_at_ms = state
        .db
        .device(id)
        .await?
        .and_then(|d| d.revoked_at_ms)
        .unwrap_or(now);
    tracing::info!(device = %id, "device revoked");
    Ok(RevokeResponse {
        device_id: id.to_string(),
        revoked_at_ms,
    })
}

/// The banks of `banks` the user is scoped to (what an admin's audit entry concerns).
pub(crate) fn shared_banks(user: &UserAuth, banks: &[BankId]) -> Vec<BankId> {
    banks.iter().copied().filter(|b| user.sees(*b)).collect()
}

/// A new one-time enrollment code, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewCodeResponse {
    /// The code (`7KQ2-M9XD-4HFA`).
    pub code: String,
    /// When it expires, UTC ms.
    pub expires_ms: i64,
}

/// Issues a new one-time enrollment code for an agent (admin).
#[utoipa::path(post, path = "/v1/agents/{id}/enrollment-codes", tag = "devices",
    params(("id" = String, Path, description = "Agent id")),
    security(("session" = [])),
    responses(
        (status = 201, description = "Code issued", body = NewCodeResponse),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such agent in the admin's banks", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn new_code(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    user: UserAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<NewCodeResponse>), AppError> {
    user.require(&[Role::Admin])?;
    let agent: AgentId = id.parse().map_err(|_| AppError::NotFound)?;
    let issued = issue_enrollment_code(&state, &user, agent, client).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Issues a new one-time enrollment code for an agent of the admin's banks (another bank's
/// agent is "not found"): stored hashed, returned once. Written to the audit log with its
/// expiry, never the code. What the JSON API and the console's form share.
pub(crate) async fn issue_enrollment_code(
    state: &AppState,
    user: &UserAuth,
    agent: AgentId,
    client: Option<IpAddr>,
) -> Result<NewCodeResponse, AppError> {
    user.require(&[Role::Admin])?;
    let banks = state
        .db
        .agent_banks(agent)
        .await?
        .ok_or(AppError::NotFound)?;
    user.check_any_bank(&banks)?;
    let code = secrets::new_enrollment_code().map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.now_ms();
    let stored = NewEnrollmentCode {
        id: Uuid::now_v7(),
        code_hash: secrets::enrollment_code_hash(&code),
        expires_ms: now + ENROLLMENT_CODE_TTL_MS,
    };
    state.db.add_enrollment_code(agent, &stored, now).await?;
    let entry = AuditEntry::new(
        now,
        AuditAction::EnrollmentCodeIssued,
        "agent",
        Some(agent.to_string()),
    )
    .by(user.user.user_id)
    .from_addr(client)
    .detail(json!({ "code_id": stored.id.to_string(), "expires_ms": stored.expires_ms }));
    for entry in entry.per_bank(&shared_banks(user, &banks)) {
        state.db.append_audit(&entry).await?;
    }
    Ok(NewCodeResponse {
        code,
        expires_ms: stored.expires_ms,
    })
}
