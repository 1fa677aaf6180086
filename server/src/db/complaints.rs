//! Complaints (P01) and the review queue: a complaint opens a 24-hour ticket and puts its
//! case on hold in the same transaction; resolving the last open one restores the case's
//! status; a scheduled check marks tickets still open past their deadline.

use async_trait::async_trait;
use tandem_core::model::{BankId, CaseId};
use uuid::Uuid;

use super::DbError;

/// How long a complaint ticket may stay open (P01).
pub const TICKET_MS: i64 = 24 * 3_600_000;

/// Who recorded a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplaintSource {
    /// A console user.
    Console(Uuid),
    /// A phone's sealed visit: the bundle that carried it.
    Phone(tandem_core::model::BundleId),
}

/// A complaint to open.
#[derive(Debug, Clone)]
pub struct NewComplaint {
    /// Its id.
    pub id: Uuid,
    /// The case's bank.
    pub bank_id: BankId,
    /// The case put on hold.
    pub case_id: CaseId,
    /// The visit it arose from.
    pub visit_id: Option<Uuid>,
    /// Who recorded it.
    pub source: ComplaintSource,
    /// What was said.
    pub note: String,
    /// When, UTC ms.
    pub opened_ms: i64,
}

/// A stored complaint, with its case's reference.
#[derive(Debug, Clone)]
pub struct ComplaintRecord {
    /// Its id.
    pub id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// The case's reference.
    pub case_ref: String,
    /// The visit it arose from.
    pub visit_id: Option<Uuid>,
    /// `console` or `phone`.
    pub source: String,
    /// What was said.
    pub note: String,
    /// Opened, UTC ms.
    pub opened_ms: i64,
    /// The ticket's deadline, UTC ms.
    pub due_ms: i64,
    /// Resolved, UTC ms.
    pub resolved_ms: Option<i64>,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// When the scheduled check found it open past its deadline.
    pub breached_ms: Option<i64>,
}

/// A flag on a received bundle, for the review queue.
#[derive(Debug, Clone)]
pub struct QueuedFlag {
    /// `quarantine`, `review` or `equivocation`.
    pub kind: String,
    /// What to look at.
    pub detail: String,
    /// Raised, UTC ms.
    pub created_ms: i64,
    /// The bank.
    pub bank_id: BankId,
    /// The visit.
    pub visit_id: String,
    /// The case's reference, when the server knows the case.
    pub case_ref: Option<String>,
}

/// What opening a complaint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// A new ticket; the case is on hold.
    New,
    /// This bundle's complaint was opened already.
    Already,
}

/// Storage of complaints and the review queue.
#[async_trait]
pub trait ComplaintsDb: Send + Sync {
    /// Opens a complaint and puts its case on hold, in one transaction.
    async fn open_complaint(&self, complaint: &NewComplaint) -> Result<Opened, DbError>;
    /// Resolves an open complaint with a note; when it was the case's last open one, the
    /// case's status before the complaints comes back. `false` when it was not open.
    async fn resolve_complaint(
        &self,
        id: Uuid,
        by: Uuid,
        resolution: &str,
        now_ms: i64,
    ) -> Result<bool, DbError>;
    /// A complaint.
    async fn complaint(&self, id: Uuid) -> Result<Option<ComplaintRecord>, DbError>;
    /// Complaints of `banks`: the open ones (oldest deadline first), or the latest resolved.
    async fn complaints(
        &self,
        banks: &[BankId],
        open: bool,
        limit: i64,
    ) -> Result<Vec<ComplaintRecord>, DbError>;
    /// Marks every complaint still open past its deadline as breached at `now_ms`; returns
    /// those it marked (a second run, or another instance's, marks none of them again).
    async fn mark_breached_complaints(&self, now_ms: i64) -> Result<Vec<ComplaintRecord>, DbError>;
    /// The latest flags on bundles of `banks`, newest first.
    async fn flag_queue(&self, banks: &[BankId], limit: i64) -> Result<Vec<QueuedFlag>, DbError>;
}

