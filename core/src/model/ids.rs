//! Identifiers: UUIDv7 newtypes, so ids of different things cannot be mixed up.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[doc = $doc:literal] $name:ident),* $(,)?) => {$(
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    )*};
}

uuid_id! {
    /// A bank (client) whose cases the agency works.
    BankId,
    /// A case (委案) entrusted by a bank.
    CaseId,
    /// One approved address of a case.
    AddressId,
    /// A field agent.
    AgentId,
    /// An enrolled phone.
    DeviceId,
    /// A manager's approval of a visit request.
    ApprovalId,
    /// A visit.
    VisitId,
    /// A bank-approved document template.
    TemplateId,
    /// An evidence bundle; also the idempotency key of its upload.
    BundleId,
}
