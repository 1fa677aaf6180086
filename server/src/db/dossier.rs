//! What legal staff's evidence pages read and write (A03, D03): the search's row per visit
//! with committed evidence (written by each commit, in its own transaction, from the
//! verified manifest), the search itself (scoped to the banks the caller passes,
//! keyset-paged), and the purpose a user stated for a visit in one session (gone with the
//! session).

use async_trait::async_trait;
use tandem_core::bundle::Manifest;
use tandem_core::model::{AgentId, BankId, BundleId, CaseId, EventKind};
use uuid::Uuid;

use super::DbError;
use super::console::prefix_end;
use super::ledger::BundleStatus;

/// What came of a visit, read from its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisitOutcome {
    /// A receipt was issued (C02).
    pub receipt: bool,
    /// A promise to pay was recorded (V13).
    pub promise: bool,
    /// The debtor disputed the debt (V10).
    pub dispute: bool,
    /// A complaint was recorded (P01).
    pub complaint: bool,
}

/// One outcome the search filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// A receipt was issued.
    Receipt,
    /// A promise was recorded.
    Promise,
    /// A dispute was recorded.
    Dispute,
    /// A complaint was recorded.
    Complaint,
}

impl OutcomeKind {
    /// Every outcome, in the order the console shows them.
    pub const ALL: [Self; 4] = [Self::Receipt, Self::Promise, Self::Dispute, Self::Complaint];

    /// The name in forms and message ids (and the column).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Promise => "promise",
            Self::Dispute => "dispute",
            Self::Complaint => "complaint",
        }
    }

    /// Parses a form's value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The search's row of a visit, from its newest committed bundle.
#[derive(Debug, Clone)]
pub struct EvidenceVisit {
    /// The visit.
    pub visit_id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The case the manifest names.
    pub case_id: CaseId,
    /// The bundle.
    pub bundle_id: BundleId,
    /// Accepted or quarantined.
    pub status: BundleStatus,
    /// The check-in's anchored time (else the first event's best time, else the seal).
    pub visit_ms: i64,
    /// The lead agent.
    pub lead_agent: AgentId,
    /// The partner agent.
    pub partner_agent: AgentId,
    /// What came of it.
    pub outcome: VisitOutcome,
    /// The bundle's log entry (a later commit has a larger one).
    pub log_index: u64,
}

impl EvidenceVisit {
    /// The row of a committed bundle, from its verified manifest.
    pub fn of(
        manifest: &Manifest,
        bundle_id: BundleId,
        status: BundleStatus,
        log_index: u64,
    ) -> Self {
        let mut outcome = VisitOutcome::default();
        for e in &manifest.events {
            match e.kind {
                EventKind::ReceiptIssued { .. } => outcome.receipt = true,
                EventKind::Promise { .. } => outcome.promise = true,
                EventKind::Dispute { .. } => outcome.dispute = true,
                EventKind::Complaint { .. } => outcome.complaint = true,
                _ => {}
            }
        }
        let visit_ms = manifest
            .events
            .iter()
            .find(|e| matches!(e.kind, EventKind::CheckedIn { .. }))
            .or(manifest.events.first())
            .map_or(manifest.sealed_at_ms, |e| e.at.best_ms());
        Self {
            visit_id: manifest.visit.visit_id.0,
            bank_id: manifest.visit.bank_id,
            case_id: manifest.visit.case_id,
            bundle_id,
            status,
            visit_ms,
            lead_agent: manifest.visit.lead,
            partner_agent: manifest.visit.partner,
            outcome,
            log_index,
        }
    }
}

/// One bank of a search, with the visit-time range read in that bank's zone.
#[derive(Debug, Clone)]
pub struct BankRange {
    /// The bank.
    pub bank: BankId,
    /// From (inclusive), UTC ms.
    pub from_ms: Option<i64>,
    /// Until (exclusive), UTC ms.
    pub until_ms: Option<i64>,
}

