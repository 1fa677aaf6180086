//! Visits and their lifecycle: a state changes only along [`VisitState::can_become`].

use rusqlite::{OptionalExtension as _, Row, params};

use super::error::from_sql_int;
use super::{ReadTx, StoreError, WriteTx, parse_column};
use crate::crypto::Digest;
use crate::model::{AgentId, ApprovalId, CaseId, Visit, VisitId, VisitState};

/// The last event of a visit's log: what the next event chains to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// Its seq.
    pub seq: u64,
    /// Its digest.
    pub digest: Digest,
}

/// A visit as stored: the domain visit, its acknowledgement time and its log head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRecord {
    /// The visit.
    pub visit: Visit,
    /// When the server's receipt was verified, UTC ms.
    pub acknowledged_at_ms: Option<i64>,
    /// The log's last event; `None` before the first.
    pub head: Option<LogHead>,
}

const VISIT_COLUMNS: &str = "id, approval_id, case_id, agent_id, state, checked_in_at_ms, \
     checked_out_at_ms, sealed_at_ms, acknowledged_at_ms, head_seq, head_digest";

struct VisitRow {
    id: String,
    approval_id: String,
    case_id: String,
    agent_id: String,
    state: String,
    checked_in_at_ms: Option<i64>,
    checked_out_at_ms: Option<i64>,
    sealed_at_ms: Option<i64>,
    acknowledged_at_ms: Option<i64>,
    head_seq: Option<i64>,
    head_digest: Option<String>,
}

impl VisitRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            approval_id: row.get(1)?,
            case_id: row.get(2)?,
            agent_id: row.get(3)?,
            state: row.get(4)?,
            checked_in_at_ms: row.get(5)?,
            checked_out_at_ms: row.get(6)?,
            sealed_at_ms: row.get(7)?,
            acknowledged_at_ms: row.get(8)?,
            head_seq: row.get(9)?,
            head_digest: row.get(10)?,
        })
    }

    fn into_record(self) -> Result<VisitRecord, StoreError> {
        let head = match (self.head_seq, self.head_digest) {
            (Some(seq), Some(digest)) => Some(LogHead {
                seq: from_sql_int("visits.head_seq", seq)?,
                digest: parse_column("visits.head_digest", &digest)?,
            }),
            (None, None) => None,
            _ => {
                return Err(StoreError::Corrupt {
                    column: "visits.head_seq",
                    reason: "head seq and digest must be set together".into(),
                });
            }
        };
        Ok(VisitRecord {
            visit: Visit {
                id: parse_column("visits.id", &self.id)?,
                approval_id: parse_column("visits.approval_id", &self.approval_id)?,
                case_id: parse_column("visits.case_id", &self.case_id)?,
                agent_id: parse_column("visits.agent_id", &self.agent_id)?,
                state: parse_column("visits.state", &self.state)?,
                checked_in_at_ms: self.checked_in_at_ms,
                checked_out_at_ms: self.checked_out_at_ms,
                sealed_at_ms: self.sealed_at_ms,
            },
            acknowledged_at_ms: self.acknowledged_at_ms,
            head,
        })
    }
}

impl ReadTx<'_> {
    /// A visit, with its log head.
    pub fn visit(&self, id: VisitId) -> Result<Option<VisitRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {VISIT_COLUMNS} FROM visits WHERE id = ?1"),
                [id.to_string()],
                VisitRow::read,
            )
            .optional()?
            .map(VisitRow::into_record)
            .transpose()
    }

    /// A visit that must exist.
    pub(super) fn existing_visit(&self, id: VisitId) -> Result<VisitRecord, StoreError> {
        self.visit(id)?.ok_or(StoreError::VisitNotFound(id))
    }

    /// Every visit in one of `states` (all visits when empty), oldest id first.
    pub fn visits(&self, states: &[VisitState]) -> Result<Vec<VisitRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {VISIT_COLUMNS} FROM visits ORDER BY id"))?;
        let rows = stmt
            .query_map([], VisitRow::read)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let record = row.into_record()?;
            if states.is_empty() || states.contains(&record.visit.state) {
                out.push(record);
            }
        }
        Ok(out)
    }
}

impl WriteTx<'_> {
    /// Creates a visit in the `assigned` state (its ticket and approval are held).
    pub fn create_visit(
        &self,
        id: VisitId,
        approval: ApprovalId,
        case: CaseId,
        agent: AgentId,
    ) -> Result<VisitRecord, StoreError> {
        let inserted = self.conn.execute(
            "INSERT INTO visits (id, approval_id, case_id, agent_id, state)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
            params![
                id.to_string(),
                approval.to_string(),
                case.to_string(),
                agent.to_string(),
                VisitState::Assigned.as_str()
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::VisitExists(id));
        }
        self.existing_visit(id)
    }

    /// Moves a visit to `next` at anchored time `at_ms`, if its lifecycle allows it.
    ///
    /// Check-in, check-out, sealing and acknowledgement record `at_ms` in their column.
    pub fn set_visit_state(
        &self,
        id: VisitId,
        next: VisitState,
        at_ms: i64,
    ) -> Result<VisitRecord, StoreError> {
        let current = self.existing_visit(id)?.visit.state;
        if !current.can_become(next) {
            return Err(StoreError::IllegalTransition {
                visit: id,
                from: current,
                to: next,
            });
        }
        let time_column = match next {
            VisitState::CheckedIn => Some("checked_in_at_ms"),
            VisitState::CheckedOut => Some("checked_out_at_ms"),
            VisitState::Sealed => Some("sealed_at_ms"),
            VisitState::Acknowledged => Some("acknowledged_at_ms"),
            _ => None,
        };
        match time_column {
            Some(column) => self.conn.execute(
                &format!("UPDATE visits SET state = ?1, {column} = ?2 WHERE id = ?3"),
                params![next.as_str(), at_ms, id.to_string()],
            )?,
            None => self.conn.execute(
                "UPDATE visits SET state = ?1 WHERE id = ?2",
                params![next.as_str(), id.to_string()],
            )?,
        };
        self.existing_visit(id)
    }
}
