//! A large audit log seeded straight into the database (the audit and search benches):
//! chained entries as `append_audit` writes them, in bulk, with an anchor in the
//! transparency log every 10,000 through the server's own anchoring.

use tandem_core::crypto::Digest;
use tandem_server::audit::chain::StoredEntry;

/// Rows per INSERT statement (11 columns: under SQLite's 32,766 parameters).
const ROWS_PER_INSERT: usize = 1_000;
/// An anchor every this many entries.
const ANCHOR_EVERY: i64 = 10_000;

/// Appends `entries` chained rows after the head (what `append_audit` writes, in bulk) with an anchor
/// every [`ANCHOR_EVERY`] through the server's own anchoring.
pub async fn seed(url: &str, entries: i64, signer: &tandem_core::crypto::SoftwareSigner) {
    let db = tandem_server::db::open(url).await.unwrap();
    let mut conn = Conn::open(url).await;
    // After whatever the log holds already (an organisation's seeding is audited too).
    let (mut seq, head) = db.audit_head().await.unwrap();
    let mut prev: Digest = head.parse().unwrap();
    let end = seq + entries;
    while seq < end {
        let n = (end - seq)
            .min(ROWS_PER_INSERT as i64)
            .min(ANCHOR_EVERY - seq % ANCHOR_EVERY);
        let mut rows = Vec::with_capacity(n as usize);
        for _ in 0..n {
            seq += 1;
            let row = StoredEntry {
                seq,
                at_ms: 1_780_000_000_000 + seq * 1_000,
                actor_user_id: Some(format!("0190a3b4-7c1d-7e2f-8a9b-{:012x}", seq % 97)),
                action: if seq % 3 == 0 {
                    "thumbnail-viewed"
                } else {
                    "evidence-viewed"
                }
                .into(),
                subject_kind: "visit".into(),
                subject_id: Some(format!("0190a3b4-0000-7000-8000-{:012x}", seq % 20_000)),
                bank_id: Some("0190a3b4-1111-7000-8000-000000000001".into()),
                detail: format!("{{\"n\":{seq}}}"),
                client_addr: Some("192.0.2.7".into()),
                purpose: Some("诉讼：(2026)京0105民初12345号".into()),
            };
            let hash = row.chain_hash(&prev);
            prev = hash;
            rows.push((row, hash.to_hex()));
        }
        conn.insert(&rows).await;
        if seq % ANCHOR_EVERY == 0 || seq == end {
            db.anchor_audit_head(signer, 1_780_000_000_000 + seq * 1_000)
                .await
                .unwrap()
                .expect("a new head");
        }
    }
    db.close().await;
}

/// One connection for the whole seeding, beside the server's pool.
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

impl Conn {
    async fn open(url: &str) -> Self {
        use sqlx::Connection as _;
        if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
        } else {
            Self::Pg(sqlx::PgConnection::connect(url).await.unwrap())
        }
    }

    /// Inserts `rows` (with their hashes) and moves the head to the last, in one
    /// transaction.
    async fn insert(&mut self, rows: &[(StoredEntry, String)]) {
        use sqlx::Connection as _;
        let cols = 11;
        let values: Vec<String> = (0..rows.len())
            .map(|r| {
                let p: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_log (seq, at_ms, actor_user_id, action, subject_kind, subject_id, \
             bank_id, detail, client_addr, purpose, entry_hash) VALUES {}",
            values.join(", ")
        );
        let last = rows.last().unwrap();
        macro_rules! run {
            ($conn:expr) => {{
                let mut tx = $conn.begin().await.unwrap();
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (r, h) in rows {
                    q = q
                        .bind(r.seq)
                        .bind(r.at_ms)
                        .bind(r.actor_user_id.clone())
                        .bind(r.action.clone())
                        .bind(r.subject_kind.clone())
                        .bind(r.subject_id.clone())
                        .bind(r.bank_id.clone())
                        .bind(r.detail.clone())
                        .bind(r.client_addr.clone())
                        .bind(r.purpose.clone())
                        .bind(h.clone());
                }
                q.execute(&mut *tx).await.unwrap();
                sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(last.0.seq)
                    .bind(last.1.clone())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }};
        }
        match self {
            Self::Sqlite(c) => run!(c),
            Self::Pg(c) => run!(c),
        }
    }
}
