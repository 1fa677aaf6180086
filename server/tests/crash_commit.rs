//! The real `tandem serve` SIGKILLed in the middle of commits, again and again, on every
//! backend. Afterwards nothing is half-stored (no committed bundle without its log entry and
//! receipt, no log entry without its bundle), every acknowledged bundle is intact and its
//! receipt and inclusion proof verify against the newest checkpoint, every checkpoint
//! seen before a crash is consistent with the log after it, and every committed visit is in
//! legal staff's evidence search.
//!
//! Actor: anyone sending bad input or pulling the plug — "transactional writes, quarantine
//! instead of crash" (THREATS.md); and the malicious insider, whose rewritten history the
//! consistency proofs would expose.

mod common;
mod ledger_support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_support::{Phone, Upload, fresh, receipt_of, sample_position};
use sqlx::Connection as _;
use tandem_core::bundle::ServerReceipt;
use tandem_core::bundle::testing::SampleBundle;
use tandem_core::crypto::{Digest, PublicKey, Signer as _};
use tandem_core::model::{BundleId, Signed};
use tandem_core::tlog::{
    Checkpoint, manifest_leaf_hash, verify_checkpoint_consistency, verify_inclusion, verify_receipt,
};

/// How many times the server is killed, per backend.
const KILLS: usize = 50;
/// Commits in flight when the kill comes.
const IN_FLIGHT: usize = 4;
/// The kill comes at a random moment in this many milliseconds after the commits start.
const MAX_DELAY_MS: u64 = 80;

/// xorshift64*: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Server {
    child: Child,
    base: String,
}

