//! Resumable, content-addressed blob uploads speaking tus 1.0 (core, creation, checksum,
//! termination), so stock tus clients and platform background uploaders can carry them.
//!
//! An upload is named by the blob's SHA-256 and length and belongs to the device that
//! created it: another device, of the same bank or another, gets the same 404 for it as
//! for an id never used (HEAD, PATCH, DELETE), so it can neither learn its progress nor
//! write into it. Content addressing still saves work across devices: a blob stored
//! already is reported complete at once to anyone who creates an upload of it. The
//! committed offset lives in the database (servers are stateless); the bytes live in
//! `blobs/tmp/upload-<id>`, already sealed as the blob will be stored (the bytes after its
//! last whole record in a sealed tail file, [`spool`]), and are fsynced before the offset
//! covering them is committed, so after a crash the database offset is
//! the truth and a longer partial file is cut back to it. One PATCH appends at a time, holding a lease it renews while it runs; the blob is
//! installed under its address only once the whole of it hashes to that address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::options;
use tandem_core::crypto::{Digest, Sha256Stream};
use tandem_core::model::DeviceId;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::AppState;
use crate::auth::DeviceAuth;
use crate::db::uploads::{NewUpload, UploadRow};
use crate::error::{AppError, Problem};

mod patch;
pub mod spool;
pub mod tus;
mod writer;

pub use writer::received_len;

use tus::{UPLOAD_LENGTH, UPLOAD_OFFSET, UploadFailure, require_tus};

/// Default largest blob (`Tus-Max-Size`) and largest PATCH body: 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// Default time a PATCH body may stall before its upload is freed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default lease lifetime after its last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/uploads", options(tus_options).post(create))
        .route(
            "/v1/uploads/{id}",
            axum::routing::head(status)
                .patch(patch::append)
                .delete(terminate),
        )
        .layer(axum::middleware::map_response(with_tus_resumable))
}

/// The OpenAPI part of this module.
#[derive(OpenApi)]
#[openapi(paths(tus_options, create, status, patch::append, terminate))]
pub struct UploadsDoc;

/// Every answer of an upload route names the protocol version (tus core).
async fn with_tus_resumable(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        tus::TUS_RESUMABLE,
        HeaderValue::from_static(tus::TUS_VERSION),
    );
    resp
}

/// Hash states of uploads this process wrote in order, keyed by upload and offset: the next
/// PATCH continues the hash instead of reading the prefix again. A miss (another server
/// wrote, a restart, a discarded chunk) only costs a rehash of the prefix.
#[derive(Default)]
pub struct HashCache {
    states: Mutex<HashMap<Uuid, (u64, Sha256Stream)>>,
}

/// Enough for every upload in flight on one server; past it the cache starts afresh.
const HASH_CACHE_MAX: usize = 4096;

impl HashCache {
    /// Takes the hash of the first `offset` bytes of an upload, if this process has it.
    pub fn take(&self, id: Uuid, offset: u64) -> Option<Sha256Stream> {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        match states.remove(&id) {
            Some((at, state)) if at == offset => Some(state),
            _ => None,
        }
    }

    /// Keeps the hash of the first `offset` bytes of an upload.
    pub fn put(&self, id: Uuid, offset: u64, state: Sha256Stream) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if states.len() >= HASH_CACHE_MAX {
            states.clear();
        }
        states.insert(id, (offset, state));
    }

    /// Drops an upload's hash (finished, discarded or terminated).
    pub fn forget(&self, id: Uuid) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.remove(&id);
    }
}

/// Where an upload's received bytes are kept until the blob is installed.
fn partial(state: &AppState, row: &UploadRow) -> writer::Partial {
    writer::Partial::new(&state.blobs.tmp_dir(), row.id, row.sha256, row.length)
}

/// Removes an upload's partial files that nobody will install any more; missing ones are
/// fine.
async fn remove_partial(state: &AppState, row: &UploadRow) {
    let part = partial(state, row);
    let _ = tokio::task::spawn_blocking(move || part.remove()).await;
}

