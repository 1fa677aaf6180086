//! What the console reads beyond the JSON API's records: the agents a manager may put on a
//! team, a debtor's visit history, case search and the list of visits. Read only; every
//! query is scoped to banks the caller passes (the user's own, D03).

use async_trait::async_trait;
use tandem_core::model::{AgentId, ApprovalId, BankId, CaseId};
use uuid::Uuid;

use super::DbError;
use super::visits::{CASE_SELECT, CaseRecord, case_record};

/// An agent of a bank, as the approval form offers them.
#[derive(Debug, Clone)]
pub struct BankAgent {
    /// The agent.
    pub agent_id: AgentId,
    /// The agency's employee number.
    pub employee_no: String,
    /// The agent's name.
    pub display_name: String,
    /// Enrolled phones not revoked.
    pub live_devices: i64,
}

/// One visit request to a debtor (any of the debtor's cases with the bank), with what came
/// of it.
#[derive(Debug, Clone)]
pub struct DebtorVisit {
    /// The request.
    pub request_id: Uuid,
    /// The case it is for.
    pub case_id: CaseId,
    /// The case's reference.
    pub case_ref: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Wanted from, UTC ms.
    pub wanted_from_ms: i64,
    /// Wanted until, UTC ms.
    pub wanted_until_ms: i64,
    /// When asked, UTC ms.
    pub created_ms: i64,
    /// Why rejected.
    pub reject_reason: Option<String>,
    /// The visit, when approved.
    pub visit_id: Option<Uuid>,
    /// The latest bundle's state (`pending`, `accepted`, `quarantined`), when one came.
    pub bundle_status: Option<String>,
}

/// Which cases to list.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// The start of the reference (as typed, or in capitals) or of the debtor's name.
    pub text: Option<String>,
    /// One stored status (`active` also finds the seed's `open`).
    pub status: Option<String>,
    /// Keyset: only cases after this (reference, id).
    pub after: Option<(String, String)>,
    /// At most this many.
    pub limit: i64,
}

/// A visit (an approval) as the visit list shows it.
#[derive(Debug, Clone)]
pub struct VisitSummary {
    /// The approval.
    pub approval_id: ApprovalId,
    /// The visit.
    pub visit_id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The case.
    pub case_id: CaseId,
    /// The case's reference.
    pub case_ref: String,
    /// The debtor's name.
    pub debtor_name: String,
    /// When approved, UTC ms.
    pub approved_ms: i64,
    /// The requested window, UTC ms.
    pub wanted_from_ms: i64,
    /// The requested window's end, UTC ms.
    pub wanted_until_ms: i64,
    /// The latest bundle's state, when one came.
    pub bundle_status: Option<String>,
    /// When the latest bundle was committed, UTC ms.
    pub committed_ms: Option<i64>,
    /// Flags on the visit's bundles (quarantine, review, equivocation).
    pub flags: i64,
    /// The team's names, by employee number.
    pub team: Vec<String>,
}

