//! The two handshake messages, a challenge and a reply, and the signatures they carry.

use crate::crypto::{
    CryptoError, Digest, Kid, PublicKey, SignatureAlgorithm, SignatureRecord, Signer,
};
use crate::model::{AgentId, DeviceId, EventTime, VisitId};
use crate::place::Fix;

use super::error::{HandshakeError, PayloadError};
use super::wire;

/// Length of every raw signature carried (Ed25519, and P-256 as fixed-width r‖s).
pub const SIGNATURE_LEN: usize = 64;

/// Signature purpose binding a challenge's fields: `"tandem/v1/handshake-challenge\n"`.
pub const CHALLENGE_PURPOSE: &str = "handshake-challenge";

/// Signature purpose binding a reply's fields: `"tandem/v1/handshake-reply\n"`.
pub const REPLY_PURPOSE: &str = "handshake-reply";

/// What the two agents are co-signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Checking in together (statement: [`super::CheckInStatement`]).
    CheckIn,
    /// Checking out together (statement: [`super::CheckOutStatement`]).
    CheckOut,
    /// A receipt for money collected (statement: the receipt document).
    Receipt,
    /// Voiding a receipt (statement: [`super::VoidStatement`]).
    Void,
    /// Sealing the visit (statement: the bundle's `manifest.json`).
    Seal,
}

impl Purpose {
    /// Every purpose, in wire-code order.
    pub const ALL: [Purpose; 5] = [
        Purpose::CheckIn,
        Purpose::CheckOut,
        Purpose::Receipt,
        Purpose::Void,
        Purpose::Seal,
    ];

    /// The purpose string both agents sign the statement under. A seal signs as
    /// `manifest`, so its signatures are exactly the bundle's `signatures.json` entries.
    pub fn signature_purpose(self) -> &'static str {
        match self {
            Purpose::CheckIn => "check-in",
            Purpose::CheckOut => "check-out",
            Purpose::Receipt => "receipt",
            Purpose::Void => "void",
            Purpose::Seal => "manifest",
        }
    }

    /// The purpose's name for display and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::CheckIn => "check_in",
            Purpose::CheckOut => "check_out",
            Purpose::Receipt => "receipt",
            Purpose::Void => "void",
            Purpose::Seal => "seal",
        }
    }

    /// The wire code (1..=5).
    pub(crate) fn code(self) -> u8 {
        match self {
            Purpose::CheckIn => 1,
            Purpose::CheckOut => 2,
            Purpose::Receipt => 3,
            Purpose::Void => 4,
            Purpose::Seal => 5,
        }
    }

    /// The purpose of a wire code.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// A challenge's random nonce: 16 bytes, so each code can be answered once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// A fresh nonce from the system's secure random generator.
    pub fn random() -> Result<Self, CryptoError> {
        crate::crypto::random_bytes::<16>().map(Nonce)
    }
}

/// One side of the handshake: the agent, the phone, and the phone's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    /// The agent.
    pub agent_id: AgentId,
    /// The agent's phone.
    pub device_id: DeviceId,
    /// The phone's key id.
    pub kid: Kid,
    /// The key's algorithm.
    pub alg: SignatureAlgorithm,
}

impl Party {
    /// The party for an agent using a phone with `key`.
    pub fn new(agent_id: AgentId, device_id: DeviceId, key: &PublicKey) -> Self {
        Self {
            agent_id,
            device_id,
            kid: key.kid(),
            alg: key.alg,
        }
    }

    /// A signature record by this party's key.
    pub fn record(&self, sig: &[u8; SIGNATURE_LEN]) -> SignatureRecord {
        SignatureRecord {
            kid: self.kid,
            alg: self.alg,
            sig: sig.to_vec(),
        }
    }
}

/// What the lead phone shows: the statement to co-sign and everything the partner checks.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// What is being co-signed.
    pub purpose: Purpose,
    /// The visit.
    pub visit_id: VisitId,
    /// SHA-256 of the signed approval body the lead holds.
    pub approval_digest: Digest,
    /// The lead agent, phone and key.
    pub lead: Party,
    /// The lead phone's position.
    pub lead_fix: Fix,
    /// The lead phone's time.
    pub lead_time: EventTime,
    /// Random, answered once.
    pub nonce: Nonce,
    /// After this (UTC ms, by the partner's anchored time) the challenge is refused.
    pub expires_at_ms: i64,
    /// SHA-256 of `statement`; the partner recomputes it.
    pub statement_digest: Digest,
    /// The canonical bytes to be signed.
    pub statement: Vec<u8>,
    /// The lead's signature over the statement, for [`Purpose::signature_purpose`].
    pub lead_statement_sig: [u8; SIGNATURE_LEN],
    /// The lead's signature over every field above, for [`CHALLENGE_PURPOSE`].
    pub signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A receipt statement names the payer: show its digest and size, never its bytes.
        f.debug_struct("Challenge")
            .field("purpose", &self.purpose)
            .field("visit_id", &self.visit_id)
            .field("lead", &self.lead)
            .field("nonce", &self.nonce)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("statement_digest", &self.statement_digest)
            .field("statement_len", &self.statement.len())
            .finish_non_exhaustive()
    }
}

