//! What the rules look at: the verified documents of a visit and the moment of the check.

use chrono::Timelike;

use crate::model::{
    AgentId, Approval, ApprovedAddress, Case, CaseId, DeviceId, Event, EventKind, EventTime,
    Policy, ReceiptDraft, SerialRange, VisitId, VisitTicket,
};
use crate::place::{Coordinate, Fix, nearest_address};

/// Everything a rule may consult about one visit, built by the caller from documents whose
/// signatures it has verified. Borrowed, so a check costs no copies.
#[derive(Debug, Clone, Copy)]
pub struct VisitContext<'a> {
    /// The bank's policy in force.
    pub policy: &'a Policy,
    /// The case visited.
    pub case: &'a Case,
    /// The manager's approval.
    pub approval: &'a Approval,
    /// The server's ticket for this visit.
    pub ticket: &'a VisitTicket,
    /// The visit on this phone.
    pub visit: VisitId,
    /// The agent using this phone.
    pub agent: AgentId,
    /// This phone.
    pub device: DeviceId,
    /// Cases assigned to this phone's agent at the last sync (D01).
    pub assigned_cases: &'a [CaseId],
    /// The visit's events so far, in order.
    pub events: &'a [Event],
    /// Receipts already issued on this visit and not voided (C01 counts them).
    pub receipts: &'a [ReceiptDraft],
    /// Receipt-number ranges the server issued to this phone (C02).
    pub serial_ranges: &'a [SerialRange],
    /// The moment of the check, from [`crate::clock::now`].
    pub now: EventTime,
}

/// A local time of day in the policy's zone, and whether the zone could be read.
pub(crate) enum LocalMinute {
    /// Minute of the local day, 0..1440.
    At(u16),
    /// The policy names a zone this build does not know.
    UnknownZone,
}

impl<'a> VisitContext<'a> {
    /// The best time known now: anchored when possible, else the phone's wall clock. Used
    /// for validity windows; the visiting-hours rule (V04) insists on anchored time.
    pub fn now_ms(&self) -> i64 {
        self.now.best_ms()
    }

    /// Minute of the local day at `at_ms` in the policy's time zone (never the phone's).
    pub(crate) fn local_minute(&self, at_ms: i64) -> LocalMinute {
        let Ok(zone) = self.policy.zone() else {
            return LocalMinute::UnknownZone;
        };
        match chrono::DateTime::from_timestamp_millis(at_ms) {
            Some(utc) => {
                let local = utc.with_timezone(&zone);
                // hour < 24 and minute < 60: the cast cannot truncate.
                LocalMinute::At((local.hour() * 60 + local.minute()) as u16)
            }
            None => LocalMinute::UnknownZone,
        }
    }

    /// The case's addresses that the approval names.
    pub fn approved_addresses(&self) -> impl Iterator<Item = &'a ApprovedAddress> + use<'a> {
        let approval = self.approval;
        self.case
            .addresses
            .iter()
            .filter(move |a| approval.address_ids.contains(&a.id))
    }

    /// The approved address nearest to `fix`, with its distance in metres: what the
    /// check-in event records.
    pub fn nearest_approved_address(&self, fix: &Fix) -> Option<(&'a ApprovedAddress, u32)> {
        let addresses: Vec<&ApprovedAddress> = self.approved_addresses().collect();
        let coordinates: Vec<Coordinate> = addresses.iter().map(|a| a.position).collect();
        let (index, distance) = nearest_address(fix, &coordinates)?;
        Some((*addresses.get(index)?, distance))
    }

    /// The check-in event of this visit, if checked in.
    pub(crate) fn check_in(&self) -> Option<(&'a Event, &'a EventKind)> {
        self.events
            .iter()
            .find(|e| matches!(e.kind, EventKind::CheckedIn { .. }))
            .map(|e| (e, &e.kind))
    }

    /// Whether any event so far matches.
    pub(crate) fn any_event(&self, pred: impl Fn(&EventKind) -> bool) -> bool {
        self.events.iter().any(|e| pred(&e.kind))
    }
}
