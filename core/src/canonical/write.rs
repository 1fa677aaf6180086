//! Writes an already-checked [`CanonicalValue`] as RFC 8785 bytes.

use super::CanonicalValue;

/// Appends the canonical bytes of `value`; the caller has checked ranges and NFC.
pub(super) fn write_value(value: &CanonicalValue, out: &mut Vec<u8>) {
    match value {
        CanonicalValue::Null => out.extend_from_slice(b"null"),
        CanonicalValue::Bool(true) => out.extend_from_slice(b"true"),
        CanonicalValue::Bool(false) => out.extend_from_slice(b"false"),
        CanonicalValue::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        CanonicalValue::String(s) => write_string(s, out),
        CanonicalValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        CanonicalValue::Object(entries) => {
            out.push(b'{');
            // BTreeMap<ObjectKey, _> already iterates in UTF-16 code unit order.
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key.as_str(), out);
                out.push(b':');
                write_value(item, out);
            }
            out.push(b'}');
        }
    }
}

/// Escapes as ECMAScript's `JSON.stringify` does (RFC 8785 §3.2.2.2): the two-character
/// escapes where JSON has them, `\u00xx` in lowercase for other controls, all else literal.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0x0f)],
            ],
            _ => continue,
        };
        // Multi-byte UTF-8 never contains bytes below 0x80, so slicing here stays on
        // character boundaries.
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