impl Challenge {
    /// The binary form (DESIGN: `docs/handshake.md`).
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        let mut out = wire::encode_challenge_body(self)?;
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Reads a challenge, refusing anything but exactly one well-formed challenge.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        match Message::decode(bytes)? {
            Message::Challenge(c) => Ok(c),
            Message::Reply(_) => Err(PayloadError::WrongMessageType {
                expected: "challenge",
                found: "reply",
            }),
        }
    }

    /// Signs the statement and then the whole challenge with the lead's key.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), HandshakeError> {
        self.lead_statement_sig =
            sign_raw(signer, self.purpose.signature_purpose(), &self.statement)?;
        let body = wire::encode_challenge_body(self)?;
        self.signature = sign_raw(signer, CHALLENGE_PURPOSE, &body)?;
        Ok(())
    }

    /// The lead's statement signature as a record.
    pub fn lead_statement_signature(&self) -> SignatureRecord {
        self.lead.record(&self.lead_statement_sig)
    }

    /// Checks both lead signatures with the lead's key.
    pub fn verify_signatures(&self, key: &PublicKey) -> Result<(), HandshakeError> {
        self.lead_statement_signature()
            .verify(key, self.purpose.signature_purpose(), &self.statement)
            .map_err(HandshakeError::BadLeadSignature)?;
        let body = wire::encode_challenge_body(self)?;
        self.lead
            .record(&self.signature)
            .verify(key, CHALLENGE_PURPOSE, &body)
            .map_err(HandshakeError::BadLeadSignature)
    }
}

/// What the partner phone shows back: its signature over the statement, bound to the
/// challenge it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The challenge's purpose.
    pub purpose: Purpose,
    /// The visit.
    pub visit_id: VisitId,
    /// The partner agent, phone and key.
    pub partner: Party,
    /// The partner phone's position.
    pub partner_fix: Fix,
    /// The partner phone's time.
    pub partner_time: EventTime,
    /// The challenge's nonce.
    pub nonce: Nonce,
    /// The statement digest the partner recomputed.
    pub statement_digest: Digest,
    /// SHA-256 of the challenge's full binary form.
    pub challenge_digest: Digest,
    /// The partner's signature over the statement, for [`Purpose::signature_purpose`].
    pub partner_statement_sig: [u8; SIGNATURE_LEN],
    /// The partner's signature over every field above, for [`REPLY_PURPOSE`].
    pub signature: [u8; SIGNATURE_LEN],
}

impl Reply {
    /// The binary form (`docs/handshake.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = wire::encode_reply_body(self);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads a reply, refusing anything but exactly one well-formed reply.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        match Message::decode(bytes)? {
            Message::Reply(r) => Ok(r),
            Message::Challenge(_) => Err(PayloadError::WrongMessageType {
                expected: "reply",
                found: "challenge",
            }),
        }
    }

    /// Signs the reply's fields with the partner's key (the statement signature is made
    /// separately, over the statement bytes).
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), HandshakeError> {
        self.signature = sign_raw(signer, REPLY_PURPOSE, &wire::encode_reply_body(self))?;
        Ok(())
    }

    /// The partner's statement signature as a record.
    pub fn partner_statement_signature(&self) -> SignatureRecord {
        self.partner.record(&self.partner_statement_sig)
    }

    /// Checks both partner signatures with the partner's key, over `statement`.
    pub fn verify_signatures(
        &self,
        key: &PublicKey,
        statement: &[u8],
    ) -> Result<(), HandshakeError> {
        self.partner_statement_signature()
            .verify(key, self.purpose.signature_purpose(), statement)
            .map_err(HandshakeError::BadPartnerSignature)?;
        self.partner
            .record(&self.signature)
            .verify(key, REPLY_PURPOSE, &wire::encode_reply_body(self))
            .map_err(HandshakeError::BadPartnerSignature)
    }
}

/// Either message, as read from a payload whose type is not known in advance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A lead's challenge.
    Challenge(Challenge),
    /// A partner's reply.
    Reply(Reply),
}

impl Message {
    /// Reads one message: version byte, type byte, fields, nothing after.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        wire::decode_message(bytes)
    }

    /// The binary form.
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        match self {
            Message::Challenge(c) => c.encode(),
            Message::Reply(r) => Ok(r.encode()),
        }
    }
}

/// Signs for `purpose` and insists on the 64-byte signature both algorithms give.
pub(crate) fn sign_raw(
    signer: &dyn Signer,
    purpose: &str,
    document: &[u8],
) -> Result<[u8; SIGNATURE_LEN], HandshakeError> {
    let record =
        SignatureRecord::sign(signer, purpose, document).map_err(HandshakeError::Crypto)?;
    record.sig.as_slice().try_into().map_err(|_| {
        HandshakeError::Crypto(CryptoError::BadPrivateKey(format!(
            "signer returned a {}-byte signature, expected {SIGNATURE_LEN}",
            record.sig.len()
        )))
    })
}
