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

#[path = "support/audit_log.rs"]
mod audit_log;
use audit_log::seed;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;
use process::env_number;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

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
