//! Visit management: imported cases, visit requests and their decisions, approved teams.
//!
//! SQL written once with `$n` placeholders and one macro for both backends (see `db/mod.rs`).
//! An approval is stored with its sync-feed row in one transaction (`db/sync.rs` owns the
//! feed's sequence).

use async_trait::async_trait;
use tandem_core::model::{
    AddressId, AgentId, ApprovalId, BankId, CaseId, DeviceId, MaskedCardNumber, MaskedIdNumber,
    VisitId,
};
use tandem_core::place::Coordinate;
use uuid::Uuid;

use super::sync::{FeedRow, INSERT_FEED, NEXT_SEQ, bind_feed_row};
use super::{DbError, NewAddress, NewCase, parse_datum};

/// Cases inserted per multi-row `INSERT` (11 parameters each: well under both backends'
/// parameter limits).
const INSERT_CHUNK: usize = 200;

/// A case to import, with what the foundation's [`NewCase`] does not carry.
#[derive(Debug, Clone)]
pub struct ImportedCase {
    /// The case, card and ID numbers already masked.
    pub case: NewCase,
    /// The debtor's contact phone, if the bank gave one.
    pub debtor_phone: Option<String>,
}

/// What became of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Every case was stored.
    Imported(usize),
    /// A case reference was stored by someone else meanwhile; nothing was stored.
    DuplicateRef,
}

/// A stored case as the console and the signed case need it.
#[derive(Debug, Clone)]
pub struct CaseRecord {
    /// Its id.
    pub id: CaseId,
    /// Entrusting bank.
    pub bank_id: BankId,
    /// The bank's reference.
    pub case_ref: String,
    /// The card, masked.
    pub card: MaskedCardNumber,
    /// Debtor's name.
    pub debtor_name: String,
    /// Debtor's ID number, masked.
    pub id_number: MaskedIdNumber,
    /// Debtor's contact phone.
    pub debtor_phone: Option<String>,
    /// Arrears in fen.
    pub outstanding_fen: i64,
    /// `active` (or the seed's `open`), `settled`, `dispute`, `complaint`,
    /// `vulnerability_review`.
    pub status: String,
    /// Entrustment start, UTC ms.
    pub entrustment_start_ms: i64,
    /// Entrustment end, UTC ms (exclusive).
    pub entrustment_end_ms: i64,
    /// End of an approved extension, UTC ms.
    pub extended_until_ms: Option<i64>,
    /// `serious_illness` or `pregnancy` (V11).
    pub health_flag: Option<String>,
    /// When imported, UTC ms.
    pub created_ms: i64,
    /// Approved addresses (empty in listings).
    pub addresses: Vec<NewAddress>,
}

/// A visit request to store.
#[derive(Debug, Clone)]
pub struct NewVisitRequest {
    /// Its id.
    pub id: Uuid,
    /// The case's bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// Addresses to visit (of the case).
    pub address_ids: Vec<AddressId>,
    /// Wanted window, UTC ms.
    pub wanted_from_ms: i64,
    /// End of the wanted window, UTC ms (exclusive).
    pub wanted_until_ms: i64,
    /// Why the visit is wanted (no personal data expected; shown to managers only).
    pub purpose: String,
    /// The phone that asked, if an agent did.
    pub requested_device: Option<DeviceId>,
    /// The console user who asked, if a manager did.
    pub requested_user: Option<Uuid>,
    /// When, UTC ms.
    pub created_ms: i64,
}

/// A stored visit request and its decision.
#[derive(Debug, Clone)]
pub struct VisitRequestRecord {
    /// The request.
    pub request: NewVisitRequest,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// When decided, UTC ms.
    pub decided_ms: Option<i64>,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
    /// The approval, when approved.
    pub approval_id: Option<ApprovalId>,
}

