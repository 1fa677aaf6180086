//! Receipts and their deposits (C02, C03): what a commit records from a bundle's events,
//! the console's reads (a bank's receipts and voided serials, the numbers each phone holds,
//! the reports' visits), a manager's deposit, and the deposit check's overdue flags.
//!
//! Every read takes the banks the caller may see (D03); a serial is the key of a receipt
//! server-wide, so recording is idempotent (`ON CONFLICT DO NOTHING`).

use async_trait::async_trait;
use tandem_core::model::{AgentId, BankId, BundleId, CaseId, DeviceId, VisitId};
use uuid::Uuid;

use super::DbError;

/// A receipt a committed bundle issued, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    /// The serial (server-issued range).
    pub serial: i64,
    /// The visit's bank.
    pub bank_id: BankId,
    /// The case paid towards.
    pub case_id: CaseId,
    /// The bank's reference of the case, as the manifest's header names it.
    pub case_ref: String,
    /// The visit.
    pub visit_id: VisitId,
    /// The phone whose range the serial comes from.
    pub device_id: DeviceId,
    /// Amount, fen.
    pub amount_fen: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// `cash` or `cheque`.
    pub method: &'static str,
    /// The payer's name as written on the receipt (personal data: never logged).
    pub payer_name: String,
    /// `debtor`, `guarantor` or `third_party`.
    pub payer_role: &'static str,
    /// Anchored time of the receipt, UTC ms.
    pub issued_ms: i64,
    /// Its day in the bank's zone, `YYYY-MM-DD`.
    pub issued_day: String,
    /// End of the deposit deadline, UTC ms (C03).
    pub due_ms: i64,
}

/// A voided serial, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoid {
    /// The serial.
    pub serial: i64,
    /// The visit's bank.
    pub bank_id: BankId,
    /// The visit.
    pub visit_id: VisitId,
    /// Why (the agents' words).
    pub reason: String,
    /// When, UTC ms (the event's anchored time).
    pub voided_ms: i64,
}

/// The receipts and voids one bundle carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleMoney {
    /// Receipts issued.
    pub receipts: Vec<NewReceipt>,
    /// Serials voided.
    pub voids: Vec<NewVoid>,
}

/// Where a receipt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// Not deposited, deadline not passed (as of the last check).
    Awaiting,
    /// Not deposited by its deadline: flagged.
    Overdue,
    /// Deposited (perhaps late).
    Deposited,
    /// Voided: nothing to deposit.
    Voided,
}

impl ReceiptState {
    /// The name used in URLs and message ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Awaiting => "awaiting",
            Self::Overdue => "overdue",
            Self::Deposited => "deposited",
            Self::Voided => "voided",
        }
    }

    /// The state a name names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "awaiting" => Self::Awaiting,
            "overdue" => Self::Overdue,
            "deposited" => Self::Deposited,
            "voided" => Self::Voided,
            _ => return None,
        })
    }

    fn condition(self) -> &'static str {
        match self {
            Self::Awaiting => {
                "r.deposited_ms IS NULL AND v.serial IS NULL AND r.overdue_ms IS NULL"
            }
            Self::Overdue => {
                "r.deposited_ms IS NULL AND v.serial IS NULL AND r.overdue_ms IS NOT NULL"
            }
            Self::Deposited => "r.deposited_ms IS NOT NULL",
            Self::Voided => "v.serial IS NOT NULL",
        }
    }
}

/// A stored receipt with its deposit.
#[derive(Debug, Clone)]
pub struct ReceiptRecord {
    /// The serial.
    pub serial: i64,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// The case's reference.
    pub case_ref: String,
    /// The visit.
    pub visit_id: VisitId,
    /// The bundle that carried it.
    pub bundle_id: BundleId,
    /// `accepted` or `quarantined`: the bundle's verdict.
    pub bundle_status: String,
    /// The issuing phone.
    pub device_id: DeviceId,
    /// Amount, fen.
    pub amount_fen: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// `cash` or `cheque`.
    pub method: String,
    /// The payer's name (personal data).
    pub payer_name: String,
    /// Issued, UTC ms.
    pub issued_ms: i64,
    /// Issued, day in the bank's zone.
    pub issued_day: String,
    /// Deposit deadline, UTC ms.
    pub due_ms: i64,
    /// The deposit's reference.
    pub deposit_ref: Option<String>,
    /// The deposit's day in the bank's zone.
    pub deposit_day: Option<String>,
    /// When the deposit was marked, UTC ms.
    pub deposited_ms: Option<i64>,
    /// When the check flagged it overdue, UTC ms.
    pub overdue_ms: Option<i64>,
    /// The void's reason, when voided.
    pub void_reason: Option<String>,
}

