//! Receipts for money collected on a visit (DESIGN.md §6, rules C01, C02): the pieces of a
//! receipt and the draft the agents fill in before both sign it.

use serde::{Deserialize, Serialize};

use super::signed::SignedPurpose;
use super::{CaseId, DeviceId, EventTime, Fen, PaymentMethod, PersonMet, VisitId};
use crate::crypto::Digest;
use crate::place::Fix;

/// A receipt number, taken from a range the server issued to one phone: numbers never
/// collide across phones, and gaps show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReceiptSerial(pub u64);

impl std::fmt::Display for ReceiptSerial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:010}", self.0)
    }
}

/// A range of receipt numbers the server issued to one phone, signed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialRange {
    /// The phone the numbers belong to.
    pub device_id: DeviceId,
    /// First number of the range.
    pub first: ReceiptSerial,
    /// Last number of the range (inclusive).
    pub last: ReceiptSerial,
    /// When the server issued it, UTC ms.
    pub issued_at_ms: i64,
}

impl SerialRange {
    /// Whether `serial` is in this range.
    pub fn contains(&self, serial: ReceiptSerial) -> bool {
        self.first <= serial && serial <= self.last
    }
}

impl SignedPurpose for SerialRange {
    const PURPOSE: &'static str = "receipt-range";
}

/// Who paid. The name is personal data: never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payer {
    /// The payer's relation to the case: money is collected only from the debtor or the
    /// guarantor (V09).
    pub role: PersonMet,
    /// The payer's name as written on the receipt.
    pub name: String,
}

impl std::fmt::Debug for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payer")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A receipt as the agents fill it in, before both phones sign it.
///
/// Fields the agents may not have yet are optional so that an incomplete draft can be
/// checked and its gaps named (C02); a signed receipt has all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptDraft {
    /// Receipt number from this phone's issued range.
    pub serial: Option<ReceiptSerial>,
    /// The visit it is collected on.
    pub visit_id: VisitId,
    /// The case paid towards.
    pub case_id: CaseId,
    /// Who paid.
    pub payer: Option<Payer>,
    /// Amount received.
    pub amount: Fen,
    /// ISO 4217 code of the amount, `CNY`.
    pub currency: String,
    /// Cash or cheque.
    pub method: PaymentMethod,
    /// The account the money will be deposited into: must be the authorised one.
    pub designated_account: String,
    /// Fee charged to the payer: always zero.
    pub fee: Fen,
    /// When the money was received.
    pub time: Option<EventTime>,
    /// Where the money was received.
    pub place: Option<Fix>,
    /// SHA-256 of the image of the payer's signature.
    pub payer_signature: Option<Digest>,
}
