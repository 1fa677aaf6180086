//! Strict parsing: serde_json reads the grammar, a seeded visitor enforces Tandem's rules.
//!
//! serde_json is lenient where canonical JSON must not be (it lets a later duplicate key
//! win, reads `1.0`, `1e3` and `-0` as floats, and takes integers beyond 2^64 as floats).
//! The visitor refuses all of those. Its errors must travel through `serde_json::Error`,
//! which cannot carry ours, so the visitor parks the real error in a side slot and
//! [`parse_strict`] picks it up.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use unicode_normalization::is_nfc;

use super::{
    CanonicalError, CanonicalValue, JsonPath, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_SAFE_INTEGER,
    ObjectKey,
};

/// Parses `bytes` as JSON under Tandem's rules, without yet checking byte-exactness.
pub(super) fn parse_strict(bytes: &[u8]) -> Result<CanonicalValue, CanonicalError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(CanonicalError::TooLarge {
            len: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(CanonicalError::ByteOrderMark);
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(CanonicalError::InvalidUtf8 {
            offset: e.valid_up_to(),
        });
    }
    let slot = RefCell::new(None);
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let seed = ValueSeed {
        depth: 0,
        slot: &slot,
    };
    let parsed = seed.deserialize(&mut json).and_then(|value| {
        json.end()?;
        Ok(value)
    });
    match parsed {
        Ok(value) => Ok(value),
        Err(json_error) => Err(match slot.into_inner() {
            Some(Parked::Error(error)) => error,
            Some(Parked::NonIntegerNumber { path }) => {
                classify_number(bytes, offset_of(bytes, &json_error), path)
            }
            None => syntax_error(bytes, &json_error),
        }),
    }
}

/// An error the visitor could not hand back through serde_json, kept for the caller.
enum Parked {
    Error(CanonicalError),
    /// serde_json read a number as a float; only the input text says whether it was a
    /// fraction, an exponent, `-0` or an integer too large for 64 bits.
    NonIntegerNumber {
        path: JsonPath,
    },
}

/// Visits one value `depth` containers below the root.
#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    depth: usize,
    slot: &'a RefCell<Option<Parked>>,
}

