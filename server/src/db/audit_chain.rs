//! Reading the whole audit log in order for `tandem audit verify`, a page at a time.
//!
//! On a SQLite file the rows are read with `rusqlite` on a read-only connection of their
//! own, in a blocking thread that sends pages through a bounded channel (the next page is
//! read while the verifier hashes this one): sqlx's SQLite driver hands every row across
//! its worker thread, which cost about 6 of the 7.6 s of a 1,000,000-entry check
//! (docs/benchmarks.md).
//! One statement in one read transaction: the rows are one snapshot of the log, taken
//! after the verifier read the head and the anchors. PostgreSQL (and an in-memory SQLite
//! database, which no second connection can open) is read a page at a time through the
//! pool, each page after the last position read.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use tokio::sync::mpsc;

use super::DbError;
use crate::audit::chain::StoredEntry;

/// One page: rows in order, each with its stored chain hash.
pub type ChainPage = Vec<(StoredEntry, String)>;

/// The audit log's rows after a position, in order, a page at a time.
pub struct AuditChain(Source);

/// A page of rows after a position, read through the pool.
pub(super) type PageAfter =
    Box<dyn FnMut(i64) -> Pin<Box<dyn Future<Output = Result<ChainPage, DbError>> + Send>> + Send>;

enum Source {
    /// Pages a reading thread sends.
    Thread(mpsc::Receiver<Result<ChainPage, DbError>>),
    /// Pages read on demand, each after the last row of the one before.
    Pool { after: i64, read: PageAfter },
}

impl AuditChain {
    /// The next page; `None` once every row was read.
    pub async fn next_page(&mut self) -> Result<Option<ChainPage>, DbError> {
        match &mut self.0 {
            Source::Thread(pages) => pages.recv().await.transpose(),
            Source::Pool { after, read } => {
                let page = read(*after).await?;
                Ok(page.last().map(|(row, _)| row.seq).map(|last| {
                    *after = last;
                    page
                }))
            }
        }
    }

    /// Pages read through a pool by `read`, the first after `after`.
    pub(super) fn through_pool(after: i64, read: PageAfter) -> Self {
        Self(Source::Pool { after, read })
    }
}

/// Pages read and waiting while the verifier hashes one (SQLite file).
const QUEUED_PAGES: usize = 1;

/// Every row after `?1`, in order, with its chain hash.
const CHAIN_SELECT: &str = "SELECT seq, at_ms, actor_user_id, action, subject_kind, \
     subject_id, bank_id, detail, client_addr, purpose, entry_hash \
     FROM audit_log WHERE seq > ?1 ORDER BY seq";

/// The file a SQLite pool reads, when it is one a second connection can open.
pub(super) fn sqlite_file(options: &sqlx::sqlite::SqliteConnectOptions) -> Option<PathBuf> {
    let path = options.get_filename();
    path.is_file().then(|| path.to_owned())
}

/// Reads the rows after `after` from the SQLite file at `path` on a blocking thread.
pub(super) fn read_sqlite_file(path: PathBuf, after: i64, page: u32) -> AuditChain {
    let (tx, pages) = mpsc::channel(QUEUED_PAGES);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = read_file(&path, after, page, &tx) {
            // The receiver may be gone already: then nobody waits for the error.
            let _ = tx.blocking_send(Err(e));
        }
    });
    AuditChain(Source::Thread(pages))
}

fn read_file(
    path: &Path,
    after: i64,
    page: u32,
    tx: &mpsc::Sender<Result<ChainPage, DbError>>,
) -> Result<(), DbError> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // One read transaction around the statement: every row of one snapshot of the log.
    conn.execute_batch("BEGIN")?;
    let mut stmt = conn.prepare(CHAIN_SELECT)?;
    let mut rows = stmt.query([after])?;
    let size = usize::try_from(page).unwrap_or(1).max(1);
    let mut current = Vec::with_capacity(size);
    while let Some(row) = rows.next()? {
        let entry = StoredEntry {
            seq: row.get(0)?,
            at_ms: row.get(1)?,
            actor_user_id: row.get(2)?,
            action: row.get(3)?,
            subject_kind: row.get(4)?,
            subject_id: row.get(5)?,
            bank_id: row.get(6)?,
            detail: row.get(7)?,
            client_addr: row.get(8)?,
            purpose: row.get(9)?,
        };
        current.push((entry, row.get(10)?));
        if current.len() == size {
            let full = std::mem::replace(&mut current, Vec::with_capacity(size));
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !current.is_empty() {
        let _ = tx.blocking_send(Ok(current));
    }
    Ok(())
}
