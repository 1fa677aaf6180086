//! `tandem audit verify` over a large audit log (issue 15): 1,000,000 chained entries with
//! an anchor in the transparency log every 10,000, seeded straight into the database; then
//! the release-built binary checks the chain, the head, every anchor and the log, three
//! times. The peer, in the same run: the database's own command-line client reading the
//! same rows in the same order to /dev/null (`sqlite3`, `psql … COPY`), the floor of any
//! check that reads every row. On SQLite, and on PostgreSQL when `TANDEM_TEST_DATABASE_URL`
//! names a cluster.
//!
//! `./scripts/with-postgres cargo bench -p tandem-server --bench audit`
//! (`TANDEM_BENCH_AUDIT_ENTRIES`, default 1,000,000).

use std::process::Command;
use std::time::{Duration, Instant};

use tandem_core::crypto::Digest;
use tandem_server::audit::chain::StoredEntry;

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;
use process::env_number;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
/// Rows per INSERT statement (11 columns: under SQLite's 32,766 parameters).
const ROWS_PER_INSERT: usize = 1_000;
/// An anchor every this many entries.
const ANCHOR_EVERY: i64 = 10_000;

fn main() {
    let entries: i64 = env_number("TANDEM_BENCH_AUDIT_ENTRIES", 1_000_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("server-key.p8");
    let signer = tandem_server::key::load_or_create(&key_path).unwrap();
    let mut backends = vec![(
        "SQLite",
        format!("sqlite://{}", dir.path().join("tandem.db").display()),
    )];
    if let Ok(admin) = std::env::var("TANDEM_TEST_DATABASE_URL") {
        let url = runtime.block_on(postgres::fresh_database(&admin));
        backends.push(("PostgreSQL", url));
    }
    println!("## tandem audit verify over {entries} entries\n");
    println!("| backend | seeded in | verify runs (s) | median | peer: read every row | ratio |");
    println!("|---|---|---|---|---|---|");
    for (label, url) in backends {
        let started = Instant::now();
        runtime.block_on(seed(&url, entries, &signer));
        let seeded = started.elapsed();
        let mut runs: Vec<Duration> = (0..3).map(|_| verify_once(&url, &key_path)).collect();
        runs.sort();
        let median = runs[1];
        let peer = read_all_rows(label, &url, dir.path());
        println!(
            "| {label} | {:.0} s | {} | {:.2} s | {:.2} s | {:.1}× |",
            seeded.as_secs_f64(),
            runs.iter()
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", "),
            median.as_secs_f64(),
            peer.as_secs_f64(),
            median.as_secs_f64() / peer.as_secs_f64().max(1e-9)
        );
    }
}

/// Appends `entries` chained rows (what `append_audit` writes, in bulk) with an anchor
/// every [`ANCHOR_EVERY`] through the server's own anchoring.
async fn seed(url: &str, entries: i64, signer: &tandem_core::crypto::SoftwareSigner) {
    let db = tandem_server::db::open(url).await.unwrap();
    let mut conn = Conn::open(url).await;
    let mut prev = Digest::ZERO;
    let mut seq = 0_i64;
    while seq < entries {
        let n = (entries - seq)
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
        if seq % ANCHOR_EVERY == 0 || seq == entries {
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

fn verify_once(url: &str, key: &std::path::Path) -> Duration {
    let started = Instant::now();
    let out = Command::new(TANDEM)
        .args(["audit", "verify", "--database-url", url, "--key-file"])
        .arg(key)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The database's own client reading every row in order to /dev/null.
fn read_all_rows(label: &str, url: &str, dir: &std::path::Path) -> Duration {
    let started = Instant::now();
    let status = if label == "SQLite" {
        Command::new("sqlite3")
            .arg(dir.join("tandem.db"))
            .arg("SELECT * FROM audit_log ORDER BY seq")
            .stdout(std::process::Stdio::null())
            .status()
    } else {
        Command::new("psql")
            .arg(url)
            .args([
                "-q",
                "-c",
                "COPY (SELECT * FROM audit_log ORDER BY seq) TO STDOUT",
            ])
            .stdout(std::process::Stdio::null())
            .status()
    };
    assert!(status.unwrap().success(), "the peer client failed");
    started.elapsed()
}
