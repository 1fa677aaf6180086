//! The domain: ids, cases, policy, approvals, visits and their events.
//!
//! Times are UTC milliseconds (`i64`), money is fen, coordinates are 1e-7 degrees: nothing
//! that is hashed or signed holds a float.

mod approval;
mod case;
mod event;
mod ids;
mod money;
mod policy;
mod receipt;
mod signed;
mod visit;

pub use approval::{
    Appointment, Approval, AuthorisationLetter, CashAuthorisation, DeviceCertificate,
    DeviceRevocation, PaymentMethod, PromiseAuthorisation, TeamMember, TemplateKind, TemplateRef,
    TimeAnchor, VisitTicket,
};
pub use case::{
    ApprovedAddress, Case, CaseStatus, Debtor, Entrustment, HealthFlag, HoldReason,
    MaskedCardNumber, MaskedIdNumber,
};
pub use event::{
    BlobRef, ChainError, CoSignature, ConsentScope, DerivedBlob, DisputeKind, Event, EventKind,
    EventTime, PersonMet, PromiseKind, verify_chain,
};
pub use ids::{
    AddressId, AgentId, ApprovalId, BankId, BundleId, CaseId, DeviceId, TemplateId, VisitId,
};
pub use money::Fen;
pub use policy::Policy;
pub use receipt::{Payer, ReceiptDraft, ReceiptSerial, SerialRange};
pub use signed::{Signed, SignedPurpose};
pub use visit::{Visit, VisitState};

/// Errors about domain values.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A value is out of its allowed range or form.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A signed document's signature does not verify.
    #[error("{purpose} signature invalid: {source}")]
    Signature {
        /// What kind of document.
        purpose: &'static str,
        /// The cryptographic failure.
        #[source]
        source: crate::crypto::CryptoError,
    },
    /// A document is not canonical JSON.
    #[error(transparent)]
    Canonical(#[from] crate::canonical::CanonicalError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}