row_by_name! {
    struct ComplaintRow {
        id: String,
        bank_id: String,
        case_id: String,
        case_ref: String,
        visit_id: Option<String>,
        source: String,
        note: String,
        opened_ms: i64,
        due_ms: i64,
        resolved_ms: Option<i64>,
        resolution: Option<String>,
        breached_ms: Option<i64>,
    }
}

row_by_name! {
    struct FlagRow {
        kind: String,
        detail: String,
        created_ms: i64,
        bank_id: String,
        visit_id: String,
        case_ref: Option<String>,
    }
}

const COMPLAINT_SELECT: &str = "SELECT k.id, k.bank_id, k.case_id, c.case_ref, k.visit_id, \
    k.source, k.note, k.opened_ms, k.due_ms, k.resolved_ms, k.resolution, k.breached_ms \
    FROM complaints k JOIN cases c ON c.id = k.case_id";

fn bad<E>(what: &'static str) -> impl Fn(E) -> DbError {
    move |_| DbError::Corrupt(what)
}

fn complaint_record(r: ComplaintRow) -> Result<ComplaintRecord, DbError> {
    Ok(ComplaintRecord {
        id: r.id.parse().map_err(bad("complaints.id"))?,
        bank_id: r.bank_id.parse().map_err(bad("complaints.bank_id"))?,
        case_id: r.case_id.parse().map_err(bad("complaints.case_id"))?,
        case_ref: r.case_ref,
        visit_id: r
            .visit_id
            .map(|v| v.parse().map_err(bad("complaints.visit_id")))
            .transpose()?,
        source: r.source,
        note: r.note,
        opened_ms: r.opened_ms,
        due_ms: r.due_ms,
        resolved_ms: r.resolved_ms,
        resolution: r.resolution,
        breached_ms: r.breached_ms,
    })
}

