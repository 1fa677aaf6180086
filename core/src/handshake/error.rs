//! Why a handshake payload, frame or step is refused: one variant per reason, naming the
//! rule of DOMAIN.md where one applies.

use crate::crypto::{CryptoError, Digest};
use crate::model::{AgentId, ModelError, VisitId};
use crate::rules::RuleId;

/// Which phone of the handshake a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The phone that shows the challenge and records the co-signed event.
    Lead,
    /// The phone that checks the challenge and replies.
    Partner,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Lead => "lead",
            Role::Partner => "partner",
        })
    }
}

/// Why a binary payload is not a well-formed challenge or reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The first byte names a layout this build does not know.
    #[error("handshake payload version {found} is not supported (this phone reads version 1)")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// The second byte names neither a challenge nor a reply.
    #[error("handshake message type {found} is unknown")]
    UnknownMessageType {
        /// The type byte found.
        found: u8,
    },
    /// A challenge where a reply was expected, or the other way round.
    #[error("expected a handshake {expected}, got a {found}")]
    WrongMessageType {
        /// What the caller expected.
        expected: &'static str,
        /// What the payload is.
        found: &'static str,
    },
    /// The payload ends inside a field.
    #[error("handshake payload ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes follow the last field.
    #[error("handshake payload has {count} trailing bytes")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A field holds a value outside its allowed set.
    #[error("handshake payload field {field} is invalid: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The statement is longer than any handshake may carry.
    #[error("statement of {len} bytes is over the limit of {limit}")]
    StatementTooLarge {
        /// Its length (as declared, or as given to the encoder).
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// Why a QR frame is refused, or frames do not make one message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The text is not a Tandem handshake frame at all.
    #[error("not a Tandem handshake code (expected the prefix TH1/)")]
    NotAFrame,
    /// A Tandem frame of a framing version this build does not read.
    #[error("handshake frame version {found:?} is not supported (this phone reads TH1)")]
    UnknownFrameVersion {
        /// The prefix found, e.g. `TH2`.
        found: String,
    },
    /// The frame text is longer than any frame this format makes.
    #[error("frame of {len} characters is over the limit of {limit}")]
    FrameTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The header (message id, index, count) is malformed.
    #[error("frame header is malformed: {reason}")]
    BadHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// The chunk is not canonical base45.
    #[error("frame {index}: chunk is not canonical base45")]
    BadChunk {
        /// The frame's index (1-based).
        index: usize,
    },
    /// A chunk of the wrong size for its place in the message.
    #[error("frame {index} of {total}: chunk of {len} bytes has the wrong size")]
    ChunkSize {
        /// The frame's index (1-based).
        index: usize,
        /// The frame count.
        total: usize,
        /// The decoded chunk's length.
        len: usize,
    },
    /// A frame of another message than the frames already scanned.
    #[error("frame belongs to message {found}, not {expected}: scan one code at a time")]
    OtherMessage {
        /// The message being assembled.
        expected: String,
        /// The message the frame belongs to.
        found: String,
    },
    /// A frame of the same message with a different frame count.
    #[error("frame says the message has {found} frames, earlier frames said {expected}")]
    InconsistentCount {
        /// The count of earlier frames.
        expected: usize,
        /// The count this frame gives.
        found: usize,
    },
    /// The same frame index twice with different chunks.
    #[error("frame {index} was scanned twice with different contents")]
    ConflictingDuplicate {
        /// The index (1-based).
        index: usize,
    },
    /// The reassembled payload does not hash to its message id: frames were altered.
    #[error("reassembled payload does not match its message id {msg_id}")]
    MessageIdMismatch {
        /// The message id of the frames.
        msg_id: String,
    },
    /// Frames are missing: the message is not complete.
    #[error("only {received} of {total} frames scanned")]
    Incomplete {
        /// Distinct frames held.
        received: usize,
        /// Frames in the message (0 when none was scanned).
        total: usize,
    },
    /// A payload too large to frame.
    #[error("payload of {len} bytes needs more than {limit} frames")]
    TooManyFrames {
        /// The payload's length.
        len: usize,
        /// The frame limit.
        limit: usize,
    },
}

