//! The tus 1.0 headers: parsing what clients send, and the errors that carry tus headers
//! (`Upload-Offset` on a conflict, `Tus-Version` on a version mismatch).

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tandem_core::crypto::Digest;

use crate::error::AppError;

/// The protocol version spoken (and the only one).
pub const TUS_VERSION: &str = "1.0.0";
/// The extensions implemented.
pub const TUS_EXTENSIONS: &str = "creation,checksum,termination";
/// The checksum algorithms accepted per chunk (`Tus-Checksum-Algorithm`): SHA-256, and
/// SHA-1 because stock tus clients send it (tuspy's `upload_checksum=True`). A chunk
/// checksum only guards one chunk in transit; the blob's address stays the SHA-256 of
/// the whole blob, checked before it is installed.
pub const CHECKSUM_ALGORITHM: &str = "sha256,sha1";
/// The media type of PATCH bodies.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// `Tus-Resumable`.
pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
/// `Tus-Version`.
pub const TUS_VERSION_H: HeaderName = HeaderName::from_static("tus-version");
/// `Tus-Extension`.
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
/// `Tus-Max-Size`.
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
/// `Tus-Checksum-Algorithm`.
pub const TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
/// `Upload-Offset`.
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
/// `Upload-Length`.
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
/// `Upload-Metadata`.
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
/// `Upload-Checksum`.
pub const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");

/// tus's own status for a chunk whose `Upload-Checksum` does not match.
pub const CHECKSUM_MISMATCH: StatusCode = match StatusCode::from_u16(460) {
    Ok(s) => s,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// An upload route's failure: the problem, plus the tus headers a client resumes with.
#[derive(Debug)]
pub struct UploadFailure {
    /// The problem answered.
    pub error: AppError,
    /// Headers sent with it (few, so a list keeps the error small).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl UploadFailure {
    /// The failure with the committed offset, so the client can resume without a HEAD.
    #[must_use]
    pub fn at_offset(mut self, offset: u64) -> Self {
        self.headers
            .push((UPLOAD_OFFSET, HeaderValue::from(offset)));
        self
    }

    /// The failure with a `Retry-After` (seconds).
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.headers
            .push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        self
    }
}

impl From<AppError> for UploadFailure {
    fn from(error: AppError) -> Self {
        Self {
            error,
            headers: Vec::new(),
        }
    }
}

impl From<crate::db::DbError> for UploadFailure {
    fn from(e: crate::db::DbError) -> Self {
        AppError::from(e).into()
    }
}

impl IntoResponse for UploadFailure {
    fn into_response(self) -> Response {
        let mut resp = self.error.into_response();
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

/// 400 with a stable kind.
pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> AppError {
    AppError::problem(StatusCode::BAD_REQUEST, kind, "Bad upload request", detail)
}

/// Checks the request speaks tus 1.0.0 (412 with the supported version otherwise).
pub fn require_tus(headers: &HeaderMap) -> Result<(), UploadFailure> {
    if headers.get(&TUS_RESUMABLE).and_then(|v| v.to_str().ok()) == Some(TUS_VERSION) {
        return Ok(());
    }
    let mut failure = UploadFailure::from(AppError::problem(
        StatusCode::PRECONDITION_FAILED,
        "tus-version-unsupported",
        "tus version not supported",
        format!("Send Tus-Resumable: {TUS_VERSION}."),
    ));
    failure
        .headers
        .push((TUS_VERSION_H, HeaderValue::from_static(TUS_VERSION)));
    Err(failure)
}

/// A non-negative decimal header (`Upload-Length`, `Upload-Offset`); `None` when absent.
pub fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, AppError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request(
            "upload-header-invalid",
            format!("{name} must be a non-negative decimal integer."),
        ));
    }
    text.parse()
        .map(Some)
        .map_err(|_| bad_request("upload-header-invalid", format!("{name} is out of range.")))
}

/// The blob's address from `Upload-Metadata`: key `sha256`, value the base64 of the
/// lowercase hex digest. Other keys are ignored.
pub fn metadata_sha256(headers: &HeaderMap) -> Result<Digest, AppError> {
    let invalid = |detail: &str| bad_request("upload-metadata-invalid", detail.to_owned());
    let text = headers
        .get(&UPLOAD_METADATA)
        .ok_or_else(|| invalid("Upload-Metadata with the key sha256 is required."))?
        .to_str()
        .map_err(|_| invalid("Upload-Metadata must be ASCII."))?;
    let value = text
        .split(',')
        .map(str::trim)
        .find_map(|pair| {
            let mut parts = pair.splitn(2, ' ');
            (parts.next() == Some("sha256")).then(|| parts.next().unwrap_or_default().trim())
        })
        .ok_or_else(|| invalid("Upload-Metadata has no sha256 key."))?;
    let hex = B64
        .decode(value)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid("The sha256 metadata value is not base64 of text."))?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid(
            "The sha256 metadata value must be a lowercase hex SHA-256 digest.",
        ));
    }
    hex.parse()
        .map_err(|_| invalid("The sha256 metadata value is not a digest."))
}

/// A chunk's `Upload-Checksum`: the algorithm and the raw digest the client computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkChecksum {
    /// SHA-256 of the chunk.
    Sha256(Digest),
    /// SHA-1 of the chunk (ring's legacy SHA-1: fine for catching a chunk damaged in
    /// transit, never used for an address or a signature).
    Sha1([u8; 20]),
}

