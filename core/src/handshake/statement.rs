//! The statements agents co-sign, and the typed view of each that the partner's screen shows.
//!
//! A statement is canonical JSON (RFC 8785, integers only). Check-in, check-out and void
//! statements are defined here and read strictly (no unknown field, exact round trip).
//! Receipts and manifests are defined by their own modules; the view reads the fields the
//! partner must see from them, after the bytes passed the strict canonical parser.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::canonical;
use crate::crypto::{Digest, sha256};
use crate::model::{AddressId, Fen, PaymentMethod, PersonMet, VisitId};

use super::error::HandshakeError;
use super::message::Purpose;

/// What both agents sign at check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInStatement {
    /// The visit.
    pub visit_id: VisitId,
    /// The approved address checked in at.
    pub address_id: AddressId,
    /// The lead phone's anchored time of check-in, UTC ms.
    pub at_ms: i64,
    /// Why the team checks in outside the fence, as the lead gave it: co-signed, so the
    /// partner reads it before signing. Absent inside the fence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_fence_reason: Option<String>,
}

/// What both agents sign at check-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOutStatement {
    /// The visit.
    pub visit_id: VisitId,
    /// The address of the check-in.
    pub address_id: AddressId,
    /// When the agents checked in, UTC ms.
    pub checked_in_at_ms: i64,
    /// The lead phone's anchored time of check-out, UTC ms.
    pub at_ms: i64,
}

/// What both agents sign to void a receipt (it is never deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidStatement {
    /// The visit the receipt was issued on.
    pub visit_id: VisitId,
    /// The voided receipt's serial number.
    pub serial: u64,
    /// Why it is voided.
    pub reason: String,
}

/// A receipt as the partner's screen shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiptView {
    /// The receipt's serial number.
    pub serial: u64,
    /// Amount received.
    pub amount: Fen,
    /// ISO 4217 currency of the amount.
    pub currency: String,
    /// Cash or cheque.
    pub method: PaymentMethod,
    /// Who paid: debtor, guarantor or a third party.
    pub payer_role: PersonMet,
    /// The payer's name (personal data: never logged).
    pub payer_name: String,
}

impl std::fmt::Debug for ReceiptView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptView")
            .field("serial", &self.serial)
            .field("amount", &self.amount)
            .field("method", &self.method)
            .field("payer_role", &self.payer_role)
            .finish_non_exhaustive()
    }
}

/// The typed content of a statement, decoded from its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementView {
    /// A check-in.
    CheckIn(CheckInStatement),
    /// A check-out.
    CheckOut(CheckOutStatement),
    /// A receipt.
    Receipt(ReceiptView),
    /// A void.
    Void(VoidStatement),
    /// A sealed visit's manifest.
    Seal {
        /// Events in the log.
        events: u64,
        /// Photo events.
        photos: u64,
        /// Audio segment events.
        audio_segments: u64,
        /// Blob entries.
        blobs: u64,
        /// SHA-256 of the manifest bytes.
        manifest_digest: Digest,
    },
}

#[derive(Deserialize)]
struct ReceiptFields {
    visit_id: VisitId,
    serial: u64,
    amount: Fen,
    currency: String,
    method: PaymentMethod,
    payer: PayerFields,
}

#[derive(Deserialize)]
struct PayerFields {
    role: PersonMet,
    name: String,
}

#[derive(Deserialize)]
struct ManifestFields {
    visit: ManifestVisit,
    events: Vec<ManifestEvent>,
    blobs: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct ManifestVisit {
    visit_id: VisitId,
}

#[derive(Deserialize)]
struct ManifestEvent {
    visit_id: VisitId,
    kind: ManifestEventKind,
}

#[derive(Deserialize)]
struct ManifestEventKind {
    #[serde(rename = "type")]
    kind: String,
}

fn invalid(purpose: Purpose, reason: impl ToString) -> HandshakeError {
    HandshakeError::StatementInvalid {
        purpose: purpose.as_str(),
        reason: reason.to_string(),
    }
}

fn same_visit(expected: VisitId, found: VisitId) -> Result<(), HandshakeError> {
    if expected == found {
        Ok(())
    } else {
        Err(HandshakeError::WrongVisit { expected, found })
    }
}

impl StatementView {
    /// Reads `bytes` as the statement for `purpose` on `visit`: canonical JSON of the right
    /// shape, naming that visit.
    pub fn decode(purpose: Purpose, visit: VisitId, bytes: &[u8]) -> Result<Self, HandshakeError> {
        canonical::parse_canonical(bytes).map_err(|e| invalid(purpose, e))?;
        match purpose {
            Purpose::CheckIn => {
                let s: CheckInStatement =
                    canonical::from_canonical_slice(bytes).map_err(|e| invalid(purpose, e))?;
                same_visit(visit, s.visit_id)?;
                Ok(Self::CheckIn(s))
            }
            Purpose::CheckOut => {
                let s: CheckOutStatement =
                    canonical::from_canonical_slice(bytes).map_err(|e| invalid(purpose, e))?;
                same_visit(visit, s.visit_id)?;
                if s.at_ms < s.checked_in_at_ms {
                    return Err(invalid(purpose, "check-out precedes check-in"));
                }
                Ok(Self::CheckOut(s))
            }
            Purpose::Void => {
                let s: VoidStatement =
                    canonical::from_canonical_slice(bytes).map_err(|e| invalid(purpose, e))?;
                same_visit(visit, s.visit_id)?;
                if s.reason.trim().is_empty() {
                    return Err(invalid(purpose, "a void needs a reason"));
                }
                Ok(Self::Void(s))
            }
            Purpose::Receipt => {
                let r: ReceiptFields =
                    serde_json::from_slice(bytes).map_err(|e| invalid(purpose, e))?;
                same_visit(visit, r.visit_id)?;
                Ok(Self::Receipt(ReceiptView {
                    serial: r.serial,
                    amount: r.amount,
                    currency: r.currency,
                    method: r.method,
                    payer_role: r.payer.role,
                    payer_name: r.payer.name,
                }))
            }
            Purpose::Seal => {
                let m: ManifestFields =
                    serde_json::from_slice(bytes).map_err(|e| invalid(purpose, e))?;
                same_visit(visit, m.visit.visit_id)?;
                let mut photos = 0u64;
                let mut audio_segments = 0u64;
                for event in &m.events {
                    same_visit(visit, event.visit_id)?;
                    match event.kind.kind.as_str() {
                        "photo" => photos += 1,
                        "audio_segment" => audio_segments += 1,
                        _ => {}
                    }
                }
                Ok(Self::Seal {
                    events: m.events.len() as u64,
                    photos,
                    audio_segments,
                    blobs: m.blobs.len() as u64,
                    manifest_digest: sha256(bytes),
                })
            }
        }
    }
}