/// `$first, …` for `n` parameters.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_complaints_db {
    ($db:ty) => {
        #[async_trait]
        impl ComplaintsDb for $db {
            async fn open_complaint(&self, k: &NewComplaint) -> Result<Opened, DbError> {
                let mut tx = self.pool.begin().await?;
                // The case's row is written first: its lock (PostgreSQL) or the write lock
                // (SQLite) orders this against an approval reading the case.
                let status: Option<String> = sqlx::query_scalar(
                    "UPDATE cases SET status = status WHERE id = $1 RETURNING status",
                )
                .bind(k.case_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(status) = status else {
                    return Err(DbError::Corrupt("complaints.case_id"));
                };
                let previous = if status == "complaint" {
                    let earlier: Option<String> = sqlx::query_scalar(
                        "SELECT previous_status FROM complaints WHERE case_id = $1 \
                         AND resolved_ms IS NULL ORDER BY opened_ms LIMIT 1",
                    )
                    .bind(k.case_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                    earlier.unwrap_or_else(|| "active".to_owned())
                } else {
                    status
                };
                let (opened_by, bundle) = match k.source {
                    ComplaintSource::Console(user) => (Some(user.to_string()), None),
                    ComplaintSource::Phone(bundle) => (None, Some(bundle.to_string())),
                };
                let source = match k.source {
                    ComplaintSource::Console(_) => "console",
                    ComplaintSource::Phone(_) => "phone",
                };
                let inserted = sqlx::query(
                    "INSERT INTO complaints (id, bank_id, case_id, visit_id, source, note, \
                     opened_by, bundle_id, opened_ms, due_ms, previous_status) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (bundle_id, note) DO NOTHING",
                )
                .bind(k.id.to_string())
                .bind(k.bank_id.to_string())
                .bind(k.case_id.to_string())
                .bind(k.visit_id.map(|v| v.to_string()))
                .bind(source)
                .bind(&k.note)
                .bind(opened_by)
                .bind(bundle)
                .bind(k.opened_ms)
                .bind(k.opened_ms + TICKET_MS)
                .bind(&previous)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(Opened::Already);
                }
                sqlx::query("UPDATE cases SET status = 'complaint' WHERE id = $1")
                    .bind(k.case_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Opened::New)
            }

            async fn resolve_complaint(
                &self,
                id: Uuid,
                by: Uuid,
                resolution: &str,
                now_ms: i64,
            ) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                let resolved: Option<(String, String)> = sqlx::query_as(
                    "UPDATE complaints SET resolved_ms = $1, resolved_by = $2, resolution = $3 \
                     WHERE id = $4 AND resolved_ms IS NULL RETURNING case_id, previous_status",
                )
                .bind(now_ms)
                .bind(by.to_string())
                .bind(resolution)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((case, previous)) = resolved else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                let still_open: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM complaints WHERE case_id = $1 AND resolved_ms IS NULL",
                )
                .bind(&case)
                .fetch_one(&mut *tx)
                .await?;
                if still_open == 0 {
                    sqlx::query(
                        "UPDATE cases SET status = $1 WHERE id = $2 AND status = 'complaint'",
                    )
                    .bind(&previous)
                    .bind(&case)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn complaint(&self, id: Uuid) -> Result<Option<ComplaintRecord>, DbError> {
                let sql = format!("{COMPLAINT_SELECT} WHERE k.id = $1");
                sqlx::query_as::<_, ComplaintRow>(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(complaint_record)
                    .transpose()
            }

            async fn complaints(
                &self,
                banks: &[BankId],
                open: bool,
                limit: i64,
            ) -> Result<Vec<ComplaintRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let n = banks.len();
                let (which, order) = if open {
                    ("k.resolved_ms IS NULL", "k.due_ms, k.id")
                } else {
                    ("k.resolved_ms IS NOT NULL", "k.resolved_ms DESC, k.id")
                };
                let sql = format!(
                    "{COMPLAINT_SELECT} WHERE k.bank_id IN ({}) AND {which} \
                     ORDER BY {order} LIMIT ${}",
                    params(1, n),
                    n + 1
                );
                let mut q = sqlx::query_as::<_, ComplaintRow>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    q = q.bind(b.to_string());
                }
                q.bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(complaint_record)
                    .collect()
            }

            async fn mark_breached_complaints(
                &self,
                now_ms: i64,
            ) -> Result<Vec<ComplaintRecord>, DbError> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "UPDATE complaints SET breached_ms = $1 WHERE resolved_ms IS NULL \
                     AND breached_ms IS NULL AND due_ms <= $1 RETURNING id",
                )
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let id: Uuid = id.parse().map_err(bad("complaints.id"))?;
                    if let Some(k) = self.complaint(id).await? {
                        out.push(k);
                    }
                }
                Ok(out)
            }

            async fn flag_queue(
                &self,
                banks: &[BankId],
                limit: i64,
            ) -> Result<Vec<QueuedFlag>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let n = banks.len();
                let sql = format!(
                    "SELECT f.kind, f.detail, f.created_ms, b.bank_id, b.visit_id, \
                     c.case_ref FROM bundle_flags f JOIN bundles b ON b.id = f.bundle_id \
                     LEFT JOIN cases c ON c.id = b.case_id WHERE b.bank_id IN ({}) \
                     ORDER BY f.created_ms DESC, f.id LIMIT ${}",
                    params(1, n),
                    n + 1
                );
                let mut q = sqlx::query_as::<_, FlagRow>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    q = q.bind(b.to_string());
                }
                q.bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| {
                        Ok(QueuedFlag {
                            kind: r.kind,
                            detail: r.detail,
                            created_ms: r.created_ms,
                            bank_id: r.bank_id.parse().map_err(bad("bundles.bank_id"))?,
                            visit_id: r.visit_id,
                            case_ref: r.case_ref,
                        })
                    })
                    .collect()
            }
        }
    };
}

impl_complaints_db!(super::SqliteDb);
impl_complaints_db!(super::PgDb);
