//! What a phone receives from the server: its identity, policy, time anchors and
//! assignments — each verified against the server's key before it is kept.

use super::Phone;
use crate::clock::StoredAnchor;
use crate::crypto::PublicKey;
use crate::model::{
    AgentId, Approval, Case, DeviceId, Policy, Signed, TimeAnchor, VisitId, VisitTicket,
};
use crate::rules::{RuleId, Violation};
use crate::store::{ReadTx, WriteTx};
use crate::{Error, Result};

/// What enrolment gives the phone (the exchange itself is the sync client's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Enrollment {
    /// This phone's device id.
    pub device_id: crate::model::DeviceId,
    /// The agent it belongs to.
    pub agent_id: crate::model::AgentId,
    /// The server's key: everything the phone pulls must verify with it.
    pub server_key: PublicKey,
}

impl Phone {
    /// Records the enrolment. A phone is enrolled once: another identity is refused.
    pub fn enroll(&self, enrollment: &Enrollment) -> Result<()> {
        self.store.write(|tx| {
            if let (Some(device), Some(agent)) = (tx.device_id()?, tx.agent_id()?)
                && (device != enrollment.device_id || agent != enrollment.agent_id)
            {
                return Err(Error::NotReady(
                    "this phone is already enrolled for another agent or device".into(),
                ));
            }
            tx.set_device_id(enrollment.device_id)?;
            tx.set_agent_id(enrollment.agent_id)?;
            tx.set_server_public_key(&enrollment.server_key)?;
            Ok(())
        })
    }

    /// Keeps a bank's policy after checking the server's signature.
    pub fn accept_policy(&self, signed: &Signed<Policy>) -> Result<Policy> {
        self.store.write(|tx| {
            let receiver = Receiver::of(tx, self.public_key())?;
            receiver.apply_policy(tx, signed)
        })
    }

    /// Anchors the clock on a server time anchor issued to this device.
    pub fn accept_time_anchor(&self, signed: &Signed<TimeAnchor>) -> Result<()> {
        self.store.write(|tx| {
            let receiver = Receiver::of(tx, self.public_key())?;
            self.apply_time_anchor(tx, &receiver, signed)
        })
    }

    /// Anchors the clock (inside a write transaction).
    pub(super) fn apply_time_anchor(
        &self,
        tx: &WriteTx<'_>,
        receiver: &Receiver,
        signed: &Signed<TimeAnchor>,
    ) -> Result<()> {
        let anchor = signed.verify(&receiver.server_key)?;
        if anchor.device_id != receiver.device {
            return Err(Error::NotReady(
                "the time anchor was issued to another device".into(),
            ));
        }
        let stored = StoredAnchor::receive(&anchor, self.clock.as_ref());
        tx.set_time_anchor(signed)?;
        tx.set_stored_anchor(&stored)?;
        Ok(())
    }

    /// Takes an assigned visit: the case, the manager's approval and the server's ticket,
    /// all verified. D01: a phone holds only cases whose approved team includes its agent.
    pub fn accept_assignment(
        &self,
        case: &Signed<Case>,
        approval: &Signed<Approval>,
        ticket: &Signed<VisitTicket>,
    ) -> Result<VisitId> {
        self.store.write(|tx| {
            let receiver = Receiver::of(tx, self.public_key())?;
            receiver.apply_assignment(tx, case, approval, ticket)
        })
    }
}

/// What the phone checks received documents against, read once per transaction.
pub(super) struct Receiver {
    /// The server's key, pinned at enrolment.
    pub(super) server_key: PublicKey,
    /// This phone's device id.
    pub(super) device: DeviceId,
    /// Its agent.
    pub(super) agent: AgentId,
    /// Its own public key (an approval must name this very key).
    pub(super) own_key: PublicKey,
}

impl Receiver {
    /// Reads the phone's identity; refuses when it is not enrolled.
    pub(super) fn of(tx: &ReadTx<'_>, own_key: PublicKey) -> Result<Self> {
        let server_key = tx
            .server_public_key()?
            .ok_or_else(|| Error::NotEnrolled("no server key: enrol first".into()))?;
        let (Some(device), Some(agent)) = (tx.device_id()?, tx.agent_id()?) else {
            return Err(Error::NotEnrolled("this phone is not enrolled".into()));
        };
        Ok(Self {
            server_key,
            device,
            agent,
            own_key,
        })
    }

    /// Keeps a bank's policy after checking the server's signature.
    pub(super) fn apply_policy(&self, tx: &WriteTx<'_>, signed: &Signed<Policy>) -> Result<Policy> {
        let policy = signed.verify(&self.server_key)?;
        policy.validate()?;
        tx.put_policy(signed)?;
        Ok(policy)
    }

    /// Keeps an assignment addressed to this phone (see [`Phone::accept_assignment`]).
    pub(super) fn apply_assignment(
        &self,
        tx: &WriteTx<'_>,
        case: &Signed<Case>,
        approval: &Signed<Approval>,
        ticket: &Signed<VisitTicket>,
    ) -> Result<VisitId> {
        let key = &self.server_key;
        let (case_doc, approval_doc, ticket_doc) = (
            case.verify(key)?,
            approval.verify(key)?,
            ticket.verify(key)?,
        );
        let mismatch = |what: &str| Error::NotReady(format!("assignment refused: {what}"));
        if approval_doc.case_id != case_doc.id || approval_doc.bank_id != case_doc.bank_id {
            return Err(mismatch("the approval is for another case"));
        }
        if ticket_doc.approval_id != approval_doc.id {
            return Err(mismatch("the ticket is for another approval"));
        }
        let on_team = approval_doc
            .member(self.agent)
            .is_some_and(|m| m.device_id == self.device && m.public_key == self.own_key);
        if !on_team {
            return Err(Error::Blocked {
                violations: vec![Violation::block(
                    RuleId::D01,
                    "This case is not assigned to this agent's phone: it is not kept.",
                )],
            });
        }
        let visit = ticket_doc.visit_id;
        tx.put_case(case)?;
        tx.put_approval(approval)?;
        tx.put_ticket(ticket)?;
        if tx.visit(visit)?.is_none() {
            tx.create_visit(visit, approval_doc.id, case_doc.id, self.agent)?;
        }
        Ok(visit)
    }
}