impl ChunkChecksum {
    /// A hasher of the same algorithm, to compute the chunk's digest as it arrives.
    pub fn hasher(&self) -> ChunkHasher {
        ChunkHasher(ring::digest::Context::new(match self {
            Self::Sha256(_) => &ring::digest::SHA256,
            Self::Sha1(_) => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        }))
    }

    fn expected(&self) -> &[u8] {
        match self {
            Self::Sha256(d) => d.as_bytes(),
            Self::Sha1(d) => d,
        }
    }
}

/// The running digest of one chunk, in the algorithm of its `Upload-Checksum`.
#[derive(Clone)]
pub struct ChunkHasher(ring::digest::Context);

impl ChunkHasher {
    /// Feeds more of the chunk.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Whether the chunk hashes to the checksum the client sent.
    pub fn matches(self, expected: &ChunkChecksum) -> bool {
        self.0.finish().as_ref() == expected.expected()
    }
}

/// The checksum of `Upload-Checksum: <sha256|sha1> <base64 of the raw digest>`, if sent.
pub fn chunk_checksum(headers: &HeaderMap) -> Result<Option<ChunkChecksum>, AppError> {
    let Some(value) = headers.get(&UPLOAD_CHECKSUM) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let (alg, b64) = text.split_once(' ').unwrap_or((text, ""));
    let raw = B64.decode(b64.trim()).ok();
    let invalid = |detail: &'static str| bad_request("upload-checksum-invalid", detail);
    match alg {
        "sha256" => raw
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(|d| Some(ChunkChecksum::Sha256(Digest(d))))
            .ok_or_else(|| {
                invalid("Upload-Checksum sha256 must carry the base64 of a 32-byte digest.")
            }),
        "sha1" => raw
            .and_then(|b| <[u8; 20]>::try_from(b).ok())
            .map(|d| Some(ChunkChecksum::Sha1(d)))
            .ok_or_else(|| {
                invalid("Upload-Checksum sha1 must carry the base64 of a 20-byte digest.")
            }),
        _ => Err(bad_request(
            "upload-checksum-unsupported",
            format!("The checksum algorithms supported are {CHECKSUM_ALGORITHM}."),
        )),
    }
}

/// Checks a PATCH body is `application/offset+octet-stream` (415 otherwise).
pub fn require_offset_octet_stream(headers: &HeaderMap) -> Result<(), AppError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if media.is_some_and(|m| m.eq_ignore_ascii_case(OFFSET_OCTET_STREAM)) {
        return Ok(());
    }
    Err(AppError::problem(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "upload-content-type",
        "Unsupported media type",
        format!("PATCH bodies must be sent as {OFFSET_OCTET_STREAM}."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn metadata_takes_the_sha256_key_and_ignores_the_others() {
        let hex = tandem_core::crypto::sha256(b"x").to_hex();
        let value = format!(
            "filename {},sha256 {}, is_confidential",
            B64.encode("a.jpg"),
            B64.encode(&hex)
        );
        let digest = metadata_sha256(&with(&UPLOAD_METADATA, &value)).unwrap();
        assert_eq!(digest.to_hex(), hex);
        let upper = format!("sha256 {}", B64.encode(hex.to_uppercase()));
        assert!(metadata_sha256(&with(&UPLOAD_METADATA, &upper)).is_err());
        assert!(metadata_sha256(&with(&UPLOAD_METADATA, "sha256 !!")).is_err());
        assert!(metadata_sha256(&HeaderMap::new()).is_err());
    }

    #[test]
    fn numbers_refuse_signs_spaces_and_overflow() {
        for bad in ["-1", "+1", " 1", "1e3", "99999999999999999999999", ""] {
            assert!(
                number(&with(&UPLOAD_LENGTH, bad), &UPLOAD_LENGTH).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            number(&with(&UPLOAD_LENGTH, "42"), &UPLOAD_LENGTH).unwrap(),
            Some(42)
        );
    }

    #[test]
    fn checksums_are_sha256_of_32_bytes_or_sha1_of_20() {
        let d = tandem_core::crypto::sha256(b"chunk");
        let ok = format!("sha256 {}", B64.encode(d.as_bytes()));
        assert_eq!(
            chunk_checksum(&with(&UPLOAD_CHECKSUM, &ok)).unwrap(),
            Some(ChunkChecksum::Sha256(d))
        );
        let md5 = format!("md5 {}", B64.encode([0u8; 16]));
        assert!(chunk_checksum(&with(&UPLOAD_CHECKSUM, &md5)).is_err());
        let short = format!("sha256 {}", B64.encode([0u8; 16]));
        assert!(chunk_checksum(&with(&UPLOAD_CHECKSUM, &short)).is_err());
        // A SHA-1 digest is 20 bytes; 32 bytes under its name is refused.
        let sha1_long = format!("sha1 {}", B64.encode([0u8; 32]));
        assert!(chunk_checksum(&with(&UPLOAD_CHECKSUM, &sha1_long)).is_err());
    }

    #[test]
    fn a_sha1_checksum_matches_the_chunk_it_was_computed_over() {
        // SHA-1("abc"), FIPS 180-1 appendix A.
        let abc = [
            0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
            0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d,
        ];
        let header = format!("sha1 {}", B64.encode(abc));
        let checksum = chunk_checksum(&with(&UPLOAD_CHECKSUM, &header))
            .unwrap()
            .unwrap();
        let mut h = checksum.hasher();
        h.update(b"ab");
        h.update(b"c");
        assert!(h.matches(&checksum));
        let mut other = checksum.hasher();
        other.update(b"abd");
        assert!(!other.matches(&checksum));
    }
}