/// The upload in `{id}` if `device` created it; anything else (a malformed id, no such
/// upload, another device's) is the same 404. Checked before [`reconcile`], which may write.
async fn find(state: &AppState, id: &str, device: DeviceId) -> Result<UploadRow, UploadFailure> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let row = state
        .db
        .upload(id)
        .await?
        .filter(|row| row.created_by == device)
        .ok_or(AppError::NotFound)?;
    reconcile(state, row).await
}

/// Brings a row in line with the blob folder: a blob stored by now (another upload, or a
/// crash between the install and the commit) completes it; a completed upload whose blob
/// is gone starts again.
async fn reconcile(state: &AppState, row: UploadRow) -> Result<UploadRow, UploadFailure> {
    let stored = state.blobs.stat(&row.sha256).await.map_err(blob_error)? == Some(row.length);
    let changed = match (row.completed_ms.is_some(), stored) {
        (false, true) => {
            state.db.complete_upload(row.id, state.now_ms()).await?;
            state.upload_hashes.forget(row.id);
            remove_partial(state, &row).await;
            true
        }
        (true, false) => state.db.reopen_upload(row.id, state.now_ms()).await?,
        _ => false,
    };
    if !changed {
        return Ok(row);
    }
    Ok(state.db.upload(row.id).await?.ok_or(AppError::NotFound)?)
}

/// `Upload-Offset` and `Upload-Length` of an upload, for answers.
fn offsets(row: &UploadRow) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(row.offset));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(row.length));
    h
}

/// What the server supports (no authentication, as tus clients ask before anything else).
#[utoipa::path(options, path = "/v1/uploads", tag = "uploads",
    responses((status = 204, description = "tus version, extensions and limits",
        headers(
            ("Tus-Resumable" = String, description = "1.0.0"),
            ("Tus-Version" = String, description = "1.0.0"),
            ("Tus-Extension" = String, description = "creation,checksum,termination"),
            ("Tus-Checksum-Algorithm" = String, description = "sha256,sha1"),
            ("Tus-Max-Size" = u64, description = "Largest blob accepted, bytes"),
        ))))]
pub async fn tus_options(State(state): State<AppState>) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        tus::TUS_VERSION_H,
        HeaderValue::from_static(tus::TUS_VERSION),
    );
    h.insert(
        tus::TUS_EXTENSION,
        HeaderValue::from_static(tus::TUS_EXTENSIONS),
    );
    h.insert(
        tus::TUS_CHECKSUM_ALGORITHM,
        HeaderValue::from_static(tus::CHECKSUM_ALGORITHM),
    );
    h.insert(
        tus::TUS_MAX_SIZE,
        HeaderValue::from(state.config.upload_max_bytes),
    );
    (StatusCode::NO_CONTENT, h).into_response()
}

