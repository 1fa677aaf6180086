//! Retention, legal hold and destruction of evidence (E04): the holds on cases and visits,
//! the banks' destruction requests and their second person's decision, the signed
//! certificates, and the mark a destroyed bundle keeps.
//!
//! A destruction is decided and recorded in ONE transaction ([`RetentionDb::destroy`]): the
//! request is claimed first (its row written: PostgreSQL's row lock, SQLite's write lock),
//! then the holds, the bundles, the bank's policy and the other bundles' manifests are read
//! under that lock and handed to the caller's decision (the rules live in
//! `crate::retention`, not here); a refusal or the destruction (bundles marked, the
//! certificate stored, the audit entry appended) commits with the claim. The blob files are
//! removed by the caller after the commit.

use async_trait::async_trait;
use tandem_core::model::{BankId, CaseId, VisitId};
use uuid::Uuid;

use super::DbError;
use crate::audit::AuditEntry;

/// A legal hold to place.
#[derive(Debug, Clone)]
pub struct NewHold {
    /// Its id.
    pub id: Uuid,
    /// The case's bank.
    pub bank_id: BankId,
    /// The case held, or the case of the visit held.
    pub case_id: CaseId,
    /// The visit held; `None` holds the whole case.
    pub visit_id: Option<VisitId>,
    /// The matter (a court case number…).
    pub reference: String,
    /// Why.
    pub reason: String,
    /// Who placed it.
    pub placed_by: Uuid,
    /// When, UTC ms.
    pub placed_ms: i64,
}

/// A stored legal hold, with its case's reference and the people's names.
#[derive(Debug, Clone)]
pub struct HoldRecord {
    /// Its id.
    pub id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// The case's reference.
    pub case_ref: String,
    /// The visit held; `None` for the whole case.
    pub visit_id: Option<VisitId>,
    /// The matter.
    pub reference: String,
    /// Why it was placed.
    pub reason: String,
    /// Who placed it (display name).
    pub placed_by: String,
    /// When, UTC ms.
    pub placed_ms: i64,
    /// Who lifted it (display name).
    pub lifted_by: Option<String>,
    /// When it was lifted.
    pub lifted_ms: Option<i64>,
    /// Why it was lifted.
    pub lift_reason: Option<String>,
}

/// A destruction request to store.
#[derive(Debug, Clone)]
pub struct NewDestructionRequest {
    /// Its id.
    pub id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// One visit; `None` for every visit of the case.
    pub visit_id: Option<VisitId>,
    /// The bank's reference for its request.
    pub bank_reference: String,
    /// Why.
    pub reason: String,
    /// Who asked.
    pub requested_by: Uuid,
    /// When, UTC ms.
    pub requested_ms: i64,
}

/// A stored destruction request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Its id.
    pub id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// The case's reference.
    pub case_ref: String,
    /// One visit; `None` for every visit of the case.
    pub visit_id: Option<VisitId>,
    /// The bank's reference.
    pub bank_reference: String,
    /// Why.
    pub reason: String,
    /// Who asked (user id).
    pub requested_by: Uuid,
    /// Who asked (display name).
    pub requested_by_name: String,
    /// When.
    pub requested_ms: i64,
    /// `pending`, `destroyed` or `refused`.
    pub status: String,
    /// Who decided (display name).
    pub decided_by_name: Option<String>,
    /// When.
    pub decided_ms: Option<i64>,
    /// Why it was refused.
    pub refusal: Option<String>,
    /// The certificate, once destroyed.
    pub certificate_id: Option<Uuid>,
}

/// A bundle as retention sees it.
#[derive(Debug, Clone)]
pub struct EvidenceBundle {
    /// The bundle.
    pub id: String,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: String,
    /// The visit.
    pub visit_id: String,
    /// SHA-256 of the manifest (hex).
    pub manifest_digest: String,
    /// `manifest.json`, exactly as signed.
    pub manifest: Vec<u8>,
    /// `pending`, `accepted` or `quarantined`.
    pub status: String,
    /// When it arrived.
    pub received_ms: i64,
    /// When it was committed (its log entry).
    pub committed_ms: Option<i64>,
    /// Its log entry.
    pub log_index: Option<i64>,
    /// When its blobs were destroyed.
    pub destroyed_ms: Option<i64>,
    /// The certificate of that destruction.
    pub certificate_id: Option<String>,
}

