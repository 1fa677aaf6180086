//! The two-person handshake (DESIGN.md §5): two phones, offline, co-sign a statement
//! through QR codes.
//!
//! 1. The lead phone makes a [`Challenge`] ([`create_challenge`]) and shows its frames.
//! 2. The partner phone reassembles them ([`FrameAssembler`]), checks everything
//!    ([`check_challenge`]), shows the [`ChallengeSummary`], and only then signs a [`Reply`]
//!    ([`CheckedChallenge::reply`]).
//! 3. The lead phone verifies the reply ([`OutstandingChallenge::accept_reply`]) and gets
//!    a [`CoSigned`] result to record as an event.
//!
//! Both agents sign the statement as `"tandem/v1/<purpose>\n" || sha256(statement)`, so a
//! seal's two signatures are the bundle's manifest signatures. Every refusal is a distinct
//! [`HandshakeError`] naming its rule. Layout and frames: `docs/handshake.md`.

mod error;
mod frames;
mod lead;
mod message;
mod partner;
mod statement;
mod wire;

use std::collections::HashSet;

pub use error::{FrameError, HandshakeError, PayloadError, Role};
pub use frames::{
    FRAME_CHUNK_BYTES, FrameAssembler, FrameProgress, MAX_FRAME_CHARS, MAX_FRAMES, from_frames,
    to_frames,
};
pub use lead::{CoSigned, OutstandingChallenge, create_challenge};
pub use message::{
    CHALLENGE_PURPOSE, Challenge, Message, Nonce, Party, Purpose, REPLY_PURPOSE, Reply,
    SIGNATURE_LEN,
};
pub use partner::{ChallengeSummary, CheckedChallenge, PartnerReply, check_challenge};
pub use statement::{
    CheckInStatement, CheckOutStatement, ReceiptView, StatementView, VoidStatement,
};
pub use wire::{MAX_STATEMENT_BYTES, VERSION};

use crate::crypto::{Digest, PublicKey, Signer};
use crate::model::{AgentId, Approval, DeviceId, Policy, Signed, VisitId};

/// The visit both phones are on, with the server-signed approval checked once.
#[derive(Debug, Clone)]
pub struct ApprovedVisit {
    visit_id: VisitId,
    approval: Approval,
    approval_digest: Digest,
}

impl ApprovedVisit {
    /// Checks the server's signature on the approval (V02) and keeps it for `visit_id`
    /// (the visit of the ticket issued under that approval).
    pub fn verify(
        visit_id: VisitId,
        approval: &Signed<Approval>,
        server_key: &PublicKey,
    ) -> Result<Self, HandshakeError> {
        let document = approval
            .verify(server_key)
            .map_err(HandshakeError::Approval)?;
        Ok(Self {
            visit_id,
            approval: document,
            approval_digest: approval.digest(),
        })
    }

    /// The visit.
    pub fn visit_id(&self) -> VisitId {
        self.visit_id
    }

    /// The approval's content.
    pub fn approval(&self) -> &Approval {
        &self.approval
    }

    /// SHA-256 of the signed approval body: both phones must hold the same one.
    pub fn approval_digest(&self) -> Digest {
        self.approval_digest
    }

    /// The team key of `party`, refusing an agent off the team or on it with another
    /// phone or key (V03).
    fn key_of(&self, party: &Party, role: Role) -> Result<&PublicKey, HandshakeError> {
        let member = self
            .approval
            .member(party.agent_id)
            .ok_or(HandshakeError::NotOnTeam {
                role,
                agent: party.agent_id,
            })?;
        let key = &member.public_key;
        if member.device_id != party.device_id || key.kid() != party.kid || key.alg != party.alg {
            return Err(HandshakeError::UnknownDevice {
                role,
                agent: party.agent_id,
            });
        }
        Ok(key)
    }
}

/// The agent using this phone, and the phone's signing key.
#[derive(Clone, Copy)]
pub struct LocalAgent<'a> {
    /// The agent.
    pub agent_id: AgentId,
    /// This phone.
    pub device_id: DeviceId,
    /// This phone's key (a hardware keystore on a real phone).
    pub signer: &'a dyn Signer,
}

impl LocalAgent<'_> {
    /// This side as a party of the handshake.
    pub fn party(&self) -> Party {
        Party::new(self.agent_id, self.device_id, &self.signer.public_key())
    }
}

/// The policy values a handshake applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Furthest the two phones may be apart, metres (V05).
    pub partner_max_distance_m: u32,
    /// How long a challenge stays valid, ms.
    pub handshake_ttl_ms: i64,
    /// How far two phones' anchored clocks may disagree, ms: each anchored its clock on a
    /// different sync, so a challenge may look a little further ahead to the partner.
    pub clock_skew_ms: i64,
}

impl Limits {
    /// The limits of a bank's policy.
    pub fn from_policy(policy: &Policy) -> Self {
        Self {
            partner_max_distance_m: policy.partner_max_distance_m,
            handshake_ttl_ms: policy.handshake_ttl_ms,
            clock_skew_ms: policy.clock_tolerance_ms,
        }
    }
}

/// The partner phone's memory of challenge nonces it has answered, so a code is answered
/// once (the device store keeps them; a set does for tests and short sessions).
pub trait SeenNonces {
    /// Whether this nonce was answered before.
    fn seen(&self, nonce: &Nonce) -> bool;
    /// Records a nonce as answered.
    fn remember(&mut self, nonce: Nonce);
}

impl SeenNonces for HashSet<Nonce> {
    fn seen(&self, nonce: &Nonce) -> bool {
        self.contains(nonce)
    }

    fn remember(&mut self, nonce: Nonce) {
        self.insert(nonce);
    }
}

/// Refuses the same agent, or the same phone or key, on both sides (V03).
fn distinct(lead: &Party, partner: &Party) -> Result<(), HandshakeError> {
    if lead.agent_id == partner.agent_id {
        return Err(HandshakeError::SameAgent);
    }
    if lead.device_id == partner.device_id || lead.kid == partner.kid {
        return Err(HandshakeError::SameDevice);
    }
    Ok(())
}

/// This phone's anchored time; expiry is never judged by a wall clock.
fn anchored_now(now: &crate::model::EventTime) -> Result<i64, HandshakeError> {
    now.anchored_ms().ok_or(HandshakeError::Unanchored)
}

/// Measures the two fixes against each other (V05): no mock on either side, within the limit.
fn partner_distance(
    lead: &crate::place::Fix,
    partner: &crate::place::Fix,
    max_m: u32,
) -> Result<u32, HandshakeError> {
    use crate::place::{MockSide, PartnerOutcome, check_partner_distance};
    match check_partner_distance(lead, partner, max_m) {
        PartnerOutcome::Within { distance_m } => Ok(distance_m),
        PartnerOutcome::TooFar { distance_m, max_m } => {
            Err(HandshakeError::PartnerTooFar { distance_m, max_m })
        }
        PartnerOutcome::Mock {
            side: MockSide::First | MockSide::Both,
        } => Err(HandshakeError::MockFix { side: Role::Lead }),
        PartnerOutcome::Mock {
            side: MockSide::Second,
        } => Err(HandshakeError::MockFix {
            side: Role::Partner,
        }),
    }
}
