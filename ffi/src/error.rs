//! The one public error of the bindings, and the one place core's error maps to it.
//!
//! Kotlin and Swift see a sealed class / enum of typed cases (`TandemException.Refused`,
//! `TandemError.refused`): a blocking rule arrives with its id (`V03`) and the message core
//! wrote for the agent, as `reason`, without the id (screens show it beside the text;
//! Kotlin's `Throwable.message` is taken). Reasons carry no personal data (core's never do).

use tandem_core::crypto::CryptoError;
use tandem_core::sync::SyncError;

/// Everything a call into Tandem can fail with.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TandemError {
    /// A rule of DOMAIN.md blocked the action (nothing was written).
    #[error("{rule}: {reason}")]
    Refused {
        /// The rule id, `V03`, `C01`, `E03`…
        rule: String,
        /// What is wrong and what to do, without the rule id.
        reason: String,
    },
    /// The phone is not enrolled yet: enrol it with a one-time code first.
    #[error("not enrolled: {reason}")]
    NotEnrolled {
        /// What was missing.
        reason: String,
    },
    /// The phone is not set up for this yet (no policy or time anchor: sync first), or the
    /// input is incomplete (an empty note).
    #[error("not ready: {reason}")]
    NotReady {
        /// What is missing.
        reason: String,
    },
    /// The visit is not in a state that allows the action (a note after the seal).
    #[error("{reason}")]
    InvalidState {
        /// The visit, its state and the action.
        reason: String,
    },
    /// Something the action needs is not on this phone (an unknown visit or receipt).
    #[error("{reason}")]
    NotFound {
        /// What.
        reason: String,
    },
    /// The input was refused: not a photo, malformed audio, a bad position or id, a QR
    /// frame that does not parse.
    #[error("invalid input: {reason}")]
    Invalid {
        /// What was wrong with it.
        reason: String,
    },
    /// A signature, digest, event chain or log proof does not verify: data was altered or
    /// forged.
    #[error("integrity: {reason}")]
    Integrity {
        /// Which check failed.
        reason: String,
    },
    /// No answer from the server (no network, timeout): try again later.
    #[error("network: {reason}")]
    Network {
        /// What failed.
        reason: String,
    },
    /// The server answered with an error.
    #[error("server answered {status} {kind}: {reason}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The problem's stable type suffix (`bundle-equivocation`), or empty.
        kind: String,
        /// What the phone was doing, and the server's detail.
        reason: String,
    },
    /// The server answered something this version does not understand.
    #[error("unexpected answer: {reason}")]
    Protocol {
        /// What could not be read.
        reason: String,
    },
    /// The phone's own storage failed (disk full, file damaged).
    #[error("storage: {reason}")]
    Storage {
        /// What failed, and where.
        reason: String,
    },
    /// The app cancelled the call through its [`crate::CancelToken`].
    #[error("cancelled")]
    Cancelled,
    /// A platform service (key store, signer, clock) failed or threw.
    #[error("platform: {reason}")]
    Platform {
        /// What the platform reported.
        reason: String,
    },
}

impl From<tandem_core::Error> for TandemError {
    fn from(e: tandem_core::Error) -> Self {
        use tandem_core::Error as E;
        if let Some((rule, reason)) = e.refusal() {
            return TandemError::Refused {
                rule: rule.to_string(),
                reason,
            };
        }
        let reason = e.to_string();
        match e {
            E::NotEnrolled(_) => TandemError::NotEnrolled { reason },
            E::NotReady(_) => TandemError::NotReady { reason },
            E::InvalidState { .. } => TandemError::InvalidState { reason },
            E::NotFound { .. } => TandemError::NotFound { reason },
            E::Io { .. } | E::Blob(_) | E::Store(_) => TandemError::Storage { reason },
            E::Crypto(CryptoError::KeyStore(_)) => TandemError::Platform { reason },
            E::Crypto(_) | E::Chain(_) | E::Log(_) | E::Bundle(_) => {
                TandemError::Integrity { reason }
            }
            E::Model(tandem_core::model::ModelError::Signature { .. }) => {
                TandemError::Integrity { reason }
            }
            E::Photo(_)
            | E::Audio(_)
            | E::Place(_)
            | E::Canonical(_)
            | E::Model(_)
            | E::Handshake(_)
            | E::Receipt(_)
            | E::Blocked { .. } => TandemError::Invalid { reason },
            E::Sync(sync) => sync.into(),
        }
    }
}

