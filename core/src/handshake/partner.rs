//! The partner phone's side: check the lead's challenge, show it, and only then reply.

use crate::crypto::{Digest, Signer, sha256};
use crate::model::{AgentId, DeviceId, EventTime, VisitId};
use crate::place::Fix;

use super::error::{HandshakeError, Role};
use super::frames::to_frames;
use super::message::{Challenge, Party, Purpose, Reply, SIGNATURE_LEN, sign_raw};
use super::statement::StatementView;
use super::{
    ApprovedVisit, Limits, LocalAgent, SeenNonces, anchored_now, distinct, partner_distance,
};

/// What the partner's screen shows before the agent agrees to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeSummary {
    /// What is being co-signed.
    pub purpose: Purpose,
    /// The visit.
    pub visit_id: VisitId,
    /// The lead agent.
    pub lead_agent: AgentId,
    /// The lead's phone.
    pub lead_device: DeviceId,
    /// SHA-256 of the statement, recomputed on this phone.
    pub statement_digest: Digest,
    /// Distance between the two phones, metres.
    pub partner_distance_m: u32,
    /// When the challenge expires, UTC ms.
    pub expires_at_ms: i64,
    /// The statement's content, decoded from its canonical bytes.
    pub statement: StatementView,
}

/// A challenge that passed every check on the partner phone, ready to be answered.
#[derive(Debug, Clone)]
pub struct CheckedChallenge {
    challenge: Challenge,
    challenge_digest: Digest,
    summary: ChallengeSummary,
    me: Party,
    fix: Fix,
    time: EventTime,
}

/// Checks a reassembled challenge payload on the partner phone.
///
/// In order: same visit and approval; the lead on the team with that phone and key; this
/// phone's agent on the team and a different agent with a different phone (V03); the
/// lead's signatures; the statement digest recomputed from the bytes; expiry by this
/// phone's anchored time; the nonce never answered; no mock fix and the phones within the
/// policy distance (V05); the statement valid for its purpose on this visit.
pub fn check_challenge(
    payload: &[u8],
    visit: &ApprovedVisit,
    me: &LocalAgent<'_>,
    fix: Fix,
    now: EventTime,
    limits: &Limits,
    seen: &dyn SeenNonces,
) -> Result<CheckedChallenge, HandshakeError> {
    let challenge = Challenge::decode(payload)?;
    if challenge.visit_id != visit.visit_id() {
        return Err(HandshakeError::WrongVisit {
            expected: visit.visit_id(),
            found: challenge.visit_id,
        });
    }
    if challenge.approval_digest != visit.approval_digest() {
        return Err(HandshakeError::ApprovalMismatch {
            expected: visit.approval_digest(),
            found: challenge.approval_digest,
        });
    }
    let lead_key = visit.key_of(&challenge.lead, Role::Lead)?;
    let party = me.party();
    visit.key_of(&party, Role::Partner)?;
    distinct(&challenge.lead, &party)?;
    challenge.verify_signatures(lead_key)?;
    let computed = sha256(&challenge.statement);
    if computed != challenge.statement_digest {
        return Err(HandshakeError::DigestMismatch {
            computed,
            claimed: challenge.statement_digest,
        });
    }
    let now_ms = anchored_now(&now)?;
    if now_ms > challenge.expires_at_ms {
        return Err(HandshakeError::Expired {
            expires_at_ms: challenge.expires_at_ms,
            now_ms,
        });
    }
    let furthest = limits
        .handshake_ttl_ms
        .saturating_add(limits.clock_skew_ms.max(0));
    if challenge.expires_at_ms.saturating_sub(now_ms) > furthest {
        return Err(HandshakeError::ExpiryTooFar {
            expires_at_ms: challenge.expires_at_ms,
            now_ms,
            ttl_ms: limits.handshake_ttl_ms,
        });
    }
    if seen.seen(&challenge.nonce) {
        return Err(HandshakeError::ReplayedNonce);
    }
    let distance_m = partner_distance(&challenge.lead_fix, &fix, limits.partner_max_distance_m)?;
    let statement =
        StatementView::decode(challenge.purpose, challenge.visit_id, &challenge.statement)?;
    let summary = ChallengeSummary {
        purpose: challenge.purpose,
        visit_id: challenge.visit_id,
        lead_agent: challenge.lead.agent_id,
        lead_device: challenge.lead.device_id,
        statement_digest: computed,
        partner_distance_m: distance_m,
        expires_at_ms: challenge.expires_at_ms,
        statement,
    };
    Ok(CheckedChallenge {
        challenge_digest: sha256(payload),
        challenge,
        summary,
        me: party,
        fix,
        time: now,
    })
}

impl CheckedChallenge {
    /// What the partner's screen shows.
    pub fn summary(&self) -> &ChallengeSummary {
        &self.summary
    }

    /// The statement bytes that will be signed.
    pub fn statement(&self) -> &[u8] {
        &self.challenge.statement
    }

    /// The challenge as checked.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// Signs the statement and the reply with this phone's key, once the agent agreed,
    /// and records the nonce as answered.
    pub fn reply(
        &self,
        signer: &dyn Signer,
        seen: &mut dyn SeenNonces,
    ) -> Result<PartnerReply, HandshakeError> {
        let key = signer.public_key();
        if key.kid() != self.me.kid || key.alg != self.me.alg {
            return Err(HandshakeError::UnknownDevice {
                role: Role::Partner,
                agent: self.me.agent_id,
            });
        }
        // Checked again: another answer may have been given since the summary was shown.
        if seen.seen(&self.challenge.nonce) {
            return Err(HandshakeError::ReplayedNonce);
        }
        let c = &self.challenge;
        let mut reply = Reply {
            purpose: c.purpose,
            visit_id: c.visit_id,
            partner: self.me,
            partner_fix: self.fix.clone(),
            partner_time: self.time,
            nonce: c.nonce,
            // Recomputed when checked; never copied from the lead without checking.
            statement_digest: self.summary.statement_digest,
            challenge_digest: self.challenge_digest,
            partner_statement_sig: sign_raw(signer, c.purpose.signature_purpose(), &c.statement)?,
            signature: [0; SIGNATURE_LEN],
        };
        reply.sign(signer)?;
        seen.remember(c.nonce);
        let payload = reply.encode();
        Ok(PartnerReply { reply, payload })
    }
}

/// The partner's signed reply, ready to show.
#[derive(Debug, Clone)]
pub struct PartnerReply {
    reply: Reply,
    payload: Vec<u8>,
}

impl PartnerReply {
    /// The reply.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// The binary payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The QR frame texts to show, in order.
    pub fn frames(&self) -> Result<Vec<String>, HandshakeError> {
        Ok(to_frames(&self.payload)?)
    }
}
