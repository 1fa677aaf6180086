//! Device state: small values under fixed keys. Nothing here is personal data.

use rusqlite::{OptionalExtension as _, params};

use super::{ReadTx, StoreError, WriteTx, parse_column};
use crate::clock::StoredAnchor;
use crate::crypto::PublicKey;
use crate::model::{AgentId, DeviceId, Signed, TimeAnchor};

/// The keys of the `meta` table; the names are stored, so never rename one.
#[derive(Clone, Copy)]
enum MetaKey {
    DeviceId,
    AgentId,
    SealedDeviceKey,
    ServerPublicKey,
    SyncCursor,
    TimeAnchor,
    StoredAnchor,
    DeviceToken,
}

impl MetaKey {
    fn as_str(self) -> &'static str {
        match self {
            MetaKey::DeviceId => "device_id",
            MetaKey::AgentId => "agent_id",
            MetaKey::SealedDeviceKey => "sealed_device_key",
            MetaKey::ServerPublicKey => "server_public_key",
            MetaKey::SyncCursor => "sync_cursor",
            MetaKey::TimeAnchor => "time_anchor",
            MetaKey::StoredAnchor => "stored_anchor",
            MetaKey::DeviceToken => "device_token",
        }
    }
}

impl ReadTx<'_> {
    fn meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [key.as_str()],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn meta_json<T: serde::de::DeserializeOwned>(
        &self,
        key: MetaKey,
        column: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.meta(key)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    column,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    fn meta_text(&self, key: MetaKey) -> Result<Option<String>, StoreError> {
        self.meta(key)?
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|_| StoreError::Corrupt {
                    column: "meta.value",
                    reason: format!("{} is not UTF-8", key.as_str()),
                })
            })
            .transpose()
    }

    /// This phone's enrolled device id.
    pub fn device_id(&self) -> Result<Option<DeviceId>, StoreError> {
        self.meta_text(MetaKey::DeviceId)?
            .map(|t| parse_column("meta.device_id", &t))
            .transpose()
    }

    /// The agent enrolled on this phone.
    pub fn agent_id(&self) -> Result<Option<AgentId>, StoreError> {
        self.meta_text(MetaKey::AgentId)?
            .map(|t| parse_column("meta.agent_id", &t))
            .transpose()
    }

    /// The device's private key, as sealed by the platform key store.
    pub fn sealed_device_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta(MetaKey::SealedDeviceKey)
    }

    /// The server's public key, received at enrolment.
    pub fn server_public_key(&self) -> Result<Option<PublicKey>, StoreError> {
        self.meta_json(MetaKey::ServerPublicKey, "meta.server_public_key")
    }

    /// The opaque sync cursor of the last sync applied.
    pub fn sync_cursor(&self) -> Result<Option<String>, StoreError> {
        self.meta_text(MetaKey::SyncCursor)
    }

    /// The last server-signed time anchor received, exactly as signed.
    pub fn time_anchor(&self) -> Result<Option<Signed<TimeAnchor>>, StoreError> {
        self.meta_json(MetaKey::TimeAnchor, "meta.time_anchor")
    }

    /// The device's bearer token for the server (sealed under the field key: a copied
    /// database file does not give it away).
    pub fn device_token(&self) -> Result<Option<zeroize::Zeroizing<String>>, StoreError> {
        let Some(sealed) = self.meta(MetaKey::DeviceToken)? else {
            return Ok(None);
        };
        let plain = self.open_sealed("meta.device_token", &sealed)?;
        let token = std::str::from_utf8(&plain).map_err(|_| StoreError::Corrupt {
            column: "meta.value",
            reason: "device_token is not UTF-8".into(),
        })?;
        Ok(Some(zeroize::Zeroizing::new(token.to_owned())))
    }

    /// The verified anchor with this phone's clock readings when it arrived.
    pub fn stored_anchor(&self) -> Result<Option<StoredAnchor>, StoreError> {
        self.meta_json(MetaKey::StoredAnchor, "meta.stored_anchor")
    }
}

impl WriteTx<'_> {
    fn set_meta(&self, key: MetaKey, value: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key.as_str(), value],
        )?;
        Ok(())
    }

    fn set_meta_json<T: serde::Serialize>(
        &self,
        key: MetaKey,
        column: &'static str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            column,
            reason: e.to_string(),
        })?;
        self.set_meta(key, &json)
    }

    /// Records this phone's enrolled device id.
    pub fn set_device_id(&self, id: DeviceId) -> Result<(), StoreError> {
        self.set_meta(MetaKey::DeviceId, id.to_string().as_bytes())
    }

    /// Records the agent enrolled on this phone.
    pub fn set_agent_id(&self, id: AgentId) -> Result<(), StoreError> {
        self.set_meta(MetaKey::AgentId, id.to_string().as_bytes())
    }

    /// Keeps the device's private key, already sealed by the platform key store.
    pub fn set_sealed_device_key(&self, sealed: &[u8]) -> Result<(), StoreError> {
        self.set_meta(MetaKey::SealedDeviceKey, sealed)
    }

    /// Records the server's public key.
    pub fn set_server_public_key(&self, key: &PublicKey) -> Result<(), StoreError> {
        self.set_meta_json(MetaKey::ServerPublicKey, "meta.server_public_key", key)
    }

    /// Keeps the device's bearer token, sealed under the field key.
    pub fn set_device_token(&self, token: &str) -> Result<(), StoreError> {
        let sealed = self.seal("meta.device_token", token.as_bytes())?;
        self.set_meta(MetaKey::DeviceToken, &sealed)
    }

    /// Records the sync cursor; do it in the transaction that applies the changes.
    pub fn set_sync_cursor(&self, cursor: &str) -> Result<(), StoreError> {
        self.set_meta(MetaKey::SyncCursor, cursor.as_bytes())
    }

    /// Keeps the latest time anchor, exactly as signed (the caller has verified it).
    pub fn set_time_anchor(&self, anchor: &Signed<TimeAnchor>) -> Result<(), StoreError> {
        self.set_meta_json(MetaKey::TimeAnchor, "meta.time_anchor", anchor)
    }

    /// Keeps the anchor with this phone's clock readings at its arrival (what the
    /// anchored clock computes from).
    pub fn set_stored_anchor(&self, anchor: &StoredAnchor) -> Result<(), StoreError> {
        self.set_meta_json(MetaKey::StoredAnchor, "meta.stored_anchor", anchor)
    }
}
