//! The schema's history: ordered upgrade steps, run in one `BEGIN IMMEDIATE` transaction.
//!
//! Modelled on Mozilla application-services' `support/sql`: the version lives in
//! `PRAGMA user_version`; a fresh file replays every step, an old one runs the steps it
//! lacks. A new table (receipt serial ranges, the outbox, …) is a new step appended here,
//! never an edit of an old one: phones in the field hold databases at every version.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::StoreError;

/// One upgrade step: from `version - 1` to `version`.
pub struct Migration {
    /// The version the database has after this step.
    pub version: u32,
    /// What the step does, for error messages.
    pub name: &'static str,
    /// The step itself; it runs inside the upgrade's transaction.
    pub apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// Every step so far, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "device state and signed documents",
        apply: |tx| tx.execute_batch(V1_DEVICE_AND_DOCUMENTS),
    },
    Migration {
        version: 2,
        name: "visits, event logs and evidence index",
        apply: |tx| tx.execute_batch(V2_VISITS_EVENTS_EVIDENCE),
    },
    Migration {
        version: 3,
        name: "answered handshake nonces and sealed bundles",
        apply: |tx| tx.execute_batch(V3_HANDSHAKES_AND_SEALS),
    },
    Migration {
        version: 4,
        name: "receipt-number ranges and receipt numbers",
        apply: |tx| tx.execute_batch(V4_RECEIPT_SERIALS),
    },
    Migration {
        version: 5,
        name: "the outbox, the server's receipts and revoked devices",
        apply: |tx| tx.execute_batch(V5_OUTBOX),
    },
    Migration {
        version: 6,
        name: "audio segments chained, by recording and index",
        apply: |tx| tx.execute_batch(V6_AUDIO_SEGMENTS),
    },
];

/// The version this code creates and understands.
pub const SCHEMA_VERSION: u32 = 6;

const V1_DEVICE_AND_DOCUMENTS: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE policies (
    bank_id   TEXT PRIMARY KEY NOT NULL,
    version   INTEGER NOT NULL CHECK (version >= 0),
    body      TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;

CREATE TABLE cases (
    id             TEXT PRIMARY KEY NOT NULL,
    bank_id        TEXT NOT NULL,
    valid_from_ms  INTEGER NOT NULL,
    valid_until_ms INTEGER NOT NULL,
    document       BLOB NOT NULL
) STRICT;
CREATE INDEX cases_by_bank ON cases (bank_id);

CREATE TABLE approvals (
    id             TEXT PRIMARY KEY NOT NULL,
    bank_id        TEXT NOT NULL,
    case_id        TEXT NOT NULL,
    valid_from_ms  INTEGER NOT NULL,
    valid_until_ms INTEGER NOT NULL,
    document       BLOB NOT NULL
) STRICT;
CREATE INDEX approvals_by_case ON approvals (case_id);

CREATE TABLE tickets (
    visit_id     TEXT PRIMARY KEY NOT NULL,
    approval_id  TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    document     BLOB NOT NULL
) STRICT;
CREATE INDEX tickets_by_approval ON tickets (approval_id);
";

const V2_VISITS_EVENTS_EVIDENCE: &str = "
CREATE TABLE visits (
    id                 TEXT PRIMARY KEY NOT NULL,
    approval_id        TEXT NOT NULL,
    case_id            TEXT NOT NULL,
    agent_id           TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('assigned', 'checked_in', 'active',
                           'checked_out', 'sealed', 'uploading', 'acknowledged', 'purged')),
    checked_in_at_ms   INTEGER,
    checked_out_at_ms  INTEGER,
    sealed_at_ms       INTEGER,
    acknowledged_at_ms INTEGER,
    head_seq           INTEGER CHECK (head_seq >= 0),
    head_digest        TEXT,
    CHECK ((head_seq IS NULL) = (head_digest IS NULL))
) STRICT;
CREATE INDEX visits_by_state ON visits (state);

CREATE TABLE events (
    visit_id TEXT NOT NULL REFERENCES visits (id),
    seq      INTEGER NOT NULL CHECK (seq >= 0),
    prev     TEXT NOT NULL,
    digest   TEXT NOT NULL,
    sealed   BLOB NOT NULL,
    PRIMARY KEY (visit_id, seq)
) STRICT, WITHOUT ROWID;

