use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{CryptoError, FieldCipher, random_bytes};

/// Seals secrets (the device's private key, the store keys) under a key the platform
/// protects: Android Keystore or the Secure Enclave on phones, a key file on a desktop.
pub trait KeyStore: Send + Sync {
    /// Encrypts `secret`, bound to `label`.
    fn seal(&self, label: &str, secret: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Decrypts what `seal` produced for the same label.
    fn unseal(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}

/// A key store backed by a random 32-byte key in a file readable only by its owner.
///
/// For tests, the desktop simulator and the server's field mode. It protects nothing against
/// someone who can read the file: phones use their platform key store instead.
pub struct SoftwareKeyStore {
    cipher: FieldCipher,
    path: PathBuf,
}

impl SoftwareKeyStore {
    /// Opens the key file, creating it with a fresh random key when absent.
    pub fn open_or_create(path: &Path) -> Result<Self, CryptoError> {
        let io = |e: std::io::Error| CryptoError::KeyStore(format!("{}: {e}", path.display()));
        let key = match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    CryptoError::KeyStore(format!("{}: not a 32-byte key file", path.display()))
                })?;
                Zeroizing::new(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Zeroizing::new(random_bytes::<32>()?);
                let tmp = path.with_extension("tmp");
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    options.mode(0o600);
                }
                let mut f = options.open(&tmp).map_err(io)?;
                f.write_all(key.as_ref()).map_err(io)?;
                f.sync_all().map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
                key
            }
            Err(e) => return Err(io(e)),
        };
        Ok(Self {
            cipher: FieldCipher::new(&key)?,
            path: path.to_owned(),
        })
    }

    /// Where the key file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyStore for SoftwareKeyStore {
    fn seal(&self, label: &str, secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.cipher
            .encrypt(&format!("tandem/keystore/v1/{label}"), secret)
    }

    fn unseal(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.cipher
            .decrypt(&format!("tandem/keystore/v1/{label}"), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_survive_reopening_and_stay_bound_to_their_label() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let sealed = SoftwareKeyStore::open_or_create(&path)
            .unwrap()
            .seal("device-key", b"secret")
            .unwrap();
        let ks = SoftwareKeyStore::open_or_create(&path).unwrap();
        assert_eq!(
            ks.unseal("device-key", &sealed).unwrap().as_slice(),
            b"secret"
        );
        assert!(ks.unseal("blob-key", &sealed).is_err());
        let other = SoftwareKeyStore::open_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.unseal("device-key", &sealed).is_err());
    }

    #[test]
    fn a_damaged_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        std::fs::write(&path, b"short").unwrap();
        let err = SoftwareKeyStore::open_or_create(&path).err().unwrap();
        assert!(err.to_string().contains("not a 32-byte key file"), "{err}");
    }
}
