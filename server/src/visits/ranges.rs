//! Receipt-number ranges (C02): a manager issues the next numbers of the server-wide
//! series to a phone, signed; the phone pulls the same signed range through sync.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tandem_core::model::{DeviceId, ReceiptSerial, SerialRange, Signed};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::sync::FeedWriteError;
use crate::error::{AppError, Problem};

/// Most numbers issued at once.
pub const MAX_RANGE: i64 = 10_000;

/// How many numbers to issue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeRequest {
    /// 1 to 10,000.
    pub count: i64,
}

/// An issued range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RangeResponse {
    /// The phone.
    pub device_id: String,
    /// First number.
    pub first: u64,
    /// Last number (inclusive).
    pub last: u64,
    /// The signed range `{body, signature}`, as the phone pulls it.
    #[schema(value_type = Object)]
    pub range: Signed<SerialRange>,
}

/// Issues the next `count` receipt numbers to a phone (a manager of one of its banks).
/// Ranges are gapless and never overlap, across phones and banks.
#[utoipa::path(post, path = "/v1/devices/{id}/serial-ranges", tag = "devices",
    params(("id" = String, Path, description = "Device id")),
    request_body = RangeRequest,
    security(("session" = [])),
    responses(
        (status = 201, description = "Issued", body = RangeResponse),
        (status = 404, description = "No such device in the manager's banks", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The device is revoked", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Count out of range", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn allocate(
    State(state): State<AppState>,
    user: UserAuth,
    Path(id): Path<String>,
    body: Result<Json<RangeRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<RangeResponse>), AppError> {
    user.require(&[Role::Manager])?;
    let id: DeviceId = id.parse().map_err(|_| AppError::NotFound)?;
    let device = state.db.device(id).await?.ok_or(AppError::NotFound)?;
    user.check_any_bank(&device.bank_ids)?;
    let Json(req) = body?;
    if !(1..=MAX_RANGE).contains(&req.count) {
        return Err(AppError::invalid(
            "serial-range-count",
            format!("Issue 1 to {MAX_RANGE} numbers at a time."),
        ));
    }
    if device.revoked_at_ms.is_some() {
        return Err(AppError::conflict(
            "device-revoked",
            "The device is revoked: it receives no receipt numbers.",
        ));
    }
    let now = state.now_ms();
    let signer = state.signer.clone();
    let build = move |(first, last): (i64, i64)| -> Result<String, String> {
        let (first, last) = (
            u64::try_from(first).map_err(|e| e.to_string())?,
            u64::try_from(last).map_err(|e| e.to_string())?,
        );
        let range = SerialRange {
            device_id: id,
            first: ReceiptSerial(first),
            last: ReceiptSerial(last),
            issued_at_ms: now,
        };
        let signed = Signed::sign(&range, signer.as_ref()).map_err(|e| e.to_string())?;
        serde_json::to_string(&signed).map_err(|e| e.to_string())
    };
    let (first, last, payload) = state
        .db
        .allocate_serial_range(id, req.count, user.user.user_id, now, &build)
        .await
        .map_err(|e| match e {
            FeedWriteError::Db(e) => AppError::from(e),
            FeedWriteError::Sign(e) => AppError::Internal(format!("sign range: {e}")),
        })?;
    let range: Signed<SerialRange> = serde_json::from_str(&payload)
        .map_err(|e| AppError::Internal(format!("range JSON: {e}")))?;
    tracing::info!(device = %id, first, last, "receipt numbers issued");
    Ok((
        StatusCode::CREATED,
        Json(RangeResponse {
            device_id: id.to_string(),
            first: u64::try_from(first).unwrap_or_default(),
            last: u64::try_from(last).unwrap_or_default(),
            range,
        }),
    ))
}
