//! The address of a blob: the SHA-256 of its original bytes.

use std::fmt;
use std::str::FromStr;

/// SHA-256 of a blob's original bytes; shown and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Wraps 32 raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw digest bytes (what signature inputs carry).
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hashes a byte slice in one go.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_ring(ring::digest::digest(&ring::digest::SHA256, bytes))
    }

    /// Takes the output of a finished ring SHA-256 context.
    pub(crate) fn from_ring(digest: ring::digest::Digest) -> Self {
        let mut out = [0u8; 32];
        // ring's SHA-256 output is always 32 bytes; copy_from_slice would panic otherwise,
        // so zip keeps this total even if that ever changed.
        for (dst, src) in out.iter_mut().zip(digest.as_ref()) {
            *dst = *src;
        }
        Self(out)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDigestError {
    /// Not exactly 64 characters.
    #[error("a SHA-256 digest is 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character other than `0-9a-f` (uppercase is refused: the canonical form is lowercase).
    #[error("a SHA-256 digest is lowercase hex, found {0:?}")]
    Character(char),
}

impl FromStr for Sha256Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 64 {
            return Err(ParseDigestError::Length(chars.len()));
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(chars.chunks(2)) {
            let mut value = 0u8;
            for &c in pair {
                let nibble = match c {
                    '0'..='9' => c as u8 - b'0',
                    'a'..='f' => c as u8 - b'a' + 10,
                    other => return Err(ParseDigestError::Character(other)),
                };
                value = (value << 4) | nibble;
            }
            *byte = value;
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_abc_shows_as_the_published_test_vector() {
        let digest = Sha256Digest::of(b"abc");
        assert_eq!(
            digest.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest.to_string().parse::<Sha256Digest>(), Ok(digest));
    }

    #[test]
    fn uppercase_or_short_strings_are_not_digests() {
        let upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        assert_eq!(
            upper.parse::<Sha256Digest>(),
            Err(ParseDigestError::Character('B'))
        );
        assert_eq!(
            "abcd".parse::<Sha256Digest>(),
            Err(ParseDigestError::Length(4))
        );
        let with_multibyte = format!("{}é", "a".repeat(63));
        assert_eq!(
            with_multibyte.parse::<Sha256Digest>(),
            Err(ParseDigestError::Character('é'))
        );
    }
}