/// A certificate to store.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Its id.
    pub id: Uuid,
    /// The JSON bytes signed.
    pub document: Vec<u8>,
    /// The server key's detached signature over them.
    pub signature: Vec<u8>,
}

/// A stored certificate.
#[derive(Debug, Clone)]
pub struct CertificateRecord {
    /// Its id.
    pub id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The request it closed.
    pub request_id: Uuid,
    /// The JSON bytes signed.
    pub document: Vec<u8>,
    /// The detached signature.
    pub signature: Vec<u8>,
    /// When, UTC ms.
    pub created_ms: i64,
}

/// What a destruction's decision is shown, read inside its transaction.
#[derive(Debug, Clone)]
pub struct DestructionFacts {
    /// The request (still pending).
    pub request: RequestRecord,
    /// The bundles it names that are not destroyed yet.
    pub bundles: Vec<EvidenceBundle>,
    /// The holds not lifted on the case or its visits.
    pub holds: Vec<HoldRecord>,
    /// The bank's latest policy (JSON), if it has one.
    pub policy: Option<String>,
    /// The manifests of every other bundle not destroyed (blobs they list stay).
    pub other_manifests: Vec<Vec<u8>>,
}

/// What the decision came to.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Refused now (the rule's text), with its audit entry.
    Refuse {
        /// Why, language-neutral (`E04: …`).
        refusal: String,
        /// The entry to append.
        audit: AuditEntry,
    },
    /// Destroyed: these bundles marked, this certificate stored, this entry appended.
    Destroy {
        /// The bundles to mark.
        bundle_ids: Vec<String>,
        /// The signed certificate.
        certificate: NewCertificate,
        /// The entry to append.
        audit: AuditEntry,
    },
}

/// The decision of a destruction, over the facts read under the lock.
pub type Decide<'a> = &'a (dyn Fn(&DestructionFacts) -> Result<Decision, String> + Send + Sync);

/// What became of [`RetentionDb::destroy`].
#[derive(Debug, Clone)]
pub enum DestroyOutcome {
    /// The request was not pending (decided meanwhile, or unknown): nothing changed.
    NotPending,
    /// Refused and recorded.
    Refused(String),
    /// Destroyed: the certificate's id and the decision that was recorded.
    Destroyed(Uuid),
    /// The decision failed (signing); nothing changed.
    Failed(String),
}

/// Storage of holds, destruction requests and certificates.
#[async_trait]
pub trait RetentionDb: Send + Sync {
    /// A case's bank, by id.
    async fn case_bank(&self, case: CaseId) -> Result<Option<BankId>, DbError>;
    /// A case of one of `banks` by its reference.
    async fn case_by_ref(
        &self,
        banks: &[BankId],
        case_ref: &str,
    ) -> Result<Option<CaseId>, DbError>;
    /// A visit's bank and case (from its approval, else its bundles).
    async fn visit_case(&self, visit: VisitId) -> Result<Option<(BankId, CaseId)>, DbError>;
    /// Places a hold and appends its audit entry, in one transaction.
    async fn place_hold(&self, hold: &NewHold, audit: &AuditEntry) -> Result<(), DbError>;
    /// Lifts a hold not lifted yet and appends its audit entry, in one transaction; `false`
    /// when it was not active.
    async fn lift_hold(
        &self,
        id: Uuid,
        by: Uuid,
        reason: &str,
        now_ms: i64,
        audit: &AuditEntry,
    ) -> Result<bool, DbError>;
    /// A hold.
    async fn hold(&self, id: Uuid) -> Result<Option<HoldRecord>, DbError>;
    /// Holds of `banks`, newest first (only those not lifted when `active`).
    async fn holds(
        &self,
        banks: &[BankId],
        active: bool,
        limit: i64,
    ) -> Result<Vec<HoldRecord>, DbError>;
    /// The holds not lifted that cover a case (`visit` `None`: the case's own and its
    /// visits') or one visit (the visit's own and its case's).
    async fn active_holds(
        &self,
        case: CaseId,
        visit: Option<VisitId>,
    ) -> Result<Vec<HoldRecord>, DbError>;
    /// The bundles of a case, or of one of its visits.
    async fn evidence(
        &self,
        case: CaseId,
        visit: Option<VisitId>,
    ) -> Result<Vec<EvidenceBundle>, DbError>;
    /// Stores a request and appends its audit entry, in one transaction.
    async fn put_destruction_request(
        &self,
        request: &NewDestructionRequest,
        audit: &AuditEntry,
    ) -> Result<(), DbError>;
    /// A request.
    async fn destruction_request(&self, id: Uuid) -> Result<Option<RequestRecord>, DbError>;
    /// Requests of `banks`, newest first.
    async fn destruction_requests(
        &self,
        banks: &[BankId],
        limit: i64,
    ) -> Result<Vec<RequestRecord>, DbError>;
    /// Decides a pending request by `by` at `now_ms` in one transaction (see the module).
    async fn destroy(
        &self,
        request: Uuid,
        by: Uuid,
        now_ms: i64,
        decide: Decide<'_>,
    ) -> Result<DestroyOutcome, DbError>;
    /// A certificate.
    async fn certificate(&self, id: Uuid) -> Result<Option<CertificateRecord>, DbError>;
}

