//! The visit's append-only, hash-chained event log.

use serde::{Deserialize, Serialize};

use super::{
    AddressId, AgentId, DeviceId, Fen, HealthFlag, ModelError, ReceiptSerial, TemplateId, VisitId,
};
use crate::canonical;
use crate::crypto::{Digest, SignatureRecord, sha256};
use crate::place::Fix;
use crate::rules::{Outcome, RuleId};

/// When an event happened: the phone's wall clock, and the server-anchored time when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTime {
    /// The phone's wall clock, UTC ms: proves nothing on its own.
    pub wall_ms: i64,
    /// Server time of the anchor in force, UTC ms.
    pub anchor_ms: Option<i64>,
    /// Monotonic time elapsed since that anchor was received, ms.
    pub since_anchor_ms: Option<i64>,
}

impl EventTime {
    /// The anchored time, if the phone had a valid anchor.
    pub fn anchored_ms(&self) -> Option<i64> {
        Some(self.anchor_ms?.saturating_add(self.since_anchor_ms?))
    }

    /// The best estimate: anchored time, else the wall clock.
    pub fn best_ms(&self) -> i64 {
        self.anchored_ms().unwrap_or(self.wall_ms)
    }
}

/// A blob derived from an original (a thumbnail), listed with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedBlob {
    /// SHA-256 of the derived bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type, e.g. `image/jpeg`.
    pub media_type: String,
}

/// What the occupant consented to (V08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentScope {
    /// Entering the home or office.
    EnterPremises,
    /// Taking photos inside.
    InteriorPhotos,
}

/// Who the agents met (V09).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonMet {
    /// The card holder.
    Debtor,
    /// The guarantor.
    Guarantor,
    /// Anyone else: nothing about the debt may be disclosed to them.
    ThirdParty,
}

/// What the debtor disputes (V10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeKind {
    /// Denies the card is theirs.
    DeniesCard,
    /// Disputes the amount.
    DisputesAmount,
    /// Denies having applied (伪冒, impersonation).
    DeniesApplication,
}

/// A statement both agents signed through the handshake, kept so anyone can check it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoSignature {
    /// The signed statement: canonical JSON, exactly as signed.
    pub statement: String,
    /// The lead's signature over it.
    pub lead: SignatureRecord,
    /// The partner's signature over it.
    pub partner: SignatureRecord,
}

