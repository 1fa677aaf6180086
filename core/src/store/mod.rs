//! The phone's device store: one SQLite file holding device state, the server's signed
//! documents, visits, their hash-chained event logs and the evidence index.
//!
//! Built like Mozilla application-services' `support/sql`: schema history in
//! `PRAGMA user_version` ([`schema`]), WAL, `synchronous = FULL` (evidence must survive a
//! power cut), foreign keys on, and two connections — one writer, one reader — reached
//! only through [`DeviceStore::write`] and [`DeviceStore::read`]. Debtor data (whole signed
//! case, approval and ticket documents; event bodies) is encrypted with [`FieldCipher`]
//! under a context naming its row, so a ciphertext moved to another row fails to decrypt.

mod documents;
mod error;
mod events;
mod evidence;
mod meta;
mod outbox;
mod receipts;
pub mod schema;
mod seals;
mod visits;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::crypto::FieldCipher;

pub use documents::PolicyUpdate;
pub use error::StoreError;
pub use evidence::{EvidenceItem, EvidenceRecord, EvidenceRole};
pub use outbox::{JobBlob, OutboxStatus, PushJob, Stage};
pub use receipts::{SerialEntry, SerialState};
pub use seals::SealRecord;
pub use visits::{LogHead, VisitRecord};

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The device store: one writer and one reader connection on the same file.
pub struct DeviceStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    cipher: FieldCipher,
}

impl std::fmt::Debug for DeviceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DeviceStore {
    /// Opens (creating if needed) the store at `path`, upgrading its schema to the current
    /// version. `field_key` is the store key, unsealed by the caller from the platform
    /// key store.
    pub fn open(path: &Path, field_key: &[u8; 32]) -> Result<DeviceStore, StoreError> {
        let cipher = FieldCipher::new(field_key).map_err(StoreError::Key)?;
        let opened = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut writer = Connection::open(path).map_err(opened)?;
        // Refuse a newer database before touching it in any way.
        let found = schema::user_version(&writer).map_err(opened)?;
        if found > schema::SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        configure_writer(&writer, path)?;
        schema::migrate(&mut writer, schema::MIGRATIONS, schema::SCHEMA_VERSION)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(opened)?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(opened)?;
        Ok(DeviceStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            cipher,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a read transaction on the reader connection: it sees a consistent
    /// snapshot of committed data, never a write in progress.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = lock(&self.reader);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let out = f(&ReadTx {
            conn: &tx,
            cipher: &self.cipher,
        })?;
        tx.finish().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer connection, committed only if
    /// `f` returns `Ok`; otherwise nothing of it is kept.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&WriteTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&WriteTx {
            read: ReadTx {
                conn: &tx,
                cipher: &self.cipher,
            },
        })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

/// A transaction that panicked was rolled back when it unwound, so the connection is fine.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn configure_writer(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let failed = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(failed)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal {
            path: path.to_owned(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(failed)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(failed)?;
    // Purged personal data is overwritten, not just unlinked from the b-tree (D01).
    conn.pragma_update(None, "secure_delete", true)
        .map_err(failed)?;
    Ok(())
}

/// Read operations, inside one read (or write) transaction.
pub struct ReadTx<'a> {
    conn: &'a Connection,
    cipher: &'a FieldCipher,
}

/// Write operations (and every read), inside one IMMEDIATE transaction.
pub struct WriteTx<'a> {
    read: ReadTx<'a>,
}

impl<'a> std::ops::Deref for WriteTx<'a> {
    type Target = ReadTx<'a>;
    fn deref(&self) -> &ReadTx<'a> {
        &self.read
    }
}

impl ReadTx<'_> {
    fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.cipher
            .encrypt(context, plaintext)
            .map_err(|source| StoreError::Encrypt {
                context: context.to_owned(),
                source,
            })
    }

    fn open_sealed(
        &self,
        context: &str,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        self.cipher
            .decrypt(context, sealed)
            .map_err(|_| StoreError::Undecryptable {
                context: context.to_owned(),
            })
    }
}

/// Parses an id or other `FromStr` value read from a column.
fn parse_column<T: std::str::FromStr>(column: &'static str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| StoreError::Corrupt {
        column,
        reason: e.to_string(),
    })
}
