//! Migrations and the demo seed, on every backend.

mod common;

use tandem_server::db::TableCounts;
use tandem_server::demo;

#[tokio::test]
async fn migrations_apply_and_a_second_start_changes_nothing() {
    for b in common::backends().await {
        let db = b.open().await;
        assert_eq!(
            db.counts().await.unwrap(),
            TableCounts::default(),
            "{}",
            b.label
        );
        db.close().await;
        // Second start: the embedded migrations are recorded as applied, nothing re-runs.
        let again = b.open().await;
        again.migrate().await.unwrap();
        assert_eq!(
            again.counts().await.unwrap(),
            TableCounts::default(),
            "{}",
            b.label
        );
        again.close().await;
    }
}

#[tokio::test]
async fn demo_seed_creates_exactly_the_demo_rows_once() {
    for b in common::backends().await {
        let db = b.open().await;
        let creds = demo::seed(db.as_ref(), tandem_server::clock::system_now_ms())
            .await
            .unwrap()
            .expect("first seed");
        assert_eq!(creds.users.len(), 3, "{}", b.label);
        assert_eq!(creds.agents.len(), 4, "{}", b.label);
        assert_eq!(
            db.counts().await.unwrap(),
            demo::expected_counts(),
            "{}",
            b.label
        );

        assert!(
            demo::seed(db.as_ref(), tandem_server::clock::system_now_ms())
                .await
                .unwrap()
                .is_none(),
            "{}",
            b.label
        );
        db.close().await;
        let reopened = b.open().await;
        assert!(
            demo::seed(reopened.as_ref(), tandem_server::clock::system_now_ms())
                .await
                .unwrap()
                .is_none(),
            "{}",
            b.label
        );
        assert_eq!(
            reopened.counts().await.unwrap(),
            demo::expected_counts(),
            "{}",
            b.label
        );
        reopened.close().await;
    }
}

#[tokio::test]
async fn demo_stores_only_masked_numbers_and_hashed_secrets() {
    for b in common::backends().await {
        let db = b.open().await;
        let creds = demo::seed(db.as_ref(), tandem_server::clock::system_now_ms())
            .await
            .unwrap()
            .unwrap();
        let (login, _, password) = &creds.users[0];
        let user = db.user_credentials(login).await.unwrap().unwrap();
        let hash = user.password_hash.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{}", b.label);
        assert!(!hash.contains(password.as_str()), "{}", b.label);
        assert_eq!(user.bank_ids.len(), 1, "{}", b.label);
        // Agents sign in with their phone, not a password.
        let agent = db.user_credentials("agent-a001").await.unwrap().unwrap();
        assert_eq!(agent.password_hash, None, "{}", b.label);
        db.close().await;
    }
}

#[tokio::test]
async fn an_unknown_database_scheme_is_refused_without_echoing_the_url() {
    let err = tandem_server::db::open("mysql://root:secret@localhost/x")
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, tandem_server::db::DbError::UnsupportedUrl(ref s) if s == "mysql"));
    assert!(!err.to_string().contains("secret"));
}
