//! The audit log on every backend: entries read back as written, filters, newest first, and
//! rows that can be neither changed nor deleted.

mod common;

use serde_json::json;
use sqlx::Connection as _;
use tandem_server::audit::{AuditAction, AuditEntry, AuditFilter, SUBJECT_USER};
use tandem_server::db::Db;
use uuid::Uuid;

/// Runs one statement on the backend's database, beside the server's pool (what an
/// insider with the database account could do); returns its error, if any.
async fn raw(b: &common::TestBackend, sql: &'static str) -> Option<String> {
    let result = if b.label == "postgres" {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.map(|_| ())
    } else {
        let mut c = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.map(|_| ())
    };
    result.err().map(|e| e.to_string())
}

async fn two_entries(db: &dyn Db) -> (Uuid, i64, i64) {
    let user = Uuid::now_v7();
    let bank = tandem_core::model::BankId::new();
    let first = AuditEntry::about_user(1_000, AuditAction::SignInFailed, None)
        .detail(json!({"failures": 1}))
        .from_addr(Some("192.0.2.7".parse().unwrap()));
    let second = AuditEntry::new(
        2_000,
        AuditAction::PasswordChanged,
        SUBJECT_USER,
        Some(user.to_string()),
    )
    .by(user)
    .bank(bank)
    .purpose("test");
    let a = db.append_audit(&first).await.unwrap();
    let b = db.append_audit(&second).await.unwrap();
    (user, a, b)
}

#[tokio::test]
async fn entries_read_back_as_written_newest_first_and_by_filter() {
    for b in common::backends().await {
        let db = b.open().await;
        let (user, first, second) = two_entries(db.as_ref()).await;
        assert!(second > first, "{}", b.label);

        let all = db.audit_entries(&AuditFilter::default(), 10).await.unwrap();
        assert_eq!(all.len(), 2, "{}", b.label);
        assert_eq!((all[0].seq, all[1].seq), (second, first), "newest first");
        let failed = &all[1].entry;
        assert_eq!(failed.action, AuditAction::SignInFailed);
        assert_eq!((failed.actor, failed.subject_id.as_deref()), (None, None));
        assert_eq!(failed.detail, json!({"failures": 1}));
        assert_eq!(failed.client_addr, Some("192.0.2.7".parse().unwrap()));
        let changed = &all[0].entry;
        assert_eq!(changed.actor, Some(user));
        assert_eq!(changed.subject_kind, "user");
        assert_eq!(changed.purpose.as_deref(), Some("test"));
        assert!(changed.bank_id.is_some());

        let by_user = AuditFilter {
            actor: Some(user),
            ..AuditFilter::default()
        };
        assert_eq!(db.audit_entries(&by_user, 10).await.unwrap().len(), 1);
        let by_action = AuditFilter {
            action: Some(AuditAction::SignInFailed),
            ..AuditFilter::default()
        };
        let found = db.audit_entries(&by_action, 10).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].seq, first);
        let older = AuditFilter {
            before_seq: Some(second),
            ..AuditFilter::default()
        };
        assert_eq!(db.audit_entries(&older, 10).await.unwrap()[0].seq, first);
        let since = AuditFilter {
            since_ms: Some(1_500),
            ..AuditFilter::default()
        };
        assert_eq!(db.audit_entries(&since, 10).await.unwrap()[0].seq, second);
        assert_eq!(
            db.audit_entries(&AuditFilter::default(), 1)
                .await
                .unwrap()
                .len(),
            1,
            "the limit holds"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn an_insider_cannot_change_or_delete_an_audit_entry() {
    for b in common::backends().await {
        let db = b.open().await;
        two_entries(db.as_ref()).await;
        // Actor: a malicious insider with the server's database account, rewriting history.
        for sql in [
            "UPDATE audit_log SET action = 'sign-in'",
            "DELETE FROM audit_log",
        ] {
            let error = raw(&b, sql).await.unwrap_or_else(|| {
                panic!("{}: {sql} was allowed", b.label);
            });
            assert!(error.contains("append-only"), "{}: {error}", b.label);
        }
        if b.label == "postgres" {
            let error = raw(&b, "TRUNCATE audit_log")
                .await
                .expect("truncate refused");
            assert!(error.contains("append-only"), "{error}");
        }
        let all = db.audit_entries(&AuditFilter::default(), 10).await.unwrap();
        assert_eq!(all.len(), 2, "{}: nothing changed", b.label);
        assert_eq!(all[1].entry.action, AuditAction::SignInFailed);
        db.close().await;
    }
}