/// Storage the console reads.
#[async_trait]
pub trait ConsoleDb: Send + Sync {
    /// The cases of `ids` (no addresses read), in no particular order; unknown ids are
    /// left out.
    async fn cases_by_ids(&self, ids: &[CaseId]) -> Result<Vec<CaseRecord>, DbError>;
    /// The bank's agents (not disabled), by employee number, with their live phones.
    async fn bank_agents(&self, bank: BankId) -> Result<Vec<BankAgent>, DbError>;
    /// Every request to the debtor of `case` (cases of its bank with the same name and
    /// masked ID number), newest first, at most `limit`.
    async fn debtor_visits(
        &self,
        case: &CaseRecord,
        limit: i64,
    ) -> Result<Vec<DebtorVisit>, DbError>;
    /// Cases of `banks` matching `query`, by reference then id (no addresses read).
    async fn search_cases(
        &self,
        banks: &[BankId],
        query: &CaseQuery,
    ) -> Result<Vec<CaseRecord>, DbError>;
    /// One visit by its id (any bank: the caller checks the bank).
    async fn visit_summary(&self, visit: Uuid) -> Result<Option<VisitSummary>, DbError>;
    /// The assignment the team's phones pulled for an approval (`{case, approval, ticket}`,
    /// each signed), as stored.
    async fn assignment_payload(&self, approval: ApprovalId) -> Result<Option<String>, DbError>;
    /// Visits of `banks`, newest approval first, before the (approved_ms, id) keyset when
    /// given, at most `limit`.
    async fn visits(
        &self,
        banks: &[BankId],
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<VisitSummary>, DbError>;
}

row_by_name! {
    struct AgentRow {
        id: String,
        employee_no: String,
        display_name: String,
        live_devices: i64,
    }
}

row_by_name! {
    struct DebtorVisitRow {
        id: String,
        case_id: String,
        case_ref: String,
        status: String,
        wanted_from_ms: i64,
        wanted_until_ms: i64,
        created_ms: i64,
        reject_reason: Option<String>,
        visit_id: Option<String>,
        bundle_status: Option<String>,
    }
}

row_by_name! {
    struct VisitRow {
        approval_id: String,
        visit_id: String,
        bank_id: String,
        case_id: String,
        case_ref: String,
        debtor_name: String,
        approved_ms: i64,
        wanted_from_ms: i64,
        wanted_until_ms: i64,
        bundle_status: Option<String>,
        committed_ms: Option<i64>,
        flags: i64,
    }
}

row_by_name! {
    struct TeamRow {
        approval_id: String,
        display_name: String,
    }
}

/// The latest bundle of a visit (`a` is the approval): a correlated subquery by the
/// `bundles_visit` index.
const LATEST_BUNDLE: &str = "FROM bundles b WHERE b.visit_id = a.visit_id \
    ORDER BY b.received_ms DESC LIMIT 1";

/// `$first, $first+1, …` for `n` parameters.
pub(super) fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most cases one field's prefix range reads in a search (a prefix as broad as "B" would
/// otherwise read them all): the list then shows the first of them by that field.
const SEARCH_BRANCH: usize = 2000;

/// The least string above every string that starts with `prefix`, in code point order:
/// `prefix` with its last character moved on by one (the end of a prefix search's range,
/// which an index answers, where `LIKE '%…%'` reads every case).
pub(super) fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return chars.into_iter().collect();
        }
    }
    // Only U+10FFFF: a longer run of it is above every string with that prefix.
    "\u{10FFFF}".repeat(prefix.chars().count() + 1)
}

/// The columns of a [`VisitRow`]: an approval with its case, request and latest bundle.
const VISIT_SELECT: &str = "SELECT a.id AS approval_id, a.visit_id, a.bank_id, a.case_id, \
    c.case_ref, c.debtor_name, a.approved_ms, r.wanted_from_ms, r.wanted_until_ms, \
    (SELECT b.status FROM bundles b WHERE b.visit_id = a.visit_id \
     ORDER BY b.received_ms DESC LIMIT 1) AS bundle_status, \
    (SELECT b.committed_ms FROM bundles b WHERE b.visit_id = a.visit_id \
     ORDER BY b.received_ms DESC LIMIT 1) AS committed_ms, \
    (SELECT COUNT(*) FROM bundle_flags f JOIN bundles b ON b.id = f.bundle_id \
     WHERE b.visit_id = a.visit_id) AS flags \
    FROM approvals a JOIN cases c ON c.id = a.case_id \
    JOIN visit_requests r ON r.id = a.request_id";

fn visit_summary(r: VisitRow) -> Result<VisitSummary, DbError> {
    Ok(VisitSummary {
        approval_id: ApprovalId(r.approval_id.parse().map_err(bad("approvals.id"))?),
        visit_id: r.visit_id.parse().map_err(bad("approvals.visit_id"))?,
        bank_id: r.bank_id.parse().map_err(bad("approvals.bank_id"))?,
        case_id: r.case_id.parse().map_err(bad("approvals.case_id"))?,
        case_ref: r.case_ref,
        debtor_name: r.debtor_name,
        approved_ms: r.approved_ms,
        wanted_from_ms: r.wanted_from_ms,
        wanted_until_ms: r.wanted_until_ms,
        bundle_status: r.bundle_status,
        committed_ms: r.committed_ms,
        flags: r.flags,
        team: Vec::new(),
    })
}

fn bad<E>(what: &'static str) -> impl Fn(E) -> DbError {
    move |_| DbError::Corrupt(what)
}