/// Creates this device's upload of a blob, or answers with the one it has for the same
/// digest and length; a blob stored already is reported complete at once (`Upload-Offset`
/// equal to its length). Another device's unfinished upload of the same blob is never
/// handed out: this device gets an upload of its own (docs/decisions.md).
#[utoipa::path(post, path = "/v1/uploads", tag = "uploads",
    security(("device_token" = [])),
    params(
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Length" = u64, Header, description = "The blob's size, bytes"),
        ("Upload-Metadata" = String, Header,
            description = "`sha256 <base64 of the lowercase hex digest>`; other keys ignored"),
    ),
    responses(
        (status = 201, description = "The upload (new, existing, or complete at once)",
            headers(
                ("Location" = String, description = "/v1/uploads/{id}"),
                ("Upload-Offset" = u64, description = "Bytes stored; the length when complete"),
            )),
        (status = 400, description = "Missing or malformed headers", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "No valid device token", body = Problem,
            content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Longer than Tus-Max-Size", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Contradicts the stored blob of that digest", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    headers: HeaderMap,
) -> Result<Response, UploadFailure> {
    require_tus(&headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(tus::bad_request(
            "upload-length-required",
            "Deferred lengths are not supported: send Upload-Length.",
        )
        .into());
    }
    let length = tus::number(&headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| tus::bad_request("upload-length-required", "Upload-Length is required."))?;
    if length > state.config.upload_max_bytes {
        return Err(AppError::problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload-too-large",
            "Upload too large",
            format!(
                "Upload-Length is over the largest blob accepted ({} bytes).",
                state.config.upload_max_bytes
            ),
        )
        .into());
    }
    let sha256 = tus::metadata_sha256(&headers)?;
    match state.blobs.stat(&sha256).await.map_err(blob_error)? {
        Some(size) if size != length => {
            return Err(AppError::invalid(
                "upload-length-mismatch",
                "A blob with this digest is stored with another length.",
            )
            .into());
        }
        None if length == 0 => store_empty(&state, sha256).await?,
        _ => {}
    }
    let row = state
        .db
        .create_or_get_upload(&NewUpload {
            id: Uuid::now_v7(),
            sha256,
            length,
            created_by: device.device_id,
            now_ms: state.now_ms(),
        })
        .await?;
    let row = reconcile(&state, row).await?;
    let mut h = offsets(&row);
    let location = format!("/v1/uploads/{}", row.id);
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| AppError::Internal(e.to_string()))?,
    );
    Ok((StatusCode::CREATED, h).into_response())
}

/// A blob store that cannot answer (a bucket out of reach): the upload can be asked again.
fn blob_error(e: crate::blobstore::BlobStoreError) -> AppError {
    AppError::Internal(e.to_string())
}

/// An empty blob has nothing to PATCH: it is stored at creation when it hashes right.
async fn store_empty(state: &AppState, sha256: Digest) -> Result<(), UploadFailure> {
    if sha256 != tandem_core::crypto::sha256(b"") {
        return Err(patch::digest_mismatch().into());
    }
    let blobs = state.blobs.clone();
    tokio::task::spawn_blocking(move || blobs.put_bytes(b""))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(())
}

/// The committed offset of an upload (where to resume).
#[utoipa::path(head, path = "/v1/uploads/{id}", tag = "uploads",
    security(("device_token" = [])),
    params(("id" = String, Path, description = "Upload id"),
        ("Tus-Resumable" = String, Header, description = "1.0.0")),
    responses(
        (status = 200, description = "Offset and length",
            headers(
                ("Upload-Offset" = u64, description = "Bytes stored and committed"),
                ("Upload-Length" = u64, description = "The blob's size"),
                ("Cache-Control" = String, description = "no-store"),
            )),
        (status = 401, description = "No valid device token"),
        (status = 404, description = "No such upload of this device"),
        (status = 412, description = "Not tus 1.0.0"),
    ))]
pub async fn status(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, UploadFailure> {
    require_tus(&headers)?;
    let row = find(&state, &id, device.device_id).await?;
    if row.completed_ms.is_none() {
        patch::trim_uncommitted(&state, &row).await?;
    }
    let mut h = offsets(&row);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::OK, h).into_response())
}

/// Termination: the upload and its partial file are removed. A completed upload's blob
/// stays (blobs are evidence; only the upload record goes). Another device's upload is
/// 404, as for every upload route.
#[utoipa::path(delete, path = "/v1/uploads/{id}", tag = "uploads",
    security(("device_token" = [])),
    params(("id" = String, Path, description = "Upload id"),
        ("Tus-Resumable" = String, Header, description = "1.0.0")),
    responses(
        (status = 204, description = "Upload removed"),
        (status = 401, description = "No valid device token"),
        (status = 404, description = "No such upload of this device", body = Problem,
            content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0"),
    ))]
pub async fn terminate(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, UploadFailure> {
    require_tus(&headers)?;
    let row = find(&state, &id, device.device_id).await?;
    if !state.db.delete_upload(row.id, None).await? {
        return Err(AppError::NotFound.into());
    }
    state.upload_hashes.forget(row.id);
    remove_partial(&state, &row).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
