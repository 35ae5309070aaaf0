//! Numbered migrations, each applied once, in order, in its own transaction.

use sqlx::PgPool;

/// One migration.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Applies the migrations not applied yet; returns how many ran.
pub async fn migrate(pool: &PgPool, migrations: &[Migration]) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One migrator at a time, whatever the number of processes starting.
    sqlx::query("SELECT pg_advisory_xact_lock(7412345)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&mut *tx)
    .await?;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?;
    let mut ran = 0;
    let mut sorted = migrations.to_vec();
    sorted.sort_by_key(|m| m.version);
    for m in sorted.iter().filter(|m| !done.contains(&m.version)) {
        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        ran += 1;
    }
    tx.commit().await?;
    Ok(ran)
}
