//! The lead phone's side: make the challenge, then accept the partner's reply.

use crate::crypto::{Digest, SignatureRecord, sha256};
use crate::model::{EventTime, VisitId};
use crate::place::Fix;

use super::error::{HandshakeError, Role};
use super::frames::to_frames;
use super::message::{Challenge, Nonce, Party, Purpose, Reply, SIGNATURE_LEN};
use super::statement::StatementView;
use super::{ApprovedVisit, Limits, LocalAgent, anchored_now, distinct, partner_distance};

/// A challenge the lead phone is showing, kept until the reply comes back or it expires.
#[derive(Clone)]
pub struct OutstandingChallenge {
    challenge: Challenge,
    payload: Vec<u8>,
    view: StatementView,
}

/// Makes and signs a challenge for `statement` (canonical JSON for `purpose`).
///
/// The lead refuses to show a challenge it could not itself stand behind: it must be on
/// the team with this phone, have an anchored clock and a real fix, and the statement must
/// be a valid one for the purpose on this visit.
pub fn create_challenge(
    visit: &ApprovedVisit,
    lead: &LocalAgent<'_>,
    purpose: Purpose,
    statement: Vec<u8>,
    fix: Fix,
    now: EventTime,
    limits: &Limits,
) -> Result<OutstandingChallenge, HandshakeError> {
    let party = lead.party();
    visit.key_of(&party, Role::Lead)?;
    let now_ms = anchored_now(&now)?;
    if fix.mock {
        return Err(HandshakeError::MockFix { side: Role::Lead });
    }
    let view = StatementView::decode(purpose, visit.visit_id(), &statement)?;
    let mut challenge = Challenge {
        purpose,
        visit_id: visit.visit_id(),
        approval_digest: visit.approval_digest(),
        lead: party,
        lead_fix: fix,
        lead_time: now,
        nonce: Nonce::random().map_err(HandshakeError::Crypto)?,
        expires_at_ms: now_ms.saturating_add(limits.handshake_ttl_ms),
        statement_digest: sha256(&statement),
        statement,
        lead_statement_sig: [0; SIGNATURE_LEN],
        signature: [0; SIGNATURE_LEN],
    };
    challenge.sign(lead.signer)?;
    let payload = challenge.encode()?;
    Ok(OutstandingChallenge {
        challenge,
        payload,
        view,
    })
}

impl OutstandingChallenge {
    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The typed statement, as the lead's own screen shows it.
    pub fn statement_view(&self) -> &StatementView {
        &self.view
    }

    /// The binary payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The QR frame texts to show, in order.
    pub fn frames(&self) -> Result<Vec<String>, HandshakeError> {
        Ok(to_frames(&self.payload)?)
    }

    /// Verifies the partner's reply (a reassembled payload) against this challenge, at the
    /// lead's anchored time `now`, and returns both signatures to record.
    pub fn accept_reply(
        &self,
        visit: &ApprovedVisit,
        reply_payload: &[u8],
        now: EventTime,
        limits: &Limits,
    ) -> Result<CoSigned, HandshakeError> {
        let reply = Reply::decode(reply_payload)?;
        let c = &self.challenge;
        if reply.visit_id != c.visit_id {
            return Err(HandshakeError::WrongVisit {
                expected: c.visit_id,
                found: reply.visit_id,
            });
        }
        let key = visit.key_of(&reply.partner, Role::Partner)?;
        distinct(&c.lead, &reply.partner)?;
        reply.verify_signatures(key, &c.statement)?;
        if reply.purpose != c.purpose {
            return Err(HandshakeError::NotThisChallenge { what: "purpose" });
        }
        if reply.nonce != c.nonce {
            return Err(HandshakeError::NotThisChallenge { what: "nonce" });
        }
        let challenge_digest = sha256(&self.payload);
        if reply.challenge_digest != challenge_digest {
            return Err(HandshakeError::NotThisChallenge {
                what: "challenge digest",
            });
        }
        if reply.statement_digest != c.statement_digest {
            return Err(HandshakeError::DigestMismatch {
                computed: c.statement_digest,
                claimed: reply.statement_digest,
            });
        }
        let now_ms = anchored_now(&now)?;
        if now_ms > c.expires_at_ms {
            return Err(HandshakeError::Expired {
                expires_at_ms: c.expires_at_ms,
                now_ms,
            });
        }
        let distance_m = partner_distance(
            &c.lead_fix,
            &reply.partner_fix,
            limits.partner_max_distance_m,
        )?;
        Ok(CoSigned {
            purpose: c.purpose,
            visit_id: c.visit_id,
            statement: c.statement.clone(),
            statement_digest: c.statement_digest,
            lead: c.lead,
            lead_signature: c.lead_statement_signature(),
            lead_fix: c.lead_fix.clone(),
            lead_time: c.lead_time,
            partner: reply.partner,
            partner_signature: reply.partner_statement_signature(),
            partner_fix: reply.partner_fix.clone(),
            partner_time: reply.partner_time,
            partner_distance_m: distance_m,
            nonce: c.nonce,
            challenge_digest,
        })
    }
}

/// A statement both agents signed, with where and when each phone was: what the lead
/// records as the co-signed event.
#[derive(Clone, PartialEq, Eq)]
pub struct CoSigned {
    /// What was co-signed.
    pub purpose: Purpose,
    /// The visit.
    pub visit_id: VisitId,
    /// The canonical statement bytes both signed.
    pub statement: Vec<u8>,
    /// SHA-256 of the statement.
    pub statement_digest: Digest,
    /// The lead agent, phone and key.
    pub lead: Party,
    /// The lead's signature over the statement.
    pub lead_signature: SignatureRecord,
    /// The lead phone's fix.
    pub lead_fix: Fix,
    /// The lead phone's time.
    pub lead_time: EventTime,
    /// The partner agent, phone and key.
    pub partner: Party,
    /// The partner's signature over the statement.
    pub partner_signature: SignatureRecord,
    /// The partner phone's fix.
    pub partner_fix: Fix,
    /// The partner phone's time.
    pub partner_time: EventTime,
    /// Distance between the two fixes, metres.
    pub partner_distance_m: u32,
    /// The challenge's nonce.
    pub nonce: Nonce,
    /// SHA-256 of the challenge payload the partner answered.
    pub challenge_digest: Digest,
}

impl std::fmt::Debug for OutstandingChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutstandingChallenge")
            .field("challenge", &self.challenge)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CoSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The statement may name the payer: its digest and size identify it well enough.
        f.debug_struct("CoSigned")
            .field("purpose", &self.purpose)
            .field("visit_id", &self.visit_id)
            .field("statement_digest", &self.statement_digest)
            .field("statement_len", &self.statement.len())
            .field("lead", &self.lead)
            .field("partner", &self.partner)
            .field("partner_distance_m", &self.partner_distance_m)
            .finish_non_exhaustive()
    }
}
