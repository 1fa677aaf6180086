//! `signatures.json`: the agents' signatures over the manifest bytes.

use serde::{Deserialize, Serialize};

use super::{BundleError, MANIFEST_PURPOSE};
use crate::canonical;
use crate::crypto::{Kid, SignatureAlgorithm, SignatureRecord, Signer};
use crate::model::AgentId;

/// Which part an agent signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignerRole {
    /// The team lead, whose phone sealed the bundle.
    Lead,
    /// The second agent.
    Partner,
}

impl SignerRole {
    /// The JSON and file-name form: `lead` or `partner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Partner => "partner",
        }
    }
}

/// One agent's signature over `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSignature {
    /// Lead or partner.
    pub role: SignerRole,
    /// The agent who signed.
    pub agent_id: AgentId,
    /// The key that signed (lowercase hex SHA-256 of the raw public key).
    pub kid: Kid,
    /// Its algorithm.
    pub alg: SignatureAlgorithm,
    /// Raw signature, standard padded base64 (64 bytes: Ed25519, or P-256 r‖s).
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

impl BundleSignature {
    /// Signs manifest bytes as `role` for `agent_id`.
    pub fn sign(
        signer: &dyn Signer,
        role: SignerRole,
        agent_id: AgentId,
        manifest_bytes: &[u8],
    ) -> Result<Self, BundleError> {
        let record = SignatureRecord::sign(signer, MANIFEST_PURPOSE, manifest_bytes)?;
        Ok(Self {
            role,
            agent_id,
            kid: record.kid,
            alg: record.alg,
            sig: record.sig,
        })
    }

    /// The signature as the crypto module checks it.
    pub fn record(&self) -> SignatureRecord {
        SignatureRecord {
            kid: self.kid,
            alg: self.alg,
            sig: self.sig.clone(),
        }
    }
}

/// Largest `signatures.json` accepted: a handful of entries is a few hundred bytes.
pub(crate) const MAX_SIGNATURES_BYTES: u64 = 64 * 1024;

/// Reads `signatures.json` strictly (canonical JSON, exact type).
pub fn parse_signatures(bytes: &[u8]) -> Result<Vec<BundleSignature>, BundleError> {
    canonical::from_canonical_slice(bytes).map_err(|source| BundleError::Canonical {
        name: "signatures.json",
        source,
    })
}

/// Writes `signatures.json` as canonical JSON.
pub fn signatures_to_bytes(signatures: &[BundleSignature]) -> Result<Vec<u8>, BundleError> {
    canonical::to_canonical_vec(signatures).map_err(|source| BundleError::Canonical {
        name: "signatures.json",
        source,
    })
}

/// Bytes as standard padded base64 in JSON.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use serde::Deserialize as _;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}
