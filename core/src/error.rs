//! The one internal error type of core.
//!
//! Each module has its own precise error; this enum gathers them, adds what only the visit
//! lifecycle knows (a rule refused the action, a visit is in the wrong state), and is what
//! the bindings map to their small public error. Messages carry no personal data.

use crate::rules::{Outcome, Violation};

/// Everything that can go wrong inside core, with enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more rules refused the action. The first blocking rule leads the message.
    #[error("{}", blocked_message(.violations))]
    Blocked {
        /// Every violation found, blocking or not.
        violations: Vec<Violation>,
    },
    /// The visit is not in a state that allows the action.
    #[error("visit {visit} is {state}: cannot {action}")]
    InvalidState {
        /// The visit.
        visit: String,
        /// Its state.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// Something the action needs is not on this phone.
    #[error("{what} not found on this phone")]
    NotFound {
        /// What.
        what: String,
    },
    /// The phone is not enrolled yet: it has no identity, server key or device token.
    #[error("{0}")]
    NotEnrolled(String),
    /// The phone is not set up yet (no policy, no time anchor), or the input is incomplete.
    #[error("not ready: {0}")]
    NotReady(String),
    /// An I/O operation failed on a named path.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The encrypted blob store.
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
    /// A photo was refused.
    #[error(transparent)]
    Photo(#[from] crate::capture::photo::PhotoError),
    /// Audio capture.
    #[error(transparent)]
    Audio(#[from] crate::capture::audio::AudioError),
    /// A position.
    #[error(transparent)]
    Place(#[from] crate::place::PlaceError),
    /// Canonical JSON.
    #[error(transparent)]
    Canonical(#[from] crate::canonical::CanonicalError),
    /// A domain value or signed document.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// Cryptography.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// An evidence bundle could not be built, read or written.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// A receipt, its serial range or its image was refused.
    #[error(transparent)]
    Receipt(#[from] crate::receipts::ReceiptError),
    /// A transparency-log proof, checkpoint or receipt does not verify.
    #[error(transparent)]
    Log(#[from] crate::tlog::LogError),
    /// A handshake payload or co-signature was refused.
    #[error(transparent)]
    Handshake(#[from] crate::handshake::HandshakeError),
    /// The device store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A broken event chain.
    #[error(transparent)]
    Chain(#[from] crate::model::ChainError),
    /// Talking to the server failed.
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
}

impl Error {
    /// The rule that blocked the action, if a rule did.
    pub fn blocking_rule(&self) -> Option<crate::rules::RuleId> {
        match self {
            Error::Handshake(e) => e.rule(),
            Error::Receipt(e) => e.rule(),
            Error::Blocked { violations } => violations
                .iter()
                .find(|v| v.outcome == Outcome::Block)
                .map(|v| v.rule),
            _ => None,
        }
    }

    /// The rule that blocked the action and what the agent is told, without the rule id:
    /// the screens show the id beside the text.
    pub fn refusal(&self) -> Option<(crate::rules::RuleId, String)> {
        let rule = self.blocking_rule()?;
        let reason = match self {
            Error::Blocked { violations } => first_blocking(violations, |v| v.message.clone()),
            // A handshake refusal names its rule first in its own text (`V03: …`).
            other => {
                let text = other.to_string();
                match text.strip_prefix(&format!("{rule}: ")) {
                    Some(bare) => bare.to_owned(),
                    None => text,
                }
            }
        };
        Some((rule, reason))
    }
}

fn blocked_message(violations: &[Violation]) -> String {
    first_blocking(violations, Violation::to_string)
}

/// The first blocking violation as `show` writes it, and how many more there are.
fn first_blocking(violations: &[Violation], show: impl Fn(&Violation) -> String) -> String {
    let mut blocking = violations.iter().filter(|v| v.outcome == Outcome::Block);
    match blocking.next() {
        Some(first) => {
            let more = blocking.count();
            if more == 0 {
                show(first)
            } else {
                format!("{} (and {more} more)", show(first))
            }
        }
        None => "refused".to_owned(),
    }
}

/// Result with core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
