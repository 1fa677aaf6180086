//! The one public error of the bindings, and the one place core's error maps to it.
//!
//! Kotlin and Swift see a sealed class / enum of typed cases (`TandemException.Refused`,
//! `TandemError.refused`): a blocking rule arrives with its id (`V03`) and the message core
//! wrote for the agent. Messages carry no personal data (core's never do).

use tandem_core::crypto::CryptoError;
use tandem_core::sync::SyncError;

/// Everything a call into Tandem can fail with.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TandemError {
    /// A rule of DOMAIN.md blocked the action (nothing was written).
    #[error("{rule}: {message}")]
    Refused {
        /// The rule id, `V03`, `C01`, `E03`…
        rule: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The phone is not enrolled yet: enrol it with a one-time code first.
    #[error("not enrolled: {message}")]
    NotEnrolled {
        /// What was missing.
        message: String,
    },
    /// The phone is not set up for this yet (no policy or time anchor: sync first), or the
    /// input is incomplete (an empty note).
    #[error("not ready: {message}")]
    NotReady {
        /// What is missing.
        message: String,
    },
    /// The visit is not in a state that allows the action (a note after the seal).
    #[error("{message}")]
    InvalidState {
        /// The visit, its state and the action.
        message: String,
    },
    /// Something the action needs is not on this phone (an unknown visit or receipt).
    #[error("{message}")]
    NotFound {
        /// What.
        message: String,
    },
    /// The input was refused: not a photo, malformed audio, a bad position or id, a QR
    /// frame that does not parse.
    #[error("invalid input: {message}")]
    Invalid {
        /// What was wrong with it.
        message: String,
    },
    /// A signature, digest, event chain or log proof does not verify: data was altered or
    /// forged.
    #[error("integrity: {message}")]
    Integrity {
        /// Which check failed.
        message: String,
    },
    /// No answer from the server (no network, timeout): try again later.
    #[error("network: {message}")]
    Network {
        /// What failed.
        message: String,
    },
    /// The server answered with an error.
    #[error("server answered {status} {kind}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The problem's stable type suffix (`bundle-equivocation`), or empty.
        kind: String,
        /// What the phone was doing, and the server's detail.
        message: String,
    },
    /// The server answered something this version does not understand.
    #[error("unexpected answer: {message}")]
    Protocol {
        /// What could not be read.
        message: String,
    },
    /// The phone's own storage failed (disk full, file damaged).
    #[error("storage: {message}")]
    Storage {
        /// What failed, and where.
        message: String,
    },
    /// The app cancelled the call through its [`crate::CancelToken`].
    #[error("cancelled")]
    Cancelled,
    /// A platform service (key store, signer, clock) failed or threw.
    #[error("platform: {message}")]
    Platform {
        /// What the platform reported.
        message: String,
    },
}

impl From<tandem_core::Error> for TandemError {
    fn from(e: tandem_core::Error) -> Self {
        use tandem_core::Error as E;
        if let Some(rule) = e.blocking_rule() {
            return TandemError::Refused {
                rule: rule.to_string(),
                message: e.to_string(),
            };
        }
        let message = e.to_string();
        match e {
            E::NotEnrolled(_) => TandemError::NotEnrolled { message },
            E::NotReady(_) => TandemError::NotReady { message },
            E::InvalidState { .. } => TandemError::InvalidState { message },
            E::NotFound { .. } => TandemError::NotFound { message },
            E::Io { .. } | E::Blob(_) | E::Store(_) => TandemError::Storage { message },
            E::Crypto(CryptoError::KeyStore(_)) => TandemError::Platform { message },
            E::Crypto(_) | E::Chain(_) | E::Log(_) | E::Bundle(_) => {
                TandemError::Integrity { message }
            }
            E::Model(tandem_core::model::ModelError::Signature { .. }) => {
                TandemError::Integrity { message }
            }
            E::Photo(_)
            | E::Audio(_)
            | E::Place(_)
            | E::Canonical(_)
            | E::Model(_)
            | E::Handshake(_)
            | E::Receipt(_)
            | E::Blocked { .. } => TandemError::Invalid { message },
            E::Sync(sync) => sync.into(),
        }
    }
}

impl From<SyncError> for TandemError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Network(message) => TandemError::Network { message },
            SyncError::Server {
                during,
                status,
                kind,
                detail,
            } => TandemError::Server {
                status,
                kind,
                message: format!("{during}: {detail}"),
            },
            SyncError::Protocol(message) => TandemError::Protocol { message },
            SyncError::Local(message) => TandemError::Storage { message },
            SyncError::Cancelled => TandemError::Cancelled,
        }
    }
}

/// A foreign implementation threw something its trait does not declare.
impl From<uniffi::UnexpectedUniFFICallbackError> for TandemError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TandemError::Platform { message: e.reason }
    }
}

/// A value the bindings received as text (an id, a digest) that does not parse.
pub(crate) fn invalid(what: &str, value: &str, error: impl std::fmt::Display) -> TandemError {
    // Ids and digests are not personal data; still, cap what is echoed back.
    let shown: String = value.chars().take(80).collect();
    TandemError::Invalid {
        message: format!("{what} {shown:?}: {error}"),
    }
}