macro_rules! impl_console_db {
    ($db:ty, $collate:expr) => {
        #[async_trait]
        impl ConsoleDb for $db {
            async fn cases_by_ids(&self, ids: &[CaseId]) -> Result<Vec<CaseRecord>, DbError> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let sql = format!("{CASE_SELECT} WHERE id IN ({})", params(1, chunk.len()));
                    let mut q =
                        sqlx::query_as::<_, super::visits::CaseRow>(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(id.to_string());
                    }
                    for row in q.fetch_all(&self.pool).await? {
                        out.push(case_record(row)?);
                    }
                }
                Ok(out)
            }

            async fn bank_agents(&self, bank: BankId) -> Result<Vec<BankAgent>, DbError> {
                let rows: Vec<AgentRow> = sqlx::query_as(
                    "SELECT a.id, a.employee_no, u.display_name, \
                     (SELECT COUNT(*) FROM devices d WHERE d.agent_id = a.id \
                      AND d.revoked_at_ms IS NULL) AS live_devices \
                     FROM agents a JOIN users u ON u.id = a.user_id \
                     JOIN user_banks ub ON ub.user_id = u.id \
                     WHERE ub.bank_id = $1 AND u.disabled_ms IS NULL \
                     ORDER BY a.employee_no",
                )
                .bind(bank.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(BankAgent {
                            agent_id: r.id.parse().map_err(bad("agents.id"))?,
                            employee_no: r.employee_no,
                            display_name: r.display_name,
                            live_devices: r.live_devices,
                        })
                    })
                    .collect()
            }

            async fn debtor_visits(
                &self,
                case: &CaseRecord,
                limit: i64,
            ) -> Result<Vec<DebtorVisit>, DbError> {
                let sql = format!(
                    "SELECT r.id, r.case_id, c.case_ref, r.status, r.wanted_from_ms, \
                     r.wanted_until_ms, r.created_ms, r.reject_reason, a.visit_id, \
                     (SELECT b.status {LATEST_BUNDLE}) AS bundle_status \
                     FROM visit_requests r JOIN cases c ON c.id = r.case_id \
                     LEFT JOIN approvals a ON a.request_id = r.id \
                     WHERE r.case_id IN (SELECT id FROM cases WHERE bank_id = $1 \
                       AND (id = $2 OR (debtor_name = $3 AND id_number_masked = $4))) \
                     ORDER BY r.created_ms DESC, r.id DESC LIMIT $5"
                );
                let rows: Vec<DebtorVisitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(case.bank_id.to_string())
                    .bind(case.id.to_string())
                    .bind(&case.debtor_name)
                    .bind(case.id_number.as_str())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(DebtorVisit {
                            request_id: r.id.parse().map_err(bad("visit_requests.id"))?,
                            case_id: r.case_id.parse().map_err(bad("visit_requests.case_id"))?,
                            case_ref: r.case_ref,
                            status: r.status,
                            wanted_from_ms: r.wanted_from_ms,
                            wanted_until_ms: r.wanted_until_ms,
                            created_ms: r.created_ms,
                            reject_reason: r.reject_reason,
                            visit_id: r
                                .visit_id
                                .map(|v| v.parse().map_err(bad("approvals.visit_id")))
                                .transpose()?,
                            bundle_status: r.bundle_status,
                        })
                    })
                    .collect()
            }

            async fn search_cases(
                &self,
                banks: &[BankId],
                query: &CaseQuery,
            ) -> Result<Vec<CaseRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let mut n = banks.len();
                let mut next = || {
                    n += 1;
                    n
                };
                let mut sql = match query.text {
                    None => format!("{CASE_SELECT} WHERE bank_id IN ({})", params(1, banks.len())),
                    Some(_) => {
                        // Each range on its own index (at most SEARCH_BRANCH cases each), then
                        // their union joined to the cases: an OR of the three in one WHERE
                        // would walk every case of the bank in reference order.
                        let (a, b, c, d) = (next(), next(), next(), next());
                        let k = $collate;
                        let banks = params(1, banks.len());
                        let branch = |column: &str, lo: usize, hi: usize| {
                            format!(
                                "SELECT mid FROM (SELECT id AS mid FROM cases \
                                 WHERE bank_id IN ({banks}) AND {column}{k} >= ${lo} \
                                 AND {column}{k} < ${hi} ORDER BY {column}{k} \
                                 LIMIT {SEARCH_BRANCH}) AS branch"
                            )
                        };
                        let from = CASE_SELECT
                            .strip_suffix(" FROM cases")
                            .unwrap_or(CASE_SELECT);
                        format!(
                            "{from} FROM ({} UNION {} UNION {}) AS found \
                             JOIN cases ON cases.id = found.mid WHERE bank_id IN ({banks})",
                            branch("case_ref", a, b),
                            branch("case_ref", c, d),
                            branch("debtor_name", a, b),
                        )
                    }
                };
                match query.status.as_deref() {
                    Some("active") => sql.push_str(" AND status IN ('active', 'open')"),
                    Some(_) => sql.push_str(&format!(" AND status = ${}", next())),
                    None => {}
                }
                if query.after.is_some() {
                    let (r, i) = (next(), next());
                    sql.push_str(&format!(
                        " AND (case_ref > ${r} OR (case_ref = ${r} AND id > ${i}))"
                    ));
                }
                // A search sorts what it found; a plain listing walks the index. (Ordered
                // by the bare column, SQLite would walk the bank's cases in that index and
                // look each up in what the search found.)
                let order = if query.text.is_some() {
                    "case_ref || ''"
                } else {
                    "case_ref"
                };
                sql.push_str(&format!(" ORDER BY {order}, id LIMIT ${}", next()));
                let mut q = sqlx::query_as::<_, super::visits::CaseRow>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    q = q.bind(b.to_string());
                }
                if let Some(text) = &query.text {
                    let upper = text.to_uppercase();
                    q = q
                        .bind(text.clone())
                        .bind(prefix_end(text))
                        .bind(upper.clone())
                        .bind(prefix_end(&upper));
                }
                if let Some(s) = query.status.as_deref().filter(|s| *s != "active") {
                    q = q.bind(s.to_owned());
                }
                if let Some((r, i)) = &query.after {
                    q = q.bind(r.clone()).bind(i.clone());
                }
                let rows = q.bind(query.limit).fetch_all(&self.pool).await?;
                rows.into_iter().map(case_record).collect()
            }

            async fn visit_summary(&self, visit: Uuid) -> Result<Option<VisitSummary>, DbError> {
                let sql = format!("{VISIT_SELECT} WHERE a.visit_id = $1");
                let rows = sqlx::query_as::<_, VisitRow>(sqlx::AssertSqlSafe(sql))
                    .bind(visit.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                let mut found = self.with_teams(rows).await?;
                Ok(found.pop())
            }

            async fn assignment_payload(
                &self,
                approval: ApprovalId,
            ) -> Result<Option<String>, DbError> {
                Ok(sqlx::query_scalar(
                    "SELECT payload FROM sync_feed WHERE kind = 'assignment' AND approval_id = $1",
                )
                .bind(approval.to_string())
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn visits(
                &self,
                banks: &[BankId],
                before: Option<(i64, String)>,
                limit: i64,
            ) -> Result<Vec<VisitSummary>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let n = banks.len();
                let keyset = if before.is_some() {
                    format!(
                        " AND (a.approved_ms < ${t} OR (a.approved_ms = ${t} AND a.id < ${i}))",
                        t = n + 1,
                        i = n + 2
                    )
                } else {
                    String::new()
                };
                let limit_param = if before.is_some() { n + 3 } else { n + 1 };
                let sql = format!(
                    "{VISIT_SELECT} WHERE a.bank_id IN ({}){keyset} \
                     ORDER BY a.approved_ms DESC, a.id DESC LIMIT ${limit_param}",
                    params(1, n)
                );
                let mut q = sqlx::query_as::<_, VisitRow>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    q = q.bind(b.to_string());
                }
                if let Some((t, i)) = before {
                    q = q.bind(t).bind(i);
                }
                let rows = q.bind(limit).fetch_all(&self.pool).await?;
                self.with_teams(rows).await
            }
        }

        impl $db {
            /// The visits of `rows`, each with its team's names.
            async fn with_teams(&self, rows: Vec<VisitRow>) -> Result<Vec<VisitSummary>, DbError> {
                let mut out: Vec<VisitSummary> = rows
                    .into_iter()
                    .map(visit_summary)
                    .collect::<Result<_, DbError>>()?;
                if out.is_empty() {
                    return Ok(out);
                }
                let sql = format!(
                    "SELECT t.approval_id, u.display_name FROM approval_team t \
                     JOIN agents ag ON ag.id = t.agent_id JOIN users u ON u.id = ag.user_id \
                     WHERE t.approval_id IN ({}) ORDER BY ag.employee_no",
                    params(1, out.len())
                );
                let mut q = sqlx::query_as::<_, TeamRow>(sqlx::AssertSqlSafe(sql));
                for v in &out {
                    q = q.bind(v.approval_id.to_string());
                }
                let members = q.fetch_all(&self.pool).await?;
                for m in members {
                    if let Some(v) = out
                        .iter_mut()
                        .find(|v| v.approval_id.to_string() == m.approval_id)
                    {
                        v.team.push(m.display_name);
                    }
                }
                Ok(out)
            }
        }
    };
}

// Prefix ranges compare byte by byte (UTF-8 keeps code point order): SQLite's default
// collation does, and PostgreSQL's "C" collation (its indexes `cases_bank_ref_c` and
// `cases_bank_debtor`).
impl_console_db!(super::SqliteDb, "");
impl_console_db!(super::PgDb, " COLLATE \"C\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_search_ends_just_above_its_prefix() {
        assert_eq!(prefix_end("BC-00"), "BC-01");
        assert_eq!(prefix_end("王伟"), "王传");
        assert!("王伟0" < prefix_end("王伟").as_str() && "王伟" <= "王伟0");
        assert_eq!(prefix_end("a\u{D7FF}"), "a\u{E000}");
        assert_eq!(prefix_end("a\u{10FFFF}"), "b");
        assert_eq!(prefix_end("%_"), "%`");
    }
}
