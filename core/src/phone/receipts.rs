//! Signed cash receipts on the phone (DESIGN.md §6; C01, C02, V09, V10): receipt-number
//! ranges, a receipt co-signed by both agents, its void, and the payer's receipt image.
//!
//! A number is reserved in the same transaction that checks the rules and decides it, so
//! numbers are gapless and never reused, even across a crash. A number reserved and never
//! co-signed is voided (by the lead alone, reason [`ABANDONED_REASON`]) the next time a
//! receipt is begun, so the sequence explains every number.

use super::Phone;
use super::cosign::PendingAction;
use super::lifecycle::{Recorded, record, refuse_if_blocked};
use super::loaded::Loaded;
use crate::canonical::to_canonical_vec;
use crate::crypto::{PublicKey, SignatureRecord};
use crate::handshake::{Purpose, VoidStatement};
use crate::model::{
    CoSignature, EventKind, Fen, Payer, PaymentMethod, ReceiptDraft, ReceiptSerial, SerialRange,
    Signed, VisitId,
};
use crate::receipts::{
    ABANDONED_REASON, ReceiptError, ReceiptStatement, SignedReceipt, render_receipt_png,
};
use crate::rules::{self, RuleId, Violation};
use crate::store::{EvidenceItem, EvidenceRole, ReadTx, SerialEntry, SerialState, WriteTx};
use crate::{Error, Result};

/// Largest payer signature image accepted: a signature is a small picture.
const MAX_SIGNATURE_PNG_BYTES: usize = 2 * 1024 * 1024;
/// Largest side of the payer signature image, in pixels.
const MAX_SIGNATURE_SIDE_PX: u32 = 4_096;
/// Longest payer name, in characters: the receipt must fit one QR code.
const MAX_PAYER_NAME_CHARS: usize = 64;

/// What the agent enters for a receipt; the rest (number, account, time, place) the phone
/// fills in.
#[derive(Debug, Clone)]
pub struct ReceiptRequest {
    /// Who paid.
    pub payer: Payer,
    /// How much.
    pub amount: Fen,
    /// Cash or cheque.
    pub method: PaymentMethod,
    /// The payer's handwritten signature, as a PNG; empty when the payer did not sign.
    pub payer_signature_png: Vec<u8>,
}

/// The ranges held, each checked against the server's key.
pub(super) fn verified_ranges(tx: &ReadTx<'_>, key: &PublicKey) -> Result<Vec<SerialRange>> {
    tx.serial_ranges()?
        .iter()
        .map(|signed| Ok(signed.verify(key)?))
        .collect()
}

/// Keeps a serial range inside a write transaction (see [`Phone::accept_serial_range`]).
pub(super) fn apply_serial_range(
    tx: &WriteTx<'_>,
    receiver: &super::setup::Receiver,
    signed: &Signed<SerialRange>,
) -> Result<SerialRange> {
    let key = &receiver.server_key;
    let range = signed.verify(key)?;
    let (first, last) = (range.first, range.last);
    if range.device_id != receiver.device {
        return Err(ReceiptError::RangeForAnotherDevice { first, last }.into());
    }
    if last < first {
        return Err(ReceiptError::RangeRefused {
            first,
            last,
            reason: "it is empty",
        }
        .into());
    }
    for held in verified_ranges(tx, key)? {
        if held == range {
            return Ok(range);
        }
        if held.first <= last && first <= held.last {
            return Err(ReceiptError::RangeRefused {
                first,
                last,
                reason: "it overlaps a range already held",
            }
            .into());
        }
    }
    tx.put_serial_range(signed, &range)?;
    Ok(range)
}

/// Receipts issued on a visit and not voided, as the rules see them.
pub(super) fn issued_drafts(tx: &ReadTx<'_>, visit: VisitId) -> Result<Vec<ReceiptDraft>> {
    tx.visit_serials(visit)?
        .into_iter()
        .filter(|e| e.state == SerialState::Issued)
        .filter_map(|e| e.receipt)
        .map(|r| Ok(r.content()?.to_draft()))
        .collect()
}