/// Every refusal of a handshake step.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// An agent is not on the approved team (V03).
    #[error("V03: the {role} agent {agent} is not on the approved team")]
    NotOnTeam {
        /// Which phone.
        role: Role,
        /// The agent named.
        agent: AgentId,
    },
    /// An agent is on the team, but with another phone or key (V03).
    #[error("V03: the {role} agent {agent} is on the team, but not with this phone and key")]
    UnknownDevice {
        /// Which phone.
        role: Role,
        /// The agent named.
        agent: AgentId,
    },
    /// Lead and partner are the same agent (V03).
    #[error("V03: lead and partner are the same agent; two different agents are required")]
    SameAgent,
    /// Lead and partner use the same phone or key (V03).
    #[error("V03: lead and partner use the same phone or key; each agent needs their own")]
    SameDevice,
    /// The payload or its statement is for another visit (V03).
    #[error("V03: the handshake is for visit {found}, this phone is on visit {expected}")]
    WrongVisit {
        /// This phone's visit.
        expected: VisitId,
        /// The visit the payload names.
        found: VisitId,
    },
    /// The two phones hold different approvals for the visit (V03).
    #[error("V03: the lead holds approval {found}, this phone holds {expected}; sync both")]
    ApprovalMismatch {
        /// Digest of this phone's signed approval.
        expected: Digest,
        /// Digest the lead's challenge names.
        found: Digest,
    },
    /// The server's signature on the approval does not verify (V02).
    #[error("V02: the approval does not verify: {0}")]
    Approval(#[source] ModelError),
    /// A fix came from a mock-location provider (V05).
    #[error("V05: the {side} phone's position comes from a mock-location provider")]
    MockFix {
        /// Whose fix.
        side: Role,
    },
    /// The two phones are further apart than the policy allows (V05).
    #[error("V05: the phones are {distance_m} m apart, more than the {max_m} m allowed")]
    PartnerTooFar {
        /// Distance between the fixes.
        distance_m: u32,
        /// The policy limit.
        max_m: u32,
    },
    /// The challenge expired.
    #[error("the challenge expired at {expires_at_ms}, it is now {now_ms}; show a new one")]
    Expired {
        /// The challenge's expiry, UTC ms.
        expires_at_ms: i64,
        /// This phone's anchored time, UTC ms.
        now_ms: i64,
    },
    /// The challenge's expiry lies further ahead than the policy's time to live.
    #[error(
        "the challenge expires at {expires_at_ms}, more than {ttl_ms} ms after now ({now_ms}): the lead's clock is off"
    )]
    ExpiryTooFar {
        /// The challenge's expiry, UTC ms.
        expires_at_ms: i64,
        /// This phone's anchored time, UTC ms.
        now_ms: i64,
        /// The policy's handshake time to live.
        ttl_ms: i64,
    },
    /// This phone has no server-anchored time, so expiry cannot be judged.
    #[error("this phone has no server-anchored time; sync before the handshake")]
    Unanchored,
    /// The challenge's nonce was seen before: a replayed code.
    #[error("this challenge was already answered (nonce seen before); show a new one")]
    ReplayedNonce,
    /// The lead's signatures on the challenge do not verify.
    #[error("the lead's signature on the challenge does not verify: {0}")]
    BadLeadSignature(#[source] CryptoError),
    /// The partner's signatures on the reply do not verify.
    #[error("the partner's signature on the reply does not verify: {0}")]
    BadPartnerSignature(#[source] CryptoError),
    /// The statement bytes do not hash to the digest the payload names.
    #[error("statement digest mismatch: the bytes hash to {computed}, the payload says {claimed}")]
    DigestMismatch {
        /// SHA-256 of the bytes at hand.
        computed: Digest,
        /// The digest the payload names.
        claimed: Digest,
    },
    /// The reply answers another challenge (nonce, purpose or challenge digest differ).
    #[error("the reply answers another challenge ({what} differs)")]
    NotThisChallenge {
        /// Which field differs.
        what: &'static str,
    },
    /// The statement is not a valid document for its purpose.
    #[error("the {purpose} statement is invalid: {reason}")]
    StatementInvalid {
        /// The purpose.
        purpose: &'static str,
        /// Why.
        reason: String,
    },
    /// The payload bytes are malformed.
    #[error("malformed handshake payload: {0}")]
    Payload(#[from] PayloadError),
    /// The QR frames are malformed.
    #[error("malformed handshake frames: {0}")]
    Frame(#[from] FrameError),
    /// Signing or random generation failed on this phone.
    #[error("cryptographic operation failed: {0}")]
    Crypto(#[source] CryptoError),
}

impl HandshakeError {
    /// The rule of DOMAIN.md this refusal enforces, if any.
    pub fn rule(&self) -> Option<RuleId> {
        use HandshakeError::*;
        match self {
            NotOnTeam { .. }
            | UnknownDevice { .. }
            | SameAgent
            | SameDevice
            | WrongVisit { .. }
            | ApprovalMismatch { .. } => Some(RuleId::V03),
            Approval(_) => Some(RuleId::V02),
            MockFix { .. } | PartnerTooFar { .. } => Some(RuleId::V05),
            Expired { .. }
            | ExpiryTooFar { .. }
            | Unanchored
            | ReplayedNonce
            | BadLeadSignature(_)
            | BadPartnerSignature(_)
            | DigestMismatch { .. }
            | NotThisChallenge { .. }
            | StatementInvalid { .. }
            | Payload(_)
            | Frame(_)
            | Crypto(_) => None,
        }
    }
}
