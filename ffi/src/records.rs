//! What the screens show, as plain records: copied from core's types field by field, ids and
//! digests as text, money in fen. Card and ID numbers arrive masked (core keeps nothing else).

use tandem_core::handshake::{ChallengeSummary, StatementView};
use tandem_core::model::{
    Case, CaseStatus, ConsentScope, DisputeKind, HealthFlag, HoldReason, PaymentMethod, PersonMet,
    PromiseKind, VisitState,
};
use tandem_core::phone::Recorded;
use tandem_core::rules::{Outcome, Violation};
use tandem_core::store::{SerialEntry, SerialState, VisitRecord};
use tandem_core::text::visible;

/// Where a visit stands (DESIGN.md §4).
#[uniffi::remote(Enum)]
pub enum VisitState {
    Assigned,
    CheckedIn,
    Active,
    CheckedOut,
    Sealed,
    Uploading,
    Acknowledged,
    Purged,
}

/// Block, warn or flag.
#[uniffi::remote(Enum)]
pub enum Outcome {
    Flag,
    Warn,
    Block,
}

/// Who the agents met (V09).
#[uniffi::remote(Enum)]
pub enum PersonMet {
    Debtor,
    Guarantor,
    ThirdParty,
}

/// What the occupant consented to (V08).
#[uniffi::remote(Enum)]
pub enum ConsentScope {
    EnterPremises,
    InteriorPhotos,
}

/// What the debtor disputes (V10).
#[uniffi::remote(Enum)]
pub enum DisputeKind {
    DeniesCard,
    DisputesAmount,
    DeniesApplication,
}

/// Illness or pregnancy in the household (V11).
#[uniffi::remote(Enum)]
pub enum HealthFlag {
    SeriousIllness,
    Pregnancy,
}

/// The kind of a promise to pay (V13).
#[uniffi::remote(Enum)]
pub enum PromiseKind {
    PayInFull,
    Waiver,
    Instalments,
    Reinstatement,
}

/// Cash or cheque.
#[uniffi::remote(Enum)]
pub enum PaymentMethod {
    Cash,
    Cheque,
}

/// Why a case is on hold.
#[uniffi::remote(Enum)]
pub enum HoldReason {
    Dispute,
    Complaint,
    VulnerabilityReview,
}

/// Where a case stands with the bank.
#[uniffi::remote(Enum)]
pub enum CaseStatus {
    Active,
    Settled,
    OnHold { reason: HoldReason },
}

/// Where a receipt number stands.
#[uniffi::remote(Enum)]
pub enum SerialState {
    Reserved,
    Issued,
    Voided,
}

/// What a co-signing is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CoSignPurpose {
    /// Checking in together.
    CheckIn,
    /// Checking out together.
    CheckOut,
    /// A receipt for money received.
    Receipt,
    /// Voiding a receipt.
    Void,
    /// Sealing the visit.
    Seal,
}

/// A rule's finding (DOMAIN.md id, outcome, message for the agent).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RuleViolation {
    /// `V04`, `E03`…
    pub rule: String,
    /// Block, warn or flag.
    pub outcome: Outcome,
    /// What is wrong and what to do.
    pub message: String,
}

impl From<&Violation> for RuleViolation {
    fn from(v: &Violation) -> Self {
        Self {
            rule: v.rule.to_string(),
            outcome: v.outcome,
            message: v.message.clone(),
        }
    }
}

/// Copies a list of violations.
pub(crate) fn violations(list: &[Violation]) -> Vec<RuleViolation> {
    list.iter().map(RuleViolation::from).collect()
}

/// An action that was recorded: its event and the warnings or flags the agent should see.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordedEvent {
    /// The event's place in the visit's log.
    pub seq: u64,
    /// Its kind, as in the bundle (`checked_in`, `photo`, `note`…).
    pub kind: String,
    /// When, by the server-anchored clock when anchored, UTC ms.
    pub at_ms: i64,
    /// Whether `at_ms` is anchored on the server's time (else the phone's wall clock).
    pub anchored: bool,
    /// Warnings and flags (recorded as events too).
    pub violations: Vec<RuleViolation>,
}

impl From<&Recorded> for RecordedEvent {
    fn from(r: &Recorded) -> Self {
        let mut event = EventSummary::from(&r.event);
        Self {
            seq: event.seq,
            kind: std::mem::take(&mut event.kind),
            at_ms: event.at_ms,
            anchored: event.anchored,
            violations: violations(&r.violations),
        }
    }
}

