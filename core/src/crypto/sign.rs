use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{self, KeyPair as _};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{CryptoError, Digest, sha256};

/// The signature algorithms every verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    /// Ed25519: the default for phone and server keys.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA over P-256 with SHA-256, fixed-width r‖s: what Secure Enclave and most Android
    /// keystores can hold.
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        })
    }
}

/// Key id: lowercase hex SHA-256 of the raw public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kid(pub Digest);

impl std::fmt::Display for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A public key with its algorithm. Raw bytes: Ed25519 32 bytes; P-256 the 65-byte
/// uncompressed point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey {
    /// The algorithm this key verifies.
    pub alg: SignatureAlgorithm,
    /// Raw key bytes, standard padded base64 in JSON.
    #[serde(with = "b64")]
    pub key: Vec<u8>,
}

impl PublicKey {
    /// Builds a key, checking its length for the algorithm.
    pub fn new(alg: SignatureAlgorithm, key: Vec<u8>) -> Result<Self, CryptoError> {
        let ok = match alg {
            SignatureAlgorithm::Ed25519 => key.len() == 32,
            SignatureAlgorithm::EcdsaP256Sha256 => key.len() == 65 && key[0] == 4,
        };
        if ok {
            Ok(Self { alg, key })
        } else {
            Err(CryptoError::BadPublicKey { alg })
        }
    }

    /// The key id.
    pub fn kid(&self) -> Kid {
        Kid(sha256(&self.key))
    }

    /// Verifies a raw signature over a raw message.
    pub fn verify_raw(&self, message: &[u8], sig: &[u8], purpose: &str) -> Result<(), CryptoError> {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            SignatureAlgorithm::Ed25519 => &signature::ED25519,
            SignatureAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        signature::UnparsedPublicKey::new(alg, &self.key)
            .verify(message, sig)
            .map_err(|_| CryptoError::BadSignature {
                kid: self.kid().to_string(),
                purpose: purpose.to_owned(),
            })
    }
}

/// The bytes actually signed for a document of a given purpose:
/// `"tandem/v1/<purpose>\n" || sha256(document)` (the 32 raw digest bytes).
pub fn signing_input(purpose: &str, document: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(12 + purpose.len() + 32);
    input.extend_from_slice(b"tandem/v1/");
    input.extend_from_slice(purpose.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(sha256(document).as_bytes());
    input
}

/// One signature as it travels in JSON: `{kid, alg, sig}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureRecord {
    /// Which key signed.
    pub kid: Kid,
    /// With which algorithm.
    pub alg: SignatureAlgorithm,
    /// Raw signature (64 bytes for both algorithms), standard padded base64 in JSON.
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

impl SignatureRecord {
    /// Signs `document` for `purpose` with `signer`.
    pub fn sign(signer: &dyn Signer, purpose: &str, document: &[u8]) -> Result<Self, CryptoError> {
        let key = signer.public_key();
        Ok(Self {
            kid: key.kid(),
            alg: key.alg,
            sig: signer.sign(&signing_input(purpose, document))?,
        })
    }

    /// Checks that `key` made this signature over `document` for `purpose`.
    pub fn verify(
        &self,
        key: &PublicKey,
        purpose: &str,
        document: &[u8],
    ) -> Result<(), CryptoError> {
        if self.kid != key.kid() || self.alg != key.alg {
            return Err(CryptoError::WrongKey {
                expected: key.kid().to_string(),
                found: self.kid.to_string(),
            });
        }
        key.verify_raw(&signing_input(purpose, document), &self.sig, purpose)
    }
}

/// Something that can sign: a software key here, a hardware keystore on a phone.
pub trait Signer: Send + Sync {
    /// The public half.
    fn public_key(&self) -> PublicKey;
    /// Signs the message, returning the raw signature (64 bytes).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

enum SoftwareKey {
    Ed25519(signature::Ed25519KeyPair),
    P256(signature::EcdsaKeyPair),
}

/// A signing key held in memory, loaded from PKCS#8 (which the caller keeps sealed).
pub struct SoftwareSigner {
    key: SoftwareKey,
    public: PublicKey,
}

impl SoftwareSigner {
    /// Generates a new key; returns the signer and its PKCS#8 bytes to be sealed and kept.
    pub fn generate(alg: SignatureAlgorithm) -> Result<(Self, Zeroizing<Vec<u8>>), CryptoError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = match alg {
            SignatureAlgorithm::Ed25519 => signature::Ed25519KeyPair::generate_pkcs8(&rng),
            SignatureAlgorithm::EcdsaP256Sha256 => signature::EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            ),
        }
        .map_err(|_| CryptoError::Random)?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8))
    }

    /// Loads a key from PKCS#8 bytes.
    pub fn from_pkcs8(alg: SignatureAlgorithm, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let bad = |e: ring::error::KeyRejected| CryptoError::BadPrivateKey(e.to_string());
        let (key, raw_public) = match alg {
            SignatureAlgorithm::Ed25519 => {
                let kp = signature::Ed25519KeyPair::from_pkcs8(pkcs8).map_err(bad)?;
                let public = kp.public_key().as_ref().to_vec();
                (SoftwareKey::Ed25519(kp), public)
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let kp = signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(bad)?;
                let public = kp.public_key().as_ref().to_vec();
                (SoftwareKey::P256(kp), public)
            }
        };
        Ok(Self {
            key,
            public: PublicKey::new(alg, raw_public)?,
        })
    }
}

impl Signer for SoftwareSigner {
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.key {
            SoftwareKey::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
            SoftwareKey::P256(kp) => kp
                .sign(&ring::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Random),
        }
    }
}

/// Serde helper: bytes as standard padded base64.
pub(crate) mod b64 {
    use super::B64;
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }

    use serde::Deserialize as _;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(alg: SignatureAlgorithm) {
        let (signer, pkcs8) = SoftwareSigner::generate(alg).unwrap();
        let record = SignatureRecord::sign(&signer, "approval", b"doc").unwrap();
        let key = signer.public_key();
        assert_eq!(record.sig.len(), 64);
        record.verify(&key, "approval", b"doc").unwrap();
        // Same bytes, other purpose: a signature is never valid across purposes.
        assert!(matches!(
            record.verify(&key, "ticket", b"doc"),
            Err(CryptoError::BadSignature { .. })
        ));
        assert!(record.verify(&key, "approval", b"doc!").is_err());
        let reloaded = SoftwareSigner::from_pkcs8(alg, &pkcs8).unwrap();
        assert_eq!(reloaded.public_key(), key);
    }

    #[test]
    fn ed25519_signatures_verify_only_for_their_purpose_and_bytes() {
        round_trip(SignatureAlgorithm::Ed25519);
    }

    #[test]
    fn p256_signatures_verify_only_for_their_purpose_and_bytes() {
        round_trip(SignatureAlgorithm::EcdsaP256Sha256);
    }

    #[test]
    fn a_signature_checked_against_another_key_names_both_keys() {
        let (a, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        let (b, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        let record = SignatureRecord::sign(&a, "event", b"x").unwrap();
        assert!(matches!(
            record.verify(&b.public_key(), "event", b"x"),
            Err(CryptoError::WrongKey { .. })
        ));
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        assert!(PublicKey::new(SignatureAlgorithm::Ed25519, vec![0; 31]).is_err());
        assert!(PublicKey::new(SignatureAlgorithm::EcdsaP256Sha256, vec![2; 65]).is_err());
    }
}
