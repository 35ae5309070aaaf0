//! Test databases: one schema per test on the server of `EVILENT_TEST_POSTGRES_URL`.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The test server's URL.
pub fn url() -> String {
    std::env::var("EVILENT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://evilent:evilent@127.0.0.1:5432/evilent".to_owned())
}

/// A pool whose connections work in a new, empty schema; `None` (with the
/// reason) when the server cannot be reached.
pub async fn fresh_schema(prefix: &str) -> Result<PgPool, String> {
    let url = url();
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| format!("bad EVILENT_TEST_POSTGRES_URL {url}: {e}"))?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect_with(options.clone())
        .await
        .map_err(|e| format!("no PostgreSQL at {url}: {e}"))?;
    let schema = format!(
        "{prefix}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    );
    // The schema name is ours (prefix + hex), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .map_err(|e| e.to_string())?;
    admin.close().await;
    PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .map_err(|e| e.to_string())
}

/// A URL of a new, empty database on the test server (for tests that hand
/// a URL to another process); `Err` with the reason when unreachable.
pub async fn fresh_database_url(prefix: &str) -> Result<String, String> {
    let url = url();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect(&url)
        .await
        .map_err(|e| format!("no PostgreSQL at {url}: {e}"))?;
    let name = format!(
        "{prefix}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    );
    // The name is ours (prefix + hex), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .map_err(|e| format!("cannot create a test database (the role needs CREATEDB): {e}"))?;
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Ok(format!("{base}/{name}"))
}
