//! The transparency log kept in the database, on every backend: 1,000 commits, every root
//! equal to core's in-memory log, inclusion and consistency proofs served over HTTP that
//! verify against the signed checkpoints; an entry altered or removed in the database is
//! caught by the checkpoints signed before.

mod common;

use std::io::Write as _;
use std::time::Instant;

use sqlx::Connection as _;
use tandem_core::crypto::{Digest, Signer as _, sha256};
use tandem_core::model::{BundleId, CaseId, DeviceId, Signed, VisitId};
use tandem_core::tlog::{
    Checkpoint, MerkleLog, NodeStore as _, Verdict, manifest_leaf_hash,
    verify_checkpoint_consistency, verify_inclusion,
};
use tandem_server::db::Db;
use tandem_server::db::ledger::{CommitInput, CommitOutcome, NewBundle};

const ENTRIES: u64 = 1_000;

fn hex_list(v: &serde_json::Value) -> Vec<Digest> {
    serde_json::from_value(v.clone()).unwrap()
}

/// Rewrites one stored node straight in the database, as an insider with access would.
async fn rewrite_node(backend: &common::TestBackend, level: u32, idx: u64, hash: Digest) {
    const SQL: &str = "UPDATE tlog_nodes SET hash = $1 WHERE level = $2 AND idx = $3";
    let (hash, level, idx) = (hash.as_bytes().to_vec(), i64::from(level), idx as i64);
    let n = if backend.label == "sqlite" {
        let mut c = sqlx::SqliteConnection::connect(&backend.url).await.unwrap();
        let q = sqlx::query(SQL).bind(hash).bind(level).bind(idx);
        q.execute(&mut c).await.unwrap().rows_affected()
    } else {
        let mut c = sqlx::PgConnection::connect(&backend.url).await.unwrap();
        let q = sqlx::query(SQL).bind(hash).bind(level).bind(idx);
        q.execute(&mut c).await.unwrap().rows_affected()
    };
    assert_eq!(n, 1);
}

