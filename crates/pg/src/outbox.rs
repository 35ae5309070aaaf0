//! The outbox on PostgreSQL.
//!
//! ## Claiming
//! `pending` does not just read: it claims up to `limit` due rows by setting
//! a lease (`claimed_until`, `claimed_by`) in one statement whose selection
//! is `FOR UPDATE SKIP LOCKED`. A second relay running the same statement at
//! the same instant skips the rows being claimed, and afterwards sees them
//! leased. Only the oldest unpublished row of each aggregate is ever due, so
//! two relays cannot publish one aggregate's events out of order either.
//! Publishing ends the lease (`mark_published`, `mark_failed`); a relay that
//! dies holding a lease loses it after [`LEASE`], and the sweep of another
//! relay takes the rows over.

use std::time::Duration;

use async_trait::async_trait;
use evilent_contracts::Envelope;
use evilent_messaging::outbox::sqlite::event_attributes;
use evilent_messaging::outbox::{OutboxEntry, OutboxError, OutboxStore};
use sqlx::{PgConnection, PgPool, Row};

/// How long a claimed row stays with its relay.
pub const LEASE: Duration = Duration::from_secs(30);

fn err(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Appends `envelope` to the outbox of `topic`, inside the caller's transaction.
pub async fn append(
    conn: &mut PgConnection,
    topic: &str,
    envelope: &Envelope,
    traceparent: Option<&str>,
) -> Result<(), sqlx::Error> {
    let attributes =
        serde_json::to_value(event_attributes(envelope, traceparent)).unwrap_or_default();
    sqlx::query(
        "INSERT INTO outbox (topic, aggregate_id, event_id, event_type, body, attributes) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(topic)
    .bind(envelope.event.aggregate_id())
    .bind(envelope.meta.event_id)
    .bind(envelope.event.event_type())
    .bind(envelope.to_json())
    .bind(attributes)
    .execute(conn)
    .await?;
    Ok(())
}

/// The relay's side of a PostgreSQL outbox.
#[derive(Clone)]
pub struct PgOutbox {
    pool: PgPool,
    relay_id: String,
}

impl PgOutbox {
    /// The outbox in `pool`'s database, claimed under a fresh relay id.
    pub fn new(pool: PgPool) -> Self {
        PgOutbox {
            pool,
            relay_id: uuid::Uuid::now_v7().to_string(),
        }
    }
}

#[async_trait]
impl OutboxStore for PgOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        let rows = sqlx::query(
            "WITH due AS (
                SELECT o.id FROM outbox o
                WHERE o.published_at IS NULL AND o.next_attempt_at <= now()
                  AND (o.claimed_until IS NULL OR o.claimed_until < now())
                  AND o.id = (SELECT min(p.id) FROM outbox p
                              WHERE p.aggregate_id = o.aggregate_id AND p.published_at IS NULL)
                ORDER BY o.id
                LIMIT $1
                FOR UPDATE OF o SKIP LOCKED)
             UPDATE outbox SET claimed_until = now() + make_interval(secs => $2::double precision / 1000), claimed_by = $3
             FROM due WHERE outbox.id = due.id
             RETURNING outbox.id, outbox.topic, outbox.aggregate_id, outbox.event_id, outbox.event_type,
                       outbox.body, outbox.attributes, outbox.attempts",
        )
        .bind(i64::try_from(limit).unwrap_or(10))
        .bind(millis(LEASE))
        .bind(&self.relay_id)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        let mut entries = rows
            .into_iter()
            .map(|r| {
                let attributes: serde_json::Value = r.try_get("attributes")?;
                Ok(OutboxEntry {
                    id: r.try_get("id")?,
                    topic: r.try_get("topic")?,
                    aggregate_id: r.try_get("aggregate_id")?,
                    event_id: r.try_get::<uuid::Uuid, _>("event_id")?.to_string(),
                    event_type: r.try_get("event_type")?,
                    body: r.try_get("body")?,
                    attributes: serde_json::from_value(attributes).unwrap_or_default(),
                    attempts: u32::try_from(r.try_get::<i32, _>("attempts")?).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(err)?;
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    async fn mark_published(&self, ids: &[i64]) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE outbox SET published_at = now(), claimed_until = NULL WHERE id = ANY($1)",
        )
        .bind(ids)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        ids: &[i64],
        error: &str,
        retry_in: Duration,
    ) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, claimed_until = NULL,
                    next_attempt_at = now() + make_interval(secs => $3::double precision / 1000)
             WHERE id = ANY($1)",
        )
        .bind(ids)
        .bind(error)
        .bind(millis(retry_in))
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn prune(&self, retention: Duration) -> Result<u64, OutboxError> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1::double precision / 1000)",
        )
        .bind(millis(retention))
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(done.rows_affected())
    }

    async fn unpublished(&self) -> Result<u64, OutboxError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(err)?;
        Ok(n.unsigned_abs())
    }
}
