//! The audit log's hash chain and its anchors in the transparency log, checked by the real
//! `tandem audit verify` binary on both backends. Every tampering here is the act of one
//! actor (THREATS.md): a malicious insider with the server's database account, who can
//! drop the append-only triggers and rewrite, delete or cut rows.

mod common;

use std::process::{Command, Output};

use tandem_core::crypto::{Digest, Signer as _};
use tandem_core::model::Signed;
use tandem_core::tlog::{Checkpoint, audit_head_leaf, leaf_hash, verify_inclusion};
use tandem_server::AppState;
use tandem_server::audit::chain::StoredEntry;
use tandem_server::audit::{self, AuditAction, AuditEntry};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// A server state whose key lives in a file the verifier can read.
async fn state_with_key_file(b: &common::TestBackend) -> (AppState, std::path::PathBuf) {
    let key_path = b.dir.path().join("server-key.p8");
    let signer = tandem_server::key::load_or_create(&key_path).unwrap();
    (b.state_with(signer).await, key_path)
}

/// `n` entries, each with a purpose, at increasing times.
async fn append(state: &AppState, n: usize) {
    for i in 0..n {
        let entry = AuditEntry::new(
            1_700_000_000_000 + i as i64,
            AuditAction::EvidenceViewed,
            "visit",
            Some(format!("visit-{i}")),
        )
        .purpose("litigation 2026-17")
        .detail(serde_json::json!({ "i": i }));
        state.db.append_audit(&entry).await.unwrap();
    }
}