/// Which visits to find.
#[derive(Debug, Clone, Default)]
pub struct EvidenceQuery {
    /// The banks searched (the user's own, D03), each with its time range.
    pub banks: Vec<BankRange>,
    /// The start of the case reference (as typed, or in capitals).
    pub case_ref: Option<String>,
    /// The start of the debtor's name.
    pub debtor: Option<String>,
    /// Lead or partner.
    pub agent: Option<AgentId>,
    /// `accepted` or `quarantined`.
    pub status: Option<BundleStatus>,
    /// Only visits whose bundle has a flag.
    pub flagged: bool,
    /// Only visits with this outcome.
    pub outcome: Option<OutcomeKind>,
    /// Keyset: only visits before this (visit_ms, visit id), newest first.
    pub before: Option<(i64, String)>,
    /// At most this many.
    pub limit: i64,
}

/// A visit the search found.
#[derive(Debug, Clone)]
pub struct EvidenceHit {
    /// The visit.
    pub visit_id: Uuid,
    /// The bank.
    pub bank_id: BankId,
    /// The bundle shown.
    pub bundle_id: BundleId,
    /// Accepted or quarantined.
    pub status: BundleStatus,
    /// The visit's time, UTC ms.
    pub visit_ms: i64,
    /// The case's reference, when the server knows the case.
    pub case_ref: Option<String>,
    /// The debtor's name.
    pub debtor_name: Option<String>,
    /// The card number, masked.
    pub card_masked: Option<String>,
    /// The ID number, masked.
    pub id_number_masked: Option<String>,
    /// The lead agent's name.
    pub lead_name: Option<String>,
    /// The partner agent's name.
    pub partner_name: Option<String>,
    /// What came of it.
    pub outcome: VisitOutcome,
    /// Flags on the bundle.
    pub flags: i64,
}

/// Storage of legal staff's evidence pages.
#[async_trait]
pub trait DossierDb: Send + Sync {
    /// Files (or replaces, when newer) the search's row of a visit. A commit writes its
    /// row itself, in its own transaction ([`super::ledger::CommitInput::visit`]).
    async fn index_evidence(&self, row: &EvidenceVisit) -> Result<(), DbError>;
    /// The committed bundles whose visit's row is missing or older than they are (visits
    /// committed before commits wrote the row in their own transaction), oldest first.
    async fn unindexed_bundles(&self) -> Result<Vec<BundleId>, DbError>;
    /// Visits matching `query`, newest first.
    async fn search_evidence(&self, query: &EvidenceQuery) -> Result<Vec<EvidenceHit>, DbError>;
    /// One visit's row (any bank: the caller checks the bank).
    async fn evidence_visit(&self, visit: Uuid) -> Result<Option<EvidenceHit>, DbError>;
    /// Remembers `purpose` for `visit` in the session of `session_hash`.
    async fn state_purpose(
        &self,
        session_hash: &str,
        visit: Uuid,
        purpose: &str,
        now_ms: i64,
    ) -> Result<(), DbError>;
    /// The purpose stated for `visit` in that session, while the session lives.
    async fn stated_purpose(
        &self,
        session_hash: &str,
        visit: Uuid,
        now_ms: i64,
    ) -> Result<Option<String>, DbError>;
    /// Whether a complaint (P01) about `visit` — recorded from it, or about its case
    /// without naming a visit — opened within the 24 hours before `now_ms`: its evidence is
    /// then open to quality review.
    async fn complaint_review_open(&self, visit: Uuid, now_ms: i64) -> Result<bool, DbError>;
}

/// How long a complaint opens a visit's evidence to quality review (P01).
pub const COMPLAINT_REVIEW_MS: i64 = 24 * 3_600_000;

row_by_name! {
    struct HitRow {
        visit_id: String,
        bank_id: String,
        bundle_id: String,
        status: String,
        visit_ms: i64,
        case_ref: Option<String>,
        debtor_name: Option<String>,
        card_masked: Option<String>,
        id_number_masked: Option<String>,
        lead_name: Option<String>,
        partner_name: Option<String>,
        receipt: bool,
        promise: bool,
        dispute: bool,
        complaint: bool,
        flags: i64,
    }
}