/// What kind of promise was recorded (V13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromiseKind {
    /// Pay the amount in full by a date: always allowed.
    PayInFull,
    /// A waiver of interest or fees.
    Waiver,
    /// Instalments.
    Instalments,
    /// Card reinstatement.
    Reinstatement,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Both agents checked in together at an approved address (V03, V05).
    CheckedIn {
        /// The address.
        address_id: AddressId,
        /// The partner agent.
        partner: AgentId,
        /// The partner's phone.
        partner_device: DeviceId,
        /// The partner phone's fix.
        partner_fix: Option<Fix>,
        /// Distance of this phone's fix from the address, metres.
        distance_m: u32,
        /// Distance between the two phones, metres.
        partner_distance_m: Option<u32>,
        /// The agent's reason when checking in outside the fence (V05 flag).
        outside_fence_reason: Option<String>,
        /// The check-in statement both phones signed (V03).
        cosignature: Option<CoSignature>,
    },
    /// Both agents checked out together (V03).
    CheckedOut {
        /// The partner agent.
        partner: AgentId,
        /// The partner's phone.
        partner_device: DeviceId,
        /// The partner phone's fix.
        partner_fix: Option<Fix>,
        /// The check-out statement both phones signed (V03).
        cosignature: Option<CoSignature>,
    },
    /// A photo, kept as taken.
    Photo {
        /// SHA-256 of the original bytes.
        original: Digest,
        /// Size of the original.
        size: u64,
        /// `image/jpeg` or `image/png`.
        media_type: String,
        /// Pixel width.
        width: u32,
        /// Pixel height.
        height: u32,
        /// Capture time from EXIF, UTC ms.
        exif_time_ms: Option<i64>,
        /// The thumbnail derived from it.
        thumbnail: DerivedBlob,
        /// Taken inside the premises (needs consent, V08).
        interior: bool,
    },
    /// A closed audio segment (V07).
    AudioSegment {
        /// Position in the recording, from 0.
        index: u32,
        /// SHA-256 of the WAV file.
        digest: Digest,
        /// Size in bytes.
        size: u64,
        /// Anchored time of its first sample.
        start_ms: i64,
        /// Length.
        duration_ms: i64,
        /// Repaired after the app was killed.
        recovered: bool,
    },
    /// A stretch without audio, with its reason (V07).
    AudioGap {
        /// From.
        from_ms: i64,
        /// Until.
        until_ms: i64,
        /// Why.
        reason: String,
    },
    /// A note typed by the agent.
    Note {
        /// The text.
        text: String,
    },
    /// The occupant's consent, spoken in the audio and recorded here (V08).
    Consent {
        /// To what.
        scope: ConsentScope,
    },
    /// Identity of the person met was confirmed (V09).
    IdentityConfirmed {
        /// Who.
        person: PersonMet,
    },
    /// The debtor disputes the debt: collection stops (V10).
    Dispute {
        /// What is disputed.
        kind: DisputeKind,
        /// The signed statement on the bank's template (impersonation).
        statement: Option<Digest>,
        /// Photo of the ID card's front.
        id_front: Option<Digest>,
        /// Photo of the ID card's back.
        id_back: Option<Digest>,
    },
    /// Serious illness or pregnancy in the household (V11).
    HealthFlagged {
        /// Which.
        flag: HealthFlag,
    },
    /// A bank template was used (V12).
    TemplateUsed {
        /// Which template.
        template_id: TemplateId,
        /// Which version.
        version: u32,
        /// SHA-256 of the filled-in document.
        document: Digest,
    },
    /// A promise was recorded (V13).
    Promise {
        /// What was promised.
        kind: PromiseKind,
        /// Amount promised.
        amount: Fen,
        /// By when, UTC ms.
        due_ms: i64,
    },
    /// A complaint, or a complaint risk seen in the field (P01).
    Complaint {
        /// What was said (no personal data beyond what the complaint needs).
        note: String,
    },
    /// A receipt both agents signed (C02): kept for good, voided only by a later event.
    ReceiptIssued {
        /// The receipt number.
        serial: ReceiptSerial,
        /// Amount received.
        amount: Fen,
        /// SHA-256 of the payer's signature image.
        payer_signature: Digest,
        /// The receipt statement and both agents' signatures.
        cosignature: CoSignature,
    },
    /// A receipt number voided, with its reason: co-signed for an issued receipt; signed by
    /// the lead alone for a number reserved and abandoned before co-signing.
    ReceiptVoided {
        /// The receipt number.
        serial: ReceiptSerial,
        /// Why.
        reason: String,
        /// The void statement (canonical JSON) as signed.
        statement: String,
        /// The lead's signature over it (purpose `void`).
        lead: SignatureRecord,
        /// The partner's signature; absent for an abandoned reservation.
        partner: Option<SignatureRecord>,
    },
    /// The phone's wall clock disagreed with the anchored time beyond tolerance (V04).
    ClockDiscrepancy {
        /// Phone wall clock.
        wall_ms: i64,
        /// Anchored time.
        anchored_ms: i64,
    },
    /// A warned or flagged rule violation, kept for review.
    RuleFlag {
        /// The rule.
        rule: RuleId,
        /// Warn or flag.
        outcome: Outcome,
        /// The message shown.
        message: String,
    },
}

/// A blob an event refers to; a derived one (a thumbnail) names its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRef {
    /// The blob's SHA-256.
    pub digest: Digest,
    /// The original it was made from, for a derived blob.
    pub derived_from: Option<Digest>,
}

