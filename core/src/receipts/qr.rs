//! The receipt's QR code: statement and both signatures in a compact binary layout, as
//! base45 (the QR alphanumeric set, so the code stays small and any scanner reads it as
//! text). Layout, version 1:
//!
//! `0x01 ‖ len(statement) u16 BE ‖ statement ‖ (alg u8 ‖ sig 64 B) lead ‖ (alg ‖ sig) partner`
//!
//! Key ids are left out: a checker holds the team's keys and recomputes them.

use super::{RECEIPT_PURPOSE, ReceiptError, ReceiptStatement, SignedReceipt};
use crate::crypto::{Kid, PublicKey, SignatureAlgorithm, SignatureRecord, signing_input};
use crate::handshake::SIGNATURE_LEN;
use crate::model::{CaseId, Fen, ReceiptSerial, VisitId};

const VERSION: u8 = 1;
/// Longest statement carried: a QR code holds about 4 KB of alphanumerics.
const MAX_STATEMENT: usize = 1_800;
/// Longest code text read, so a hostile code cannot make the checker allocate much.
const MAX_QR_CHARS: usize = 4_296;

/// What an offline check of a receipt code found: a receipt both agents signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCheck {
    /// Receipt number.
    pub serial: ReceiptSerial,
    /// Amount received.
    pub amount: Fen,
    /// ISO 4217 currency.
    pub currency: String,
    /// When, UTC ms.
    pub at_ms: i64,
    /// The visit.
    pub visit_id: VisitId,
    /// The case.
    pub case_id: CaseId,
    /// The two team keys that signed (lead, partner).
    pub signers: [Kid; 2],
}

fn alg_code(alg: SignatureAlgorithm) -> u8 {
    match alg {
        SignatureAlgorithm::Ed25519 => 0,
        SignatureAlgorithm::EcdsaP256Sha256 => 1,
    }
}

fn alg_from(code: u8) -> Option<SignatureAlgorithm> {
    match code {
        0 => Some(SignatureAlgorithm::Ed25519),
        1 => Some(SignatureAlgorithm::EcdsaP256Sha256),
        _ => None,
    }
}

/// The text of a receipt's QR code.
pub fn encode_receipt_qr(receipt: &SignedReceipt) -> Result<String, ReceiptError> {
    let statement = receipt.statement.as_bytes();
    if statement.len() > MAX_STATEMENT {
        return Err(ReceiptError::QrMalformed(
            "statement too long for a QR code",
        ));
    }
    let len = u16::try_from(statement.len())
        .map_err(|_| ReceiptError::QrMalformed("statement too long for a QR code"))?;
    let mut out = Vec::with_capacity(3 + statement.len() + 2 * (1 + SIGNATURE_LEN));
    out.push(VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(statement);
    for sig in [&receipt.lead, &receipt.partner] {
        if sig.sig.len() != SIGNATURE_LEN {
            return Err(ReceiptError::QrMalformed("signature of unexpected length"));
        }
        out.push(alg_code(sig.alg));
        out.extend_from_slice(&sig.sig);
    }
    Ok(base45::encode(&out))
}

struct Decoded {
    statement: Vec<u8>,
    sigs: [(SignatureAlgorithm, Vec<u8>); 2],
}

fn decode(text: &str) -> Result<Decoded, ReceiptError> {
    if text.len() > MAX_QR_CHARS {
        return Err(ReceiptError::QrMalformed("code too long"));
    }
    let bytes = base45::decode(text.trim()).map_err(|_| ReceiptError::QrMalformed("not base45"))?;
    let (&version, rest) = bytes
        .split_first()
        .ok_or(ReceiptError::QrMalformed("empty"))?;
    if version != VERSION {
        return Err(ReceiptError::QrMalformed("unknown version"));
    }
    let truncated = ReceiptError::QrMalformed("truncated");
    let (len, rest) = rest.split_at_checked(2).ok_or(truncated)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let (statement, rest) = rest
        .split_at_checked(len)
        .ok_or(ReceiptError::QrMalformed("truncated"))?;
    let mut sigs = Vec::with_capacity(2);
    let mut rest = rest;
    for _ in 0..2 {
        let (alg, tail) = rest
            .split_first()
            .ok_or(ReceiptError::QrMalformed("truncated"))?;
        let alg = alg_from(*alg).ok_or(ReceiptError::QrMalformed("unknown algorithm"))?;
        let (sig, tail) = tail
            .split_at_checked(SIGNATURE_LEN)
            .ok_or(ReceiptError::QrMalformed("truncated"))?;
        sigs.push((alg, sig.to_vec()));
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(ReceiptError::QrMalformed("trailing bytes"));
    }
    let [lead, partner]: [(SignatureAlgorithm, Vec<u8>); 2] = sigs
        .try_into()
        .map_err(|_| ReceiptError::QrMalformed("truncated"))?;
    Ok(Decoded {
        statement: statement.to_vec(),
        sigs: [lead, partner],
    })
}

/// Reads a receipt code back into the signed receipt, finding each signer among
/// `team_keys`; signatures are verified.
pub fn decode_receipt_qr(
    text: &str,
    team_keys: &[PublicKey],
) -> Result<SignedReceipt, ReceiptError> {
    let decoded = decode(text)?;
    let input = signing_input(RECEIPT_PURPOSE, &decoded.statement);
    let find = |(alg, sig): &(SignatureAlgorithm, Vec<u8>), which| {
        team_keys
            .iter()
            .filter(|k| k.alg == *alg)
            .find(|k| k.verify_raw(&input, sig, RECEIPT_PURPOSE).is_ok())
            .map(|k| SignatureRecord {
                kid: k.kid(),
                alg: *alg,
                sig: sig.clone(),
            })
            .ok_or(ReceiptError::BadSignature { which })
    };
    let lead = find(&decoded.sigs[0], "lead")?;
    let partner = find(&decoded.sigs[1], "partner")?;
    if lead.kid == partner.kid {
        return Err(ReceiptError::SameSigner);
    }
    let statement = String::from_utf8(decoded.statement)
        .map_err(|_| ReceiptError::QrMalformed("statement is not UTF-8"))?;
    Ok(SignedReceipt {
        statement,
        lead,
        partner,
    })
}

/// Checks a receipt code offline: a canonical receipt statement signed (purpose `receipt`)
/// by two distinct keys of `team_keys`.
pub fn check_receipt_qr(text: &str, team_keys: &[PublicKey]) -> Result<ReceiptCheck, ReceiptError> {
    let receipt = decode_receipt_qr(text, team_keys)?;
    let content: ReceiptStatement = receipt.content()?;
    Ok(ReceiptCheck {
        serial: ReceiptSerial(content.serial),
        amount: content.amount,
        currency: content.currency,
        at_ms: content.at_ms,
        visit_id: content.visit_id,
        case_id: content.case_id,
        signers: [receipt.lead.kid, receipt.partner.kid],
    })
}