/// One event of a visit's log, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EventSummary {
    /// Place in the log.
    pub seq: u64,
    /// Kind, as in the bundle (`checked_in`, `photo`, `audio_segment`, `rule_flag`…).
    pub kind: String,
    /// When, UTC ms (anchored when `anchored`).
    pub at_ms: i64,
    /// Whether the time is anchored on the server's.
    pub anchored: bool,
    /// For a `rule_flag` event: the rule's finding.
    pub flag: Option<RuleViolation>,
}

impl From<&tandem_core::model::Event> for EventSummary {
    fn from(e: &tandem_core::model::Event) -> Self {
        use tandem_core::model::EventKind;
        let kind = serde_json::to_value(&e.kind)
            .ok()
            .and_then(|v| v.get("type")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        let flag = match &e.kind {
            EventKind::RuleFlag {
                rule,
                outcome,
                message,
            } => Some(RuleViolation {
                rule: rule.to_string(),
                outcome: *outcome,
                message: message.clone(),
            }),
            _ => None,
        };
        Self {
            seq: e.seq,
            kind,
            at_ms: e.at.best_ms(),
            anchored: e.at.anchored_ms().is_some(),
            flag,
        }
    }
}

/// A visit as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VisitSummary {
    /// Visit id.
    pub id: String,
    /// The case visited.
    pub case_id: String,
    /// The manager's approval.
    pub approval_id: String,
    /// Where it stands.
    pub state: VisitState,
    /// Checked in at, UTC ms.
    pub checked_in_at_ms: Option<i64>,
    /// Checked out at, UTC ms.
    pub checked_out_at_ms: Option<i64>,
    /// Sealed at, UTC ms.
    pub sealed_at_ms: Option<i64>,
    /// When the server's receipt was verified, UTC ms.
    pub acknowledged_at_ms: Option<i64>,
    /// Events in its log.
    pub events: u64,
}

impl From<&VisitRecord> for VisitSummary {
    fn from(r: &VisitRecord) -> Self {
        let v = &r.visit;
        Self {
            id: v.id.to_string(),
            case_id: v.case_id.to_string(),
            approval_id: v.approval_id.to_string(),
            state: v.state,
            checked_in_at_ms: v.checked_in_at_ms,
            checked_out_at_ms: v.checked_out_at_ms,
            sealed_at_ms: v.sealed_at_ms,
            acknowledged_at_ms: r.acknowledged_at_ms,
            events: r.head.map_or(0, |h| h.seq + 1),
        }
    }
}

/// What the rules say about a visit now (the visit screen's rule state).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VisitRules {
    /// For an assigned visit: the check-in rules with this phone's fix, before the partner
    /// answers (empty: nothing stands in the way).
    pub check_in_now: Vec<RuleViolation>,
    /// Rules recorded on the visit so far as warnings or flags (`V07`…), in order.
    pub recorded_flags: Vec<String>,
}

impl From<&tandem_core::phone::VisitOverview> for VisitRules {
    fn from(o: &tandem_core::phone::VisitOverview) -> Self {
        Self {
            check_in_now: violations(&o.check_in_now),
            recorded_flags: o.recorded_flags.iter().map(ToString::to_string).collect(),
        }
    }
}

/// An approved address of a case.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AddressView {
    /// Address id.
    pub id: String,
    /// As written.
    pub text: String,
    /// Latitude, 1e-7 degrees, WGS-84.
    pub lat_e7: i32,
    /// Longitude, 1e-7 degrees, WGS-84.
    pub lon_e7: i32,
}

/// A case as the visit screen shows it: numbers masked, direction controls in the bank's
/// text shown as their codes (`tandem_core::text::visible`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CaseView {
    /// Case id.
    pub id: String,
    /// The bank's own reference.
    pub case_ref: String,
    /// The card, masked (`**** **** **** 7890`).
    pub card_masked: String,
    /// The card holder's name.
    pub debtor_name: String,
    /// The ID number, masked.
    pub debtor_id_masked: String,
    /// Approved addresses.
    pub addresses: Vec<AddressView>,
    /// Amount in arrears, fen.
    pub outstanding_fen: i64,
    /// Where the case stands.
    pub status: CaseStatus,
    /// Illness or pregnancy recorded on an earlier visit.
    pub health_flag: Option<HealthFlag>,
}

