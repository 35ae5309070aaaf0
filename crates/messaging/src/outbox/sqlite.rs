//! The outbox on SQLite: [`append`] inside the service's transaction, and
//! [`SqliteOutbox`], the relay's view of the same table.

use std::time::Duration;

use async_trait::async_trait;
use evilent_broker::{Attributes, MessageAttribute};
use evilent_contracts::Envelope;
use rusqlite::{Connection, params};

use super::{OutboxEntry, OutboxError, OutboxStore};
use crate::sqlite::SqliteDb;

/// Creates the outbox table.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbox (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            topic           TEXT NOT NULL,
            aggregate_id    TEXT NOT NULL,
            event_id        TEXT NOT NULL UNIQUE,
            event_type      TEXT NOT NULL,
            body            TEXT NOT NULL,
            attributes      TEXT NOT NULL,
            created_at      INTEGER NOT NULL,
            published_at    INTEGER,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL DEFAULT 0,
            last_error      TEXT
        );
        CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (aggregate_id, id) WHERE published_at IS NULL;
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (id) WHERE published_at IS NULL;
        CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;",
    )
}

/// The message attributes every event carries: `eventType`, `source`, and
/// `traceparent` when there is one.
pub fn event_attributes(envelope: &Envelope, traceparent: Option<&str>) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(
        "eventType".into(),
        MessageAttribute::string(envelope.event.event_type()),
    );
    if let Some(source) = &envelope.meta.source {
        attributes.insert("source".into(), MessageAttribute::string(source.clone()));
    }
    if let Some(tp) = traceparent {
        attributes.insert("traceparent".into(), MessageAttribute::string(tp));
    }
    attributes
}

/// Appends `envelope` to the outbox of `topic`. Call it inside the transaction
/// that makes the change the event reports.
pub fn append(
    conn: &Connection,
    topic: &str,
    envelope: &Envelope,
    traceparent: Option<&str>,
) -> rusqlite::Result<()> {
    let attributes = serde_json::to_string(&event_attributes(envelope, traceparent))
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(
        "INSERT INTO outbox (topic, aggregate_id, event_id, event_type, body, attributes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        topic,
        envelope.event.aggregate_id(),
        envelope.meta.event_id.to_string(),
        envelope.event.event_type(),
        envelope.to_json(),
        attributes,
        now_ms(),
    ])?;
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn err(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

/// The relay's side of a SQLite outbox.
#[derive(Clone)]
pub struct SqliteOutbox {
    db: SqliteDb,
}

impl SqliteOutbox {
    /// The outbox in `db`.
    pub fn new(db: SqliteDb) -> Self {
        SqliteOutbox { db }
    }
}

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        self.db.read(|conn| {
            // The oldest unpublished row of each aggregate, if it is due.
            let mut stmt = conn.prepare_cached(
                "SELECT o.id, o.topic, o.aggregate_id, o.event_id, o.event_type, o.body, o.attributes, o.attempts
                 FROM outbox o
                 WHERE o.published_at IS NULL AND o.next_attempt_at <= ?1
                   AND o.id = (SELECT MIN(p.id) FROM outbox p
                               WHERE p.aggregate_id = o.aggregate_id AND p.published_at IS NULL)
                 ORDER BY o.id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms(), limit as i64], |r| {
                let attributes: String = r.get(6)?;
                Ok(OutboxEntry {
                    id: r.get(0)?,
                    topic: r.get(1)?,
                    aggregate_id: r.get(2)?,
                    event_id: r.get(3)?,
                    event_type: r.get(4)?,
                    body: r.get(5)?,
                    attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                    attempts: r.get(7)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)
    }

    async fn mark_published(&self, ids: &[i64]) -> Result<(), OutboxError> {
        let ids = ids.to_vec();
        self.db
            .write(move |tx| {
                let mut stmt =
                    tx.prepare_cached("UPDATE outbox SET published_at = ?2 WHERE id = ?1")?;
                let now = now_ms();
                for id in &ids {
                    stmt.execute(params![id, now])?;
                }
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn mark_failed(
        &self,
        ids: &[i64],
        error: &str,
        retry_in: Duration,
    ) -> Result<(), OutboxError> {
        let next = now_ms() + i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX / 2);
        let (ids, error) = (ids.to_vec(), error.to_owned());
        self.db
            .write(move |tx| {
                let mut stmt = tx.prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                )?;
                for id in &ids {
                    stmt.execute(params![id, next, error])?;
                }
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn prune(&self, retention: Duration) -> Result<u64, OutboxError> {
        let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?1",
                )?
                .execute([cutoff])
            })
            .await
            .map(|n| n as u64)
            .map_err(err)
    }

    async fn unpublished(&self) -> Result<u64, OutboxError> {
        self.db
            .read(|conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(i64::unsigned_abs)
            .map_err(err)
    }
}
