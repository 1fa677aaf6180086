//! What a verifier trusts: the server's public keys and the registry of enrolled device keys.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BundleError;
use crate::crypto::{Kid, PublicKey};
use crate::model::{AgentId, DeviceId};

/// One enrolled device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEnrolment {
    /// The agent the key is bound to.
    pub agent_id: AgentId,
    /// The phone holding it.
    pub device_id: DeviceId,
    /// When the server enrolled it, UTC ms.
    pub enrolled_at_ms: i64,
    /// When it was revoked, UTC ms; signatures made at or after this time are rejected.
    #[serde(default)]
    pub revoked_at_ms: Option<i64>,
}

/// The keys a verification relies on (`--trust keys.json`). Empty means "trust nothing":
/// checks that need a key then report "not checked (no trust given)".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// The server's signing keys (current and past).
    #[serde(default)]
    pub server_keys: Vec<PublicKey>,
    /// Enrolled device keys by key id.
    #[serde(default)]
    pub devices: BTreeMap<Kid, DeviceEnrolment>,
}

impl Trust {
    /// No trust at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads a trust file (plain JSON; it is configuration, not signed data).
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        serde_json::from_slice(bytes).map_err(|e| BundleError::Trust(e.to_string()))
    }

    /// Reads a trust file from disk.
    pub fn load(path: &Path) -> Result<Self, BundleError> {
        let bytes = std::fs::read(path).map_err(|e| BundleError::io(path, e))?;
        Self::from_json(&bytes)
    }

    /// The trust file's JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, BundleError> {
        serde_json::to_vec_pretty(self).map_err(|e| BundleError::Trust(e.to_string()))
    }

    /// Whether a server key is known.
    pub fn has_server_keys(&self) -> bool {
        !self.server_keys.is_empty()
    }

    /// Whether a device registry is given.
    pub fn has_devices(&self) -> bool {
        !self.devices.is_empty()
    }

    /// The server key with this id.
    pub fn server_key(&self, kid: &Kid) -> Option<&PublicKey> {
        self.server_keys.iter().find(|k| &k.kid() == kid)
    }
}
