//! Why a value cannot be encoded canonically, or why bytes are not canonical JSON.

use std::fmt;

/// Where in a JSON document something is, as `$`, `$.events[3].kind` or `$["a b"]`.
///
/// Paths name object keys and array indexes only, never string values, so they carry
/// the shape of a document and not its personal data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// The document's root, `$`.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path seen from the parent object, under `key`.
    pub(crate) fn under_key(mut self, key: &str) -> Self {
        self.0.insert(0, Segment::Key(key.to_owned()));
        self
    }

    /// This path seen from the parent array, at `index`.
    pub(crate) fn under_index(mut self, index: usize) -> Self {
        self.0.insert(0, Segment::Index(index));
        self
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.0 {
            match segment {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) if is_plain_identifier(k) => write!(f, ".{k}")?,
                // Debug-quoting keeps odd keys (spaces, quotes, controls) unambiguous.
                Segment::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Everything that stops a value from being canonical JSON, or bytes from being read as it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    /// The document is larger than the limit.
    #[error("canonical JSON is {len} bytes, over the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    /// The input starts with a UTF-8 byte order mark, which RFC 8785 output never has.
    #[error("canonical JSON must not start with a byte order mark")]
    ByteOrderMark,
    /// The input is not UTF-8.
    #[error("canonical JSON is not valid UTF-8 at byte {offset}")]
    InvalidUtf8 { offset: usize },
    /// The input is not JSON at all.
    #[error("not JSON at byte {offset}: {reason}")]
    Syntax { offset: usize, reason: String },
    /// A `\u` escape names half of a UTF-16 surrogate pair without the other half.
    #[error("lone UTF-16 surrogate escape near byte {offset}")]
    LoneSurrogate { offset: usize },
    /// An object has the same key twice; readers would disagree on which one counts.
    #[error("duplicate key at {path}")]
    DuplicateKey { path: JsonPath },
    /// A number with a fraction or exponent, or a float value to encode.
    #[error("floating-point number at {path}: only integers are allowed")]
    Float { path: JsonPath },
    /// `-0`, which is a float to JCS readers and has no integer meaning of its own.
    #[error("negative zero at {path}")]
    NegativeZero { path: JsonPath },
    /// An integer beyond ±(2^53−1), where readers using doubles would disagree.
    #[error("integer at {path} is outside ±(2^53-1)")]
    IntegerOutOfRange { path: JsonPath },
    /// A string value that is not in Unicode NFC.
    #[error("string at {path} is not Unicode NFC")]
    NotNfcString { path: JsonPath },
    /// An object key that is not in Unicode NFC.
    #[error("object key at {path} is not Unicode NFC")]
    NotNfcKey { path: JsonPath },
    /// Arrays and objects nest deeper than the limit.
    #[error("nesting at {path} is deeper than {limit}")]
    TooDeep { path: JsonPath, limit: usize },
    /// A map key that is neither a string nor an integer.
    #[error("object key at {path} is not a string or an integer")]
    UnsupportedKey { path: JsonPath },
    /// A value's own `Serialize` implementation failed.
    #[error("cannot serialize the value at {path}: {reason}")]
    Serialize { path: JsonPath, reason: String },
    /// Valid JSON, but not the canonical encoding of what it says.
    #[error("JSON is not canonical: first differing byte at {offset}")]
    NotCanonical { offset: usize },
    /// Canonical JSON whose shape does not fit the requested type.
    #[error("canonical JSON does not fit the expected type: {reason}")]
    Deserialize { reason: String },
    /// The requested type does not re-encode to the bytes it was read from, e.g. it
    /// ignores a field the document has.
    #[error(
        "canonical JSON does not survive a round trip through its type: first differing byte at {offset}"
    )]
    NotRoundTrip { offset: usize },
}

impl CanonicalError {
    /// The same error, with its path seen from the parent object under `key`.
    pub(crate) fn under_key(self, key: &str) -> Self {
        self.map_path(|p| p.under_key(key))
    }

    /// The same error, with its path seen from the parent array at `index`.
    pub(crate) fn under_index(self, index: usize) -> Self {
        self.map_path(|p| p.under_index(index))
    }

    fn map_path(self, f: impl FnOnce(JsonPath) -> JsonPath) -> Self {
        use CanonicalError::*;
        match self {
            DuplicateKey { path } => DuplicateKey { path: f(path) },
            Float { path } => Float { path: f(path) },
            NegativeZero { path } => NegativeZero { path: f(path) },
            IntegerOutOfRange { path } => IntegerOutOfRange { path: f(path) },
            NotNfcString { path } => NotNfcString { path: f(path) },
            NotNfcKey { path } => NotNfcKey { path: f(path) },
            TooDeep { path, limit } => TooDeep {
                path: f(path),
                limit,
            },
            UnsupportedKey { path } => UnsupportedKey { path: f(path) },
            Serialize { path, reason } => Serialize {
                path: f(path),
                reason,
            },
            other => other,
        }
    }
}

impl serde::ser::Error for CanonicalError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Serialize {
            path: JsonPath::root(),
            reason: msg.to_string(),
        }
    }
}