-- The log is append-only; rows go only when an acknowledged visit is purged (D01).
CREATE TRIGGER events_never_change BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_go_only_with_purge BEFORE DELETE ON events
WHEN (SELECT state FROM visits WHERE id = OLD.visit_id) IS NOT 'acknowledged'
BEGIN
    SELECT RAISE(ABORT, 'events are deleted only when an acknowledged visit is purged');
END;

CREATE TABLE evidence (
    visit_id     TEXT NOT NULL REFERENCES visits (id),
    digest       TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    media_type   TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('original', 'thumbnail', 'audio', 'signature',
                     'document')),
    purged_at_ms INTEGER,
    PRIMARY KEY (visit_id, digest)
) STRICT;
CREATE INDEX evidence_by_digest ON evidence (digest);
";

const V3_HANDSHAKES_AND_SEALS: &str = "
-- Challenges this phone answered as the partner: a code is answered once (replay).
CREATE TABLE answered_nonces (
    nonce          TEXT PRIMARY KEY NOT NULL,
    visit_id       TEXT NOT NULL,
    answered_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Sealed bundles: the manifest and signatures are blobs (encrypted), addressed by digest.
-- device_seq numbers this phone's bundles 0, 1, 2… with no gap and no reuse.
CREATE TABLE seals (
    visit_id          TEXT PRIMARY KEY NOT NULL REFERENCES visits (id),
    bundle_id         TEXT NOT NULL UNIQUE,
    device_seq        INTEGER NOT NULL UNIQUE CHECK (device_seq >= 0),
    manifest_digest   TEXT NOT NULL,
    signatures_digest TEXT NOT NULL,
    sealed_at_ms      INTEGER NOT NULL
) STRICT;
CREATE TRIGGER seals_never_change BEFORE UPDATE ON seals
BEGIN
    SELECT RAISE(ABORT, 'a seal never changes');
END;
";

const V4_RECEIPT_SERIALS: &str = "
-- Receipt-number ranges the server issued to this phone, as signed (JSON of the document).
CREATE TABLE serial_ranges (
    first_serial INTEGER PRIMARY KEY NOT NULL CHECK (first_serial >= 0),
    last_serial  INTEGER NOT NULL,
    device_id    TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    document     TEXT NOT NULL,
    CHECK (last_serial >= first_serial)
) STRICT;

-- Every receipt number this phone took. A number is reserved in the transaction that
-- decides it, then issued (the sealed co-signed receipt) or voided with a reason; it is
-- never deleted and never goes back.
CREATE TABLE receipt_serials (
    serial         INTEGER PRIMARY KEY NOT NULL CHECK (serial >= 0),
    visit_id       TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('reserved', 'issued', 'voided')),
    reserved_at_ms INTEGER NOT NULL,
    receipt        BLOB,
    void_reason    TEXT,
    CHECK ((state = 'issued') <= (receipt IS NOT NULL)),
    CHECK ((state = 'voided') = (void_reason IS NOT NULL))
) STRICT;
CREATE TRIGGER receipt_serials_never_deleted BEFORE DELETE ON receipt_serials
BEGIN
    SELECT RAISE(ABORT, 'receipt numbers are never deleted');
END;
CREATE TRIGGER receipt_serials_only_move_on BEFORE UPDATE ON receipt_serials
WHEN NEW.serial IS NOT OLD.serial OR NEW.visit_id IS NOT OLD.visit_id
    OR NEW.reserved_at_ms IS NOT OLD.reserved_at_ms
    OR (OLD.receipt IS NOT NULL AND NEW.receipt IS NOT OLD.receipt)
    OR NOT ((OLD.state = 'reserved' AND NEW.state IN ('issued', 'voided'))
            OR (OLD.state = 'issued' AND NEW.state = 'voided'))
BEGIN
    SELECT RAISE(ABORT, 'a receipt number only moves from reserved to issued to voided');
END;
";

