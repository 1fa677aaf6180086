//! A bank's policy (every DOMAIN.md limit as a signed value): read and changed by the
//! bank's admin; each change is a new version, signed into the sync feed.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use tandem_core::model::{Policy, Signed};
use utoipa::ToSchema;

use super::cases::bank_param;
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::sync::FeedWriteError;
use crate::error::{AppError, Problem};

/// A bank's policy with its version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Version (increases with every change).
    pub version: i64,
    /// When set, UTC ms.
    pub created_ms: i64,
    /// The policy (`tandem_core::model::Policy`).
    #[schema(value_type = Object)]
    pub policy: Policy,
}

/// The bank's current policy as stored; 404 when it has none.
pub(crate) async fn current(
    state: &AppState,
    bank: tandem_core::model::BankId,
) -> Result<PolicyView, AppError> {
    let stored = state
        .db
        .latest_policy(bank)
        .await?
        .ok_or(AppError::NotFound)?;
    let policy: Policy = serde_json::from_str(&stored.body)
        .map_err(|e| AppError::Internal(format!("stored policy: {e}")))?;
    Ok(PolicyView {
        version: stored.version,
        created_ms: stored.created_ms,
        policy,
    })
}

/// The bank's current policy (admin or manager of the bank).
#[utoipa::path(get, path = "/v1/banks/{bank}/policy", tag = "policy",
    params(("bank" = String, Path, description = "Bank id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "Current policy", body = PolicyView),
        (status = 404, description = "No such bank for this user", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn get_policy(
    State(state): State<AppState>,
    user: UserAuth,
    Path(bank): Path<String>,
) -> Result<Json<PolicyView>, AppError> {
    user.require(&[Role::Admin, Role::Manager])?;
    let bank = bank_param(&user, &bank)?;
    Ok(Json(current(&state, bank).await?))
}

/// Sets a new policy version (admin of the bank). The body is a whole policy; its
/// `bank_id` must be this bank, its `version` is assigned by the server.
#[utoipa::path(put, path = "/v1/banks/{bank}/policy", tag = "policy",
    params(("bank" = String, Path, description = "Bank id")),
    request_body(content = Object, description = "tandem_core::model::Policy"),
    security(("session" = [])),
    responses(
        (status = 200, description = "The new version", body = PolicyView),
        (status = 404, description = "No such bank for this user", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The policy does not validate", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn put_policy(
    State(state): State<AppState>,
    user: UserAuth,
    Path(bank): Path<String>,
    body: Result<Json<Policy>, JsonRejection>,
) -> Result<Json<PolicyView>, AppError> {
    user.require(&[Role::Admin])?;
    let bank = bank_param(&user, &bank)?;
    let Json(policy) = body?;
    if policy.bank_id != bank {
        return Err(AppError::invalid(
            "policy-bank-mismatch",
            "The policy's bank_id must be the bank in the path.",
        ));
    }
    if let Err(e) = policy.validate() {
        // Only the field and rule, never a value from the body beyond the bank's own zone.
        let detail = match e {
            tandem_core::model::ModelError::Invalid { field, reason } => {
                format!("{field}: {reason}")
            }
            _ => "The policy is not valid.".to_owned(),
        };
        return Err(AppError::invalid("policy-invalid", detail));
    }
    let signer = state.signer.clone();
    let build = move |version: i64| -> Result<(String, String), String> {
        let doc = Policy {
            version: u32::try_from(version).map_err(|e| e.to_string())?,
            ..policy.clone()
        };
        let body = serde_json::to_string(&doc).map_err(|e| e.to_string())?;
        let signed = Signed::sign(&doc, signer.as_ref()).map_err(|e| e.to_string())?;
        let payload = serde_json::to_string(&signed).map_err(|e| e.to_string())?;
        Ok((body, payload))
    };
    let version = state
        .db
        .put_policy(bank, state.now_ms(), &build)
        .await
        .map_err(|e| match e {
            FeedWriteError::Db(e) => AppError::from(e),
            FeedWriteError::Sign(e) => AppError::Internal(format!("sign policy: {e}")),
        })?;
    tracing::info!(bank = %bank, version, "policy changed");
    Ok(Json(current(&state, bank).await?))
}
