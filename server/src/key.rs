//! The server's Ed25519 signing key: created on first start (PKCS#8, mode 0600, written to a
//! temp file, fsynced, then linked into place, a rename that never replaces), loaded afterwards.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use tandem_core::crypto::{SignatureAlgorithm, SoftwareSigner};

/// Why the server key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("server key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 key.
    #[error("server key {path} is not an Ed25519 PKCS#8 key: {reason}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What ring or core said.
        reason: String,
    },
}

/// Loads the key at `path`; never creates one (for tools that check what a server signed).
pub fn load(path: &Path) -> Result<SoftwareSigner, KeyError> {
    let pkcs8 = zeroize::Zeroizing::new(fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?);
    SoftwareSigner::from_pkcs8(SignatureAlgorithm::Ed25519, &pkcs8).map_err(|e| KeyError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Loads the key at `path`, or creates it there if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<SoftwareSigner, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let invalid = |e: tandem_core::crypto::CryptoError| KeyError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    match fs::read(path) {
        Ok(pkcs8) => {
            let pkcs8 = zeroize::Zeroizing::new(pkcs8);
            SoftwareSigner::from_pkcs8(SignatureAlgorithm::Ed25519, &pkcs8).map_err(invalid)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (signer, pkcs8) =
                SoftwareSigner::generate(SignatureAlgorithm::Ed25519).map_err(invalid)?;
            match write_private(path, &pkcs8) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "created the server signing key");
                    Ok(signer)
                }
                // Another server on the same folder was first: use its key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pkcs8 = zeroize::Zeroizing::new(fs::read(path).map_err(io)?);
                    SoftwareSigner::from_pkcs8(SignatureAlgorithm::Ed25519, &pkcs8).map_err(invalid)
                }
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes secret bytes so that a crash leaves either no file or the whole file, never
/// readable by others.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(name);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // create_new on the final name would race another server starting on the same
        // folder; hard_link fails if the key exists, so the first writer's key wins.
        fs::hard_link(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    let _ = fs::remove_file(&tmp);
    result
}