/// An approval to store with its team and its feed row.
#[derive(Debug, Clone)]
pub struct ApprovalWrite {
    /// The approval.
    pub id: ApprovalId,
    /// The request it decides.
    pub request_id: Uuid,
    /// Bank.
    pub bank_id: BankId,
    /// Case.
    pub case_id: CaseId,
    /// The visit the ticket is for.
    pub visit_id: VisitId,
    /// The manager.
    pub approved_by: Uuid,
    /// When, UTC ms.
    pub approved_ms: i64,
    /// (agent, device) of each member.
    pub team: Vec<(AgentId, DeviceId)>,
    /// The `assignment` feed payload (signed case, approval and ticket).
    pub payload: String,
}

/// Storage for visit management.
#[async_trait]
pub trait VisitsDb: Send + Sync {
    /// Which of `refs` the bank has stored already.
    async fn existing_case_refs(
        &self,
        bank: BankId,
        refs: &[String],
    ) -> Result<Vec<String>, DbError>;
    /// Stores every case with its addresses in one transaction, or none.
    async fn import_cases(
        &self,
        cases: &[ImportedCase],
        now_ms: i64,
    ) -> Result<ImportOutcome, DbError>;
    /// A bank's cases by reference, each with its addresses.
    async fn list_cases(
        &self,
        bank: BankId,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CaseRecord>, DbError>;
    /// A case with its addresses.
    async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>, DbError>;
    /// Stores a pending visit request.
    async fn create_visit_request(&self, request: &NewVisitRequest) -> Result<(), DbError>;
    /// A visit request.
    async fn visit_request(&self, id: Uuid) -> Result<Option<VisitRequestRecord>, DbError>;
    /// A bank's requests, oldest first, optionally of one status.
    async fn visit_requests(
        &self,
        bank: BankId,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VisitRequestRecord>, DbError>;
    /// Marks a pending request approved and stores the approval, its team and feed row in
    /// one transaction. `false`, storing nothing, when the request was decided already.
    async fn approve_visit(&self, approval: &ApprovalWrite) -> Result<bool, DbError>;
    /// Marks a pending request rejected. `false` when it was decided already.
    async fn reject_visit(
        &self,
        request: Uuid,
        by: Uuid,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, DbError>;
}

row_by_name! {
    /// A `cases` row as [`CASE_SELECT`] reads it.
    pub(super) struct CaseRow {
        id: String,
        bank_id: String,
        case_ref: String,
        card_masked: String,
        debtor_name: String,
        id_number_masked: String,
        debtor_phone: Option<String>,
        outstanding_fen: i64,
        status: String,
        entrustment_start_ms: i64,
        entrustment_end_ms: i64,
        extended_until_ms: Option<i64>,
        health_flag: Option<String>,
        created_ms: i64,
    }
}

pub(super) const CASE_SELECT: &str = "SELECT id, bank_id, case_ref, card_masked, debtor_name, \
    id_number_masked, debtor_phone, outstanding_fen, status, entrustment_start_ms, \
    entrustment_end_ms, extended_until_ms, health_flag, created_ms FROM cases";

pub(super) fn case_record(r: CaseRow) -> Result<CaseRecord, DbError> {
    Ok(CaseRecord {
        id: r.id.parse().map_err(|_| DbError::Corrupt("cases.id"))?,
        bank_id: r
            .bank_id
            .parse()
            .map_err(|_| DbError::Corrupt("cases.bank_id"))?,
        case_ref: r.case_ref,
        card: MaskedCardNumber::try_from(r.card_masked)
            .map_err(|_| DbError::Corrupt("cases.card"))?,
        debtor_name: r.debtor_name,
        id_number: MaskedIdNumber::try_from(r.id_number_masked)
            .map_err(|_| DbError::Corrupt("cases.id_number"))?,
        debtor_phone: r.debtor_phone,
        outstanding_fen: r.outstanding_fen,
        status: r.status,
        entrustment_start_ms: r.entrustment_start_ms,
        entrustment_end_ms: r.entrustment_end_ms,
        extended_until_ms: r.extended_until_ms,
        health_flag: r.health_flag,
        created_ms: r.created_ms,
        addresses: Vec::new(),
    })
}

row_by_name! {
    /// A `case_addresses` row as [`ADDRESS_COLUMNS`] reads it.
    struct AddressRow {
        id: String,
        text: String,
        lat_e7: i32,
        lon_e7: i32,
        datum: String,
    }
}

/// An [`AddressRow`] with its case, when a page of cases reads its addresses at once.
struct CaseAddressRow {
    case_id: String,
    address: AddressRow,
}

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for CaseAddressRow
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    AddressRow: sqlx::FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            case_id: row.try_get("case_id")?,
            address: AddressRow::from_row(row)?,
        })
    }
}