impl From<Case> for CaseView {
    fn from(c: Case) -> Self {
        Self {
            id: c.id.to_string(),
            case_ref: visible(&c.case_ref).into_owned(),
            card_masked: c.card.as_str().to_owned(),
            debtor_name: visible(&c.debtor.name).into_owned(),
            debtor_id_masked: c.debtor.id_number.as_str().to_owned(),
            addresses: c
                .addresses
                .into_iter()
                .map(|a| {
                    let wgs = a.position.to_wgs84();
                    AddressView {
                        id: a.id.to_string(),
                        text: visible(&a.text).into_owned(),
                        lat_e7: wgs.lat_e7(),
                        lon_e7: wgs.lon_e7(),
                    }
                })
                .collect(),
            outstanding_fen: c.outstanding.0,
            status: c.status,
            health_flag: c.health_flag,
        }
    }
}

/// What the partner's screen shows before its agent agrees to co-sign.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChallengeView {
    /// What is being co-signed.
    pub purpose: CoSignPurpose,
    /// The visit.
    pub visit_id: String,
    /// The lead agent.
    pub lead_agent: String,
    /// The lead's phone.
    pub lead_device: String,
    /// SHA-256 of the statement, recomputed on this phone (hex).
    pub statement_digest: String,
    /// Distance between the two phones, metres.
    pub partner_distance_m: u32,
    /// When the challenge expires, UTC ms.
    pub expires_at_ms: i64,
    /// For a receipt: what the payer paid.
    pub receipt: Option<ReceiptView>,
    /// For a void: why.
    pub void_reason: Option<String>,
    /// For a check-in: the lead's distance to the nearest approved address, metres.
    pub lead_address_distance_m: Option<u32>,
    /// For a check-in: the fence radius around the address, metres.
    pub fence_m: Option<u32>,
    /// For a check-in outside the fence: the lead's stated reason.
    pub outside_fence_reason: Option<String>,
    /// The warnings and flags this phone's own rules raise on the statement.
    pub warnings: Vec<RuleViolation>,
}

impl From<&ChallengeSummary> for ChallengeView {
    fn from(s: &ChallengeSummary) -> Self {
        use tandem_core::handshake::Purpose;
        let purpose = match s.purpose {
            Purpose::CheckIn => CoSignPurpose::CheckIn,
            Purpose::CheckOut => CoSignPurpose::CheckOut,
            Purpose::Receipt => CoSignPurpose::Receipt,
            Purpose::Void => CoSignPurpose::Void,
            Purpose::Seal => CoSignPurpose::Seal,
        };
        let (receipt, void_reason) = match &s.statement {
            StatementView::Receipt(r) => (
                Some(ReceiptView {
                    serial: r.serial,
                    amount_fen: r.amount.0,
                    currency: r.currency.clone(),
                    method: r.method,
                    payer_role: r.payer_role,
                    payer_name: r.payer_name.clone(),
                }),
                None,
            ),
            StatementView::Void(v) => (None, Some(v.reason.clone())),
            _ => (None, None),
        };
        Self {
            purpose,
            visit_id: s.visit_id.to_string(),
            lead_agent: s.lead_agent.to_string(),
            lead_device: s.lead_device.to_string(),
            statement_digest: s.statement_digest.to_hex(),
            partner_distance_m: s.partner_distance_m,
            expires_at_ms: s.expires_at_ms,
            receipt,
            void_reason,
            lead_address_distance_m: None,
            fence_m: None,
            outside_fence_reason: None,
            warnings: Vec::new(),
        }
    }
}

impl From<&tandem_core::phone::Review> for ChallengeView {
    fn from(review: &tandem_core::phone::Review) -> Self {
        let mut view = Self::from(review.summary());
        if let Some(check_in) = review.check_in() {
            view.lead_address_distance_m = Some(check_in.lead_distance_m);
            view.fence_m = Some(check_in.fence_m);
            view.outside_fence_reason = check_in.outside_fence_reason.clone();
        }
        view.warnings = review.warnings().iter().map(RuleViolation::from).collect();
        view
    }
}

/// A receipt's content as both agents and the payer see it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiptView {
    /// Receipt number.
    pub serial: u64,
    /// Amount, fen.
    pub amount_fen: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Cash or cheque.
    pub method: PaymentMethod,
    /// The payer's relation to the case.
    pub payer_role: PersonMet,
    /// The payer's name as written.
    pub payer_name: String,
}