const HIT_SELECT: &str = "SELECT e.visit_id, e.bank_id, e.bundle_id, e.status, e.visit_ms, \
    c.case_ref, c.debtor_name, c.card_masked, c.id_number_masked, \
    lu.display_name AS lead_name, pu.display_name AS partner_name, \
    e.receipt, e.promise, e.dispute, e.complaint, \
    (SELECT COUNT(*) FROM bundle_flags f WHERE f.bundle_id = e.bundle_id) AS flags \
    FROM evidence_visits e \
    LEFT JOIN cases c ON c.id = e.case_id \
    LEFT JOIN agents la ON la.id = e.lead_agent LEFT JOIN users lu ON lu.id = la.user_id \
    LEFT JOIN agents pa ON pa.id = e.partner_agent LEFT JOIN users pu ON pu.id = pa.user_id";

fn bad<E>(what: &'static str) -> impl Fn(E) -> DbError {
    move |_| DbError::Corrupt(what)
}

fn hit(r: HitRow) -> Result<EvidenceHit, DbError> {
    Ok(EvidenceHit {
        visit_id: r
            .visit_id
            .parse()
            .map_err(bad("evidence_visits.visit_id"))?,
        bank_id: r.bank_id.parse().map_err(bad("evidence_visits.bank_id"))?,
        bundle_id: r
            .bundle_id
            .parse()
            .map_err(bad("evidence_visits.bundle_id"))?,
        status: match r.status.as_str() {
            "accepted" => BundleStatus::Accepted,
            "quarantined" => BundleStatus::Quarantined,
            _ => return Err(DbError::Corrupt("evidence_visits.status")),
        },
        visit_ms: r.visit_ms,
        case_ref: r.case_ref,
        debtor_name: r.debtor_name,
        card_masked: r.card_masked,
        id_number_masked: r.id_number_masked,
        lead_name: r.lead_name,
        partner_name: r.partner_name,
        outcome: VisitOutcome {
            receipt: r.receipt,
            promise: r.promise,
            dispute: r.dispute,
            complaint: r.complaint,
        },
        flags: r.flags,
    })
}

/// A bound value of a search (its SQL is built with numbered placeholders in order).
enum Arg {
    Text(String),
    Int(i64),
}