impl From<SyncError> for TandemError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Network(reason) => TandemError::Network { reason },
            SyncError::Server {
                during,
                status,
                kind,
                detail,
            } => TandemError::Server {
                status,
                kind,
                reason: format!("{during}: {detail}"),
            },
            SyncError::Protocol(reason) => TandemError::Protocol { reason },
            SyncError::Local(reason) => TandemError::Storage { reason },
            SyncError::Cancelled => TandemError::Cancelled,
        }
    }
}

/// A foreign implementation threw something its trait does not declare.
impl From<uniffi::UnexpectedUniFFICallbackError> for TandemError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TandemError::Platform { reason: e.reason }
    }
}

/// A value the bindings received as text (an id, a digest) that does not parse.
pub(crate) fn invalid(what: &str, value: &str, error: impl std::fmt::Display) -> TandemError {
    // Ids and digests are not personal data; still, cap what is echoed back.
    let shown: String = value.chars().take(80).collect();
    TandemError::Invalid {
        reason: format!("{what} {shown:?}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_core::handshake::HandshakeError;
    use tandem_core::rules::{RuleId, Violation};

    #[test]
    fn a_blocking_rule_arrives_as_refused_with_its_id_and_message() {
        let blocked = tandem_core::Error::Blocked {
            violations: vec![
                Violation::warn(RuleId::V04, "visiting hours end in 15 minutes"),
                Violation::block(RuleId::V03, "a second phone of the team must co-sign"),
            ],
        };
        let (rule, reason) = refused(blocked);
        assert_eq!(rule, "V03");
        assert!(
            reason.contains("a second phone of the team must co-sign"),
            "{reason}"
        );
    }

    /// The rule and reason of a refusal; panics on any other error.
    fn refused(error: tandem_core::Error) -> (String, String) {
        match TandemError::from(error) {
            TandemError::Refused { rule, reason } => (rule, reason),
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    #[test]
    fn a_refusal_reason_is_the_message_alone_without_its_rule() {
        let blocked = tandem_core::Error::Blocked {
            violations: vec![
                Violation::block(RuleId::V03, "a second phone of the team must co-sign"),
                Violation::block(RuleId::V05, "no position"),
            ],
        };
        let handshake = tandem_core::Error::from(HandshakeError::SameAgent);
        for (error, rule, expected) in [
            (
                blocked,
                "V03",
                "a second phone of the team must co-sign (and 1 more)",
            ),
            (
                handshake,
                "V03",
                "lead and partner are the same agent; two different agents are required",
            ),
        ] {
            assert_eq!(refused(error), (rule.to_owned(), expected.to_owned()));
        }
    }

    #[test]
    fn sync_errors_keep_their_kind() {
        let server = SyncError::Server {
            during: "committing",
            status: 409,
            kind: "bundle-equivocation".into(),
            detail: "another digest for this id".into(),
        };
        assert!(matches!(
            TandemError::from(tandem_core::Error::Sync(server)),
            TandemError::Server { status: 409, ref kind, .. } if kind == "bundle-equivocation"
        ));
        assert!(matches!(
            TandemError::from(tandem_core::Error::Sync(SyncError::Cancelled)),
            TandemError::Cancelled
        ));
        assert!(matches!(
            TandemError::from(tandem_core::Error::NotEnrolled("no device token".into())),
            TandemError::NotEnrolled { .. }
        ));
        assert!(matches!(
            TandemError::from(SyncError::Network("connection refused".into())),
            TandemError::Network { .. }
        ));
    }
}
