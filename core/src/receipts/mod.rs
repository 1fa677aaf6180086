//! Signed cash receipts (DESIGN.md §6, rules C01, C02): the statement both agents sign, the
//! signed receipt the payer keeps, and its image with a QR code anyone can check offline.

mod image;
mod qr;

use serde::{Deserialize, Serialize};

use crate::canonical;
use crate::crypto::{Digest, SignatureRecord};
use crate::model::{
    CaseId, DeviceId, EventTime, Fen, Payer, PaymentMethod, ReceiptDraft, ReceiptSerial, VisitId,
};
use crate::place::Fix;

pub use image::render_receipt_png;
pub use qr::{ReceiptCheck, check_receipt_qr, decode_receipt_qr, encode_receipt_qr};

/// The reason recorded when a reserved number was never co-signed: the sequence explains
/// every number it skips.
pub const ABANDONED_REASON: &str = "abandoned before co-signing";

/// The signature purpose of a receipt statement.
pub const RECEIPT_PURPOSE: &str = "receipt";

/// What both agents sign for a receipt: canonical JSON, integers only.
///
/// The handshake's partner view reads `visit_id, serial, amount, currency, method, payer`
/// from these same bytes, so those names are part of the format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptStatement {
    /// The visit the money was received on.
    pub visit_id: VisitId,
    /// The case paid towards.
    pub case_id: CaseId,
    /// The phone whose issued range the serial comes from.
    pub device_id: DeviceId,
    /// Receipt number.
    pub serial: u64,
    /// Who paid.
    pub payer: Payer,
    /// Amount received.
    pub amount: Fen,
    /// ISO 4217 code of the amount.
    pub currency: String,
    /// Cash or cheque.
    pub method: PaymentMethod,
    /// The bank's designated deposit account.
    pub designated_account: String,
    /// Fee charged to the payer: zero.
    pub fee: Fen,
    /// Anchored time of receipt, UTC ms.
    pub at_ms: i64,
    /// Where the money was received.
    pub place: Fix,
    /// SHA-256 of the PNG of the payer's handwritten signature.
    pub payer_signature: Digest,
}

impl ReceiptStatement {
    /// The statement for a complete draft; `None` when a field the rules require is missing
    /// (the rules name it, C02).
    pub fn from_draft(draft: &ReceiptDraft, device: DeviceId) -> Option<Self> {
        Some(Self {
            visit_id: draft.visit_id,
            case_id: draft.case_id,
            device_id: device,
            serial: draft.serial?.0,
            payer: draft.payer.clone()?,
            amount: draft.amount,
            currency: draft.currency.clone(),
            method: draft.method,
            designated_account: draft.designated_account.clone(),
            fee: draft.fee,
            at_ms: draft.time?.best_ms(),
            place: draft.place.clone()?,
            payer_signature: draft.payer_signature?,
        })
    }

    /// The draft the rules see for an issued receipt (C01 sums them, C02 checks reuse).
    pub fn to_draft(&self) -> ReceiptDraft {
        ReceiptDraft {
            serial: Some(ReceiptSerial(self.serial)),
            visit_id: self.visit_id,
            case_id: self.case_id,
            payer: Some(self.payer.clone()),
            amount: self.amount,
            currency: self.currency.clone(),
            method: self.method,
            designated_account: self.designated_account.clone(),
            fee: self.fee,
            time: Some(EventTime {
                wall_ms: self.at_ms,
                anchor_ms: None,
                since_anchor_ms: None,
            }),
            place: Some(self.place.clone()),
            payer_signature: Some(self.payer_signature),
        }
    }

    /// The canonical bytes both agents sign.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, ReceiptError> {
        canonical::to_canonical_vec(self).map_err(|e| ReceiptError::Statement(e.to_string()))
    }

    /// Reads canonical statement bytes strictly (no unknown field, exact round trip).
    pub fn parse(bytes: &[u8]) -> Result<Self, ReceiptError> {
        canonical::from_canonical_slice(bytes).map_err(|e| ReceiptError::Statement(e.to_string()))
    }
}

/// A receipt as issued: the statement exactly as signed and both agents' signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// The canonical statement text.
    pub statement: String,
    /// The lead agent's signature over it (purpose `receipt`).
    pub lead: SignatureRecord,
    /// The partner agent's signature over it (purpose `receipt`).
    pub partner: SignatureRecord,
}

impl SignedReceipt {
    /// The statement's fields.
    pub fn content(&self) -> Result<ReceiptStatement, ReceiptError> {
        ReceiptStatement::parse(self.statement.as_bytes())
    }
}

/// What can go wrong with receipt numbers, receipt images and receipt codes.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Every number of every range issued to this phone is used.
    #[error("no receipt numbers left in the ranges issued to this phone: sync to get a new range")]
    RangeExhausted,
    /// A range names another phone.
    #[error("receipt-number range {first}–{last} was issued to another phone")]
    RangeForAnotherDevice {
        /// First number.
        first: ReceiptSerial,
        /// Last number.
        last: ReceiptSerial,
    },
    /// A range is empty or overlaps one already held.
    #[error("receipt-number range {first}–{last} is refused: {reason}")]
    RangeRefused {
        /// First number.
        first: ReceiptSerial,
        /// Last number.
        last: ReceiptSerial,
        /// Why.
        reason: &'static str,
    },
    /// The payer's signature image is not a PNG.
    #[error("the payer's signature image is not a valid PNG: {0}")]
    NotPng(String),
    /// No issued receipt has this number on the visit.
    #[error("receipt {serial} was not issued on this visit")]
    UnknownReceipt {
        /// The number.
        serial: ReceiptSerial,
    },
    /// The receipt is already voided.
    #[error("receipt {serial} is already voided")]
    AlreadyVoided {
        /// The number.
        serial: ReceiptSerial,
    },
    /// The reserved number was given up (voided) before the partner co-signed it.
    #[error("receipt number {serial} is no longer reserved for this receipt: begin again")]
    ReservationLost {
        /// The number.
        serial: ReceiptSerial,
    },
    /// A statement is not a canonical receipt statement.
    #[error("receipt statement invalid: {0}")]
    Statement(String),
    /// A receipt code is not one this format can read.
    #[error("receipt code malformed: {0}")]
    QrMalformed(&'static str),
    /// A signature on a receipt code is by no team key, or does not verify.
    #[error("receipt code: the {which} signature is not a valid team signature over the receipt")]
    BadSignature {
        /// `lead` or `partner`.
        which: &'static str,
    },
    /// Both signatures on a receipt code are by the same key: a receipt needs two agents.
    #[error("receipt code: both signatures are by the same key (C02 needs two agents)")]
    SameSigner,
    /// The receipt image could not be made.
    #[error("receipt image: {0}")]
    Image(String),
}

impl ReceiptError {
    /// The rule a refusal stands for: serials come only from server-issued ranges (C02).
    pub fn rule(&self) -> Option<crate::rules::RuleId> {
        match self {
            ReceiptError::RangeExhausted => Some(crate::rules::RuleId::C02),
            _ => None,
        }
    }
}
