//! Applying what the server sends on a pull (DESIGN.md §8): one page of the feed — policy
//! versions, assignments, receipt-number ranges, revocations — and a time anchor, each
//! verified against the pinned server key, kept in ONE transaction together with the cursor
//! that follows them, so a crash or a lost answer never skips or half-applies a page.

use serde::{Deserialize, Serialize};

use super::Phone;
use super::setup::Receiver;
use crate::model::{
    Approval, Case, DeviceRevocation, Policy, SerialRange, Signed, TimeAnchor, VisitId, VisitTicket,
};
use crate::{Error, Result};

/// One page of `GET /v1/sync`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncPage {
    /// A fresh anchor for this phone's clock.
    pub time_anchor: Signed<TimeAnchor>,
    /// What is new since the cursor, oldest first.
    pub changes: Vec<SyncChange>,
    /// Where the next pull starts.
    pub next_cursor: String,
    /// Whether another page is waiting.
    pub more: bool,
}

/// One document of the feed: its kind and the signed document(s).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncChange {
    /// `policy`, `assignment`, `serial_range` or `revocation`.
    pub kind: String,
    /// The document as the server signed it.
    pub document: serde_json::Value,
}

/// An assignment as the feed carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignmentDocs {
    /// The case.
    pub case: Signed<Case>,
    /// The manager's approval.
    pub approval: Signed<Approval>,
    /// The visit ticket.
    pub ticket: Signed<VisitTicket>,
}

/// What a page changed on the phone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullSummary {
    /// Policy versions kept.
    pub policies: u32,
    /// Visits assigned to this phone.
    pub assignments: Vec<VisitId>,
    /// Receipt-number ranges kept.
    pub ranges: u32,
    /// Revocations of teammates' phones kept.
    pub revocations: u32,
    /// Assignments for this agent's other phone (D01: not kept here).
    pub not_for_this_phone: u32,
    /// Documents of kinds this version does not know (skipped, so a newer server does
    /// not stop an older phone).
    pub unknown: u32,
}

impl PullSummary {
    /// Adds another page's summary.
    pub fn add(&mut self, other: PullSummary) {
        self.policies += other.policies;
        self.assignments.extend(other.assignments);
        self.ranges += other.ranges;
        self.revocations += other.revocations;
        self.unknown += other.unknown;
        self.not_for_this_phone += other.not_for_this_phone;
    }
}

fn document<T: serde::de::DeserializeOwned>(change: &SyncChange) -> Result<T> {
    serde_json::from_value(change.document.clone()).map_err(|e| {
        Error::NotReady(format!(
            "the server sent a malformed {} document: {e}",
            change.kind
        ))
    })
}

impl Phone {
    /// The device token kept at enrolment; `NotEnrolled` before enrolment.
    pub fn device_token(&self) -> Result<zeroize::Zeroizing<String>> {
        self.store
            .read(|tx| Ok::<_, Error>(tx.device_token()?))?
            .ok_or_else(|| Error::NotEnrolled("this phone is not enrolled: no device token".into()))
    }

    /// Keeps the device token (sealed under the store's field key).
    pub fn set_device_token(&self, token: &str) -> Result<()> {
        self.store.write(|tx| Ok(tx.set_device_token(token)?))
    }

    /// The cases this phone holds.
    pub fn held_cases(&self) -> Result<Vec<crate::model::CaseId>> {
        self.store.read(|tx| Ok(tx.case_ids()?))
    }

    /// The strictest upload deadline (E03) among the banks' policies this phone holds.
    pub fn strictest_policy(&self) -> Result<Option<crate::model::Policy>> {
        self.store.read(|tx| {
            let Some(server_key) = tx.server_public_key()? else {
                return Ok(None);
            };
            let mut strictest: Option<crate::model::Policy> = None;
            for bank in tx.policy_banks()? {
                let Some(signed) = tx.policy(bank)? else {
                    continue;
                };
                let policy = signed.verify(&server_key)?;
                if strictest
                    .as_ref()
                    .is_none_or(|s| policy.upload_deadline_ms < s.upload_deadline_ms)
                {
                    strictest = Some(policy);
                }
            }
            Ok(strictest)
        })
    }

    /// The cursor of the last page applied (`None` before the first pull).
    pub fn sync_cursor(&self) -> Result<Option<String>> {
        self.store.read(|tx| Ok(tx.sync_cursor()?))
    }

    /// Applies one page and its cursor in one transaction. A document whose signature
    /// does not verify, or that contradicts what the phone holds, refuses the whole page:
    /// nothing is kept and the cursor does not move, so the error shows and the page is
    /// asked again later.
    pub fn apply_sync_page(&self, page: &SyncPage) -> Result<PullSummary> {
        self.store.write(|tx| {
            let receiver = Receiver::of(tx, self.public_key())?;
            self.apply_time_anchor(tx, &receiver, &page.time_anchor)?;
            let mut summary = PullSummary::default();
            for change in &page.changes {
                match change.kind.as_str() {
                    "policy" => {
                        receiver.apply_policy(tx, &document::<Signed<Policy>>(change)?)?;
                        summary.policies += 1;
                    }
                    "assignment" => {
                        let docs: AssignmentDocs = document(change)?;
                        match receiver.apply_assignment(
                            tx,
                            &docs.case,
                            &docs.approval,
                            &docs.ticket,
                        ) {
                            Ok(visit) => summary.assignments.push(visit),
                            // The agent's other phone is on that team (D01): not kept here,
                            // and no reason to stop this phone's sync.
                            Err(e) if e.blocking_rule() == Some(crate::rules::RuleId::D01) => {
                                summary.not_for_this_phone += 1;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    "serial_range" => {
                        super::receipts::apply_serial_range(
                            tx,
                            &receiver,
                            &document::<Signed<SerialRange>>(change)?,
                        )?;
                        summary.ranges += 1;
                    }
                    "revocation" => {
                        let signed: Signed<DeviceRevocation> = document(change)?;
                        let revocation = signed.verify(&receiver.server_key)?;
                        tx.put_revocation(&signed, &revocation)?;
                        summary.revocations += 1;
                    }
                    _ => summary.unknown += 1,
                }
            }
            tx.set_sync_cursor(&page.next_cursor)?;
            Ok(summary)
        })
    }
}
