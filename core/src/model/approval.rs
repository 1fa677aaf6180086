//! What the server signs for a visit: the manager's approval, the visit ticket, time anchors.

use serde::{Deserialize, Serialize};

use super::signed::SignedPurpose;
use super::{AddressId, AgentId, ApprovalId, BankId, CaseId, DeviceId, Fen, TemplateId, VisitId};
use crate::crypto::{Digest, PublicKey};

/// One agent of an approved team, with the enrolled phone and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    /// The agent.
    pub agent_id: AgentId,
    /// The agent's enrolled phone.
    pub device_id: DeviceId,
    /// That phone's public key, so partners verify each other offline.
    pub public_key: PublicKey,
}

/// The bank's authorisation letter (委托书) the agents carry (V06).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisationLetter {
    /// The letter's number.
    pub number: String,
    /// Valid until, UTC ms (exclusive).
    pub valid_until_ms: i64,
}

/// How a payment may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Cash.
    Cash,
    /// A cheque.
    Cheque,
}

/// The bank's authorisation to collect money on this visit (C01).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashAuthorisation {
    /// Most that may be collected on the visit.
    pub limit: Fen,
    /// ISO 4217 code, `CNY`.
    pub currency: String,
    /// The bank account the money must be deposited into (shown masked).
    pub designated_account: String,
    /// Accepted methods.
    pub methods: Vec<PaymentMethod>,
}

/// What the bank allows agents to offer (V13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromiseAuthorisation {
    /// Waiving interest or fees.
    pub waiver: bool,
    /// Paying in instalments.
    pub instalments: bool,
    /// Reinstating the card.
    pub reinstatement: bool,
}

/// An appointment with the debtor, which allows a visit outside normal hours (V04).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appointment {
    /// From, UTC ms.
    pub from_ms: i64,
    /// Until, UTC ms (exclusive).
    pub until_ms: i64,
}

/// Kinds of bank-approved documents (V12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// A statement the debtor signs.
    Statement,
    /// A promise to pay (承诺还款).
    Promise,
    /// A letter.
    Letter,
    /// The impersonation statement (伪冒声明书) for a denied application (V10).
    ImpersonationStatement,
}

/// A bank-approved template version the team may use (V12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    /// Template id.
    pub id: TemplateId,
    /// Kind.
    pub kind: TemplateKind,
    /// Approved version.
    pub version: u32,
    /// SHA-256 of the approved template file.
    pub digest: Digest,
}

/// A manager's approval of a visit request (外访审批), signed by the server (V02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Approval id.
    pub id: ApprovalId,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// Addresses the team may visit.
    pub address_ids: Vec<AddressId>,
    /// The approved team: two or more agents, each with an enrolled phone (V03, A02).
    pub team: Vec<TeamMember>,
    /// Valid from, UTC ms.
    pub valid_from_ms: i64,
    /// Valid until, UTC ms (exclusive).
    pub valid_until_ms: i64,
    /// The authorisation letter (V06).
    pub letter: AuthorisationLetter,
    /// Cash collection authorisation, if the bank gave one (C01).
    pub cash: Option<CashAuthorisation>,
    /// What may be promised (V13).
    pub promise: PromiseAuthorisation,
    /// A recorded appointment (V04).
    pub appointment: Option<Appointment>,
    /// Approved templates (V12).
    pub templates: Vec<TemplateRef>,
    /// A manager explicitly reviewed a health flag on the case (V11).
    pub health_review_done: bool,
    /// The policy version in force.
    pub policy_version: u32,
    /// When the manager approved, UTC ms.
    pub approved_at_ms: i64,
}

impl Approval {
    /// The team member for an agent, if on the team.
    pub fn member(&self, agent: AgentId) -> Option<&TeamMember> {
        self.team.iter().find(|m| m.agent_id == agent)
    }
}

/// A server-signed ticket for one visit, fetched before going offline: the lower time bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitTicket {
    /// The visit.
    pub visit_id: VisitId,
    /// Under which approval.
    pub approval_id: ApprovalId,
    /// Random nonce from the server (hex).
    pub nonce: String,
    /// When the server issued it, UTC ms.
    pub issued_at_ms: i64,
}

/// The server's time at a sync, signed, for one device: phones anchor their clocks on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeAnchor {
    /// The device it was issued to.
    pub device_id: DeviceId,
    /// Server time, UTC ms.
    pub server_time_ms: i64,
    /// Random nonce (hex), so anchors are never reused.
    pub nonce: String,
    /// How far the server's clock was shifted from its system clock, ms: present only on a
    /// demo server, so that nothing anchored on it passes for real time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shifted_by_ms: Option<i64>,
}

/// The server's word that a phone was revoked: its signatures made from `revoked_at_ms` on
/// are not to be trusted (a teammate's phone lost or stolen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRevocation {
    /// The revoked phone.
    pub device_id: DeviceId,
    /// Its agent.
    pub agent_id: AgentId,
    /// When it was revoked, UTC ms.
    pub revoked_at_ms: i64,
}

/// The server's word on one enrolled phone key, carried by an export (`certificates/`) so
/// that a verifier holding only the server key's fingerprint can check enrolment and
/// revocation offline. `revoked_at_ms` is as of `issued_at_ms`: a later revocation is not in
/// it, and needs no saying for evidence sealed before the certificate was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCertificate {
    /// The phone.
    pub device_id: DeviceId,
    /// The agent the key is bound to.
    pub agent_id: AgentId,
    /// The banks the agent works for.
    pub bank_ids: Vec<BankId>,
    /// The phone's key.
    pub public_key: PublicKey,
    /// When the server enrolled it, UTC ms.
    pub enrolled_at_ms: i64,
    /// When it was revoked, UTC ms, if it was by `issued_at_ms`.
    pub revoked_at_ms: Option<i64>,
    /// When the server issued this certificate, UTC ms.
    pub issued_at_ms: i64,
}

impl SignedPurpose for DeviceCertificate {
    const PURPOSE: &'static str = "device-certificate";
}

impl SignedPurpose for DeviceRevocation {
    const PURPOSE: &'static str = "device-revocation";
}

impl SignedPurpose for Approval {
    const PURPOSE: &'static str = "approval";
}

impl SignedPurpose for VisitTicket {
    const PURPOSE: &'static str = "ticket";
}

impl SignedPurpose for TimeAnchor {
    const PURPOSE: &'static str = "time-anchor";
}

impl SignedPurpose for super::Policy {
    const PURPOSE: &'static str = "policy";
}

impl SignedPurpose for super::Case {
    const PURPOSE: &'static str = "case";
}
