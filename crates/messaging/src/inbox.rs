//! The inbox: exactly-once *effect* on top of at-least-once delivery.
//!
//! A handler claims `(consumer, eventId)` in the same transaction as its
//! effect. If the claim finds the row already there, this delivery is a
//! duplicate and the handler does nothing; if the transaction rolls back,
//! the claim goes with it and the redelivery applies the effect.
//!
//! ```
//! # use evilent_messaging::inbox;
//! let mut conn = rusqlite::Connection::open_in_memory().unwrap();
//! inbox::migrate(&conn).unwrap();
//! let id = uuid::Uuid::now_v7();
//! let tx = conn.transaction().unwrap();
//! assert!(inbox::claim(&tx, "stats", &id).unwrap());   // first delivery: apply
//! tx.commit().unwrap();
//! assert!(!inbox::claim(&conn, "stats", &id).unwrap()); // redelivery: skip
//! ```

use rusqlite::{Connection, params};
use uuid::Uuid;

/// Creates the inbox table.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox (
            consumer     TEXT NOT NULL,
            event_id     TEXT NOT NULL,
            processed_at INTEGER NOT NULL,
            PRIMARY KEY (consumer, event_id)
        ) WITHOUT ROWID;",
    )
}

/// Records that `consumer` applies `event_id`; `false` if it already had.
/// Call inside the transaction that applies the effect.
pub fn claim(conn: &Connection, consumer: &str, event_id: &Uuid) -> rusqlite::Result<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO inbox (consumer, event_id, processed_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            consumer,
            event_id.to_string(),
            chrono::Utc::now().timestamp_millis()
        ])?;
    Ok(inserted == 1)
}

/// Forgets entries older than `before_ms` (ms since the epoch); redeliveries
/// older than the queue's retention cannot arrive any more.
pub fn prune(conn: &Connection, before_ms: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM inbox WHERE processed_at < ?1", [before_ms])
}