impl EventKind {
    /// Every blob this event refers to: what a sealed bundle must carry for it.
    pub fn blobs(&self) -> Vec<BlobRef> {
        let own = |d: &Digest| BlobRef {
            digest: *d,
            derived_from: None,
        };
        match self {
            EventKind::Photo {
                original,
                thumbnail,
                ..
            } => vec![
                own(original),
                BlobRef {
                    digest: thumbnail.digest,
                    derived_from: Some(*original),
                },
            ],
            EventKind::AudioSegment { digest, .. } => vec![own(digest)],
            EventKind::Dispute {
                statement,
                id_front,
                id_back,
                ..
            } => [statement, id_front, id_back]
                .into_iter()
                .flatten()
                .map(own)
                .collect(),
            EventKind::TemplateUsed { document, .. } => vec![own(document)],
            EventKind::ReceiptIssued {
                payer_signature, ..
            } => vec![own(payer_signature)],
            _ => Vec::new(),
        }
    }
}

/// One entry of a visit's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The visit.
    pub visit_id: VisitId,
    /// Position in the log, from 0.
    pub seq: u64,
    /// SHA-256 of the previous event's canonical bytes; zero for the first.
    pub prev: Digest,
    /// When.
    pub at: EventTime,
    /// Where this phone was, if it had a fix.
    pub fix: Option<Fix>,
    /// The agent who recorded it.
    pub by: AgentId,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// The canonical bytes of the event (what the chain and the manifest hash).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, ModelError> {
        Ok(canonical::to_canonical_vec(self)?)
    }

    /// SHA-256 of the canonical bytes: the next event's `prev`.
    pub fn digest(&self) -> Result<Digest, ModelError> {
        Ok(sha256(&self.canonical_bytes()?))
    }
}

/// How a chain of events is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An event's `prev` is not the digest of the event before it: one was edited or removed.
    #[error("event {seq}: does not follow the event before it (edited, removed or reordered)")]
    BrokenLink {
        /// The event whose link fails.
        seq: u64,
    },
    /// Sequence numbers are not 0, 1, 2, …
    #[error("event at position {position} has seq {found}: events missing or reordered")]
    OutOfSequence {
        /// Position in the list.
        position: u64,
        /// The seq found there.
        found: u64,
    },
    /// An event belongs to another visit.
    #[error("event {seq} belongs to another visit")]
    WrongVisit {
        /// The event.
        seq: u64,
    },
    /// The last event is not the one the log's head names: the tail was edited or cut.
    #[error("the log's last event does not match its recorded head (tail edited or cut)")]
    HeadMismatch,
    /// An event could not be encoded canonically.
    #[error("event {seq} cannot be encoded canonically")]
    Unencodable {
        /// The event.
        seq: u64,
    },
}

/// Checks that `events` form one unbroken chain for `visit`, ending at `head` when given.
///
/// Finds any edited, removed, inserted or reordered event. The head (kept apart from the
/// events, and signed in the manifest) is what catches an edit of the last event.
pub fn verify_chain(
    visit: VisitId,
    events: &[Event],
    head: Option<Digest>,
) -> Result<(), ChainError> {
    let mut prev = Digest::ZERO;
    for (position, event) in events.iter().enumerate() {
        let position = position as u64;
        if event.visit_id != visit {
            return Err(ChainError::WrongVisit { seq: event.seq });
        }
        if event.seq != position {
            return Err(ChainError::OutOfSequence {
                position,
                found: event.seq,
            });
        }
        if event.prev != prev {
            return Err(ChainError::BrokenLink { seq: event.seq });
        }
        prev = event
            .digest()
            .map_err(|_| ChainError::Unencodable { seq: event.seq })?;
    }
    match head {
        Some(head) if head != prev => Err(ChainError::HeadMismatch),
        _ => Ok(()),
    }
}