/// The search's SQL and its values, `k` the collation of prefix ranges.
fn search_sql(query: &EvidenceQuery, k: &str) -> (String, Vec<Arg>) {
    let mut args: Vec<Arg> = Vec::new();
    let push = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        args.len()
    };
    // One branch per bank, each a range of the (bank, visit time) index.
    let mut branches = Vec::new();
    for b in &query.banks {
        let mut branch = format!(
            "e.bank_id = ${}",
            push(&mut args, Arg::Text(b.bank.to_string()))
        );
        if let Some(from) = b.from_ms {
            branch.push_str(&format!(
                " AND e.visit_ms >= ${}",
                push(&mut args, Arg::Int(from))
            ));
        }
        if let Some(until) = b.until_ms {
            branch.push_str(&format!(
                " AND e.visit_ms < ${}",
                push(&mut args, Arg::Int(until))
            ));
        }
        branches.push(format!("({branch})"));
    }
    let mut sql = format!("{HIT_SELECT} WHERE ({})", branches.join(" OR "));
    let bank_params: Vec<usize> = query
        .banks
        .iter()
        .map(|b| push(&mut args, Arg::Text(b.bank.to_string())))
        .collect();
    let banks_in = bank_params
        .iter()
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // A prefix is a range of the cases' own (bank, column) index.
    let prefix = |args: &mut Vec<Arg>, column: &str, text: &str, also_upper: bool| {
        let mut ranges = Vec::new();
        let mut forms = vec![text.to_owned()];
        let upper = text.to_uppercase();
        if also_upper && upper != text {
            forms.push(upper);
        }
        for f in forms {
            let lo = push(args, Arg::Text(f.clone()));
            let hi = push(args, Arg::Text(prefix_end(&f)));
            ranges.push(format!(
                "(cc.{column}{k} >= ${lo} AND cc.{column}{k} < ${hi})"
            ));
        }
        format!(
            " AND e.case_id IN (SELECT cc.id FROM cases cc WHERE cc.bank_id IN ({banks_in}) \
             AND ({}))",
            ranges.join(" OR ")
        )
    };
    if let Some(text) = &query.case_ref {
        let clause = prefix(&mut args, "case_ref", text, true);
        sql.push_str(&clause);
    }
    if let Some(text) = &query.debtor {
        let clause = prefix(&mut args, "debtor_name", text, false);
        sql.push_str(&clause);
    }
    if let Some(agent) = query.agent {
        let a = push(&mut args, Arg::Text(agent.to_string()));
        sql.push_str(&format!(
            " AND (e.lead_agent = ${a} OR e.partner_agent = ${a})"
        ));
    }
    if let Some(status) = query.status {
        let s = push(&mut args, Arg::Text(status.as_str().to_owned()));
        sql.push_str(&format!(" AND e.status = ${s}"));
    }
    if query.flagged {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM bundle_flags f2 WHERE f2.bundle_id = e.bundle_id)",
        );
    }
    if let Some(outcome) = query.outcome {
        // The column's name comes from the closed set, never from input.
        sql.push_str(&format!(" AND e.{} = $TRUE", outcome.as_str()));
    }
    if let Some((t, id)) = &query.before {
        let t = push(&mut args, Arg::Int(*t));
        let i = push(&mut args, Arg::Text(id.clone()));
        sql.push_str(&format!(
            " AND (e.visit_ms < ${t} OR (e.visit_ms = ${t} AND e.visit_id < ${i}))"
        ));
    }
    let l = push(&mut args, Arg::Int(query.limit));
    sql.push_str(&format!(
        " ORDER BY e.visit_ms DESC, e.visit_id DESC LIMIT ${l}"
    ));
    (sql, args)
}

