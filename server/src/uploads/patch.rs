//! `PATCH /v1/uploads/{id}`: one chunk appended under the upload's lease.
//!
//! The body is streamed in [`WRITE_BUF`]-sized buffers to a blocking writer that writes and
//! hashes them (the blob's running hash, and the chunk's when `Upload-Checksum` was sent),
//! so memory stays flat and a blob written in order by one process is read once. At the
//! end of the body (or when it stalls past the idle timeout, or the connection drops) the
//! file is fsynced once and only then is the new offset committed, conditionally on the
//! lease and the starting offset. A chunk that fails its checksum is cut off the file
//! again and the offset stays. A cut chunk keeps what arrived, checksum or not (tus core:
//! store as much of the received data as possible): its checksum covers bytes that never
//! came, so it cannot be checked, and dropping what did come would make a phone on a weak
//! network send the same megabytes again after every cut. Those bytes are still checked:
//! the whole blob must hash to its address before it is installed.

use std::fs::{File, OpenOptions};

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use tandem_core::crypto::Sha256Stream;
use uuid::Uuid;

use super::tus::{
    self, CHECKSUM_MISMATCH, ChunkChecksum, UPLOAD_OFFSET, UploadFailure, require_tus,
};
use super::writer::{Partial, Prepare, prepare, write_all};
use super::{find, partial};
use crate::AppState;
use crate::auth::DeviceAuth;
use crate::db::uploads::UploadRow;
use crate::error::{AppError, Problem};

/// Bytes handed to the writer at a time.
const WRITE_BUF: usize = 1 << 20;
/// Buffers queued for the writer; with [`WRITE_BUF`], what one PATCH may hold in memory.
pub(super) const WRITE_QUEUE: usize = 4;

/// The problem of a blob that does not hash to its address (the upload is discarded).
/// 422 rather than tus's 460: each chunk may have been fine, the blob is not what it was
/// announced to be, and sending the same bytes again cannot help.
pub(super) fn digest_mismatch() -> AppError {
    AppError::invalid(
        "upload-digest-mismatch",
        "The blob does not hash to the sha256 it was announced with; the upload was discarded.",
    )
}

fn offset_mismatch(committed: u64) -> UploadFailure {
    UploadFailure::from(AppError::conflict(
        "upload-offset-mismatch",
        "Upload-Offset is not the committed offset; HEAD the upload and resume from there.",
    ))
    .at_offset(committed)
}

fn busy(committed: u64) -> UploadFailure {
    UploadFailure::from(AppError::conflict(
        "upload-busy",
        "Another request is appending to this upload; HEAD it and resume from its offset.",
    ))
    .at_offset(committed)
    .retry_after(1)
}

fn too_long(detail: &'static str) -> AppError {
    AppError::problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload-exceeds-length",
        "Chunk too large",
        detail,
    )
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("upload: {e}"))
}

