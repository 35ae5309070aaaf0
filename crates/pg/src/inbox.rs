//! The inbox on PostgreSQL: claim `(consumer, eventId)` in the handler's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

/// Records that `consumer` applies `event_id`; `false` if it already had.
pub async fn claim(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: &Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