fn verify_cli(b: &common::TestBackend, key: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(TANDEM)
        .args(["audit", "verify", "--database-url", &b.url, "--key-file"])
        .arg(key)
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What an insider runs first: the append-only triggers gone.
fn drop_triggers(b: &common::TestBackend) -> Vec<String> {
    if b.label == "postgres" {
        vec![
            "DROP TRIGGER audit_log_no_change ON audit_log".into(),
            "DROP TRIGGER audit_anchors_no_change ON audit_anchors".into(),
        ]
    } else {
        [
            "audit_log_no_update",
            "audit_log_no_delete",
            "audit_anchors_no_update",
            "audit_anchors_no_delete",
        ]
        .iter()
        .map(|t| format!("DROP TRIGGER {t}"))
        .collect()
    }
}

#[tokio::test]
async fn an_untouched_log_verifies_and_a_changed_field_is_named() {
    for b in common::backends().await {
        let (state, key) = state_with_key_file(&b).await;
        append(&state, 30).await;
        let anchored = audit::anchor(&state).await.unwrap().expect("a new head");
        assert_eq!(anchored.audit_seq, 30, "{}", b.label);
        // The anchoring is itself recorded; anchoring again at once anchors that entry.
        append(&state, 4).await;

        let ok = verify_cli(&b, &key, &[]);
        assert_eq!(ok.status.code(), Some(0), "{}: {}", b.label, stdout(&ok));
        assert!(stdout(&ok).contains("VALID"), "{}", stdout(&ok));
        assert!(
            stdout(&ok).contains("audit log entries      35"),
            "{}",
            stdout(&ok)
        );

        // Actor: the insider changes one field of one row (the purpose of a read).
        let mut sql = drop_triggers(&b);
        sql.push("UPDATE audit_log SET purpose = 'routine' WHERE seq = 7".into());
        common::raw_sql(&b, &sql).await;
        let bad = verify_cli(&b, &key, &["--json"]);
        assert_eq!(bad.status.code(), Some(1), "{}: {}", b.label, stdout(&bad));
        let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
        assert_eq!(report["valid"], false);
        assert_eq!(
            report["findings"],
            serde_json::json!(["entry 7: altered (its fields no longer match its hash)"]),
            "{}: exactly that entry is named",
            b.label
        );
        state.db.close().await;
    }
}

#[tokio::test]
async fn rows_rewritten_with_their_hashes_recomputed_are_caught_by_the_anchor() {
    for b in common::backends().await {
        let (state, key) = state_with_key_file(&b).await;
        append(&state, 12).await;
        audit::anchor(&state).await.unwrap().unwrap();
        // Actor: the insider rewrites entry 3 and recomputes every hash after it, and the
        // head, so that the chain alone holds again.
        let rows = state.db.audit_rows_after(0, 100).await.unwrap();
        let mut prev = Digest::ZERO;
        let mut sql = drop_triggers(&b);
        for (mut row, _) in rows {
            if row.seq == 3 {
                row.purpose = Some("routine".into());
                sql.push("UPDATE audit_log SET purpose = 'routine' WHERE seq = 3".into());
            }
            let hash = StoredEntry::chain_hash(&row, &prev);
            sql.push(format!(
                "UPDATE audit_log SET entry_hash = '{}' WHERE seq = {}",
                hash.to_hex(),
                row.seq
            ));
            sql.push(format!(
                "UPDATE audit_head SET hash = '{}' WHERE id = 1",
                hash.to_hex()
            ));
            prev = hash;
        }
        common::raw_sql(&b, &sql).await;
        let out = verify_cli(&b, &key, &[]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", b.label, stdout(&out));
        assert!(
            stdout(&out).contains("entry 12 differs from what log entry 0 anchored"),
            "{}: {}",
            b.label,
            stdout(&out)
        );
        state.db.close().await;
    }
}

#[tokio::test]
async fn deleting_the_last_rows_is_caught_by_the_anchor_in_the_transparency_log() {
    for b in common::backends().await {
        let (state, key) = state_with_key_file(&b).await;
        append(&state, 20).await;
        let anchor = audit::anchor(&state).await.unwrap().unwrap();
        // Actor: the insider deletes the last rows (the anchoring's record and the reads
        // before it) and sets the head back, so the chain that is left holds on its own.
        let rows = state.db.audit_rows_after(0, 100).await.unwrap();
        let (_, hash_16) = rows.iter().find(|(r, _)| r.seq == 16).unwrap().clone();
        let mut sql = drop_triggers(&b);
        sql.push("DELETE FROM audit_log WHERE seq > 16".into());
        sql.push(format!(
            "UPDATE audit_head SET seq = 16, hash = '{hash_16}' WHERE id = 1"
        ));
        common::raw_sql(&b, &sql).await;
        let out = verify_cli(&b, &key, &[]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", b.label, stdout(&out));
        assert!(
            stdout(&out).contains(&format!(
                "log entry {} anchored the audit log at entry 20, but the log ends at entry 16: \
                 entries 17 to 20 were deleted",
                anchor.log_index
            )),
            "{}: {}",
            b.label,
            stdout(&out)
        );

        // Removing the anchor row as well leaves a log entry nobody accounts for.
        common::raw_sql(&b, &["DELETE FROM audit_anchors".to_owned()]).await;
        let out = verify_cli(&b, &key, &[]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", b.label, stdout(&out));
        assert!(
            stdout(&out).contains("neither a bundle nor an audit anchor"),
            "{}: {}",
            b.label,
            stdout(&out)
        );
        state.db.close().await;
    }
}

#[tokio::test]
async fn an_anchor_is_a_log_entry_of_its_own_kind_proved_like_a_bundle() {
    for b in common::backends().await {
        let (state, key) = state_with_key_file(&b).await;
        append(&state, 3).await;
        let first = audit::anchor(&state).await.unwrap().unwrap();
        assert!(
            audit::anchor(&state).await.unwrap().is_some(),
            "the anchoring's own record is a new head"
        );
        let third = audit::anchor(&state).await.unwrap().unwrap();
        assert_eq!(
            audit::anchor(&state).await.unwrap().map(|a| a.audit_seq),
            Some(third.audit_seq + 1)
        );
        let demo = common::seed_demo(state.db.as_ref(), tandem_server::demo::DEMO_BANK_CODE).await;
        let server = common::TestServer::start(state.clone()).await;
        let token = server.login("legal", demo.password("legal")).await;
        // The inclusion proof of the first anchor against the newest checkpoint.
        let proof: serde_json::Value = server
            .http
            .get(server.url(&format!("/v1/log/inclusion?index={}", first.log_index)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(proof["kind"], "audit-head", "{}: {proof}", b.label);
        assert!(proof.get("manifest_digest").is_none());
        let head: Digest = first.head_hash.parse().unwrap();
        let leaf = audit_head_leaf(first.audit_seq as u64, &head);
        assert_eq!(proof["leaf"], tandem_core::crypto::to_hex(&leaf));
        let path: Vec<Digest> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().parse().unwrap())
            .collect();
        let newest: Signed<Checkpoint> =
            serde_json::from_str(&state.db.checkpoint(None).await.unwrap().unwrap()).unwrap();
        let checkpoint = newest.verify(&state.signer.public_key()).unwrap();
        verify_inclusion(
            &leaf_hash(&leaf),
            first.log_index,
            checkpoint.tree_size,
            &path,
            &checkpoint.root,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", b.label));

        // A checkpoint held elsewhere (the first anchoring's) is extended by today's log.
        let held = b.dir.path().join("held.json");
        let first_checkpoint = state
            .db
            .checkpoint(Some(first.log_index + 1))
            .await
            .unwrap();
        std::fs::write(&held, first_checkpoint.unwrap()).unwrap();
        let out = verify_cli(&b, &key, &["--checkpoint", held.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", b.label, stdout(&out));
        assert!(stdout(&out).contains("held checkpoints       1"));
        state.db.close().await;
    }
}

#[tokio::test]
async fn what_cannot_be_checked_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(TANDEM)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tandem audit verify: server key"), "{err}");
    // A key but no database: not created, refused.
    tandem_server::key::load_or_create(&dir.path().join("server-key.p8")).unwrap();
    let out = Command::new(TANDEM)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("tandem.db").exists(),
        "the verifier creates nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_server_appending_and_anchoring_while_the_log_is_checked_finds_nothing() {
    for b in common::backends().await {
        let (state, _key) = state_with_key_file(&b).await;
        append(&state, 50).await;
        audit::anchor(&state).await.unwrap();
        // The server goes on: reads are appended and the head anchored meanwhile.
        let writer = {
            let state = state.clone();
            tokio::spawn(async move {
                for round in 0..20 {
                    append(&state, 10).await;
                    if round % 4 == 0 {
                        audit::anchor(&state).await.unwrap();
                    }
                }
            })
        };
        let public = state.signer.public_key();
        for _ in 0..8 {
            let v = tandem_server::audit::verify::verify(state.db.as_ref(), &public, &[])
                .await
                .unwrap();
            assert!(v.holds(), "{}: {:?}", b.label, v.findings);
        }
        writer.await.unwrap();
        let v = tandem_server::audit::verify::verify(state.db.as_ref(), &public, &[])
            .await
            .unwrap();
        assert!(v.holds(), "{}: {:?}", b.label, v.findings);
        assert!(v.entries >= 250, "{}: {}", b.label, v.entries);
        state.db.close().await;
    }
}
