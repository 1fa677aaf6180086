//! The key that encrypts blobs at rest.

use std::fmt;

use zeroize::Zeroize;

/// A 256-bit AES-GCM key for the blob store; wiped from memory when dropped, never printed.
pub struct BlobKey([u8; 32]);

impl BlobKey {
    /// Wraps key bytes handed over by the platform keystore.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh random key (for a new device, or tests).
    pub fn generate() -> Result<Self, super::BlobError> {
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| super::BlobError::Random)?;
        Ok(Self(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for BlobKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlobKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let key = BlobKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "BlobKey(..)");
        assert!(!shown.contains("ab"));
    }
}
