//! The visit's append-only, hash-chained event log.
//!
//! Each row keeps the event's canonical bytes encrypted under `event/<visit>/<seq>` (notes
//! and names are personal), with `prev` and `digest` in clear. The visit row holds the head
//! (last seq and digest), moved in the same transaction as the insert: two appends can
//! never both chain to the same head.

use rusqlite::params;
use zeroize::Zeroizing;

use super::error::{from_sql_int, redact, to_sql_int};
use super::{LogHead, ReadTx, StoreError, WriteTx, parse_column};
use crate::canonical;
use crate::crypto::{Digest, sha256};
use crate::model::{
    AgentId, ChainError, Event, EventKind, EventTime, VisitId, VisitState, verify_chain,
};
use crate::place::Fix;

fn event_context(visit: VisitId, seq: u64) -> String {
    format!("event/{visit}/{seq}")
}

struct EventRow {
    seq: u64,
    prev: String,
    digest: String,
    sealed: Vec<u8>,
}

impl ReadTx<'_> {
    fn event_rows(&self, visit: VisitId) -> Result<Vec<EventRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, prev, digest, sealed FROM events WHERE visit_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([visit.to_string()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, prev, digest, sealed)| {
                Ok(EventRow {
                    seq: from_sql_int("events.seq", seq)?,
                    prev,
                    digest,
                    sealed,
                })
            })
            .collect()
    }

    /// Decrypts one row, telling an altered ciphertext from one moved off its position.
    fn open_event(
        &self,
        visit: VisitId,
        row: &EventRow,
        all: &[EventRow],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if let Ok(plain) = self
            .cipher
            .decrypt(&event_context(visit, row.seq), &row.sealed)
        {
            return Ok(plain);
        }
        // Only on failure: try the other positions this visit's rows could have held.
        let positions = (0..=all.len() as u64).chain(all.iter().map(|r| r.seq));
        for written_as in positions.filter(|&s| s != row.seq) {
            if self
                .cipher
                .decrypt(&event_context(visit, written_as), &row.sealed)
                .is_ok()
            {
                return Err(StoreError::EventMoved {
                    visit,
                    seq: row.seq,
                    written_as,
                });
            }
        }
        Err(StoreError::EventAltered {
            visit,
            seq: row.seq,
        })
    }

    /// The visit's events in order, decrypted and strictly parsed; each row's clear
    /// `prev` and `digest` must match its event. Use [`ReadTx::verify_visit_chain`] to
    /// check the chain as a whole.
    pub fn events(&self, visit: VisitId) -> Result<Vec<Event>, StoreError> {
        if self.existing_visit(visit)?.visit.state == VisitState::Purged {
            return Err(StoreError::EventsPurged(visit));
        }
        let rows = self.event_rows(visit)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq = row.seq;
            let plain = self.open_event(visit, row, &rows)?;
            let event: Event = canonical::from_canonical_slice(&plain).map_err(|e| {
                StoreError::EventMalformed {
                    visit,
                    seq,
                    source: redact(e),
                }
            })?;
            let mismatch = |column| StoreError::EventIndexMismatch { visit, seq, column };
            if event.seq != seq {
                return Err(mismatch("seq"));
            }
            if parse_column::<Digest>("events.prev", &row.prev).ok() != Some(event.prev) {
                return Err(mismatch("prev"));
            }
            if parse_column::<Digest>("events.digest", &row.digest).ok() != Some(sha256(&plain)) {
                return Err(mismatch("digest"));
            }
            events.push(event);
        }
        Ok(events)
    }

    /// Checks the visit's whole log: every row decrypts at its own position, matches its
    /// clear columns, and the events form one chain ending at the recorded head.
    ///
    /// Returns the verified head. Someone holding the store key could rewrite the log and
    /// the head consistently; the co-signed manifest is what catches that.
    pub fn verify_visit_chain(&self, visit: VisitId) -> Result<Option<LogHead>, StoreError> {
        let head = self.existing_visit(visit)?.head;
        let events = self.events(visit)?;
        let broken = |source| StoreError::ChainBroken { visit, source };
        verify_chain(visit, &events, head.map(|h| h.digest)).map_err(broken)?;
        let last = events.last().map(|e| e.seq);
        if last != head.map(|h| h.seq) {
            return Err(broken(ChainError::HeadMismatch));
        }
        Ok(head)
    }
}

impl WriteTx<'_> {
    /// Appends an event to the visit's log, chained to its head, and moves the head.
    ///
    /// Refused once the visit is sealed (E01): corrections of a sealed visit belong to a
    /// new record, never to its log.
    pub fn append_event(
        &self,
        visit: VisitId,
        kind: EventKind,
        at: EventTime,
        fix: Option<Fix>,
        by: AgentId,
    ) -> Result<Event, StoreError> {
        let record = self.existing_visit(visit)?;
        let state = record.visit.state;
        if state.is_sealed() {
            return Err(StoreError::VisitClosed { visit, state });
        }
        let (seq, prev) = match record.head {
            None => (0, Digest::ZERO),
            Some(head) => (
                head.seq.checked_add(1).ok_or(StoreError::OutOfRange {
                    field: "seq",
                    value: head.seq,
                })?,
                head.digest,
            ),
        };
        let event = Event {
            visit_id: visit,
            seq,
            prev,
            at,
            fix,
            by,
            kind,
        };
        let bytes = Zeroizing::new(
            canonical::to_canonical_vec(&event)
                .map_err(|e| StoreError::EventUnencodable { visit, source: e })?,
        );
        let digest = sha256(&bytes);
        let sealed = self.seal(&event_context(visit, seq), &bytes)?;
        let seq_sql = to_sql_int("seq", seq)?;
        self.conn.execute(
            "INSERT INTO events (visit_id, seq, prev, digest, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                visit.to_string(),
                seq_sql,
                prev.to_hex(),
                digest.to_hex(),
                sealed
            ],
        )?;
        self.conn.execute(
            "UPDATE visits SET head_seq = ?1, head_digest = ?2 WHERE id = ?3",
            params![seq_sql, digest.to_hex(), visit.to_string()],
        )?;
        Ok(event)
    }
}