/// The columns of an [`AddressRow`].
const ADDRESS_COLUMNS: &str = "id, text, lat_e7, lon_e7, datum";

fn address(r: AddressRow) -> Result<NewAddress, DbError> {
    Ok(NewAddress {
        id: r
            .id
            .parse()
            .map_err(|_| DbError::Corrupt("case_addresses.id"))?,
        text: r.text,
        position: Coordinate::new(r.lat_e7, r.lon_e7, parse_datum(&r.datum)?)
            .map_err(|_| DbError::Corrupt("case_addresses.position"))?,
    })
}

row_by_name! {
    /// A `visit_requests` row with its approval's id, as [`REQUEST_SELECT`] reads it.
    struct RequestRow {
        id: String,
        bank_id: String,
        case_id: String,
        address_ids: String,
        wanted_from_ms: i64,
        wanted_until_ms: i64,
        purpose: String,
        requested_device: Option<String>,
        requested_user: Option<String>,
        created_ms: i64,
        status: String,
        decided_ms: Option<i64>,
        reject_reason: Option<String>,
        approval_id: Option<String>,
    }
}

const REQUEST_SELECT: &str = "SELECT r.id, r.bank_id, r.case_id, r.address_ids, \
    r.wanted_from_ms, r.wanted_until_ms, r.purpose, r.requested_device, r.requested_user, \
    r.created_ms, r.status, r.decided_ms, r.reject_reason, a.id AS approval_id \
    FROM visit_requests r LEFT JOIN approvals a ON a.request_id = r.id";

fn request_record(r: RequestRow) -> Result<VisitRequestRecord, DbError> {
    fn bad<E>(what: &'static str) -> impl Fn(E) -> DbError {
        move |_| DbError::Corrupt(what)
    }
    let address_ids: Vec<AddressId> =
        serde_json::from_str(&r.address_ids).map_err(bad("visit_requests.address_ids"))?;
    let parse_opt = |s: Option<String>, what| -> Result<Option<Uuid>, DbError> {
        s.map(|s| s.parse().map_err(|_| DbError::Corrupt(what)))
            .transpose()
    };
    Ok(VisitRequestRecord {
        request: NewVisitRequest {
            id: r.id.parse().map_err(bad("visit_requests.id"))?,
            bank_id: r.bank_id.parse().map_err(bad("visit_requests.bank_id"))?,
            case_id: r.case_id.parse().map_err(bad("visit_requests.case_id"))?,
            address_ids,
            wanted_from_ms: r.wanted_from_ms,
            wanted_until_ms: r.wanted_until_ms,
            purpose: r.purpose,
            requested_device: parse_opt(r.requested_device, "visit_requests.requested_device")?
                .map(DeviceId),
            requested_user: parse_opt(r.requested_user, "visit_requests.requested_user")?,
            created_ms: r.created_ms,
        },
        status: r.status,
        decided_ms: r.decided_ms,
        reject_reason: r.reject_reason,
        approval_id: parse_opt(r.approval_id, "approvals.id")?.map(ApprovalId),
    })
}