row_by_name! {
    struct HoldRow {
        id: String,
        bank_id: String,
        case_id: String,
        case_ref: String,
        visit_id: Option<String>,
        reference: String,
        reason: String,
        placed_by: String,
        placed_ms: i64,
        lifted_by: Option<String>,
        lifted_ms: Option<i64>,
        lift_reason: Option<String>,
    }
}

row_by_name! {
    struct RequestRow {
        id: String,
        bank_id: String,
        case_id: String,
        case_ref: String,
        visit_id: Option<String>,
        bank_reference: String,
        reason: String,
        requested_by: String,
        requested_by_name: String,
        requested_ms: i64,
        status: String,
        decided_by_name: Option<String>,
        decided_ms: Option<i64>,
        refusal: Option<String>,
        certificate_id: Option<String>,
    }
}

row_by_name! {
    struct BundleRow {
        id: String,
        bank_id: String,
        case_id: String,
        visit_id: String,
        manifest_digest: String,
        manifest: Vec<u8>,
        status: String,
        received_ms: i64,
        committed_ms: Option<i64>,
        log_index: Option<i64>,
        destroyed_ms: Option<i64>,
        destruction_certificate_id: Option<String>,
    }
}

row_by_name! {
    struct CertificateRow {
        id: String,
        bank_id: String,
        request_id: String,
        document: Vec<u8>,
        signature: Vec<u8>,
        created_ms: i64,
    }
}

const HOLD_SELECT: &str = "SELECT h.id, h.bank_id, h.case_id, c.case_ref, h.visit_id, \
    h.reference, h.reason, p.display_name AS placed_by, h.placed_ms, \
    l.display_name AS lifted_by, h.lifted_ms, h.lift_reason \
    FROM legal_holds h JOIN cases c ON c.id = h.case_id \
    JOIN users p ON p.id = h.placed_by LEFT JOIN users l ON l.id = h.lifted_by";

const REQUEST_SELECT: &str = "SELECT r.id, r.bank_id, r.case_id, c.case_ref, r.visit_id, \
    r.bank_reference, r.reason, r.requested_by, q.display_name AS requested_by_name, \
    r.requested_ms, r.status, d.display_name AS decided_by_name, r.decided_ms, r.refusal, \
    r.certificate_id FROM destruction_requests r JOIN cases c ON c.id = r.case_id \
    JOIN users q ON q.id = r.requested_by LEFT JOIN users d ON d.id = r.decided_by";

const BUNDLE_SELECT: &str = "SELECT id, bank_id, case_id, visit_id, manifest_digest, manifest, \
    status, received_ms, committed_ms, log_index, destroyed_ms, destruction_certificate_id \
    FROM bundles";

