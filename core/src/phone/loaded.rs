//! A visit's verified documents, loaded in the transaction of the step that judges them:
//! what every step builds its rule context from.

use crate::model::{Approval, Case, Event, EventTime, Policy, VisitId, VisitState, VisitTicket};
use crate::rules::VisitContext;
use crate::store::{ReadTx, VisitRecord};
use crate::{Error, Result};

/// The verified documents of one visit, loaded in a transaction.
pub(super) struct Loaded {
    pub record: VisitRecord,
    pub policy: Policy,
    pub case: Case,
    pub approval: Approval,
    pub ticket: VisitTicket,
    pub events: Vec<Event>,
    pub device: crate::model::DeviceId,
    assigned: Vec<crate::model::CaseId>,
    /// Receipts issued on the visit and not voided (C01, C02).
    receipts: Vec<crate::model::ReceiptDraft>,
    /// Receipt-number ranges issued to this phone (C02).
    serial_ranges: Vec<crate::model::SerialRange>,
}

impl Loaded {
    pub fn load(tx: &ReadTx<'_>, visit: VisitId) -> Result<Self> {
        let not_found = |what: String| Error::NotFound { what };
        let record = tx
            .visit(visit)?
            .ok_or_else(|| not_found(format!("visit {visit}")))?;
        let key = tx
            .server_public_key()?
            .ok_or_else(|| Error::NotEnrolled("no server key: enrol first".into()))?;
        let device = tx
            .device_id()?
            .ok_or_else(|| Error::NotEnrolled("this phone is not enrolled".into()))?;
        let v = &record.visit;
        let case = tx
            .case(v.case_id)?
            .ok_or_else(|| not_found(format!("case of visit {visit}")))?
            .verify(&key)?;
        let approval = tx
            .approval(v.approval_id)?
            .ok_or_else(|| not_found(format!("approval of visit {visit}")))?
            .verify(&key)?;
        let ticket = tx
            .ticket(visit)?
            .ok_or_else(|| not_found(format!("ticket of visit {visit}")))?
            .verify(&key)?;
        let policy = tx
            .policy(case.bank_id)?
            .ok_or_else(|| Error::NotReady("no policy for this bank: sync first".into()))?
            .verify(&key)?;
        let events = tx.events(visit)?;
        // Until sync tells the phone its assignments, a case counts as assigned while its
        // approval names this phone's agent.
        let assigned = if approval.member(v.agent_id).is_some() {
            vec![case.id]
        } else {
            Vec::new()
        };
        let serial_ranges = super::receipts::verified_ranges(tx, &key)?;
        let receipts = super::receipts::issued_drafts(tx, visit)?;
        Ok(Self {
            record,
            policy,
            case,
            approval,
            ticket,
            events,
            device,
            assigned,
            receipts,
            serial_ranges,
        })
    }

    pub fn context(&self, now: EventTime) -> VisitContext<'_> {
        VisitContext {
            policy: &self.policy,
            case: &self.case,
            approval: &self.approval,
            ticket: &self.ticket,
            visit: self.record.visit.id,
            agent: self.record.visit.agent_id,
            device: self.device,
            assigned_cases: &self.assigned,
            events: &self.events,
            receipts: &self.receipts,
            serial_ranges: &self.serial_ranges,
            now,
        }
    }

    pub fn state(&self) -> VisitState {
        self.record.visit.state
    }

    pub fn require_capturing(&self, action: &'static str) -> Result<()> {
        self.require(VisitState::is_capturing, action)
    }

    /// Refuses `action` unless the visit is exactly in `state`.
    pub fn require_state(&self, state: VisitState, action: &'static str) -> Result<()> {
        self.require(|s| s == state, action)
    }

    fn require(&self, allowed: impl Fn(VisitState) -> bool, action: &'static str) -> Result<()> {
        if allowed(self.state()) {
            Ok(())
        } else {
            Err(Error::InvalidState {
                visit: self.record.visit.id.to_string(),
                state: self.state().as_str(),
                action,
            })
        }
    }
}
