//! A bank's policy (every DOMAIN.md limit as a signed value): read and changed by the
//! bank's admin; each change is a new version, signed into the sync feed.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tandem_core::model::{Policy, Signed};
use utoipa::ToSchema;

use super::cases::bank_param;
use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::sync::FeedWriteError;
use crate::error::{AppError, Problem};
use crate::throttle::ClientAddr;

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
    ClientAddr(client): ClientAddr,
    user: UserAuth,
    Path(bank): Path<String>,
    body: Result<Json<Policy>, JsonRejection>,
) -> Result<Json<PolicyView>, AppError> {
    user.require(&[Role::Admin])?;
    let bank = bank_param(&user, &bank)?;
    let Json(policy) = body?;
    Ok(Json(set_policy(&state, &user, bank, policy, client).await?))
}

/// The bounds of a policy's whole-number values, in their stored units: `(field, least,
/// most)`. Besides core's own checks, they keep a typing slip (a radius of 2 km, a
/// retention of 7 days) from reaching every phone; the retention's least is E04's two years.
pub(crate) const POLICY_BOUNDS: &[(&str, i64, i64)] = &[
    ("visit_end_warning_minutes", 0, 120),
    ("geofence_radius_m", 10, 5_000),
    ("max_fix_accuracy_m", 5, 500),
    ("partner_max_distance_m", 5, 1_000),
    ("clock_tolerance_ms", 0, 3_600_000),
    ("audio_segment_ms", 1_000, 600_000),
    ("audio_gap_tolerance_ms", 0, 60_000),
    ("upload_deadline_ms", 3_600_000, 7 * 86_400_000),
    ("max_visits_per_debtor_per_day", 1, 10),
    ("deposit_deadline_business_days", 0, 10),
    ("retention_days", MIN_RETENTION_DAYS, 36_500),
    ("handshake_ttl_ms", 60_000, 3_600_000),
];

/// E04: evidence is kept at least two years.
pub(crate) const MIN_RETENTION_DAYS: i64 = 730;

/// A field of a policy that is not acceptable, and why (English, no value from the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyProblem {
    /// The policy's field (`visit_end_minute` for hours that do not make a window).
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn policy_value(p: &Policy, field: &str) -> i64 {
    match field {
        "visit_end_warning_minutes" => i64::from(p.visit_end_warning_minutes),
        "geofence_radius_m" => i64::from(p.geofence_radius_m),
        "max_fix_accuracy_m" => i64::from(p.max_fix_accuracy_m),
        "partner_max_distance_m" => i64::from(p.partner_max_distance_m),
        "clock_tolerance_ms" => p.clock_tolerance_ms,
        "audio_segment_ms" => i64::from(p.audio_segment_ms),
        "audio_gap_tolerance_ms" => p.audio_gap_tolerance_ms,
        "upload_deadline_ms" => p.upload_deadline_ms,
        "max_visits_per_debtor_per_day" => i64::from(p.max_visits_per_debtor_per_day),
        "deposit_deadline_business_days" => i64::from(p.deposit_deadline_business_days),
        "retention_days" => i64::from(p.retention_days),
        "handshake_ttl_ms" => p.handshake_ttl_ms,
        _ => 0,
    }
}

/// Every field of `policy` that is not acceptable: core's checks (the zone, visiting hours
/// within one day, start before end) and [`POLICY_BOUNDS`], each field once.
pub(crate) fn policy_problems(policy: &Policy) -> Vec<PolicyProblem> {
    let mut out = Vec::new();
    if policy.zone().is_err() {
        out.push(PolicyProblem {
            field: "time_zone",
            reason: "not an IANA time zone".into(),
        });
    }
    if policy.visit_start_minute >= policy.visit_end_minute || policy.visit_end_minute > 24 * 60 {
        out.push(PolicyProblem {
            field: "visit_end_minute",
            reason: "visiting hours start before they end, within one day".into(),
        });
    }
    for &(field, least, most) in POLICY_BOUNDS {
        let value = policy_value(policy, field);
        if !(least..=most).contains(&value) {
            out.push(PolicyProblem {
                field,
                reason: format!("from {least} to {most}"),
            });
        }
    }
    if out.is_empty()
        && let Err(e) = policy.validate()
    {
        // Core's own checks, should they ever go further than the above.
        let field = match e {
            tandem_core::model::ModelError::Invalid { field, .. } => field,
            _ => "policy",
        };
        out.push(PolicyProblem {
            field,
            reason: "not valid".into(),
        });
    }
    out
}

/// Sets a new version of `bank`'s policy (admin of the bank): checked, signed into the sync
/// feed (phones pull it), and written to the audit log with its version. Its `bank_id` must
/// be this bank; its `version` is assigned here. What the JSON API and the console's form
/// share.
pub(crate) async fn set_policy(
    state: &AppState,
    user: &UserAuth,
    bank: tandem_core::model::BankId,
    policy: Policy,
    client: Option<std::net::IpAddr>,
) -> Result<PolicyView, AppError> {
    user.require(&[Role::Admin])?;
    user.check_bank(bank)?;
    if policy.bank_id != bank {
        return Err(AppError::invalid(
            "policy-bank-mismatch",
            "The policy's bank_id must be the bank in the path.",
        ));
    }
    if let Some(first) = policy_problems(&policy).first() {
        // Only the field and its bounds, never a value from the body.
        let error = AppError::invalid(
            "policy-invalid",
            format!("{}: {}", first.field, first.reason),
        );
        return Err(if first.field == "retention_days" {
            error.with_rule("E04")
        } else {
            error
        });
    }
    let retention_days = policy.retention_days;
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
    let now = state.now_ms();
    let version = state
        .db
        .put_policy(bank, now, &build)
        .await
        .map_err(|e| match e {
            FeedWriteError::Db(e) => AppError::from(e),
            FeedWriteError::Sign(e) => AppError::Internal(format!("sign policy: {e}")),
        })?;
    let entry = AuditEntry::new(
        now,
        AuditAction::PolicyChanged,
        "policy",
        Some(bank.to_string()),
    )
    .by(user.user.user_id)
    .bank(bank)
    .from_addr(client)
    .detail(json!({ "version": version, "retention_days": retention_days }));
    state.db.append_audit(&entry).await?;
    tracing::info!(bank = %bank, version, "policy changed");
    current(state, bank).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e04_a_retention_under_two_years_is_refused_and_the_defaults_pass() {
        let bank = tandem_core::model::BankId::new();
        assert_eq!(policy_problems(&Policy::defaults(bank)), []);
        let short = Policy {
            retention_days: 729,
            visit_start_minute: 22 * 60,
            ..Policy::defaults(bank)
        };
        let fields: Vec<_> = policy_problems(&short).iter().map(|p| p.field).collect();
        assert_eq!(fields, ["visit_end_minute", "retention_days"]);
    }
}