macro_rules! impl_dossier_db {
    ($db:ty, $conn:ty, $collate:expr, $true:expr) => {
        impl $db {
            /// Files (or replaces, when newer) the search's row of a visit on `conn`: the
            /// commit's own transaction (`db::ledger`), or a connection of its own.
            pub(super) async fn index_evidence_in(
                conn: &mut $conn,
                row: &EvidenceVisit,
            ) -> Result<(), DbError> {
                sqlx::query(
                    "INSERT INTO evidence_visits (visit_id, bank_id, case_id, bundle_id, \
                     status, visit_ms, lead_agent, partner_agent, receipt, promise, dispute, \
                     complaint, log_index) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (visit_id) DO UPDATE SET bank_id = excluded.bank_id, \
                     case_id = excluded.case_id, bundle_id = excluded.bundle_id, \
                     status = excluded.status, visit_ms = excluded.visit_ms, \
                     lead_agent = excluded.lead_agent, partner_agent = excluded.partner_agent, \
                     receipt = excluded.receipt, promise = excluded.promise, \
                     dispute = excluded.dispute, complaint = excluded.complaint, \
                     log_index = excluded.log_index \
                     WHERE excluded.log_index >= evidence_visits.log_index",
                )
                .bind(row.visit_id.to_string())
                .bind(row.bank_id.to_string())
                .bind(row.case_id.to_string())
                .bind(row.bundle_id.to_string())
                .bind(row.status.as_str())
                .bind(row.visit_ms)
                .bind(row.lead_agent.to_string())
                .bind(row.partner_agent.to_string())
                .bind(row.outcome.receipt)
                .bind(row.outcome.promise)
                .bind(row.outcome.dispute)
                .bind(row.outcome.complaint)
                .bind(i64::try_from(row.log_index).map_err(|_| DbError::Corrupt("log_index"))?)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl DossierDb for $db {
            async fn index_evidence(&self, row: &EvidenceVisit) -> Result<(), DbError> {
                let mut conn = self.pool.acquire().await?;
                Self::index_evidence_in(&mut conn, row).await
            }

            async fn unindexed_bundles(&self) -> Result<Vec<BundleId>, DbError> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT b.id FROM bundles b WHERE b.log_index IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM evidence_visits e \
                     WHERE e.visit_id = b.visit_id AND e.log_index >= b.log_index) \
                     ORDER BY b.log_index",
                )
                .fetch_all(&self.pool)
                .await?;
                ids.iter()
                    .map(|id| id.parse().map_err(bad("bundles.id")))
                    .collect()
            }

            async fn search_evidence(
                &self,
                query: &EvidenceQuery,
            ) -> Result<Vec<EvidenceHit>, DbError> {
                if query.banks.is_empty() {
                    return Ok(Vec::new());
                }
                let (sql, args) = search_sql(query, $collate);
                let sql = sql.replace("$TRUE", $true);
                let mut q = sqlx::query_as::<_, HitRow>(sqlx::AssertSqlSafe(sql));
                for a in args {
                    q = match a {
                        Arg::Text(s) => q.bind(s),
                        Arg::Int(i) => q.bind(i),
                    };
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.into_iter().map(hit).collect()
            }

            async fn evidence_visit(&self, visit: Uuid) -> Result<Option<EvidenceHit>, DbError> {
                let sql = format!("{HIT_SELECT} WHERE e.visit_id = $1");
                let row: Option<HitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(visit.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(hit).transpose()
            }

            async fn state_purpose(
                &self,
                session_hash: &str,
                visit: Uuid,
                purpose: &str,
                now_ms: i64,
            ) -> Result<(), DbError> {
                sqlx::query(
                    "INSERT INTO evidence_purposes (session_hash, visit_id, purpose, opened_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (session_hash, visit_id) \
                     DO UPDATE SET purpose = excluded.purpose, opened_ms = excluded.opened_ms",
                )
                .bind(session_hash)
                .bind(visit.to_string())
                .bind(purpose)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn stated_purpose(
                &self,
                session_hash: &str,
                visit: Uuid,
                now_ms: i64,
            ) -> Result<Option<String>, DbError> {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT p.purpose FROM evidence_purposes p \
                     JOIN sessions s ON s.token_hash = p.session_hash \
                     WHERE p.session_hash = $1 AND p.visit_id = $2 \
                     AND s.revoked_ms IS NULL AND s.expires_ms > $3",
                )
                .bind(session_hash)
                .bind(visit.to_string())
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.map(|(p,)| p))
            }

            async fn complaint_review_open(
                &self,
                visit: Uuid,
                now_ms: i64,
            ) -> Result<bool, DbError> {
                let found: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM complaints c JOIN evidence_visits e ON e.visit_id = $1 \
                     WHERE (c.visit_id = $1 OR (c.visit_id IS NULL AND c.case_id = e.case_id)) \
                     AND c.opened_ms <= $2 AND $2 < c.opened_ms + $3",
                )
                .bind(visit.to_string())
                .bind(now_ms)
                .bind(COMPLAINT_REVIEW_MS)
                .fetch_one(&self.pool)
                .await?;
                Ok(found > 0)
            }
        }
    };
}

impl_dossier_db!(super::SqliteDb, sqlx::SqliteConnection, "", "1");
impl_dossier_db!(super::PgDb, sqlx::PgConnection, " COLLATE \"C\"", "TRUE");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_binds_every_value_it_names_in_order() {
        let query = EvidenceQuery {
            banks: vec![BankRange {
                bank: BankId(Uuid::nil()),
                from_ms: Some(1),
                until_ms: None,
            }],
            case_ref: Some("pj".into()),
            debtor: Some("林".into()),
            agent: None,
            status: Some(BundleStatus::Accepted),
            flagged: true,
            outcome: Some(OutcomeKind::Receipt),
            before: Some((5, "x".into())),
            limit: 21,
        };
        let (sql, args) = search_sql(&query, "");
        let highest = (1..=args.len())
            .rev()
            .find(|i| sql.contains(&format!("${i}")));
        assert_eq!(highest, Some(args.len()), "{sql}");
        assert!(!sql.contains(&format!("${}", args.len() + 1)));
        assert!(sql.contains("e.receipt = $TRUE"));
    }
}
