//! A visit's blob as the browser reads it: the stored blob streamed (never read whole into
//! memory), one byte range when asked (audio players seek), private and never cached.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_core::crypto::Digest;

use crate::blobstore::BlobStore;

/// A byte range of a blob, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// What the `Range` header asks of a blob of `size` bytes: `Ok(None)` for the whole (no
/// header, or one this route does not take: several ranges, another unit), `Err(())` when
/// it cannot be satisfied (416).
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || size == 0 {
            return Err(());
        }
        ByteRange {
            first: size.saturating_sub(n),
            last: size - 1,
        }
    } else {
        let first: u64 = a.parse().map_err(|_| ())?;
        let last = if b.is_empty() {
            size.checked_sub(1).ok_or(())?
        } else {
            let last: u64 = b.parse().map_err(|_| ())?;
            if last < first {
                return Err(());
            }
            last.min(size.saturating_sub(1))
        };
        if first >= size {
            return Err(());
        }
        ByteRange { first, last }
    };
    Ok(Some(range))
}

/// The headers of every blob answer.
fn blob_headers(headers: &mut HeaderMap, media_type: &str) {
    let media = HeaderValue::from_str(media_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, media);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    super::super::secure_page_headers(headers);
}

/// Streams the stored blob `digest` (of `size` bytes) as `media_type`, whole or the range
/// asked, from the folder or the bucket.
pub(crate) async fn serve(
    blobs: &BlobStore,
    digest: &Digest,
    size: u64,
    media_type: &str,
    range_header: Option<&str>,
) -> Response {
    let range = match parse_range(range_header, size) {
        Ok(r) => r,
        Err(()) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            blob_headers(response.headers_mut(), media_type);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return response;
        }
    };
    let (status, first, length) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.first, r.last - r.first + 1),
        None => (StatusCode::OK, 0, size),
    };
    let stream = match blobs.stream_range(digest, first, length).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "a committed bundle's blob is not readable");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (status, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    blob_headers(headers, media_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(r) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.first, r.last))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_byte_ranges_are_read_and_bad_ones_refused() {
        let r = |h: &str| parse_range(Some(h), 100);
        assert_eq!(r("bytes=0-9"), Ok(Some(ByteRange { first: 0, last: 9 })));
        assert_eq!(
            r("bytes=90-"),
            Ok(Some(ByteRange {
                first: 90,
                last: 99
            }))
        );
        assert_eq!(
            r("bytes=-10"),
            Ok(Some(ByteRange {
                first: 90,
                last: 99
            }))
        );
        assert_eq!(
            r("bytes=95-200"),
            Ok(Some(ByteRange {
                first: 95,
                last: 99
            }))
        );
        assert_eq!(r("bytes=-500"), Ok(Some(ByteRange { first: 0, last: 99 })));
        assert_eq!(r("bytes=100-"), Err(()));
        assert_eq!(r("bytes=9-3"), Err(()));
        assert_eq!(r("bytes=-0"), Err(()));
        assert_eq!(r("bytes=x-3"), Err(()));
        assert_eq!(r("bytes=0-1,5-6"), Ok(None));
        assert_eq!(r("items=0-1"), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
    }
}
