//! Why a bundle could not be read, written or sealed (as opposed to a check that fails).

use std::path::PathBuf;

/// Errors reading, writing or sealing bundles. A bundle that reads fine but does not verify
/// is not an error: it is a [`super::VerificationReport`] with failed checks.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The ZIP container is unreadable or unsafe (bad structure, duplicate names, too many
    /// entries).
    #[error("{path}: not a usable bundle ZIP: {reason}")]
    Zip {
        /// The ZIP file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The ZIP opens, but its directory is one no honest export has (two entries of one
    /// name, more entries than any visit): the bundle is refused as tampered, not as
    /// unreadable.
    #[error("{path}: refused: {reason}")]
    Tampered {
        /// The ZIP file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file of the bundle is larger than any honest one could be (bomb or garbage).
    #[error("{name}: larger than the limit of {limit} bytes")]
    TooLarge {
        /// Entry name inside the bundle.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// An entry the operation needs is absent.
    #[error("{name}: missing from the bundle")]
    Missing {
        /// Entry name inside the bundle.
        name: String,
    },
    /// A document is not canonical JSON or does not fit its type.
    #[error("{name}: {source}")]
    Canonical {
        /// Which document.
        name: &'static str,
        /// Why.
        #[source]
        source: crate::canonical::CanonicalError,
    },
    /// A value is outside what format v1 allows.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// `--server-key`: the bundle carries no key with that fingerprint (`keys/<kid>.pem`),
    /// so nothing in it can be tied to the server the reader trusts.
    #[error(
        "the bundle carries no server key with fingerprint {fingerprint} (keys/{fingerprint}.pem): \
         it was not exported by that server, or the export is incomplete"
    )]
    ServerKeyAbsent {
        /// The fingerprint asked for.
        fingerprint: String,
    },
    /// The trust file is unreadable.
    #[error("trust file: {0}")]
    Trust(String),
    /// A blob to export could not be read, or is not what the manifest says.
    #[error("blob {digest}: {reason}")]
    Blob {
        /// The blob's digest (hex).
        digest: String,
        /// Why.
        reason: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// A signed document inside the manifest is malformed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

impl BundleError {
    /// Wraps an I/O error with its path.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
