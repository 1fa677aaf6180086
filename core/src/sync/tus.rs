//! Resumable blob uploads, tus 1.0 (core, creation, checksum) as DESIGN.md §8 and the
//! server speak it: create-or-return by digest, ask the server's offset, send checksummed
//! chunks from there. Acknowledged bytes are never sent again; a chunk cut by the network
//! is re-sent from the offset the server confirms.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::transport::{Request, Response, Transport};
use super::{SyncError, problem_of};
use crate::crypto::{Digest, sha256};

/// The tus version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// Default chunk: large enough for throughput, small enough for a cheap phone's memory and
/// for a cut on a weak network to cost little.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// What one upload cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Body bytes sent in PATCH requests (including chunks that had to be sent again).
    pub bytes_sent: u64,
    /// Bytes the server had already when this call started (resumed or present).
    pub skipped: u64,
    /// Chunks whose acknowledgement did not arrive and were sent again.
    pub resent_chunks: u32,
}

/// Uploads blobs through a [`Transport`] with a device token.
pub struct TusClient<'a> {
    transport: &'a dyn Transport,
    token: &'a str,
    chunk_bytes: usize,
}

impl<'a> TusClient<'a> {
    /// A client sending chunks of [`DEFAULT_CHUNK_BYTES`].
    pub fn new(transport: &'a dyn Transport, token: &'a str) -> Self {
        Self {
            transport,
            token,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }

    /// The same client with another chunk size (at least 1 byte).
    #[must_use]
    pub fn with_chunk_bytes(mut self, chunk_bytes: usize) -> Self {
        self.chunk_bytes = chunk_bytes.max(1);
        self
    }

    fn request(&self, method: &'static str, path: impl Into<String>) -> Request<'static> {
        Request::new(method, path)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Tus-Resumable", TUS_VERSION)
    }

    fn send(&self, request: &Request<'_>) -> Result<Response, SyncError> {
        self.transport.send(request)
    }

    /// Creates the upload for `digest` (or finds the one the server has); returns its path
    /// and the offset the server reports when it says so at once.
    fn create(&self, digest: &Digest, length: u64) -> Result<(String, Option<u64>), SyncError> {
        let metadata = format!("sha256 {}", B64.encode(digest.to_hex()));
        let answer = self.send(
            &self
                .request("POST", "/v1/uploads")
                .header("Upload-Length", length.to_string())
                .header("Upload-Metadata", metadata),
        )?;
        if !matches!(answer.status, 200 | 201 | 204) {
            return Err(problem_of(&answer, "creating an upload"));
        }
        let location = answer
            .header("location")
            .ok_or_else(|| SyncError::Protocol("upload created without a Location".into()))?;
        // The server may answer with an absolute URL; keep the path.
        let path = match location.find("/v1/") {
            Some(i) => location[i..].to_owned(),
            None => location.to_owned(),
        };
        Ok((path, offset_of(&answer)?))
    }

    /// The server's offset for an upload.
    fn head(&self, path: &str) -> Result<u64, SyncError> {
        let answer = self.send(&self.request("HEAD", path))?;
        if answer.status != 200 && answer.status != 204 {
            return Err(problem_of(&answer, "asking an upload's offset"));
        }
        offset_of(&answer)?
            .ok_or_else(|| SyncError::Protocol("HEAD answered without Upload-Offset".into()))
    }

    /// Uploads a blob of `length` bytes whose address is `digest`. `open` gives a reader of
    /// the blob's bytes from the start (called again when a resume needs another
    /// position); `progress(offset, length)` is called after each acknowledged chunk.
    pub fn upload(
        &self,
        digest: &Digest,
        length: u64,
        open: &mut dyn FnMut() -> Result<Box<dyn Read>, SyncError>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<UploadStats, SyncError> {
        let mut stats = UploadStats::default();
        let (path, reported) = self.create(digest, length)?;
        let mut offset = match reported {
            Some(o) => o,
            None => self.head(&path)?,
        };
        stats.skipped = offset;
        progress(offset, length);
        let mut reader = open()?;
        skip(&mut reader, offset)?;
        let mut buf = vec![0u8; self.chunk_bytes];
        // Each round either advances the offset or re-reads it from the server; a server
        // that keeps refusing the same chunk stops the loop instead of spinning.
        let mut refusals = 0u32;
        while offset < length {
            let want = usize::try_from((length - offset).min(self.chunk_bytes as u64))
                .unwrap_or(self.chunk_bytes);
            let chunk = &mut buf[..want];
            reader.read_exact(chunk).map_err(|e| {
                SyncError::Local(format!("reading blob {digest} at offset {offset}: {e}"))
            })?;
            let checksum = format!("sha256 {}", B64.encode(sha256(chunk).as_bytes()));
            stats.bytes_sent += want as u64;
            let answer = self.send(
                &self
                    .request("PATCH", path.clone())
                    .header("Content-Type", "application/offset+octet-stream")
                    .header("Upload-Offset", offset.to_string())
                    .header("Upload-Checksum", checksum)
                    .body(chunk),
            );
            match answer {
                Ok(a) if a.status == 204 || a.status == 200 => {
                    let next = offset_of(&a)?.unwrap_or(offset + want as u64);
                    if next != offset + want as u64 {
                        // The server holds a different amount: follow it.
                        offset = next;
                        reader = open()?;
                        skip(&mut reader, offset)?;
                    } else {
                        offset = next;
                    }
                    refusals = 0;
                    progress(offset, length);
                }
                Ok(a) if a.status == 409 || a.status == 460 => {
                    // Offset moved (another phone uploads the same blob, or our last
                    // acknowledgement was lost) or the chunk arrived damaged: ask again.
                    refusals += 1;
                    if refusals > 3 {
                        return Err(problem_of(&a, "sending a chunk"));
                    }
                    stats.resent_chunks += 1;
                    offset = self.head(&path)?;
                    reader = open()?;
                    skip(&mut reader, offset)?;
                }
                Ok(a) => return Err(problem_of(&a, "sending a chunk")),
                Err(e) => return Err(e),
            }
        }
        Ok(stats)
    }
}

/// `Upload-Offset` of an answer, if present.
fn offset_of(answer: &Response) -> Result<Option<u64>, SyncError> {
    answer
        .header("upload-offset")
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| SyncError::Protocol(format!("Upload-Offset {v:?} is not a number")))
        })
        .transpose()
}

/// Reads and drops `n` bytes.
fn skip(reader: &mut Box<dyn Read>, n: u64) -> Result<(), SyncError> {
    let copied = std::io::copy(&mut reader.by_ref().take(n), &mut std::io::sink())
        .map_err(|e| SyncError::Local(format!("seeking to offset {n}: {e}")))?;
    if copied != n {
        return Err(SyncError::Local(format!(
            "the blob ends at {copied} bytes, before offset {n}"
        )));
    }
    Ok(())
}
