//! What can go wrong in the device store. Messages carry ids and digests, never personal data.

use std::path::PathBuf;

use crate::canonical::CanonicalError;
use crate::model::{ChainError, VisitId, VisitState};

/// Errors of the device store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error("cannot open device store {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite refused to put the database in WAL mode (e.g. an in-memory or read-only file).
    #[error("device store {path} cannot use WAL journaling (SQLite kept {mode:?})")]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The database was written by newer code: it is never downgraded.
    #[error(
        "device store schema version {found} is newer than this app supports ({supported}): update the app"
    )]
    NewerSchema {
        /// The database's `user_version`.
        found: u32,
        /// The newest version this code knows.
        supported: u32,
    },
    /// An upgrade step failed; the whole upgrade was rolled back.
    #[error("schema upgrade to version {version} ({name}) failed, nothing was changed: {source}")]
    Migration {
        /// The step's target version.
        version: u32,
        /// The step's name.
        name: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The list of upgrade steps is not 1, 2, 3, … or does not reach the requested version.
    #[error("schema upgrade steps cannot reach version {target}: {reason}")]
    MigrationPlan {
        /// The version asked for.
        target: u32,
        /// What is wrong with the list.
        reason: &'static str,
    },
    /// A query failed.
    #[error("device store query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store key is unusable.
    #[error("device store key: {0}")]
    Key(#[source] crate::crypto::CryptoError),
    /// Encryption failed (no randomness).
    #[error("cannot encrypt {context}: {source}")]
    Encrypt {
        /// Where the value was going.
        context: String,
        /// The cause.
        #[source]
        source: crate::crypto::CryptoError,
    },
    /// A stored value does not decrypt under its row's context: moved to another row,
    /// altered, or written under another key.
    #[error("stored {context} does not decrypt: moved from another row, altered, or wrong key")]
    Undecryptable {
        /// The row it was read from, e.g. `case/<id>`.
        context: String,
    },
    /// A document to store, or one read back, is not what its kind must be.
    #[error("{kind} document {id}: {source}")]
    Document {
        /// `policy`, `case`, `approval`, `ticket`, `time-anchor`, `public-key`.
        kind: &'static str,
        /// The row (or `new` for one being stored).
        id: String,
        /// Why (shape errors are redacted: they could quote personal data).
        #[source]
        source: CanonicalError,
    },
    /// A value in a column cannot be what that column holds (the file was edited or damaged).
    #[error("corrupt {column} in the device store: {reason}")]
    Corrupt {
        /// `table.column`.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{field} = {value} is too large to store")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// The server sent two different policies with the same version for a bank.
    #[error("policy version {version} of bank {bank} differs from the one held")]
    PolicyConflict {
        /// The bank.
        bank: String,
        /// The version.
        version: u32,
    },
    /// No visit with this id.
    #[error("visit {0} is not in the device store")]
    VisitNotFound(VisitId),
    /// A visit with this id exists already.
    #[error("visit {0} already exists")]
    VisitExists(VisitId),
    /// A state change the lifecycle does not allow (DESIGN.md §4).
    #[error("visit {visit} cannot go from {} to {}", from.as_str(), to.as_str())]
    IllegalTransition {
        /// The visit.
        visit: VisitId,
        /// Its state.
        from: VisitState,
        /// The state asked for.
        to: VisitState,
    },
    /// The visit is sealed: nothing may be added to it (E01).
    #[error("visit {visit} is {}: its record is closed", state.as_str())]
    VisitClosed {
        /// The visit.
        visit: VisitId,
        /// Its state.
        state: VisitState,
    },
    /// The visit was purged after its acknowledgement: its events are gone by design (D01).
    #[error("visit {0} was purged: its events are no longer on the phone")]
    EventsPurged(VisitId),
    /// An event's ciphertext was altered: it decrypts under no position of its visit.
    #[error("event {seq} of visit {visit} was altered: its ciphertext does not decrypt")]
    EventAltered {
        /// The visit.
        visit: VisitId,
        /// The row's seq.
        seq: u64,
    },
    /// An event's ciphertext sits at another position than the one it was written for.
    #[error(
        "event row {seq} of visit {visit} holds the event written as {written_as}: rows reordered"
    )]
    EventMoved {
        /// The visit.
        visit: VisitId,
        /// The row's seq.
        seq: u64,
        /// The seq it was encrypted for.
        written_as: u64,
    },
    /// An event decrypts but is not canonical JSON of an event.
    #[error("event {seq} of visit {visit} is not a canonical event: {source}")]
    EventMalformed {
        /// The visit.
        visit: VisitId,
        /// The row's seq.
        seq: u64,
        /// Why (shape errors redacted).
        #[source]
        source: CanonicalError,
    },
    /// An event's clear `prev`/`digest` column, or the seq inside it, disagrees with the event.
    #[error("event {seq} of visit {visit}: clear column {column} does not match the event")]
    EventIndexMismatch {
        /// The visit.
        visit: VisitId,
        /// The row's seq.
        seq: u64,
        /// `prev`, `digest` or `seq`.
        column: &'static str,
    },
    /// The events do not form one chain ending at the visit's recorded head.
    #[error("event log of visit {visit} is broken: {source}")]
    ChainBroken {
        /// The visit.
        visit: VisitId,
        /// How.
        #[source]
        source: ChainError,
    },
    /// An event cannot be encoded canonically (e.g. text not in Unicode NFC).
    #[error("event for visit {visit} cannot be encoded canonically: {source}")]
    EventUnencodable {
        /// The visit.
        visit: VisitId,
        /// Why.
        #[source]
        source: CanonicalError,
    },
    /// The same blob was indexed for a visit twice with different details.
    #[error("blob {digest} of visit {visit} is already indexed with other size, type or role")]
    EvidenceConflict {
        /// The visit.
        visit: VisitId,
        /// The blob's digest.
        digest: String,
    },
}

/// Drops serde's shape messages, which may quote the offending (personal) value.
pub(crate) fn redact(error: CanonicalError) -> CanonicalError {
    match error {
        CanonicalError::Deserialize { .. } => CanonicalError::Deserialize {
            reason: "fields do not match the expected type (details withheld)".into(),
        },
        other => other,
    }
}

/// Converts a count or size for an INTEGER column.
pub(crate) fn to_sql_int(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// Converts an INTEGER column back to an unsigned count or size.
pub(crate) fn from_sql_int(column: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        column,
        reason: format!("negative value {value}"),
    })
}