/// A receipt number this phone took, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReceiptEntry {
    /// The number.
    pub serial: u64,
    /// The visit it was taken on.
    pub visit_id: String,
    /// Reserved, issued or voided.
    pub state: SerialState,
    /// When it was reserved, UTC ms.
    pub reserved_at_ms: i64,
    /// Why it was voided.
    pub void_reason: Option<String>,
}

impl From<&SerialEntry> for ReceiptEntry {
    fn from(e: &SerialEntry) -> Self {
        Self {
            serial: e.serial.0,
            visit_id: e.visit_id.to_string(),
            state: e.state,
            reserved_at_ms: e.reserved_at_ms,
            void_reason: e.void_reason.clone(),
        }
    }
}

/// What the agent enters for a receipt; the phone fills in number, account, time and place.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReceiptInput {
    /// The payer's relation to the case (V09: the debtor or the guarantor).
    pub payer_role: PersonMet,
    /// The payer's name as written on the receipt.
    pub payer_name: String,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Cash or cheque.
    pub method: PaymentMethod,
    /// The payer's handwritten signature as a PNG; empty when the payer did not sign.
    pub payer_signature_png: Vec<u8>,
}

/// Something recorded during the visit, each named as the event it records. Digests are lowercase hex of photos captured first.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum VisitAction {
    /// A typed note.
    Note { text: String },
    /// The occupant's consent (V08).
    Consent { scope: ConsentScope },
    /// Whose identity was confirmed (V09).
    IdentityConfirmed { person: PersonMet },
    /// A dispute: collection stops (V10).
    Dispute {
        kind: DisputeKind,
        statement: Option<String>,
        id_front: Option<String>,
        id_back: Option<String>,
    },
    /// Illness or pregnancy in the household (V11).
    HealthFlagged { flag: HealthFlag },
    /// A bank template filled in (V12).
    TemplateUsed {
        template_id: String,
        version: u32,
        document: String,
    },
    /// A promise to pay (V13).
    Promise {
        kind: PromiseKind,
        amount_fen: i64,
        due_ms: i64,
    },
    /// A complaint or complaint risk (P01).
    Complaint { note: String },
}

/// A photo kept: the digests of the original and its thumbnail, and what was recorded.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PhotoCaptured {
    /// SHA-256 of the photo as taken (hex): what a dispute or template action names.
    pub original: String,
    /// SHA-256 of the thumbnail (hex).
    pub thumbnail: String,
    /// The photo's event, with warnings and flags.
    pub recorded: RecordedEvent,
}

/// What a completed co-signing recorded on the lead's phone.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Completion {
    /// The team checked in.
    CheckedIn { recorded: RecordedEvent },
    /// The team checked out.
    CheckedOut { recorded: RecordedEvent },
    /// The visit was sealed into a co-signed bundle, queued for upload.
    Sealed { seal: SealSummary },
    /// A receipt was issued with both signatures.
    ReceiptIssued { recorded: RecordedEvent },
    /// A receipt was voided with both signatures.
    ReceiptVoided { recorded: RecordedEvent },
}

/// A sealed visit's bundle.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SealSummary {
    /// The visit.
    pub visit_id: String,
    /// The bundle id (the upload's idempotency key).
    pub bundle_id: String,
    /// This phone's bundle number.
    pub device_seq: u64,
    /// SHA-256 of `manifest.json` (hex).
    pub manifest_digest: String,
    /// Anchored time of sealing, UTC ms.
    pub sealed_at_ms: i64,
}

impl From<&tandem_core::store::SealRecord> for SealSummary {
    fn from(s: &tandem_core::store::SealRecord) -> Self {
        Self {
            visit_id: s.visit_id.to_string(),
            bundle_id: s.bundle_id.to_string(),
            device_seq: s.device_seq,
            manifest_digest: s.manifest.to_hex(),
            sealed_at_ms: s.sealed_at_ms,
        }
    }
}

/// The phone's identity after enrolment.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Identity {
    /// This phone's device id.
    pub device_id: String,
    /// The agent it belongs to.
    pub agent_id: String,
}

/// Now, as the phone knows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PhoneTime {
    /// The phone's wall clock, UTC ms.
    pub wall_ms: i64,
    /// Server-anchored time, UTC ms, when an anchor holds (after a sync in this boot).
    pub anchored_ms: Option<i64>,
}