impl ReceiptRecord {
    /// Where it stands.
    pub fn state(&self) -> ReceiptState {
        if self.void_reason.is_some() {
            ReceiptState::Voided
        } else if self.deposited_ms.is_some() {
            ReceiptState::Deposited
        } else if self.overdue_ms.is_some() {
            ReceiptState::Overdue
        } else {
            ReceiptState::Awaiting
        }
    }
}

/// Which receipts to list.
#[derive(Debug, Clone, Default)]
pub struct ReceiptQuery {
    /// The banks the caller may see (D03); none lists nothing.
    pub banks: Vec<BankId>,
    /// Only receipts in this state.
    pub state: Option<ReceiptState>,
    /// Issued on or after this day (bank's zone, `YYYY-MM-DD`).
    pub from_day: Option<String>,
    /// Issued on or before this day.
    pub to_day: Option<String>,
    /// Keyset: only receipts before this (issued_ms, serial), newest first.
    pub before: Option<(i64, i64)>,
    /// Only the receipts of this visit.
    pub visit: Option<VisitId>,
    /// At most this many.
    pub limit: i64,
}

/// A voided serial as stored.
#[derive(Debug, Clone)]
pub struct VoidRecord {
    /// The serial.
    pub serial: i64,
    /// The bank.
    pub bank_id: BankId,
    /// The visit.
    pub visit_id: VisitId,
    /// Why.
    pub reason: String,
    /// When, UTC ms.
    pub voided_ms: i64,
    /// Whether a receipt was issued under it (else a reserved number abandoned).
    pub was_issued: bool,
}

/// A deposit as a manager marks it.
#[derive(Debug, Clone)]
pub struct Deposit {
    /// The receipt.
    pub serial: i64,
    /// The bank's reference of the deposit.
    pub reference: String,
    /// The deposit's day in the bank's zone.
    pub day: String,
    /// Who marked it.
    pub by: Uuid,
    /// When, UTC ms.
    pub at_ms: i64,
}

/// A receipt-number range with what the server has seen of it.
#[derive(Debug, Clone)]
pub struct RangeUse {
    /// First number.
    pub first: i64,
    /// Last number (inclusive).
    pub last: i64,
    /// When issued, UTC ms.
    pub issued_ms: i64,
    /// The phone.
    pub device_id: DeviceId,
    /// Whether the phone is revoked.
    pub revoked: bool,
    /// Its agent.
    pub agent_id: AgentId,
    /// The agent's name.
    pub agent_name: String,
    /// The agent's employee number.
    pub employee_no: String,
    /// Receipts issued under numbers of the range.
    pub issued: i64,
    /// Numbers of the range voided.
    pub voided: i64,
    /// Numbers used (issued or voided, each once).
    pub used: i64,
    /// The highest number used, if any.
    pub highest_used: Option<i64>,
}

/// One agent of an approved visit, with what came of the visit.
#[derive(Debug, Clone)]
pub struct VisitTeamRow {
    /// The visit.
    pub visit_id: VisitId,
    /// When approved, UTC ms.
    pub approved_ms: i64,
    /// The agent.
    pub agent_id: AgentId,
    /// The agent's name.
    pub agent_name: String,
    /// The agent's employee number.
    pub employee_no: String,
    /// The newest committed bundle's status (`accepted`, `quarantined`), if any.
    pub outcome: Option<String>,
}

/// A receipt the deposit check found overdue now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverdueFlag {
    /// The receipt.
    pub serial: i64,
    /// Its bank.
    pub bank_id: BankId,
}