const V5_OUTBOX: &str = "
-- One push job per sealed bundle, queued in the seal's transaction.
CREATE TABLE outbox (
    bundle_id       TEXT PRIMARY KEY NOT NULL REFERENCES seals (bundle_id),
    visit_id        TEXT NOT NULL,
    stage           TEXT NOT NULL
                    CHECK (stage IN ('manifest', 'blobs', 'commit', 'done', 'quarantined')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    bytes_total     INTEGER NOT NULL CHECK (bytes_total >= 0),
    bytes_done      INTEGER NOT NULL CHECK (bytes_done >= 0 AND bytes_done <= bytes_total),
    enqueued_ms     INTEGER NOT NULL
) STRICT;
-- A finished job never goes back: an acknowledged bundle is not sent again.
CREATE TRIGGER outbox_done_is_final BEFORE UPDATE OF stage ON outbox
WHEN OLD.stage = 'done' AND NEW.stage IS NOT 'done'
BEGIN
    SELECT RAISE(ABORT, 'an acknowledged bundle stays acknowledged');
END;
CREATE TRIGGER outbox_never_deleted BEFORE DELETE ON outbox
BEGIN
    SELECT RAISE(ABORT, 'outbox jobs are never deleted');
END;

-- The blobs a job uploads, in the manifest's order; uploaded_ms once the server has it.
CREATE TABLE outbox_blobs (
    bundle_id   TEXT NOT NULL REFERENCES outbox (bundle_id),
    position    INTEGER NOT NULL CHECK (position >= 0),
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    uploaded_ms INTEGER,
    PRIMARY KEY (bundle_id, digest)
) STRICT, WITHOUT ROWID;

-- Teammates' phones the server revoked, as signed (JSON): a partner answering from one
-- of them after its revocation is refused.
CREATE TABLE revoked_devices (
    device_id     TEXT PRIMARY KEY NOT NULL,
    agent_id      TEXT NOT NULL,
    revoked_at_ms INTEGER NOT NULL,
    document      TEXT NOT NULL
) STRICT;

-- The server's signed receipt, inclusion proof and checkpoint for a bundle, as received
-- (JSON), kept once they verified: what allows purging the local media (D01).
CREATE TABLE server_receipts (
    bundle_id   TEXT PRIMARY KEY NOT NULL REFERENCES seals (bundle_id),
    receipt     TEXT NOT NULL,
    proof       TEXT NOT NULL,
    checkpoint  TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('accepted', 'quarantined')),
    verified_ms INTEGER NOT NULL
) STRICT;
";

const V6_AUDIO_SEGMENTS: &str = "
-- The audio segments already stored and chained, by their recording (a random id per
-- start of audio) and position in it: a segment found again in the spool after a crash is
-- chained once. Two segments with the same bytes and start (a constant tone, silence, a
-- clock restarted with the process) are still two segments.
CREATE TABLE audio_segments_chained (
    recording_id TEXT NOT NULL,
    position     INTEGER NOT NULL CHECK (position >= 0),
    visit_id     TEXT NOT NULL REFERENCES visits (id),
    PRIMARY KEY (recording_id, position)
) STRICT, WITHOUT ROWID;
";

/// The database's schema version.
pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the database to `target` with `steps`, all in one IMMEDIATE transaction.
///
/// Returns the version found before upgrading. A database newer than `target` is refused
/// untouched; a failing step rolls everything back, version included.
pub fn migrate(conn: &mut Connection, steps: &[Migration], target: u32) -> Result<u32, StoreError> {
    let plan_error = |reason| StoreError::MigrationPlan { target, reason };
    if steps
        .iter()
        .enumerate()
        .any(|(i, step)| u32::try_from(i + 1) != Ok(step.version))
    {
        return Err(plan_error("steps must be numbered 1, 2, 3, … in order"));
    }
    if usize::try_from(target).map_or(true, |t| t > steps.len()) {
        return Err(plan_error("no step reaches it"));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = user_version(&tx)?;
    if found > target {
        return Err(StoreError::NewerSchema {
            found,
            supported: target,
        });
    }
    for step in steps
        .iter()
        .filter(|s| s.version > found && s.version <= target)
    {
        let failed = |source| StoreError::Migration {
            version: step.version,
            name: step.name,
            source,
        };
        (step.apply)(&tx).map_err(failed)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(failed)?;
    }
    tx.commit()?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_up_to_the_current_version() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version as usize, i + 1, "{}", step.name);
        }
        assert_eq!(MIGRATIONS.len() as u32, SCHEMA_VERSION);
    }
}
