//! The phone's secrets: store keys sealed by the platform key store, kept in `keys.json`
//! beside the data (the database key must be at hand before the database opens).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::blobs::BlobKey;
use crate::crypto::{
    CryptoError, KeyStore, SignatureAlgorithm, Signer, SoftwareSigner, random_bytes,
};
use crate::store::DeviceStore;
use crate::{Error, Result};

const FIELD_LABEL: &str = "store-field-key";
const BLOB_LABEL: &str = "blob-key";
const DEVICE_LABEL: &str = "device-key";

#[derive(Serialize, Deserialize)]
struct KeysFile {
    version: u32,
    field_key: String,
    blob_key: String,
}

pub(super) struct PhoneKeys {
    pub field_key: Zeroizing<[u8; 32]>,
    pub blob_key: BlobKey,
}

impl PhoneKeys {
    pub fn load_or_create(dir: &Path, keystore: &dyn KeyStore) -> Result<Self> {
        let path = dir.join("keys.json");
        let io = |action, source| Error::Io {
            action,
            path: path.clone(),
            source,
        };
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<KeysFile>(&bytes)
                .map_err(|e| Error::NotReady(format!("{} is damaged: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let field = Zeroizing::new(random_bytes::<32>()?);
                let blob = Zeroizing::new(random_bytes::<32>()?);
                let file = KeysFile {
                    version: 1,
                    field_key: B64.encode(keystore.seal(FIELD_LABEL, field.as_ref())?),
                    blob_key: B64.encode(keystore.seal(BLOB_LABEL, blob.as_ref())?),
                };
                let json = serde_json::to_vec_pretty(&file)
                    .map_err(|e| Error::NotReady(format!("cannot encode keys: {e}")))?;
                let tmp = dir.join("keys.json.tmp");
                let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
                f.write_all(&json).map_err(|e| io("write", e))?;
                f.sync_all().map_err(|e| io("sync", e))?;
                std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io("sync folder of", e))?;
                file
            }
            Err(e) => return Err(io("read", e)),
        };
        Ok(Self {
            field_key: unseal_key(keystore, FIELD_LABEL, &file.field_key)?,
            blob_key: BlobKey::from_bytes(*unseal_key(keystore, BLOB_LABEL, &file.blob_key)?),
        })
    }
}

fn unseal_key(
    keystore: &dyn KeyStore,
    label: &str,
    sealed_b64: &str,
) -> Result<Zeroizing<[u8; 32]>> {
    let sealed = B64
        .decode(sealed_b64)
        .map_err(|_| CryptoError::KeyStore(format!("{label}: not base64")))?;
    let plain = keystore.unseal(label, &sealed)?;
    let key: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::KeyStore(format!("{label}: not a 32-byte key")))?;
    Ok(Zeroizing::new(key))
}

/// The device's Ed25519 key, created on first use and kept only sealed by the key store.
pub(super) fn software_device_signer(
    store: &DeviceStore,
    keystore: &dyn KeyStore,
) -> Result<Arc<dyn Signer>> {
    let sealed = store.read(|tx| Ok::<_, Error>(tx.sealed_device_key()?))?;
    let signer = match sealed {
        Some(sealed) => {
            let pkcs8 = keystore.unseal(DEVICE_LABEL, &sealed)?;
            SoftwareSigner::from_pkcs8(SignatureAlgorithm::Ed25519, &pkcs8)?
        }
        None => {
            let (signer, pkcs8) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519)?;
            let sealed = keystore.seal(DEVICE_LABEL, &pkcs8)?;
            store.write(|tx| Ok::<_, Error>(tx.set_sealed_device_key(&sealed)?))?;
            signer
        }
    };
    Ok(Arc::new(signer))
}
