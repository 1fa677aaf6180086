//! Pull sync (DESIGN.md §8): `GET /v1/sync?cursor=&limit=` gives a phone every
//! server-signed document new for it since its cursor, in pages, plus a fresh signed time
//! anchor on every call.
//!
//! The feed is one table of documents signed once, when decided, and stored with their
//! exact bytes (`db/sync.rs`): a policy version, an assignment (case, approval and ticket),
//! a receipt-number range, a revocation of a teammate's phone. Who sees a row is decided
//! when it is read, from the bank, the approved team or the device it names; nothing of
//! another agent's visits or another bank ever matches. The cursor is the last `seq` the
//! phone received, bound to its device id and opaque to it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
pub use tandem_core::model::DeviceRevocation;
use tandem_core::model::{Approval, Case, DeviceId, Policy, Signed, TimeAnchor, VisitTicket};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::AppState;
use crate::auth::DeviceAuth;
use crate::db::sync::FeedRow;
use crate::error::{AppError, Problem};

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size.
pub const MAX_LIMIT: i64 = 500;
/// Prefix of version-1 cursors.
const CURSOR_PREFIX: &str = "c1.";

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/sync", get(sync))
}

/// The OpenAPI part of this module.
#[derive(OpenApi)]
#[openapi(paths(sync), components(schemas(SyncResponse, SyncChange)))]
pub struct SyncDoc;

/// A visit assigned to the phone: what `Phone::accept_assignment` takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    /// The case as it stood when the visit was approved.
    pub case: Signed<Case>,
    /// The manager's approval.
    pub approval: Signed<Approval>,
    /// The visit ticket (lower time bound).
    pub ticket: Signed<VisitTicket>,
}

/// One document of the feed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncChange {
    /// `policy` (`Signed<Policy>`), `assignment` (`{case, approval, ticket}`, each signed),
    /// `serial_range` (`Signed<SerialRange>`) or `revocation` (`Signed<DeviceRevocation>`).
    pub kind: String,
    /// The document, byte for byte as stored when it was signed.
    #[schema(value_type = Object)]
    pub document: Box<RawValue>,
}

/// A page of the feed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncResponse {
    /// A fresh anchor for this phone's clock (not part of the feed).
    #[schema(value_type = Object)]
    pub time_anchor: Signed<TimeAnchor>,
    /// What is new since the cursor, oldest first.
    pub changes: Vec<SyncChange>,
    /// Where to go on from (keep it in the same local transaction as the changes).
    pub next_cursor: String,
    /// Whether more is waiting: ask again with `next_cursor`.
    pub more: bool,
}

/// The query of a sync.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncParams {
    /// The `next_cursor` of the last page; left out on the first sync.
    pub cursor: Option<String>,
    /// Page size (default 100, at most 500).
    pub limit: Option<i64>,
}

/// Encodes a cursor: the device it belongs to and the last `seq` it received.
pub fn encode_cursor(device: DeviceId, seq: i64) -> String {
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(device.0.as_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    format!("{CURSOR_PREFIX}{}", B64URL.encode(bytes))
}

/// Decodes a cursor of `device`; `None` when it is malformed or another device's.
pub fn decode_cursor(device: DeviceId, cursor: &str) -> Option<i64> {
    let bytes = B64URL.decode(cursor.strip_prefix(CURSOR_PREFIX)?).ok()?;
    let (id, seq) = bytes.split_at_checked(16)?;
    if id != device.0.as_bytes() {
        return None;
    }
    let seq = i64::from_be_bytes(seq.try_into().ok()?);
    (seq >= 0).then_some(seq)
}

fn signing(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("sign: {e}"))
}

/// Puts into the feed what exists without having been announced yet: a bank's policy set
/// before the feed existed (the demo seed), and revocations of teammates' phones (revoked
/// through the device routes). Each is signed once; a race leaves the first.
async fn announce(
    state: &AppState,
    device: &crate::db::auth::DeviceRecord,
) -> Result<(), AppError> {
    let now = state.now_ms();
    for bank in &device.bank_ids {
        let Some(stored) = state.db.latest_policy(*bank).await? else {
            continue;
        };
        let subject = format!("{bank}:{}", stored.version);
        if state.db.feed_has("policy", &subject).await? {
            continue;
        }
        let mut policy: Policy = serde_json::from_str(&stored.body)
            .map_err(|e| AppError::Internal(format!("stored policy: {e}")))?;
        policy.version = u32::try_from(stored.version)
            .map_err(|_| AppError::Internal("policy version out of range".into()))?;
        let signed = Signed::sign(&policy, state.signer.as_ref()).map_err(signing)?;
        let row = FeedRow {
            kind: "policy",
            subject,
            bank_id: Some(*bank),
            approval_id: None,
            device_id: None,
            payload: serde_json::to_string(&signed).map_err(signing)?,
        };
        state.db.append_feed(&row, now).await?;
    }
    for revoked in state.db.unannounced_revocations(device.device_id).await? {
        let doc = DeviceRevocation {
            device_id: revoked.device_id,
            agent_id: revoked.agent_id,
            revoked_at_ms: revoked.revoked_at_ms,
        };
        let signed = Signed::sign(&doc, state.signer.as_ref()).map_err(signing)?;
        let row = FeedRow {
            kind: "revocation",
            subject: revoked.device_id.to_string(),
            bank_id: None,
            approval_id: None,
            device_id: Some(revoked.device_id),
            payload: serde_json::to_string(&signed).map_err(signing)?,
        };
        state.db.append_feed(&row, now).await?;
    }
    Ok(())
}

/// Everything new for this phone since the cursor, and a fresh time anchor.
#[utoipa::path(get, path = "/v1/sync", tag = "sync", params(SyncParams),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "A page of the feed", body = SyncResponse),
        (status = 400, description = "Malformed cursor, or another device's", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "No valid device token, or revoked", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn sync(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    params: Result<Query<SyncParams>, QueryRejection>,
) -> Result<Json<SyncResponse>, AppError> {
    let Query(params) = params?;
    let after = match params.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => decode_cursor(device.device_id, c).ok_or_else(|| {
            AppError::problem(
                axum::http::StatusCode::BAD_REQUEST,
                "sync-cursor-invalid",
                "Cursor not valid",
                "The cursor is not one this server gave this device; sync from the start.",
            )
        })?,
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    announce(&state, &device).await?;
    let mut rows = state
        .db
        .feed_page(device.device_id, device.agent_id, after, limit + 1)
        .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let last = rows.last().map_or(after, |r| r.seq);
    let changes = rows
        .into_iter()
        .map(|r| {
            Ok(SyncChange {
                kind: r.kind,
                document: RawValue::from_string(r.payload)
                    .map_err(|e| AppError::Internal(format!("stored feed JSON: {e}")))?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let anchor = TimeAnchor {
        device_id: device.device_id,
        server_time_ms: state.now_ms(),
        nonce: crate::visits::nonce()?,
        shifted_by_ms: match state.clock.shift_ms() {
            0 => None,
            shift => Some(shift),
        },
    };
    let time_anchor = Signed::sign(&anchor, state.signer.as_ref()).map_err(signing)?;
    Ok(Json(SyncResponse {
        time_anchor,
        changes,
        next_cursor: encode_cursor(device.device_id, last),
        more,
    }))
}
