//! Canonical JSON: RFC 8785 (JCS) restricted to integers.
//!
//! Everything Tandem hashes or signs (events in the chain, the evidence manifest,
//! approvals, tickets, receipts) is hashed over these bytes, and a verifier must be able
//! to say "these are not the bytes that were signed" rather than quietly accepting a
//! re-ordered, re-spaced or re-normalised copy. So the rules are strict in both
//! directions:
//!
//! * encoding sorts object keys by UTF-16 code units (RFC 8785 §3.2.3), writes no
//!   whitespace, escapes strings exactly as ECMAScript's `JSON.stringify`, and refuses
//!   floats, integers outside ±(2^53−1) (a JCS reader using doubles would disagree) and
//!   strings that are not Unicode NFC (signed data is never normalised behind the
//!   caller's back);
//! * parsing refuses everything the encoder would refuse, plus duplicate keys, a BOM,
//!   over-deep or over-large input, and finally any valid JSON that does not re-encode
//!   to exactly the input bytes.

mod de;
mod error;
mod key;
mod ser;
mod write;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{CanonicalError, JsonPath};

/// Largest integer magnitude allowed: 2^53−1, the last integer every IEEE double holds exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Deepest nesting of arrays and objects accepted, when encoding and when parsing.
pub const MAX_DEPTH: usize = 64;

/// Largest canonical document accepted, when encoding and when parsing (16 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// A JSON value that can be written canonically: no floats, keys in canonical order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CanonicalValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer; only values within ±[`MAX_SAFE_INTEGER`] encode.
    Integer(i64),
    /// A string; only NFC strings encode.
    String(String),
    /// An array.
    Array(Vec<CanonicalValue>),
    /// An object, iterated in canonical (UTF-16 code unit) key order.
    Object(BTreeMap<ObjectKey, CanonicalValue>),
}

/// An object key whose ordering is RFC 8785's: by UTF-16 code units, not UTF-8 bytes.
///
/// The two orders differ only when comparing a character at or above U+10000 with one
/// in U+E000..=U+FFFF; `String`'s own `Ord` would put those the wrong way round.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Wraps a key; its text is kept exactly as given.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Ord for ObjectKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.encode_utf16().cmp(other.0.encode_utf16())
    }
}

impl PartialOrd for ObjectKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<String> for ObjectKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl From<&str> for ObjectKey {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CanonicalValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Integer(n) => serializer.serialize_i64(*n),
            Self::String(s) => serializer.serialize_str(s),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key.as_str(), value)?;
                }
                map.end()
            }
        }
    }
}

/// Encodes `value` as canonical JSON bytes, or says which part of it cannot be.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let tree = value.serialize(ser::ValueSerializer::new())?;
    let mut out = Vec::new();
    write::write_value(&tree, &mut out);
    if out.len() > MAX_DOCUMENT_BYTES {
        return Err(CanonicalError::TooLarge {
            len: out.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(out)
}

/// SHA-256 of `value`'s canonical bytes: what the event chain and manifests commit to.
pub fn canonical_sha256<T: Serialize + ?Sized>(value: &T) -> Result<[u8; 32], CanonicalError> {
    let bytes = to_canonical_vec(value)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

/// Parses bytes that must already be canonical JSON, rejecting anything else.
pub fn parse_canonical(bytes: &[u8]) -> Result<CanonicalValue, CanonicalError> {
    let value = de::parse_strict(bytes)?;
    let mut again = Vec::with_capacity(bytes.len());
    write::write_value(&value, &mut again);
    if let Some(offset) = first_difference(bytes, &again) {
        return Err(CanonicalError::NotCanonical { offset });
    }
    Ok(value)
}

/// Parses canonical JSON into `T`, and insists `T` re-encodes to the very same bytes.
///
/// The round trip is what makes a typed reader safe for signed data: a field `T` does
/// not know, or a `null` that `T` would omit, would otherwise be signed but silently
/// dropped, and the reader would act on less than what was signed.
pub fn from_canonical_slice<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
) -> Result<T, CanonicalError> {
    let value = parse_canonical(bytes)?;
    let json = serde_json::to_value(&value).map_err(|e| CanonicalError::Deserialize {
        reason: e.to_string(),
    })?;
    let typed: T = serde_json::from_value(json).map_err(|e| CanonicalError::Deserialize {
        reason: e.to_string(),
    })?;
    let again = to_canonical_vec(&typed)?;
    if let Some(offset) = first_difference(bytes, &again) {
        return Err(CanonicalError::NotRoundTrip { offset });
    }
    Ok(typed)
}

/// Offset of the first byte where `a` and `b` differ, counting a missing byte as a difference.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(offset) => Some(offset),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}