fn check_png(bytes: &[u8]) -> Result<(), ReceiptError> {
    if bytes.len() > MAX_SIGNATURE_PNG_BYTES {
        return Err(ReceiptError::NotPng(format!(
            "{} bytes is over the {MAX_SIGNATURE_PNG_BYTES}-byte limit",
            bytes.len()
        )));
    }
    // Decoded in full (a truncated or corrupt file must not pass as the payer's
    // signature), within limits so a small file cannot expand into a huge bitmap.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIGNATURE_SIDE_PX);
    limits.max_image_height = Some(MAX_SIGNATURE_SIDE_PX);
    limits.max_alloc = Some(64 * 1024 * 1024);
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    reader.limits(limits);
    reader
        .decode()
        .map(|_| ())
        .map_err(|e| ReceiptError::NotPng(e.to_string()))
}

impl Phone {
    /// Keeps a receipt-number range the server issued to this phone (signature checked).
    /// Receiving the same range again is harmless; an overlapping one is refused.
    pub fn accept_serial_range(&self, signed: &Signed<SerialRange>) -> Result<SerialRange> {
        self.store.write(|tx| {
            let receiver = super::setup::Receiver::of(tx, self.public_key())?;
            apply_serial_range(tx, &receiver, signed)
        })
    }

    /// Lead: starts a receipt. Stores the payer's signature image, reserves the next
    /// number, runs C01, C02, V09, V10 (a blocking rule refuses and reserves nothing),
    /// and returns the QR frames of the receipt statement for the partner to co-sign.
    pub fn begin_receipt(&self, visit: VisitId, request: &ReceiptRequest) -> Result<Vec<String>> {
        if request.payer.name.chars().count() > MAX_PAYER_NAME_CHARS {
            return Err(Error::NotReady(format!(
                "a payer's name is at most {MAX_PAYER_NAME_CHARS} characters"
            )));
        }
        self.void_abandoned_reservations()?;
        let signature = if request.payer_signature_png.is_empty() {
            None
        } else {
            check_png(&request.payer_signature_png)?;
            Some(self.blobs.put_bytes(&request.payer_signature_png)?)
        };
        let fix = self.location.current_fix();
        let now = self.now()?;
        let (device, _) = self.identity()?;
        let reserved = self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("issue a receipt")?;
            let ctx = loaded.context(now);
            let next = tx.next_serial(ctx.serial_ranges)?;
            let cash = loaded.approval.cash.as_ref();
            let draft = ReceiptDraft {
                serial: next,
                visit_id: visit,
                case_id: loaded.case.id,
                payer: Some(request.payer.clone()),
                amount: request.amount,
                currency: cash.map(|c| c.currency.clone()).unwrap_or_default(),
                method: request.method,
                designated_account: cash
                    .map(|c| c.designated_account.clone())
                    .unwrap_or_default(),
                fee: Fen(0),
                time: Some(now),
                place: fix.clone(),
                payer_signature: signature.as_ref().map(|s| s.digest),
            };
            let mut violations = Vec::new();
            if next.is_none() {
                violations.push(Violation::block(
                    RuleId::C02,
                    ReceiptError::RangeExhausted.to_string(),
                ));
            }
            violations.extend(rules::check_receipt(&ctx, &draft));
            refuse_if_blocked(violations)?;
            let statement = ReceiptStatement::from_draft(&draft, device)
                .ok_or_else(|| Error::NotReady("the receipt is incomplete".into()))?;
            if let Some(blob) = &signature {
                tx.add_evidence(
                    visit,
                    &EvidenceItem {
                        digest: blob.digest,
                        size: blob.size,
                        media_type: "image/png".into(),
                        role: EvidenceRole::Signature,
                    },
                )?;
            }
            let serial = ReceiptSerial(statement.serial);
            tx.reserve_serial(serial, visit, now.best_ms())?;
            Ok::<_, Error>((serial, statement.canonical_bytes()?))
        });
        let (serial, statement) = match reserved {
            Ok(r) => r,
            Err(e) => {
                // Refused: the image is indexed nowhere, so it does not stay either.
                if let Some(blob) = &signature
                    && !self
                        .store
                        .read(|tx| Ok::<_, Error>(tx.blob_is_needed(blob.digest)?))?
                {
                    self.blobs.remove(&blob.digest)?;
                }
                return Err(e);
            }
        };
        self.begin(
            visit,
            Purpose::Receipt,
            statement,
            PendingAction::Receipt { serial },
        )
    }

    /// Lead: starts voiding an issued receipt (it stays, marked voided); returns the QR
    /// frames of the void statement for the partner to co-sign.
    pub fn begin_void(
        &self,
        visit: VisitId,
        serial: ReceiptSerial,
        reason: &str,
    ) -> Result<Vec<String>> {
        if reason.trim().is_empty() {
            return Err(Error::NotReady("a void needs a reason".into()));
        }
        self.store.read(|tx| {
            Loaded::load(tx, visit)?.require_capturing("void a receipt")?;
            issued_on(tx, visit, serial).map(|_| ())
        })?;
        let statement = to_canonical_vec(&VoidStatement {
            visit_id: visit,
            serial: serial.0,
            reason: reason.to_owned(),
        })?;
        self.begin(
            visit,
            Purpose::Void,
            statement,
            PendingAction::Void {
                serial,
                reason: reason.to_owned(),
            },
        )
    }

    /// Every receipt number this phone took, in order, with where each stands.
    pub fn receipt_serials(&self) -> Result<Vec<SerialEntry>> {
        self.store.read(|tx| Ok::<_, Error>(tx.all_serials()?))
    }

    /// An issued (or later voided) receipt, as both agents signed it.
    pub fn receipt(&self, serial: ReceiptSerial) -> Result<SignedReceipt> {
        self.store
            .read(|tx| Ok::<_, Error>(tx.serial_entry(serial)?))?
            .and_then(|e| e.receipt)
            .ok_or_else(|| ReceiptError::UnknownReceipt { serial }.into())
    }

    /// The payer's receipt image (PNG), times shown in the bank policy's zone.
    pub fn receipt_png(&self, visit: VisitId, serial: ReceiptSerial) -> Result<Vec<u8>> {
        let zone = self
            .store
            .read(|tx| Ok::<_, Error>(Loaded::load(tx, visit)?.policy.zone()?))?;
        let receipt = self.receipt(serial)?;
        if receipt.content()?.visit_id != visit {
            return Err(ReceiptError::UnknownReceipt { serial }.into());
        }
        Ok(render_receipt_png(&receipt, zone)?)
    }

    /// Lead, after the partner co-signed: records the receipt with both signatures (its
    /// rules run again: a dispute recorded meanwhile still stops it).
    pub(super) fn complete_receipt(
        &self,
        visit: VisitId,
        serial: ReceiptSerial,
        cosignature: CoSignature,
    ) -> Result<Recorded> {
        let fix = self.location.current_fix();
        let now = self.now()?;
        self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("issue a receipt")?;
            match tx.serial_entry(serial)? {
                Some(e) if e.state == SerialState::Reserved && e.visit_id == visit => {}
                _ => return Err(ReceiptError::ReservationLost { serial }.into()),
            }
            let statement = ReceiptStatement::parse(cosignature.statement.as_bytes())?;
            if statement.serial != serial.0 || statement.visit_id != visit {
                return Err(ReceiptError::ReservationLost { serial }.into());
            }
            let violations = refuse_if_blocked(rules::check_receipt(
                &loaded.context(now),
                &statement.to_draft(),
            ))?;
            let signed = SignedReceipt {
                statement: cosignature.statement.clone(),
                lead: cosignature.lead.clone(),
                partner: cosignature.partner.clone(),
            };
            if !tx.issue_receipt(serial, &signed)? {
                return Err(ReceiptError::ReservationLost { serial }.into());
            }
            let kind = EventKind::ReceiptIssued {
                serial,
                amount: statement.amount,
                payer_signature: statement.payer_signature,
                cosignature,
            };
            record(tx, &loaded, kind, now, fix, violations)
        })
    }

    /// Lead, after the partner co-signed the void: marks the receipt voided and records it.
    pub(super) fn complete_void(
        &self,
        visit: VisitId,
        serial: ReceiptSerial,
        reason: &str,
        cosignature: CoSignature,
    ) -> Result<Recorded> {
        let fix = self.location.current_fix();
        let now = self.now()?;
        self.store.write(|tx| {
            let loaded = Loaded::load(tx, visit)?;
            loaded.require_capturing("void a receipt")?;
            issued_on(tx, visit, serial)?;
            tx.void_serial(serial, reason)?;
            let kind = EventKind::ReceiptVoided {
                serial,
                reason: reason.to_owned(),
                statement: cosignature.statement,
                lead: cosignature.lead,
                partner: Some(cosignature.partner),
            };
            record(tx, &loaded, kind, now, fix, Vec::new())
        })
    }

    /// Voids every number still reserved: its receipt was never co-signed (the challenge
    /// was abandoned, or the app died). The lead signs the void alone; the event goes to
    /// the reservation's visit while that visit still takes events (until it is sealed:
    /// the seal voids them first, so a sealed visit never leaves a number unexplained).
    pub(super) fn void_abandoned_reservations(&self) -> Result<()> {
        let reserved = self
            .store
            .read(|tx| Ok::<_, Error>(tx.reserved_serials()?))?;
        if reserved.is_empty() {
            return Ok(());
        }
        self.pending().retain(|p| {
            !matches!(p.action, PendingAction::Receipt { serial }
                if reserved.iter().any(|r| r.serial == serial))
        });
        let fix = self.location.current_fix();
        let now = self.now()?;
        for entry in reserved {
            let statement = to_canonical_vec(&VoidStatement {
                visit_id: entry.visit_id,
                serial: entry.serial.0,
                reason: ABANDONED_REASON.to_owned(),
            })?;
            let lead = SignatureRecord::sign(
                self.signer.as_ref(),
                Purpose::Void.signature_purpose(),
                &statement,
            )?;
            let statement = String::from_utf8(statement)
                .map_err(|_| Error::NotReady("a void statement is not UTF-8".into()))?;
            self.store.write(|tx| {
                if !tx.void_serial(entry.serial, ABANDONED_REASON)? {
                    return Ok(());
                }
                let loaded = Loaded::load(tx, entry.visit_id)?;
                if !loaded.state().is_sealed() {
                    let kind = EventKind::ReceiptVoided {
                        serial: entry.serial,
                        reason: ABANDONED_REASON.to_owned(),
                        statement: statement.clone(),
                        lead: lead.clone(),
                        partner: None,
                    };
                    record(tx, &loaded, kind, now, fix.clone(), Vec::new())?;
                }
                Ok::<_, Error>(())
            })?;
        }
        Ok(())
    }
}

/// The entry of a receipt issued on `visit` and not voided.
fn issued_on(tx: &ReadTx<'_>, visit: VisitId, serial: ReceiptSerial) -> Result<SerialEntry> {
    match tx.serial_entry(serial)? {
        Some(e) if e.visit_id == visit && e.state == SerialState::Issued => Ok(e),
        Some(e) if e.visit_id == visit && e.state == SerialState::Voided => {
            Err(ReceiptError::AlreadyVoided { serial }.into())
        }
        _ => Err(ReceiptError::UnknownReceipt { serial }.into()),
    }
}