/// Runs one SQL statement straight on the database, as an insider with access would.
async fn tamper(backend: &common::TestBackend, sql: &'static str) {
    if backend.label == "sqlite" {
        let mut c = sqlx::SqliteConnection::connect(&backend.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&backend.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

async fn commit_entries(
    db: &dyn Db,
    signer: &dyn tandem_core::crypto::Signer,
    bank: tandem_core::model::BankId,
) -> (Vec<Digest>, Vec<Signed<Checkpoint>>) {
    let mut digests = Vec::new();
    let mut checkpoints = Vec::new();
    for i in 0..ENTRIES {
        let manifest = format!("manifest {i}").into_bytes();
        let digest = sha256(&manifest);
        let id = BundleId::new();
        db.put_bundle(&NewBundle {
            id,
            bank_id: bank,
            case_id: CaseId::new(),
            visit_id: VisitId::new(),
            lead_device_id: DeviceId::new(),
            partner_device_id: DeviceId::new(),
            uploaded_by: DeviceId::new(),
            manifest_digest: digest,
            manifest,
            signatures: b"[]".to_vec(),
            received_ms: 1,
        })
        .await
        .unwrap();
        let outcome = db
            .commit_bundle(&CommitInput {
                id,
                manifest_digest: digest,
                verdict: Verdict::Accepted,
                report: "{}".into(),
                flags: Vec::new(),
                money: Default::default(),
                visit: None,
                now_ms: tandem_server::clock::system_now_ms(),
                signer,
            })
            .await
            .unwrap();
        let CommitOutcome::Committed(signed) = outcome else {
            panic!("entry {i} not committed");
        };
        digests.push(digest);
        checkpoints.push(signed.checkpoint);
    }
    (digests, checkpoints)
}

#[tokio::test]
async fn a_thousand_entries_prove_inclusion_and_consistency_and_tampering_shows() {
    for backend in common::backends().await {
        let label = backend.label;
        let state = backend.state().await;
        let demo = common::seed_demo(state.db.as_ref(), "tlog-bank").await;
        let key = state.signer.public_key();
        let started = Instant::now();
        let (digests, checkpoints) =
            commit_entries(state.db.as_ref(), state.signer.as_ref(), demo.bank_id()).await;
        let elapsed = started.elapsed();
        writeln!(
            std::io::stderr(),
            "{label}: {ENTRIES} commits (one transaction each) in {:.2} s, {:.0}/s",
            elapsed.as_secs_f64(),
            ENTRIES as f64 / elapsed.as_secs_f64()
        )
        .unwrap();

        // Every checkpoint's root is the root core's in-memory log computes.
        let mut memory = MerkleLog::new();
        for (i, d) in digests.iter().enumerate() {
            memory.append_manifest(d).unwrap();
            let c: Checkpoint = checkpoints[i].verify(&key).unwrap();
            assert_eq!(c.tree_size, i as u64 + 1);
            assert_eq!(
                c.root,
                memory.root(c.tree_size).unwrap(),
                "{label}: size {}",
                i + 1
            );
        }

        let server = common::TestServer::start(state).await;
        let token = server
            .login("tlog-bank-manager", demo.password("tlog-bank-manager"))
            .await;
        let get = |path: String| {
            let (http, url, token) = (server.http.clone(), server.url(&path), token.clone());
            async move {
                let resp = http.get(url).bearer_auth(token).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, latest) = get("/v1/log/checkpoint".into()).await;
        assert_eq!(status, 200);
        let latest: Signed<Checkpoint> = serde_json::from_value(latest).unwrap();
        assert_eq!(latest, checkpoints[ENTRIES as usize - 1]);

        let sizes = [1u64, 2, 3, 7, 8, 9, 255, 256, 257, 513, 999, 1000];
        let started = Instant::now();
        let mut proofs = 0;
        for &size in &sizes {
            let root = checkpoints[size as usize - 1].verify(&key).unwrap().root;
            for index in [0, size / 3, size / 2, size - 1] {
                let (status, body) =
                    get(format!("/v1/log/inclusion?index={index}&tree_size={size}")).await;
                assert_eq!(status, 200, "{label}: {body}");
                assert_eq!(body["manifest_digest"], digests[index as usize].to_hex());
                verify_inclusion(
                    &manifest_leaf_hash(&digests[index as usize]),
                    index,
                    size,
                    &hex_list(&body["proof"]),
                    &root,
                )
                .unwrap_or_else(|e| panic!("{label}: inclusion {index} in {size}: {e}"));
                proofs += 1;
            }
            for &old in sizes.iter().filter(|&&o| o <= size) {
                let (status, body) = get(format!("/v1/log/consistency?from={old}&to={size}")).await;
                assert_eq!(status, 200, "{label}: {body}");
                verify_checkpoint_consistency(
                    &checkpoints[old as usize - 1],
                    &checkpoints[size as usize - 1],
                    &hex_list(&body["proof"]),
                    &key,
                )
                .unwrap_or_else(|e| panic!("{label}: consistency {old} → {size}: {e}"));
                proofs += 1;
            }
        }
        writeln!(
            std::io::stderr(),
            "{label}: {proofs} proofs served and verified in {:.2} s",
            started.elapsed().as_secs_f64()
        )
        .unwrap();
        // Out of range is refused, not answered.
        let (status, _) = get("/v1/log/inclusion?index=1000&tree_size=1000".into()).await;
        assert_eq!(status, 422);
        let (status, _) = get("/v1/log/consistency?from=9&to=8".into()).await;
        assert_eq!(status, 422);

        // Actor: a malicious insider replacing entry 5 in the database, and every stored
        // subtree above it, so the log is self-consistent again. The checkpoints signed
        // before expose it: proofs no longer lead to their roots.
        let mut forged = digests.clone();
        forged[5] = sha256(b"another manifest");
        let mut rewritten = MerkleLog::new();
        for d in &forged {
            rewritten.append_manifest(d).unwrap();
        }
        for level in 0..10u32 {
            let idx = 5u64 >> level;
            if (idx + 1) << level <= ENTRIES {
                let hash = rewritten.store().subtree_hash(level, idx).unwrap();
                rewrite_node(&backend, level, idx, hash).await;
            }
        }
        let root_1000 = checkpoints[999].verify(&key).unwrap().root;
        let (status, body) = get("/v1/log/inclusion?index=4&tree_size=1000".into()).await;
        assert_eq!(status, 200);
        assert!(
            verify_inclusion(
                &manifest_leaf_hash(&digests[4]),
                4,
                1000,
                &hex_list(&body["proof"]),
                &root_1000
            )
            .is_err(),
            "{label}: an altered entry went unnoticed"
        );
        let (_, body) = get("/v1/log/consistency?from=7&to=1000".into()).await;
        assert!(
            verify_checkpoint_consistency(
                &checkpoints[6],
                &checkpoints[999],
                &hex_list(&body["proof"]),
                &key
            )
            .is_err(),
            "{label}: a rewritten history proved consistent"
        );

        // Actor: the same insider deleting entry 9 (its bundle and its leaf): neither its
        // proof nor its neighbour's can be produced any more.
        tamper(&backend, "DELETE FROM bundles WHERE log_index = 9").await;
        tamper(
            &backend,
            "DELETE FROM tlog_nodes WHERE level = 0 AND idx = 9",
        )
        .await;
        let (status, _) = get("/v1/log/inclusion?index=9&tree_size=10".into()).await;
        assert_eq!(status, 500, "{label}: a removed entry was proven");
        let (status, _) = get("/v1/log/inclusion?index=8&tree_size=10".into()).await;
        assert_eq!(
            status, 500,
            "{label}: a proof over a removed entry was served"
        );
    }
}