impl ValueSeed<'_> {
    fn fail<E: de::Error>(&self, parked: Parked) -> E {
        let message = match &parked {
            Parked::Error(e) => e.to_string(),
            Parked::NonIntegerNumber { path } => format!("number at {path} is not an integer"),
        };
        *self.slot.borrow_mut() = Some(parked);
        E::custom(message)
    }

    fn fail_with<E: de::Error>(&self, error: CanonicalError) -> E {
        self.fail(Parked::Error(error))
    }

    /// Re-roots a parked error's path one level up, as the error leaves a container.
    fn reroot(
        &self,
        f: impl FnOnce(JsonPath) -> JsonPath,
        g: impl FnOnce(CanonicalError) -> CanonicalError,
    ) {
        let mut slot = self.slot.borrow_mut();
        *slot = match slot.take() {
            Some(Parked::Error(e)) => Some(Parked::Error(g(e))),
            Some(Parked::NonIntegerNumber { path }) => {
                Some(Parked::NonIntegerNumber { path: f(path) })
            }
            None => None,
        };
    }

    fn children<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fail_with(CanonicalError::TooDeep {
                path: JsonPath::root(),
                limit: MAX_DEPTH,
            }));
        }
        Ok(Self {
            depth: self.depth + 1,
            slot: self.slot,
        })
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = CanonicalValue;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<CanonicalValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = CanonicalValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("canonical JSON (integers only)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<CanonicalValue, E> {
        Ok(CanonicalValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<CanonicalValue, E> {
        Ok(CanonicalValue::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<CanonicalValue, E> {
        Ok(CanonicalValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<CanonicalValue, E> {
        if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&v) {
            Ok(CanonicalValue::Integer(v))
        } else {
            Err(self.fail_with(CanonicalError::IntegerOutOfRange {
                path: JsonPath::root(),
            }))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<CanonicalValue, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(self.fail_with(CanonicalError::IntegerOutOfRange {
                path: JsonPath::root(),
            })),
        }
    }

    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<CanonicalValue, E> {
        Err(self.fail(Parked::NonIntegerNumber {
            path: JsonPath::root(),
        }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<CanonicalValue, E> {
        if !is_nfc(v) {
            return Err(self.fail_with(CanonicalError::NotNfcString {
                path: JsonPath::root(),
            }));
        }
        Ok(CanonicalValue::String(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CanonicalValue, A::Error> {
        let children = self.children()?;
        let mut items = Vec::new();
        loop {
            let index = items.len();
            match seq.next_element_seed(children) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(CanonicalValue::Array(items)),
                Err(e) => {
                    self.reroot(|p| p.under_index(index), |e| e.under_index(index));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CanonicalValue, A::Error> {
        let children = self.children()?;
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if !is_nfc(&key) {
                return Err(self.fail_with(CanonicalError::NotNfcKey {
                    path: JsonPath::root().under_key(&key),
                }));
            }
            let value = match map.next_value_seed(children) {
                Ok(value) => value,
                Err(e) => {
                    self.reroot(|p| p.under_key(&key), |e| e.under_key(&key));
                    return Err(e);
                }
            };
            let key = ObjectKey::new(key);
            if entries.contains_key(&key) {
                return Err(self.fail_with(CanonicalError::DuplicateKey {
                    path: JsonPath::root().under_key(key.as_str()),
                }));
            }
            entries.insert(key, value);
        }
        Ok(CanonicalValue::Object(entries))
    }
}

impl<'de> de::Deserialize<'de> for CanonicalValue {
    /// Reads from any serde format under the same rules, except byte-exactness, which
    /// only [`super::parse_canonical`] can check.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let slot = RefCell::new(None);
        ValueSeed {
            depth: 0,
            slot: &slot,
        }
        .deserialize(deserializer)
    }
}

/// Byte offset that serde_json's line and column point at.
fn offset_of(bytes: &[u8], error: &serde_json::Error) -> usize {
    let line_start = if error.line() <= 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(error.line() - 2)
            .map_or(bytes.len(), |(i, _)| i + 1)
    };
    // serde_json's column counts bytes from 1 at the byte it stopped on.
    line_start
        .saturating_add(error.column().saturating_sub(1))
        .min(bytes.len())
}

/// Says what kind of non-integer number ends at (or just before) `end`.
fn classify_number(bytes: &[u8], end: usize, path: JsonPath) -> CanonicalError {
    let is_number_byte = |b: &u8| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
    let head = bytes.get(..=end).unwrap_or(bytes);
    // Tolerate serde_json pointing one byte past the number.
    let head = match head.split_last() {
        Some((last, rest)) if !is_number_byte(last) => rest,
        _ => head,
    };
    let start = head
        .iter()
        .rposition(|b| !is_number_byte(b))
        .map_or(0, |i| i + 1);
    let token = &head[start..];
    if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        CanonicalError::Float { path }
    } else if token.iter().all(|b| matches!(b, b'-' | b'0')) {
        CanonicalError::NegativeZero { path }
    } else {
        CanonicalError::IntegerOutOfRange { path }
    }
}

/// Maps a grammar error from serde_json, singling out lone surrogates.
fn syntax_error(bytes: &[u8], error: &serde_json::Error) -> CanonicalError {
    // A truncated document is wrong where it ends, not at its last byte.
    let offset = if error.is_eof() {
        bytes.len()
    } else {
        offset_of(bytes, error)
    };
    let full = error.to_string();
    // serde_json appends " at line L column C"; keep only the reason.
    let reason = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(reason, _)| reason);
    // serde_json's only surrogate errors; a unit test pins these messages.
    if reason == "lone leading surrogate in hex escape" || reason == "unexpected end of hex escape"
    {
        return CanonicalError::LoneSurrogate { offset };
    }
    CanonicalError::Syntax {
        offset,
        reason: reason.to_owned(),
    }
}