/// `($a, $b, …), (…)` for `rows` rows of `cols` parameters.
fn values_placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_visits_db {
    ($db:ty) => {
        #[async_trait]
        impl VisitsDb for $db {
            async fn existing_case_refs(
                &self,
                bank: BankId,
                refs: &[String],
            ) -> Result<Vec<String>, DbError> {
                let mut found = Vec::new();
                for chunk in refs.chunks(500) {
                    let params: Vec<String> =
                        (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                    let sql = format!(
                        "SELECT case_ref FROM cases WHERE bank_id = $1 AND case_ref IN ({})",
                        params.join(", ")
                    );
                    let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(bank.to_string());
                    for r in chunk {
                        q = q.bind(r);
                    }
                    let rows: Vec<String> = q.fetch_all(&self.pool).await?;
                    found.extend(rows);
                }
                Ok(found)
            }

            async fn import_cases(
                &self,
                cases: &[ImportedCase],
                now_ms: i64,
            ) -> Result<ImportOutcome, DbError> {
                let mut tx = self.pool.begin().await?;
                for chunk in cases.chunks(INSERT_CHUNK) {
                    let sql = format!(
                        "INSERT INTO cases (id, bank_id, case_ref, card_masked, debtor_name, \
                         id_number_masked, debtor_phone, outstanding_fen, status, \
                         entrustment_start_ms, entrustment_end_ms, created_ms) VALUES {}",
                        values_placeholders(chunk.len(), 12)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for c in chunk {
                        q = q
                            .bind(c.case.id.to_string())
                            .bind(c.case.bank_id.to_string())
                            .bind(&c.case.case_ref)
                            .bind(c.case.card.as_str())
                            .bind(&c.case.debtor_name)
                            .bind(c.case.id_number.as_str())
                            .bind(c.debtor_phone.as_deref())
                            .bind(c.case.outstanding_fen)
                            .bind("active")
                            .bind(c.case.entrustment_start_ms)
                            .bind(c.case.entrustment_end_ms)
                            .bind(now_ms);
                    }
                    match q.execute(&mut *tx).await {
                        Ok(_) => {}
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                            tx.rollback().await?;
                            return Ok(ImportOutcome::DuplicateRef);
                        }
                        Err(e) => return Err(e.into()),
                    }
                    let addresses: Vec<(&CaseId, &NewAddress)> = chunk
                        .iter()
                        .flat_map(|c| c.case.addresses.iter().map(move |a| (&c.case.id, a)))
                        .collect();
                    for group in addresses.chunks(INSERT_CHUNK) {
                        let sql = format!(
                            "INSERT INTO case_addresses (id, case_id, text, lat_e7, lon_e7, \
                             datum) VALUES {}",
                            values_placeholders(group.len(), 6)
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for (case, a) in group {
                            q = q
                                .bind(a.id.to_string())
                                .bind(case.to_string())
                                .bind(&a.text)
                                .bind(a.position.lat_e7())
                                .bind(a.position.lon_e7())
                                .bind(a.position.datum().as_str());
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(ImportOutcome::Imported(cases.len()))
            }

            async fn list_cases(
                &self,
                bank: BankId,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<CaseRecord>, DbError> {
                let sql =
                    format!("{CASE_SELECT} WHERE bank_id = $1 ORDER BY case_ref LIMIT $2 OFFSET $3");
                let rows: Vec<CaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(bank.to_string())
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let mut cases: Vec<CaseRecord> =
                    rows.into_iter().map(case_record).collect::<Result<_, _>>()?;
                if cases.is_empty() {
                    return Ok(cases);
                }
                // The page's addresses in one query: the same page, chosen the same way.
                let sql = format!(
                    "SELECT case_id, {ADDRESS_COLUMNS} FROM case_addresses \
                     WHERE case_id IN (SELECT id FROM cases WHERE bank_id = $1 \
                     ORDER BY case_ref LIMIT $2 OFFSET $3) ORDER BY id"
                );
                let addresses: Vec<CaseAddressRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(bank.to_string())
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let mut by_case: std::collections::HashMap<String, Vec<NewAddress>> =
                    std::collections::HashMap::new();
                for CaseAddressRow { case_id, address: row } in addresses {
                    by_case.entry(case_id).or_default().push(address(row)?);
                }
                for case in &mut cases {
                    case.addresses = by_case.remove(&case.id.to_string()).unwrap_or_default();
                }
                Ok(cases)
            }

            async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>, DbError> {
                let sql = format!("{CASE_SELECT} WHERE id = $1");
                let row: Option<CaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let mut case = case_record(row)?;
                let sql = format!(
                    "SELECT {ADDRESS_COLUMNS} FROM case_addresses WHERE case_id = $1 ORDER BY id"
                );
                let rows: Vec<AddressRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                case.addresses = rows.into_iter().map(address).collect::<Result<_, _>>()?;
                Ok(Some(case))
            }

            async fn create_visit_request(&self, r: &NewVisitRequest) -> Result<(), DbError> {
                let address_ids = serde_json::to_string(&r.address_ids)
                    .map_err(|_| DbError::Corrupt("visit_requests.address_ids"))?;
                sqlx::query(
                    "INSERT INTO visit_requests (id, bank_id, case_id, address_ids, \
                     wanted_from_ms, wanted_until_ms, purpose, requested_device, \
                     requested_user, created_ms, status) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')",
                )
                .bind(r.id.to_string())
                .bind(r.bank_id.to_string())
                .bind(r.case_id.to_string())
                .bind(address_ids)
                .bind(r.wanted_from_ms)
                .bind(r.wanted_until_ms)
                .bind(&r.purpose)
                .bind(r.requested_device.map(|d| d.to_string()))
                .bind(r.requested_user.map(|u| u.to_string()))
                .bind(r.created_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn visit_request(&self, id: Uuid) -> Result<Option<VisitRequestRecord>, DbError> {
                let sql = format!("{REQUEST_SELECT} WHERE r.id = $1");
                let row: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(request_record).transpose()
            }

            async fn visit_requests(
                &self,
                bank: BankId,
                status: Option<&str>,
                limit: i64,
            ) -> Result<Vec<VisitRequestRecord>, DbError> {
                let sql = format!(
                    "{REQUEST_SELECT} WHERE r.bank_id = $1 AND ($2 IS NULL OR r.status = $2) \
                     ORDER BY r.created_ms, r.id LIMIT $3"
                );
                let rows: Vec<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(bank.to_string())
                    .bind(status)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(request_record).collect()
            }

            async fn approve_visit(&self, a: &ApprovalWrite) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                // Written first: the decision is taken under the row's lock (PostgreSQL) or
                // the write lock (SQLite), so two managers cannot both approve.
                let n = sqlx::query(
                    "UPDATE visit_requests SET status = 'approved', decided_by = $1, \
                     decided_ms = $2 WHERE id = $3 AND status = 'pending'",
                )
                .bind(a.approved_by.to_string())
                .bind(a.approved_ms)
                .bind(a.request_id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO approvals (id, request_id, bank_id, case_id, visit_id, \
                     approved_by, approved_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(a.id.to_string())
                .bind(a.request_id.to_string())
                .bind(a.bank_id.to_string())
                .bind(a.case_id.to_string())
                .bind(a.visit_id.to_string())
                .bind(a.approved_by.to_string())
                .bind(a.approved_ms)
                .execute(&mut *tx)
                .await?;
                for (agent, device) in &a.team {
                    sqlx::query(
                        "INSERT INTO approval_team (approval_id, agent_id, device_id) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(a.id.to_string())
                    .bind(agent.to_string())
                    .bind(device.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                let seq: i64 = sqlx::query_scalar(NEXT_SEQ).fetch_one(&mut *tx).await?;
                let row = FeedRow {
                    kind: "assignment",
                    subject: a.id.to_string(),
                    bank_id: Some(a.bank_id),
                    approval_id: Some(a.id),
                    device_id: None,
                    payload: a.payload.clone(),
                };
                bind_feed_row!(sqlx::query(INSERT_FEED), row, seq, a.approved_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn reject_visit(
                &self,
                request: Uuid,
                by: Uuid,
                reason: &str,
                now_ms: i64,
            ) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE visit_requests SET status = 'rejected', decided_by = $1, \
                     decided_ms = $2, reject_reason = $3 WHERE id = $4 AND status = 'pending'",
                )
                .bind(by.to_string())
                .bind(now_ms)
                .bind(reason)
                .bind(request.to_string())
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }
        }
    };
}

impl_visits_db!(super::SqliteDb);
impl_visits_db!(super::PgDb);