/// Appends a chunk at `Upload-Offset`.
#[utoipa::path(patch, path = "/v1/uploads/{id}", tag = "uploads",
    security(("device_token" = [])),
    params(
        ("id" = String, Path, description = "Upload id"),
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Offset" = u64, Header, description = "The committed offset (from HEAD)"),
        ("Upload-Checksum" = Option<String>, Header,
            description = "`sha256 <base64 of the raw 32-byte digest of this chunk>` or `sha1 <base64 of the raw 20-byte digest>`"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Chunk stored; the blob is installed when complete",
            headers(("Upload-Offset" = u64, description = "The new committed offset"))),
        (status = 400, description = "Malformed headers", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "No valid device token"),
        (status = 404, description = "No such upload of this device", body = Problem,
            content_type = "application/problem+json"),
        (status = 408, description = "The body stalled; what arrived is kept",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Wrong offset, or another request is appending",
            body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0"),
        (status = 413, description = "Chunk beyond the length or the PATCH limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not application/offset+octet-stream", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The whole blob does not hash to its address; discarded",
            body = Problem, content_type = "application/problem+json"),
        (status = 460, description = "Chunk checksum mismatch; chunk discarded, offset unchanged",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn append(
    State(state): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, UploadFailure> {
    require_tus(&headers)?;
    tus::require_offset_octet_stream(&headers)?;
    let offset = tus::number(&headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| tus::bad_request("upload-offset-required", "Upload-Offset is required."))?;
    let checksum = tus::chunk_checksum(&headers)?;
    let row = find(&state, &id, device.device_id).await?;
    if row.completed_ms.is_some() {
        // Finished (by this device, or complete since another device stored the same
        // blob): a client sending the last offset is simply done.
        return if offset == row.length {
            Ok(stored(row.length))
        } else {
            Err(offset_mismatch(row.offset))
        };
    }
    if offset != row.offset {
        return Err(offset_mismatch(row.offset));
    }
    let room = row.length - row.offset;
    let limit = room.min(state.config.upload_patch_max_bytes);
    if let Some(n) = tus::number(&headers, &header::CONTENT_LENGTH)? {
        if n > room {
            return Err(too_long("The chunk goes past Upload-Length.").into());
        }
        if n > limit {
            return Err(too_long("The chunk is larger than one PATCH may carry.").into());
        }
    }
    let token = Uuid::now_v7().simple().to_string();
    let now = state.now_ms();
    if !state
        .db
        .acquire_upload_lease(row.id, offset, &token, now, now + lease_ms(&state))
        .await?
    {
        let row = find(&state, &id, device.device_id).await?;
        return Err(if row.offset == offset && row.completed_ms.is_none() {
            busy(row.offset)
        } else {
            offset_mismatch(row.offset)
        });
    }
    // The chunk is received and committed in its own task: a client that drops the
    // connection cancels this handler, not the commit of what it sent.
    let lease = Lease::start(&state, row.id, token);
    let job = Chunk {
        state,
        row,
        lease,
        checksum,
        limit,
    };
    tokio::spawn(job.receive(body))
        .await
        .map_err(|e| UploadFailure::from(internal(e)))?
}

/// 204 with the new offset.
fn stored(offset: u64) -> Response {
    (
        StatusCode::NO_CONTENT,
        [(UPLOAD_OFFSET, HeaderValue::from(offset))],
    )
        .into_response()
}

fn lease_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.upload_lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// A held lease and the task renewing it; dropping it stops the renewals.
struct Lease {
    token: String,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn start(state: &AppState, id: Uuid, token: String) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let (db, clock, every, ms) = (
            state.db.clone(),
            state.clock.clone(),
            state.config.upload_lease / 4,
            lease_ms(state),
        );
        let (flag, held) = (lost.clone(), token.clone());
        let renewer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(std::time::Duration::from_millis(10)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if !matches!(
                    db.renew_upload_lease(id, &held, clock.now_ms() + ms).await,
                    Ok(true)
                ) {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
        Self {
            token,
            lost,
            renewer,
        }
    }

    fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// How the body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// All of it arrived.
    Complete,
    /// Nothing arrived for the idle timeout.
    Idle,
    /// The connection broke.
    Broken,
    /// More than the chunk may carry.
    TooLong,
    /// The lease was lost (the upload was taken over or removed).
    LeaseLost,
    /// The writer failed (disk full, I/O error).
    WriterFailed,
}

/// One PATCH under its lease.
struct Chunk {
    state: AppState,
    row: UploadRow,
    lease: Lease,
    checksum: Option<ChunkChecksum>,
    limit: u64,
}

impl Chunk {
    fn part(&self) -> Partial {
        partial(&self.state, &self.row)
    }

    async fn receive(self, body: Body) -> Result<Response, UploadFailure> {
        let (id, offset) = (self.row.id, self.row.offset);
        let cached = self.state.upload_hashes.take(id, offset);
        let keys = self.state.blobs.keys().clone();
        // The blob's own key (staged under the master key until a visit's bank holds it):
        // the partial file is the blob sealed as it will be stored.
        let sealer = keys
            .sealer_for_write(&self.row.sha256)
            .await
            .map_err(internal)?;
        let part = self.part();
        let prepared = blocking(move || prepare(&part, &keys, &sealer, offset, cached)).await?;
        let prepared = match prepared {
            Prepare::Ready(prepared) => prepared,
            Prepare::Lost { resume_at } => {
                // Committed bytes are gone from the folder or damaged: the phone sends
                // them again from where they are whole.
                self.commit(resume_at).await?;
                return Err(offset_mismatch(resume_at));
            }
        };

        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        // A chunk from offset 0 is the blob so far: its SHA-256 checksum is the blob's
        // running hash, so every byte is hashed once (tus clients send a whole blob in one
        // PATCH by default). A SHA-1 checksum always needs a hash of its own.
        let chunk_is_prefix = offset == 0;
        let chunk_hash = self
            .checksum
            .filter(|c| !(chunk_is_prefix && matches!(c, ChunkChecksum::Sha256(_))))
            .map(|c| c.hasher());
        let position = prepared.position;
        let length = self.row.length;
        let writer = tokio::task::spawn_blocking(move || {
            write_all(rx, *prepared, offset, length, chunk_hash)
        });
        let end = self.pump(body, tx).await;
        let written = writer.await.map_err(internal)?;
        let written = match (end, written) {
            (End::LeaseLost, _) => return Err(busy(offset)),
            (_, Err(e)) => {
                tracing::error!(error = %e, "upload write failed");
                self.discard(position).await?;
                return Err(internal("writing the partial file").into());
            }
            (_, Ok(w)) => w,
        };
        let checksum_ok = match (&self.checksum, written.chunk_hash) {
            (Some(expected), Some(h)) => h.matches(expected),
            (Some(ChunkChecksum::Sha256(expected)), None) => {
                written.blob_hash.clone().finish() == *expected
            }
            // Never built (a SHA-1 checksum always gets its own hasher); refusing the chunk
            // is the safe answer if it ever were.
            (Some(ChunkChecksum::Sha1(_)), None) => false,
            (None, _) => true,
        };
        let keep = match end {
            End::Complete => checksum_ok,
            End::Idle | End::Broken => true,
            End::TooLong | End::LeaseLost | End::WriterFailed => false,
        };
        if !keep {
            self.discard(position).await?;
            return Err(match end {
                End::Complete => UploadFailure::from(AppError::problem(
                    CHECKSUM_MISMATCH,
                    "upload-checksum-mismatch",
                    "Checksum mismatch",
                    "The chunk does not match its Upload-Checksum; it was discarded.",
                )),
                End::TooLong => {
                    too_long("The chunk goes past Upload-Length or the PATCH limit.").into()
                }
                _ => cut(end).into(),
            }
            .at_offset(offset));
        }

        let new_offset = offset + written.bytes;
        let file = written.file;
        // A new partial file's name must be durable before an offset into it is committed;
        // a file complete in its first chunk is renamed into place (and that folder synced)
        // instead.
        let complete = new_offset == self.row.length;
        let sync_dir = (offset == 0 && !complete).then(|| self.state.blobs.tmp_dir());
        blocking(move || {
            file.sync_data()?;
            if let Some(dir) = sync_dir {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await?;
        if complete {
            return self.finish(written.blob_hash).await;
        }
        // The bytes after the last whole record wait, sealed, for the next chunk.
        let (part, keys, tail) = (self.part(), self.state.blobs.keys().clone(), written.tail);
        blocking(move || part.keep_tail(&keys, new_offset, &tail)).await?;
        if !self.commit(new_offset).await? {
            return Err(busy(offset));
        }
        if offset > 0 {
            let part = self.part();
            let _ = tokio::task::spawn_blocking(move || part.drop_tail(offset)).await;
        }
        self.state
            .upload_hashes
            .put(id, new_offset, written.blob_hash);
        match end {
            End::Complete => Ok(stored(new_offset)),
            _ => Err(UploadFailure::from(cut(end)).at_offset(new_offset)),
        }
    }

    /// Reads the body into the writer until it ends, stalls, overflows or the lease is lost.
    async fn pump(&self, body: Body, tx: tokio::sync::mpsc::Sender<Bytes>) -> End {
        let idle = self.state.config.upload_idle_timeout;
        let mut body = body;
        let mut buf = BytesMut::with_capacity(WRITE_BUF);
        let mut received = 0u64;
        let end = loop {
            if self.lease.lost() {
                break End::LeaseLost;
            }
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => break End::Idle,
                Ok(None) => break End::Complete,
                Ok(Some(Err(_))) => break End::Broken,
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            received += data.len() as u64;
            if received > self.limit {
                break End::TooLong;
            }
            buf.extend_from_slice(&data);
            if buf.len() >= WRITE_BUF && tx.send(buf.split().freeze()).await.is_err() {
                break End::WriterFailed;
            }
            if buf.capacity() == 0 {
                buf.reserve(WRITE_BUF);
            }
        };
        let flush = matches!(end, End::Complete | End::Idle | End::Broken);
        if flush && !buf.is_empty() && tx.send(buf.freeze()).await.is_err() {
            return End::WriterFailed;
        }
        end
    }

    /// Moves the committed offset to `to` (releasing the lease); `false`: the lease was lost.
    async fn commit(&self, to: u64) -> Result<bool, UploadFailure> {
        Ok(self
            .state
            .db
            .commit_upload_offset(
                self.row.id,
                &self.lease.token,
                self.row.offset,
                to,
                self.state.now_ms(),
            )
            .await?)
    }

    /// Cuts this chunk off the partial file (back to file position `position`, where its
    /// records began) and releases the lease, the offset unchanged.
    async fn discard(&self, position: u64) -> Result<(), UploadFailure> {
        if self.lease.lost() {
            return Ok(());
        }
        let path = self.part().path;
        blocking(move || {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(position)?;
            f.sync_data()
        })
        .await?;
        self.commit(self.row.offset).await?;
        Ok(())
    }

    /// The last byte arrived: install the blob if it hashes to its address, else discard
    /// the upload.
    async fn finish(&self, blob_hash: Sha256Stream) -> Result<Response, UploadFailure> {
        let (state, row) = (&self.state, &self.row);
        state.upload_hashes.forget(row.id);
        if blob_hash.finish() != row.sha256 {
            if state
                .db
                .delete_upload(row.id, Some(&self.lease.token))
                .await?
            {
                super::remove_partial(state, row).await;
            }
            return Err(digest_mismatch().into());
        }
        // Still ours right before the rename: no other writer may have the file open.
        let now = state.now_ms();
        if !state
            .db
            .renew_upload_lease(row.id, &self.lease.token, now + lease_ms(state))
            .await?
        {
            return Err(busy(row.offset));
        }
        let (blobs, part) = (state.blobs.clone(), self.part());
        blocking(move || {
            blobs
                .install_sealed(&part.path, &part.digest, part.length)
                .map_err(io::Error::other)?;
            part.remove();
            Ok(())
        })
        .await?;
        state.db.complete_upload(row.id, state.now_ms()).await?;
        Ok(stored(row.length))
    }
}

/// The problem answered for a body that stopped early (rarely read: the client has gone).
fn cut(end: End) -> AppError {
    if end == End::Idle {
        AppError::problem(
            StatusCode::REQUEST_TIMEOUT,
            "upload-idle-timeout",
            "Upload stalled",
            "The chunk stopped arriving; HEAD the upload and resume from its offset.",
        )
    } else {
        tus::bad_request(
            "upload-interrupted",
            "The chunk was cut short; HEAD the upload and resume from its offset.",
        )
    }
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, UploadFailure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(internal)?
        .map_err(|e| internal(e).into())
}

/// HEAD's part of crash recovery: a partial file longer than the committed offset (a crash
/// between the write and the commit) is cut back to it, under a short lease so no writer
/// is cut mid-chunk.
pub(super) async fn trim_uncommitted(
    state: &AppState,
    row: &UploadRow,
) -> Result<(), UploadFailure> {
    let path = super::partial(state, row).path;
    // The sealed bytes of the committed offset's whole records; its tail is a file of
    // its own, checked when the next chunk opens it.
    let position = tandem_core::blobs::Sealer::sealed_prefix_len(row.offset);
    let len = tokio::fs::metadata(&path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let now = state.now_ms();
    if len <= position || row.leased_at(now) {
        return Ok(());
    }
    let token = Uuid::now_v7().simple().to_string();
    if !state
        .db
        .acquire_upload_lease(row.id, row.offset, &token, now, now + lease_ms(state))
        .await?
    {
        return Ok(());
    }
    let cut = blocking(move || {
        let f = OpenOptions::new().write(true).open(path)?;
        // A writer still finishing (its lease lost) is left alone: the next chunk cuts.
        if f.try_lock().is_err() {
            return Ok(());
        }
        f.set_len(position)?;
        f.sync_data()
    })
    .await;
    state
        .db
        .commit_upload_offset(row.id, &token, row.offset, row.offset, state.now_ms())
        .await?;
    cut
}
