//! A throw-away PostgreSQL database for the benches that run on both backends.

/// Creates an empty database on the admin URL's cluster; returns its URL.
pub async fn fresh_database(admin: &str) -> String {
    use sqlx::Connection as _;
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut c)
        .await
        .unwrap();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let (scheme, rest) = base.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}
