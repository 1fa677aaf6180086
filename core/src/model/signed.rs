//! Signed documents: the exact canonical bytes that were signed travel with the signature.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::ModelError;
use crate::canonical;
use crate::crypto::{PublicKey, SignatureRecord, Signer};

/// A document type with its signature purpose (domain separation).
pub trait SignedPurpose {
    /// The purpose string signed with the document, e.g. `approval`.
    const PURPOSE: &'static str;
}

/// A document of type `T` as signed: its canonical JSON text and the signature over it.
///
/// The body is kept as the exact bytes signed, so verification never depends on
/// re-encoding; the strict canonical parser still refuses a body that is not canonical.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Signed<T> {
    /// Canonical JSON of the document.
    pub body: String,
    /// The signature over `body`.
    pub signature: SignatureRecord,
    #[serde(skip)]
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Self {
            body: self.body.clone(),
            signature: self.signature.clone(),
            kind: PhantomData,
        }
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body && self.signature == other.signature
    }
}

impl<T> Eq for Signed<T> {}

impl<T> std::fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may hold personal data: show only which key signed it.
        f.debug_struct("Signed")
            .field("kid", &self.signature.kid)
            .finish_non_exhaustive()
    }
}

impl<T: SignedPurpose + Serialize + DeserializeOwned> Signed<T> {
    /// Signs a document (the server does this; tests too).
    pub fn sign(document: &T, signer: &dyn Signer) -> Result<Self, ModelError> {
        let bytes = canonical::to_canonical_vec(document)?;
        let signature = SignatureRecord::sign(signer, T::PURPOSE, &bytes)?;
        let body = String::from_utf8(bytes).map_err(|_| ModelError::Invalid {
            field: "body",
            reason: "canonical JSON is UTF-8".into(),
        })?;
        Ok(Self {
            body,
            signature,
            kind: PhantomData,
        })
    }

    /// Checks the signature with `key` and returns the document.
    pub fn verify(&self, key: &PublicKey) -> Result<T, ModelError> {
        self.signature
            .verify(key, T::PURPOSE, self.body.as_bytes())
            .map_err(|source| ModelError::Signature {
                purpose: T::PURPOSE,
                source,
            })?;
        Ok(canonical::from_canonical_slice(self.body.as_bytes())?)
    }

    /// The SHA-256 of the signed body: how manifests refer to approvals and tickets.
    pub fn digest(&self) -> crate::crypto::Digest {
        crate::crypto::sha256(self.body.as_bytes())
    }
}