/// Active holds covering a visit ($2) or its case ($1); with $2 NULL, the case's and every
/// visit's of it.
const ACTIVE_HOLDS_WHERE: &str = "h.lifted_ms IS NULL AND h.case_id = $1 \
    AND (h.visit_id IS NULL OR $2 IS NULL OR h.visit_id = $2)";

fn bad<E>(what: &'static str) -> impl Fn(E) -> DbError {
    move |_| DbError::Corrupt(what)
}

fn hold_record(r: HoldRow) -> Result<HoldRecord, DbError> {
    Ok(HoldRecord {
        id: r.id.parse().map_err(bad("legal_holds.id"))?,
        bank_id: r.bank_id.parse().map_err(bad("legal_holds.bank_id"))?,
        case_id: r.case_id.parse().map_err(bad("legal_holds.case_id"))?,
        case_ref: r.case_ref,
        visit_id: r
            .visit_id
            .map(|v| v.parse().map_err(bad("legal_holds.visit_id")))
            .transpose()?,
        reference: r.reference,
        reason: r.reason,
        placed_by: r.placed_by,
        placed_ms: r.placed_ms,
        lifted_by: r.lifted_by,
        lifted_ms: r.lifted_ms,
        lift_reason: r.lift_reason,
    })
}

fn request_record(r: RequestRow) -> Result<RequestRecord, DbError> {
    Ok(RequestRecord {
        id: r.id.parse().map_err(bad("destruction_requests.id"))?,
        bank_id: r
            .bank_id
            .parse()
            .map_err(bad("destruction_requests.bank_id"))?,
        case_id: r
            .case_id
            .parse()
            .map_err(bad("destruction_requests.case_id"))?,
        case_ref: r.case_ref,
        visit_id: r
            .visit_id
            .map(|v| v.parse().map_err(bad("destruction_requests.visit_id")))
            .transpose()?,
        bank_reference: r.bank_reference,
        reason: r.reason,
        requested_by: r
            .requested_by
            .parse()
            .map_err(bad("destruction_requests.requested_by"))?,
        requested_by_name: r.requested_by_name,
        requested_ms: r.requested_ms,
        status: r.status,
        decided_by_name: r.decided_by_name,
        decided_ms: r.decided_ms,
        refusal: r.refusal,
        certificate_id: r
            .certificate_id
            .map(|v| {
                v.parse()
                    .map_err(bad("destruction_requests.certificate_id"))
            })
            .transpose()?,
    })
}

fn evidence_bundle(r: BundleRow) -> Result<EvidenceBundle, DbError> {
    Ok(EvidenceBundle {
        id: r.id,
        bank_id: r.bank_id.parse().map_err(bad("bundles.bank_id"))?,
        case_id: r.case_id,
        visit_id: r.visit_id,
        manifest_digest: r.manifest_digest,
        manifest: r.manifest,
        status: r.status,
        received_ms: r.received_ms,
        committed_ms: r.committed_ms,
        log_index: r.log_index,
        destroyed_ms: r.destroyed_ms,
        certificate_id: r.destruction_certificate_id,
    })
}

fn certificate_record(r: CertificateRow) -> Result<CertificateRecord, DbError> {
    Ok(CertificateRecord {
        id: r.id.parse().map_err(bad("destruction_certificates.id"))?,
        bank_id: r
            .bank_id
            .parse()
            .map_err(bad("destruction_certificates.bank_id"))?,
        request_id: r
            .request_id
            .parse()
            .map_err(bad("destruction_certificates.request_id"))?,
        document: r.document,
        signature: r.signature,
        created_ms: r.created_ms,
    })
}

/// `$first, …` for `n` parameters.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes a case's row (no change) inside `$tx`: its row lock on PostgreSQL, the write
/// lock on SQLite.
macro_rules! lock_case {
    ($tx:ident, $case:expr) => {
        sqlx::query("UPDATE cases SET status = status WHERE id = $1")
            .bind($case)
            .execute(&mut *$tx)
            .await?;
    };
}

