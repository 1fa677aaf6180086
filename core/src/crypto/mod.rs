//! Cryptography, all from ring: digests, signatures, sealing secrets, field encryption.
//!
//! Every signature in Tandem is made over a domain-separated input
//! (`"tandem/v1/<purpose>\n" || sha256(bytes)`), so a signature made for one purpose can
//! never be replayed as another.

mod digest;
mod fields;
mod keystore;
mod sign;

pub use digest::{Digest, DigestParseError, Sha256Stream, sha256, to_hex};
pub use fields::FieldCipher;
pub use keystore::{KeyStore, SoftwareKeyStore};
pub use sign::{
    Kid, PublicKey, SignatureAlgorithm, SignatureRecord, Signer, SoftwareSigner, signing_input,
};

/// Errors from cryptographic operations.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A signature did not verify against the given key.
    #[error("signature by key {kid} does not verify ({purpose})")]
    BadSignature { kid: String, purpose: String },
    /// A public key is malformed for its algorithm.
    #[error("public key is not a valid {alg} key")]
    BadPublicKey { alg: SignatureAlgorithm },
    /// A signature record names a key other than the one it was checked against.
    #[error("signature names key {found}, expected {expected}")]
    WrongKey { expected: String, found: String },
    /// A private key could not be parsed or generated.
    #[error("private key unusable: {0}")]
    BadPrivateKey(String),
    /// The key store could not seal or unseal a secret.
    #[error("key store: {0}")]
    KeyStore(String),
    /// Authenticated decryption failed: wrong key, or the data was altered.
    #[error("decryption failed for {context}: wrong key or altered data")]
    Decrypt { context: String },
    /// The system random generator failed.
    #[error("random generator unavailable")]
    Random,
}

/// Fills a fresh array with cryptographically secure random bytes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| CryptoError::Random)?;
    Ok(out)
}