async fn start(b: &common::TestBackend, http: &reqwest::Client) -> Server {
    let addr = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args(["serve", "--listen", &addr.to_string()])
        .env("TANDEM_DATA_DIR", b.dir.path().join("data"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if b.label == "postgres" {
        cmd.env("DATABASE_URL", &b.url);
    }
    let mut child = cmd.spawn().unwrap();
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            return Server { child, base };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tandem serve exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no healthy server within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn kill(mut server: Server) {
    // SIGKILL: no shutdown, no flush, whatever the server was doing.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// PUT + commit; the receipt when the server acknowledged it (a 200 answer arrived).
async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    u: &Upload,
) -> Option<ServerReceipt> {
    let put = http
        .put(format!("{base}/v1/bundles/{}", u.id))
        .bearer_auth(token)
        .json(&u.put_body())
        .send()
        .await
        .ok()?;
    if !put.status().is_success() {
        return None;
    }
    let resp = http
        .post(format!("{base}/v1/bundles/{}/commit", u.id))
        .bearer_auth(token)
        .json(&u.commit_body())
        .send()
        .await
        .ok()?;
    if resp.status() != 200 {
        return None;
    }
    let body: serde_json::Value = resp.json().await.ok()?;
    Some(receipt_of(&body))
}

async fn latest_checkpoint(phone: &Phone<'_>) -> Option<Signed<Checkpoint>> {
    let (status, body) = phone.get("/v1/log/checkpoint").await;
    (status == 200).then(|| serde_json::from_value(body).unwrap())
}

/// Checks `older` (seen before a crash) is a prefix of the log's newest checkpoint.
async fn assert_consistent(phone: &Phone<'_>, older: &Signed<Checkpoint>, key: &PublicKey) {
    let newest = latest_checkpoint(phone)
        .await
        .expect("a checkpoint after restart");
    let (old, new): (Checkpoint, Checkpoint) =
        (older.verify(key).unwrap(), newest.verify(key).unwrap());
    let (status, body) = phone
        .get(&format!(
            "/v1/log/consistency?from={}&to={}",
            old.tree_size, new.tree_size
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let proof: Vec<Digest> = serde_json::from_value(body["proof"].clone()).unwrap();
    verify_checkpoint_consistency(older, &newest, &proof, key)
        .unwrap_or_else(|e| panic!("history rewritten across a crash: {e}"));
}

/// What the database holds, read straight from it: every committed bundle (log index,
/// manifest digest, has answer), the head size and the leaf hashes.
async fn audit(
    b: &common::TestBackend,
) -> (Vec<(i64, String, bool)>, i64, Vec<(i64, Vec<u8>)>, i64) {
    const BUNDLES: &str = "SELECT COALESCE(log_index, -1), manifest_digest, answer IS NOT NULL \
                           FROM bundles WHERE status <> 'pending' OR log_index IS NOT NULL \
                           OR answer IS NOT NULL ORDER BY log_index";
    const HEAD: &str = "SELECT size FROM tlog_head WHERE id = 1";
    const LEAVES: &str = "SELECT idx, hash FROM tlog_nodes WHERE level = 0 ORDER BY idx";
    const PENDING: &str = "SELECT COUNT(*) FROM bundles WHERE status = 'pending'";
    if b.label == "sqlite" {
        let url = format!("sqlite://{}", b.dir.path().join("data/tandem.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        (
            sqlx::query_as(BUNDLES).fetch_all(&mut c).await.unwrap(),
            sqlx::query_scalar(HEAD).fetch_one(&mut c).await.unwrap(),
            sqlx::query_as(LEAVES).fetch_all(&mut c).await.unwrap(),
            sqlx::query_scalar(PENDING).fetch_one(&mut c).await.unwrap(),
        )
    } else {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        (
            sqlx::query_as(BUNDLES).fetch_all(&mut c).await.unwrap(),
            sqlx::query_scalar(HEAD).fetch_one(&mut c).await.unwrap(),
            sqlx::query_as(LEAVES).fetch_all(&mut c).await.unwrap(),
            sqlx::query_scalar(PENDING).fetch_one(&mut c).await.unwrap(),
        )
    }
}

/// Committed bundles whose visit legal staff cannot find (no search row as new as the
/// bundle), read straight from the database while no server runs (a server's start would
/// write the missing rows).
async fn unsearchable(b: &common::TestBackend) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM bundles b WHERE b.log_index IS NOT NULL \
                       AND NOT EXISTS (SELECT 1 FROM evidence_visits e \
                       WHERE e.visit_id = b.visit_id AND e.log_index >= b.log_index)";
    if b.label == "sqlite" {
        let url = format!("sqlite://{}", b.dir.path().join("data/tandem.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_one(&mut c).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_server_during_commits_never_leaves_a_partial_bundle() {
    let seed = std::env::var("TANDEM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    writeln!(
        std::io::stderr(),
        "crash_commit: seed {seed} (TANDEM_CRASH_SEED to replay)"
    )
    .unwrap();
    for b in common::backends().await {
        let label = b.label;
        let started = Instant::now();
        let mut rng = Rng(seed);
        let data = b.dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let key_file = data.join("server-key.p8");
        let server_key = tandem_server::key::load_or_create(&key_file).unwrap();
        let key = server_key.public_key();
        let mut sample = SampleBundle::with_server(server_key).unwrap();
        let db = if label == "sqlite" {
            tandem_server::db::open_sqlite_file(&data.join("tandem.db"))
                .await
                .unwrap()
        } else {
            b.open().await
        };
        let seeded = ledger_support::seed_sample(db.as_ref(), &sample, sample_position()).await;
        let blobs = common::blob_store(&data, db.clone());
        ledger_support::store_blobs(&blobs, &sample.blobs).await;
        drop(blobs);
        db.close().await;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut acknowledged: BTreeMap<BundleId, (Upload, ServerReceipt)> = BTreeMap::new();
        let mut seen: Option<Signed<Checkpoint>> = None;
        let mut attempted = 0usize;
        for round in 0..KILLS {
            let server = start(&b, &http).await;
            let phone = Phone {
                base: &server.base,
                http: &http,
                token: &seeded.lead_token,
            };
            // What a phone saw before the last crash still holds after it.
            if let Some(older) = &seen {
                assert_consistent(&phone, older, &key).await;
            }
            let uploads: Vec<Upload> = (0..IN_FLIGHT).map(|_| fresh(&mut sample)).collect();
            attempted += uploads.len();
            let tasks: Vec<_> = uploads
                .iter()
                .cloned()
                .map(|u| {
                    let (http, base, token) =
                        (http.clone(), server.base.clone(), seeded.lead_token.clone());
                    tokio::spawn(async move {
                        let receipt = send(&http, &base, &token, &u).await;
                        (u, receipt)
                    })
                })
                .collect();
            let delay = rng.next() % (MAX_DELAY_MS + 1);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            kill(server);
            // The search's row is written with the commit: never a committed visit without.
            assert_eq!(
                unsearchable(&b).await,
                0,
                "{label}: round {round}: a committed visit missing from the evidence search"
            );
            for task in tasks {
                let (u, receipt) = task.await.unwrap();
                if let Some(r) = receipt {
                    verify_receipt(
                        &r.receipt,
                        &r.inclusion_proof,
                        &r.checkpoint,
                        &key,
                        &u.digest(),
                    )
                    .unwrap_or_else(|e| panic!("{label}: round {round}: bad receipt: {e}"));
                    let newer = seen.as_ref().is_none_or(|s| {
                        s.verify(&key).unwrap().tree_size
                            < r.checkpoint.verify(&key).unwrap().tree_size
                    });
                    if newer {
                        seen = Some(r.checkpoint.clone());
                    }
                    acknowledged.insert(u.id, (u, r));
                }
            }
        }

        // After the last crash: one more start, then the audit.
        let server = start(&b, &http).await;
        let phone = Phone {
            base: &server.base,
            http: &http,
            token: &seeded.lead_token,
        };
        if let Some(older) = &seen {
            assert_consistent(&phone, older, &key).await;
        }
        let newest = latest_checkpoint(&phone)
            .await
            .expect("something was committed");
        let newest_doc = newest.verify(&key).unwrap();
        for (u, r) in acknowledged.values() {
            // Intact: the commit answers the very same receipt again.
            let (status, _, body) = phone.commit(u).await;
            assert_eq!(status, 200, "{label}: acknowledged bundle lost: {body}");
            assert_eq!(
                receipt_of(&body),
                *r,
                "{label}: acknowledged receipt changed"
            );
            let index = r.receipt.verify(&key).unwrap().log_index;
            let (status, body) = phone
                .get(&format!(
                    "/v1/log/inclusion?bundle_id={}&tree_size={}",
                    u.id, newest_doc.tree_size
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            let proof: Vec<Digest> = serde_json::from_value(body["proof"].clone()).unwrap();
            verify_inclusion(
                &manifest_leaf_hash(&u.digest()),
                index,
                newest_doc.tree_size,
                &proof,
                &newest_doc.root,
            )
            .unwrap_or_else(|e| panic!("{label}: bundle {} not in the newest tree: {e}", u.id));
        }
        kill(server);

        let (committed, head, leaves, pending) = audit(&b).await;
        assert_eq!(leaves.len() as i64, head, "{label}: leaves vs log head");
        // Every entry is a committed bundle's manifest, or an anchor of the audit log (each
        // start of the server anchors its head): `tandem audit verify` accounts for every
        // entry, checks the anchors and the audit chain, and the leaves against the newest
        // signed checkpoint.
        let by_index: std::collections::BTreeMap<i64, (&String, bool)> = committed
            .iter()
            .map(|(index, digest, has_answer)| (*index, (digest, *has_answer)))
            .collect();
        for (i, (leaf_index, leaf)) in leaves.iter().enumerate() {
            assert_eq!(
                *leaf_index, i as i64,
                "{label}: log indexes not consecutive"
            );
            if let Some((digest, has_answer)) = by_index.get(leaf_index) {
                assert!(*has_answer, "{label}: committed bundle without its receipt");
                let digest: Digest = digest.parse().unwrap();
                assert_eq!(
                    leaf.as_slice(),
                    manifest_leaf_hash(&digest).as_bytes(),
                    "{label}: log entry {i} is not its bundle's manifest"
                );
            }
        }
        let db_url = if b.label == "sqlite" {
            format!("sqlite://{}", data.join("tandem.db").display())
        } else {
            b.url.clone()
        };
        let verified = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["audit", "verify", "--database-url", &db_url, "--key-file"])
            .arg(&key_file)
            .output()
            .unwrap();
        assert_eq!(
            verified.status.code(),
            Some(0),
            "{label}: the log after the kills: {}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );
        assert!(
            committed.iter().all(|(index, _, _)| *index >= 0),
            "{label}: a bundle left half committed: {committed:?}"
        );
        assert!(
            committed.len() as i64 <= head && by_index.len() == committed.len(),
            "{label}: bundles vs log head"
        );
        assert_eq!(
            newest_doc.tree_size as i64, head,
            "{label}: newest checkpoint vs head"
        );
        writeln!(
            std::io::stderr(),
            "crash_commit {label}: {KILLS} SIGKILLs, {attempted} commits attempted, {} acknowledged, \
             {head} logged, {pending} left pending, newest tree {}, {:.1} s",
            acknowledged.len(),
            newest_doc.tree_size,
            started.elapsed().as_secs_f64()
        )
        .unwrap();
        assert!(!acknowledged.is_empty(), "{label}: no commit ever finished");
    }
}