macro_rules! impl_retention_db {
    ($db:ty) => {
        #[async_trait]
        impl RetentionDb for $db {
            async fn case_bank(&self, case: CaseId) -> Result<Option<BankId>, DbError> {
                let bank: Option<String> =
                    sqlx::query_scalar("SELECT bank_id FROM cases WHERE id = $1")
                        .bind(case.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                bank.map(|b| b.parse().map_err(bad("cases.bank_id")))
                    .transpose()
            }

            async fn case_by_ref(
                &self,
                banks: &[BankId],
                case_ref: &str,
            ) -> Result<Option<CaseId>, DbError> {
                if banks.is_empty() {
                    return Ok(None);
                }
                let sql = format!(
                    "SELECT id FROM cases WHERE case_ref = $1 AND bank_id IN ({}) \
                     ORDER BY id LIMIT 2",
                    params(2, banks.len())
                );
                let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(case_ref);
                for b in banks {
                    q = q.bind(b.to_string());
                }
                let found = q.fetch_all(&self.pool).await?;
                // One reference in two of the user's banks names no single case.
                match found.as_slice() {
                    [one] => Ok(Some(one.parse().map_err(bad("cases.id"))?)),
                    _ => Ok(None),
                }
            }

            async fn visit_case(
                &self,
                visit: VisitId,
            ) -> Result<Option<(BankId, CaseId)>, DbError> {
                let found: Option<(String, String)> = sqlx::query_as(
                    "SELECT bank_id, case_id FROM approvals WHERE visit_id = $1 \
                     UNION ALL SELECT b.bank_id, b.case_id FROM bundles b \
                     JOIN cases c ON c.id = b.case_id AND c.bank_id = b.bank_id \
                     WHERE b.visit_id = $1 LIMIT 1",
                )
                .bind(visit.to_string())
                .fetch_optional(&self.pool)
                .await?;
                found
                    .map(|(bank, case)| {
                        Ok((
                            bank.parse().map_err(bad("approvals.bank_id"))?,
                            case.parse().map_err(bad("approvals.case_id"))?,
                        ))
                    })
                    .transpose()
            }

            async fn place_hold(&self, h: &NewHold, audit: &AuditEntry) -> Result<(), DbError> {
                let mut tx = self.pool.begin().await?;
                // The case's row first: a destruction deciding on this case holds it too,
                // so a hold is either seen by that decision or placed after it.
                lock_case!(tx, h.case_id.to_string());
                sqlx::query(
                    "INSERT INTO legal_holds (id, bank_id, case_id, visit_id, reference, \
                     reason, placed_by, placed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(h.id.to_string())
                .bind(h.bank_id.to_string())
                .bind(h.case_id.to_string())
                .bind(h.visit_id.map(|v| v.to_string()))
                .bind(&h.reference)
                .bind(&h.reason)
                .bind(h.placed_by.to_string())
                .bind(h.placed_ms)
                .execute(&mut *tx)
                .await?;
                Self::append_audit_in(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn lift_hold(
                &self,
                id: Uuid,
                by: Uuid,
                reason: &str,
                now_ms: i64,
                audit: &AuditEntry,
            ) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                let lifted = sqlx::query(
                    "UPDATE legal_holds SET lifted_by = $1, lifted_ms = $2, lift_reason = $3 \
                     WHERE id = $4 AND lifted_ms IS NULL",
                )
                .bind(by.to_string())
                .bind(now_ms)
                .bind(reason)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if lifted == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::append_audit_in(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn hold(&self, id: Uuid) -> Result<Option<HoldRecord>, DbError> {
                let sql = format!("{HOLD_SELECT} WHERE h.id = $1");
                sqlx::query_as::<_, HoldRow>(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(hold_record)
                    .transpose()
            }

            async fn holds(
                &self,
                banks: &[BankId],
                active: bool,
                limit: i64,
            ) -> Result<Vec<HoldRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let n = banks.len();
                let which = if active { " AND h.lifted_ms IS NULL" } else { "" };
                let sql = format!(
                    "{HOLD_SELECT} WHERE h.bank_id IN ({}){which} \
                     ORDER BY h.placed_ms DESC, h.id LIMIT ${}",
                    params(1, n),
                    n + 1
                );
                let mut q = sqlx::query_as::<_, HoldRow>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    q = q.bind(b.to_string());
                }
                q.bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(hold_record)
                    .collect()
            }

            async fn active_holds(
                &self,
                case: CaseId,
                visit: Option<VisitId>,
            ) -> Result<Vec<HoldRecord>, DbError> {
                let sql = format!(
                    "{HOLD_SELECT} WHERE {ACTIVE_HOLDS_WHERE} ORDER BY h.placed_ms, h.id"
                );
                sqlx::query_as::<_, HoldRow>(sqlx::AssertSqlSafe(sql))
                    .bind(case.to_string())
                    .bind(visit.map(|v| v.to_string()))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(hold_record)
                    .collect()
            }

            async fn evidence(
                &self,
                case: CaseId,
                visit: Option<VisitId>,
            ) -> Result<Vec<EvidenceBundle>, DbError> {
                let sql = format!(
                    "{BUNDLE_SELECT} WHERE case_id = $1 AND ($2 IS NULL OR visit_id = $2) \
                     ORDER BY received_ms, id"
                );
                sqlx::query_as::<_, BundleRow>(sqlx::AssertSqlSafe(sql))
                    .bind(case.to_string())
                    .bind(visit.map(|v| v.to_string()))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(evidence_bundle)
                    .collect()
            }

            async fn put_destruction_request(
                &self,
                r: &NewDestructionRequest,
                audit: &AuditEntry,
            ) -> Result<(), DbError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO destruction_requests (id, bank_id, case_id, visit_id, \
                     bank_reference, reason, requested_by, requested_ms, status) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
                )
                .bind(r.id.to_string())
                .bind(r.bank_id.to_string())
                .bind(r.case_id.to_string())
                .bind(r.visit_id.map(|v| v.to_string()))
                .bind(&r.bank_reference)
                .bind(&r.reason)
                .bind(r.requested_by.to_string())
                .bind(r.requested_ms)
                .execute(&mut *tx)
                .await?;
                Self::append_audit_in(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn destruction_request(
                &self,
                id: Uuid,
            ) -> Result<Option<RequestRecord>, DbError> {
                let sql = format!("{REQUEST_SELECT} WHERE r.id = $1");
                sqlx::query_as::<_, RequestRow>(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(request_record)
                    .transpose()
            }

            async fn destruction_requests(
                &self,
                banks: &[BankId],
                limit: i64,
            ) -> Result<Vec<RequestRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let n = banks.len();
                let sql = format!(
                    "{REQUEST_SELECT} WHERE r.bank_id IN ({}) \
                     ORDER BY r.requested_ms DESC, r.id LIMIT ${}",
                    params(1, n),
                    n + 1
                );
                let mut q = sqlx::query_as::<_, RequestRow>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    q = q.bind(b.to_string());
                }
                q.bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(request_record)
                    .collect()
            }

            async fn destroy(
                &self,
                request: Uuid,
                by: Uuid,
                now_ms: i64,
                decide: Decide<'_>,
            ) -> Result<DestroyOutcome, DbError> {
                let mut tx = self.pool.begin().await?;
                // The claim first: a write on the request's row (its lock on PostgreSQL,
                // the database's write lock on SQLite) orders this decision against any
                // other decision, hold or destruction until the commit.
                let claimed = sqlx::query(
                    "UPDATE destruction_requests SET reason = reason \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(request.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    tx.rollback().await?;
                    return Ok(DestroyOutcome::NotPending);
                }
                let sql = format!("{REQUEST_SELECT} WHERE r.id = $1");
                let Some(row) = sqlx::query_as::<_, RequestRow>(sqlx::AssertSqlSafe(sql))
                    .bind(request.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    tx.rollback().await?;
                    return Ok(DestroyOutcome::NotPending);
                };
                let record = request_record(row)?;
                let case = record.case_id.to_string();
                // The case's row, as a hold being placed takes it: a hold committed before
                // this point is read below; one placed later waits for this decision.
                lock_case!(tx, case.clone());
                let visit = record.visit_id.map(|v| v.to_string());
                let sql = format!(
                    "{HOLD_SELECT} WHERE {ACTIVE_HOLDS_WHERE} ORDER BY h.placed_ms, h.id"
                );
                let holds = sqlx::query_as::<_, HoldRow>(sqlx::AssertSqlSafe(sql))
                    .bind(&case)
                    .bind(visit.as_deref())
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(hold_record)
                    .collect::<Result<Vec<_>, _>>()?;
                let sql = format!(
                    "{BUNDLE_SELECT} WHERE case_id = $1 AND ($2 IS NULL OR visit_id = $2) \
                     AND destroyed_ms IS NULL ORDER BY received_ms, id"
                );
                let bundles = sqlx::query_as::<_, BundleRow>(sqlx::AssertSqlSafe(sql))
                    .bind(&case)
                    .bind(visit.as_deref())
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(evidence_bundle)
                    .collect::<Result<Vec<_>, _>>()?;
                let policy: Option<String> = sqlx::query_scalar(
                    "SELECT body FROM policies WHERE bank_id = $1 ORDER BY version DESC LIMIT 1",
                )
                .bind(record.bank_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let ids: std::collections::HashSet<&str> =
                    bundles.iter().map(|b| b.id.as_str()).collect();
                let others: Vec<(String, Vec<u8>)> = sqlx::query_as(
                    "SELECT id, manifest FROM bundles WHERE destroyed_ms IS NULL",
                )
                .fetch_all(&mut *tx)
                .await?;
                let other_manifests = others
                    .into_iter()
                    .filter(|(id, _)| !ids.contains(id.as_str()))
                    .map(|(_, m)| m)
                    .collect();
                let facts = DestructionFacts {
                    request: record,
                    bundles,
                    holds,
                    policy,
                    other_manifests,
                };
                let decision = match decide(&facts) {
                    Ok(d) => d,
                    Err(e) => {
                        tx.rollback().await?;
                        return Ok(DestroyOutcome::Failed(e));
                    }
                };
                let outcome = match decision {
                    Decision::Refuse { refusal, audit } => {
                        sqlx::query(
                            "UPDATE destruction_requests SET status = 'refused', \
                             decided_by = $1, decided_ms = $2, refusal = $3 WHERE id = $4",
                        )
                        .bind(by.to_string())
                        .bind(now_ms)
                        .bind(&refusal)
                        .bind(request.to_string())
                        .execute(&mut *tx)
                        .await?;
                        Self::append_audit_in(&mut *tx, &audit).await?;
                        DestroyOutcome::Refused(refusal)
                    }
                    Decision::Destroy {
                        bundle_ids,
                        certificate,
                        audit,
                    } => {
                        let cert = certificate.id.to_string();
                        sqlx::query(
                            "INSERT INTO destruction_certificates (id, bank_id, request_id, \
                             document, signature, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(&cert)
                        .bind(facts.request.bank_id.to_string())
                        .bind(request.to_string())
                        .bind(&certificate.document)
                        .bind(&certificate.signature)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                        for id in &bundle_ids {
                            sqlx::query(
                                "UPDATE bundles SET destroyed_ms = $1, \
                                 destruction_certificate_id = $2 \
                                 WHERE id = $3 AND destroyed_ms IS NULL",
                            )
                            .bind(now_ms)
                            .bind(&cert)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        }
                        sqlx::query(
                            "UPDATE destruction_requests SET status = 'destroyed', \
                             decided_by = $1, decided_ms = $2, certificate_id = $3 \
                             WHERE id = $4",
                        )
                        .bind(by.to_string())
                        .bind(now_ms)
                        .bind(&cert)
                        .bind(request.to_string())
                        .execute(&mut *tx)
                        .await?;
                        Self::append_audit_in(&mut *tx, &audit).await?;
                        DestroyOutcome::Destroyed(certificate.id)
                    }
                };
                tx.commit().await?;
                Ok(outcome)
            }

            async fn certificate(&self, id: Uuid) -> Result<Option<CertificateRecord>, DbError> {
                sqlx::query_as::<_, CertificateRow>(
                    "SELECT id, bank_id, request_id, document, signature, created_ms \
                     FROM destruction_certificates WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(certificate_record)
                .transpose()
            }
        }
    };
}

impl_retention_db!(super::SqliteDb);
impl_retention_db!(super::PgDb);