/// Storage of receipts and deposits.
#[async_trait]
pub trait ReceiptsDb: Send + Sync {
    /// Receipts of `q.banks`, newest first.
    async fn receipts(&self, q: &ReceiptQuery) -> Result<Vec<ReceiptRecord>, DbError>;
    /// One receipt by serial (the caller checks its bank).
    async fn receipt(&self, serial: i64) -> Result<Option<ReceiptRecord>, DbError>;
    /// Voided serials of `banks`, newest first, at most `limit`.
    async fn receipt_voids(&self, banks: &[BankId], limit: i64)
    -> Result<Vec<VoidRecord>, DbError>;
    /// Marks a receipt deposited, once: `false` when it was deposited already or is
    /// voided (nothing changed).
    async fn mark_deposited(&self, deposit: &Deposit) -> Result<bool, DbError>;
    /// Flags every receipt not deposited (nor voided) whose deadline is at or before
    /// `now_ms` and not flagged yet, with an `overdue` flag, in one transaction; returns
    /// those flagged by this call (a concurrent call flags each receipt once).
    async fn flag_overdue(&self, now_ms: i64) -> Result<Vec<OverdueFlag>, DbError>;
    /// The receipt-number ranges of phones whose agents serve `bank`, with their use.
    async fn serial_range_use(&self, bank: BankId) -> Result<Vec<RangeUse>, DbError>;
    /// The agents of visits of `bank` approved in `[from_ms, until_ms)`, with each visit's
    /// outcome.
    async fn visit_teams(
        &self,
        bank: BankId,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<VisitTeamRow>, DbError>;
}

fn parse<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, DbError> {
    s.parse().map_err(|_| DbError::Corrupt(what))
}

row_by_name! {
    /// A receipt row as [`RECEIPT_SELECT`] reads it.
    struct ReceiptRow {
        serial: i64,
        bank_id: String,
        case_id: String,
        case_ref: String,
        visit_id: String,
        bundle_id: String,
        bundle_status: String,
        device_id: String,
        amount_fen: i64,
        currency: String,
        method: String,
        payer_name: String,
        issued_ms: i64,
        issued_day: String,
        due_ms: i64,
        deposit_ref: Option<String>,
        deposit_day: Option<String>,
        deposited_ms: Option<i64>,
        overdue_ms: Option<i64>,
        void_reason: Option<String>,
    }
}

const RECEIPT_SELECT: &str = "SELECT r.serial, r.bank_id, r.case_id, r.case_ref, r.visit_id, \
     r.bundle_id, b.status AS bundle_status, r.device_id, r.amount_fen, r.currency, r.method, \
     r.payer_name, r.issued_ms, r.issued_day, r.due_ms, r.deposit_ref, r.deposit_day, \
     r.deposited_ms, r.overdue_ms, v.reason AS void_reason \
     FROM receipts r JOIN bundles b ON b.id = r.bundle_id \
     LEFT JOIN receipt_voids v ON v.serial = r.serial AND v.visit_id = r.visit_id";

fn receipt_from(row: ReceiptRow) -> Result<ReceiptRecord, DbError> {
    Ok(ReceiptRecord {
        serial: row.serial,
        bank_id: parse(&row.bank_id, "receipts.bank_id")?,
        case_id: parse(&row.case_id, "receipts.case_id")?,
        case_ref: row.case_ref,
        visit_id: parse(&row.visit_id, "receipts.visit_id")?,
        bundle_id: parse(&row.bundle_id, "receipts.bundle_id")?,
        bundle_status: row.bundle_status,
        device_id: parse(&row.device_id, "receipts.device_id")?,
        amount_fen: row.amount_fen,
        currency: row.currency,
        method: row.method,
        payer_name: row.payer_name,
        issued_ms: row.issued_ms,
        issued_day: row.issued_day,
        due_ms: row.due_ms,
        deposit_ref: row.deposit_ref,
        deposit_day: row.deposit_day,
        deposited_ms: row.deposited_ms,
        overdue_ms: row.overdue_ms,
        void_reason: row.void_reason,
    })
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQL of a receipt listing; its binds are the banks, then the days, then the keyset,
/// then the limit, in that order (only those present).
fn receipts_sql(q: &ReceiptQuery) -> String {
    let mut sql = format!(
        "{RECEIPT_SELECT} WHERE r.bank_id IN ({})",
        placeholders(1, q.banks.len())
    );
    let mut next = q.banks.len() + 1;
    if let Some(state) = q.state {
        sql.push_str(" AND ");
        sql.push_str(state.condition());
    }
    if q.from_day.is_some() {
        sql.push_str(&format!(" AND r.issued_day >= ${next}"));
        next += 1;
    }
    if q.to_day.is_some() {
        sql.push_str(&format!(" AND r.issued_day <= ${next}"));
        next += 1;
    }
    if q.before.is_some() {
        sql.push_str(&format!(
            " AND (r.issued_ms < ${next} OR (r.issued_ms = ${next} AND r.serial < ${}))",
            next + 1
        ));
        next += 2;
    }
    if q.visit.is_some() {
        sql.push_str(&format!(" AND r.visit_id = ${next}"));
        next += 1;
    }
    sql.push_str(&format!(
        " ORDER BY r.issued_ms DESC, r.serial DESC LIMIT ${next}"
    ));
    sql
}

row_by_name! {
    /// A voided serial as [`ReceiptsDb::receipt_voids`] reads it.
    struct VoidRow {
        serial: i64,
        bank_id: String,
        visit_id: String,
        reason: String,
        voided_ms: i64,
        was_issued: i64,
    }
}

row_by_name! {
    /// A range with its use.
    struct RangeRow {
        first_serial: i64,
        last_serial: i64,
        issued_ms: i64,
        device_id: String,
        revoked_at_ms: Option<i64>,
        agent_id: String,
        display_name: String,
        employee_no: String,
        issued: i64,
        voided: i64,
        voided_issued: i64,
        top_issued: Option<i64>,
        top_voided: Option<i64>,
    }
}

row_by_name! {
    /// One agent of a visit.
    struct TeamRow {
        visit_id: String,
        approved_ms: i64,
        agent_id: String,
        display_name: String,
        employee_no: String,
        outcome: Option<String>,
    }
}

macro_rules! impl_receipts_db {
    ($db:ty, $conn:ty) => {
        impl $db {
            /// Records a committed bundle's receipts and voids, inside the commit's own
            /// transaction (`db::ledger`); serials already recorded are left as they are.
            pub(super) async fn record_money(
                conn: &mut $conn,
                bundle: BundleId,
                money: &BundleMoney,
                now_ms: i64,
            ) -> Result<(), DbError> {
                for r in &money.receipts {
                    // Only a serial the server issued to the phone the receipt names, that
                    // phone on the server's own team of this visit of this bank.
                    let recorded = sqlx::query(
                        "INSERT INTO receipts (serial, bank_id, case_id, case_ref, visit_id, \
                         bundle_id, device_id, amount_fen, currency, method, payer_name, \
                         payer_role, issued_ms, issued_day, due_ms, recorded_ms) \
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                         $15, $16 \
                         WHERE EXISTS (SELECT 1 FROM serial_ranges sr WHERE sr.device_id = $7 \
                                       AND $1 BETWEEN sr.first_serial AND sr.last_serial) \
                         AND EXISTS (SELECT 1 FROM approvals ap \
                                     JOIN approval_team t ON t.approval_id = ap.id \
                                     WHERE ap.visit_id = $5 AND ap.bank_id = $2 \
                                     AND t.device_id = $7) \
                         ON CONFLICT (serial) DO NOTHING",
                    )
                    .bind(r.serial)
                    .bind(r.bank_id.to_string())
                    .bind(r.case_id.to_string())
                    .bind(&r.case_ref)
                    .bind(r.visit_id.to_string())
                    .bind(bundle.to_string())
                    .bind(r.device_id.to_string())
                    .bind(r.amount_fen)
                    .bind(&r.currency)
                    .bind(r.method)
                    .bind(&r.payer_name)
                    .bind(r.payer_role)
                    .bind(r.issued_ms)
                    .bind(&r.issued_day)
                    .bind(r.due_ms)
                    .bind(now_ms)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if recorded == 0 {
                        // Recorded before (a retry, a second bundle), or a serial this
                        // visit's team was never issued: the serial says which, no more.
                        tracing::warn!(bundle = %bundle, serial = r.serial,
                            "receipt not recorded: serial known already or not this team's");
                    }
                }
                for v in &money.voids {
                    sqlx::query(
                        "INSERT INTO receipt_voids (serial, bank_id, visit_id, bundle_id, \
                         reason, voided_ms, recorded_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (serial, visit_id) DO NOTHING",
                    )
                    .bind(v.serial)
                    .bind(v.bank_id.to_string())
                    .bind(v.visit_id.to_string())
                    .bind(bundle.to_string())
                    .bind(&v.reason)
                    .bind(v.voided_ms)
                    .bind(now_ms)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl ReceiptsDb for $db {
            async fn receipts(&self, q: &ReceiptQuery) -> Result<Vec<ReceiptRecord>, DbError> {
                if q.banks.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = receipts_sql(q);
                let mut query = sqlx::query_as::<_, ReceiptRow>(sqlx::AssertSqlSafe(sql));
                for bank in &q.banks {
                    query = query.bind(bank.to_string());
                }
                if let Some(day) = &q.from_day {
                    query = query.bind(day.clone());
                }
                if let Some(day) = &q.to_day {
                    query = query.bind(day.clone());
                }
                if let Some((ms, serial)) = q.before {
                    query = query.bind(ms).bind(serial);
                }
                if let Some(visit) = q.visit {
                    query = query.bind(visit.to_string());
                }
                let rows = query.bind(q.limit).fetch_all(&self.pool).await?;
                rows.into_iter().map(receipt_from).collect()
            }

            async fn receipt(&self, serial: i64) -> Result<Option<ReceiptRecord>, DbError> {
                let sql = format!("{RECEIPT_SELECT} WHERE r.serial = $1");
                let row: Option<ReceiptRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(serial)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(receipt_from).transpose()
            }

            async fn receipt_voids(
                &self,
                banks: &[BankId],
                limit: i64,
            ) -> Result<Vec<VoidRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT v.serial, v.bank_id, v.visit_id, v.reason, v.voided_ms, \
                     (SELECT COUNT(*) FROM receipts r WHERE r.serial = v.serial AND r.visit_id = v.visit_id) AS was_issued \
                     FROM receipt_voids v WHERE v.bank_id IN ({}) \
                     ORDER BY v.voided_ms DESC, v.serial DESC LIMIT ${}",
                    placeholders(1, banks.len()),
                    banks.len() + 1
                );
                let mut query = sqlx::query_as::<_, VoidRow>(sqlx::AssertSqlSafe(sql));
                for bank in banks {
                    query = query.bind(bank.to_string());
                }
                let rows = query.bind(limit).fetch_all(&self.pool).await?;
                rows.into_iter()
                    .map(|row| {
                        Ok(VoidRecord {
                            serial: row.serial,
                            bank_id: parse(&row.bank_id, "receipt_voids.bank_id")?,
                            visit_id: parse(&row.visit_id, "receipt_voids.visit_id")?,
                            reason: row.reason,
                            voided_ms: row.voided_ms,
                            was_issued: row.was_issued > 0,
                        })
                    })
                    .collect()
            }

            async fn mark_deposited(&self, d: &Deposit) -> Result<bool, DbError> {
                let marked = sqlx::query(
                    "UPDATE receipts SET deposit_ref = $1, deposit_day = $2, \
                     deposited_ms = $3, deposited_by = $4 \
                     WHERE serial = $5 AND deposited_ms IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM receipt_voids v \
                                     WHERE v.serial = receipts.serial \
                                     AND v.visit_id = receipts.visit_id)",
                )
                .bind(&d.reference)
                .bind(&d.day)
                .bind(d.at_ms)
                .bind(d.by.to_string())
                .bind(d.serial)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(marked == 1)
            }

            async fn flag_overdue(&self, now_ms: i64) -> Result<Vec<OverdueFlag>, DbError> {
                let mut tx = self.pool.begin().await?;
                // The update is the claim: a receipt another server flagged a moment ago
                // has its `overdue_ms` set and is not returned here.
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "UPDATE receipts SET overdue_ms = $1 \
                     WHERE deposited_ms IS NULL AND overdue_ms IS NULL AND due_ms <= $1 \
                     AND NOT EXISTS (SELECT 1 FROM receipt_voids v \
                                     WHERE v.serial = receipts.serial \
                                     AND v.visit_id = receipts.visit_id) \
                     RETURNING serial, bank_id",
                )
                .bind(now_ms)
                .fetch_all(&mut *tx)
                .await?;
                let mut flagged = Vec::with_capacity(rows.len());
                for (serial, bank) in rows {
                    sqlx::query(
                        "INSERT INTO receipt_flags (serial, kind, bank_id, created_ms) \
                         VALUES ($1, 'overdue', $2, $3) ON CONFLICT (serial, kind) DO NOTHING",
                    )
                    .bind(serial)
                    .bind(&bank)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                    flagged.push(OverdueFlag {
                        serial,
                        bank_id: parse(&bank, "receipts.bank_id")?,
                    });
                }
                tx.commit().await?;
                flagged.sort_by_key(|f| f.serial);
                Ok(flagged)
            }

            async fn serial_range_use(&self, bank: BankId) -> Result<Vec<RangeUse>, DbError> {
                let rows: Vec<RangeRow> = sqlx::query_as(
                    "SELECT sr.first_serial, sr.last_serial, sr.issued_ms, sr.device_id, \
                     d.revoked_at_ms, d.agent_id, u.display_name, a.employee_no, \
                     (SELECT COUNT(*) FROM receipts r \
                      WHERE r.serial BETWEEN sr.first_serial AND sr.last_serial) AS issued, \
                     (SELECT COUNT(DISTINCT v.serial) FROM receipt_voids v \
                      WHERE v.serial BETWEEN sr.first_serial AND sr.last_serial) AS voided, \
                     (SELECT COUNT(DISTINCT v.serial) FROM receipt_voids v \
                      JOIN receipts r ON r.serial = v.serial \
                      WHERE v.serial BETWEEN sr.first_serial AND sr.last_serial) \
                      AS voided_issued, \
                     (SELECT MAX(r.serial) FROM receipts r \
                      WHERE r.serial BETWEEN sr.first_serial AND sr.last_serial) AS top_issued, \
                     (SELECT MAX(v.serial) FROM receipt_voids v \
                      WHERE v.serial BETWEEN sr.first_serial AND sr.last_serial) AS top_voided \
                     FROM serial_ranges sr \
                     JOIN devices d ON d.id = sr.device_id \
                     JOIN agents a ON a.id = d.agent_id \
                     JOIN users u ON u.id = a.user_id \
                     WHERE EXISTS (SELECT 1 FROM user_banks ub \
                                   WHERE ub.user_id = a.user_id AND ub.bank_id = $1) \
                     ORDER BY u.display_name, sr.device_id, sr.first_serial",
                )
                .bind(bank.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|row| {
                        Ok(RangeUse {
                            first: row.first_serial,
                            last: row.last_serial,
                            issued_ms: row.issued_ms,
                            device_id: parse(&row.device_id, "serial_ranges.device_id")?,
                            revoked: row.revoked_at_ms.is_some(),
                            agent_id: parse(&row.agent_id, "devices.agent_id")?,
                            agent_name: row.display_name,
                            employee_no: row.employee_no,
                            issued: row.issued,
                            voided: row.voided,
                            used: row.issued + row.voided - row.voided_issued,
                            highest_used: row.top_issued.max(row.top_voided),
                        })
                    })
                    .collect()
            }

            async fn visit_teams(
                &self,
                bank: BankId,
                from_ms: i64,
                until_ms: i64,
            ) -> Result<Vec<VisitTeamRow>, DbError> {
                let rows: Vec<TeamRow> = sqlx::query_as(
                    "SELECT ap.visit_id, ap.approved_ms, t.agent_id, u.display_name, \
                     a.employee_no, \
                     (SELECT b.status FROM bundles b \
                      WHERE b.visit_id = ap.visit_id AND b.status <> 'pending' \
                      ORDER BY b.committed_ms DESC, b.id DESC LIMIT 1) AS outcome \
                     FROM approvals ap \
                     JOIN approval_team t ON t.approval_id = ap.id \
                     JOIN agents a ON a.id = t.agent_id \
                     JOIN users u ON u.id = a.user_id \
                     WHERE ap.bank_id = $1 AND ap.approved_ms >= $2 AND ap.approved_ms < $3 \
                     ORDER BY ap.visit_id, a.employee_no",
                )
                .bind(bank.to_string())
                .bind(from_ms)
                .bind(until_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|row| {
                        Ok(VisitTeamRow {
                            visit_id: parse(&row.visit_id, "approvals.visit_id")?,
                            approved_ms: row.approved_ms,
                            agent_id: parse(&row.agent_id, "approval_team.agent_id")?,
                            agent_name: row.display_name,
                            employee_no: row.employee_no,
                            outcome: row.outcome,
                        })
                    })
                    .collect()
            }
        }
    };
}

impl_receipts_db!(super::SqliteDb, sqlx::SqliteConnection);
impl_receipts_db!(super::PgDb, sqlx::PgConnection);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_binds_banks_days_keyset_and_limit_in_order() {
        let q = ReceiptQuery {
            banks: vec![BankId::new(), BankId::new()],
            state: Some(ReceiptState::Overdue),
            from_day: Some("2026-11-01".into()),
            to_day: None,
            before: Some((5, 7)),
            visit: None,
            limit: 50,
        };
        let sql = receipts_sql(&q);
        assert!(sql.contains("r.bank_id IN ($1, $2)"), "{sql}");
        assert!(sql.contains("r.issued_day >= $3"), "{sql}");
        assert!(
            sql.contains("(r.issued_ms < $4 OR (r.issued_ms = $4 AND r.serial < $5))"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT $6"), "{sql}");
        assert!(sql.contains("r.overdue_ms IS NOT NULL"), "{sql}");
    }
}
