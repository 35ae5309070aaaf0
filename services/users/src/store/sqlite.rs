//! The user store on SQLite, sharing one database with its outbox and inbox.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use evilent_contracts::{Envelope, Topic};
use evilent_messaging::outbox::sqlite::append;
use evilent_messaging::sqlite::parse_time;
use evilent_messaging::{Handled, SqliteDb, inbox};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use super::{CountChange, ProductChange, StoreError, UserStats, UserStore};
use crate::domain::{Email, PersonName, User};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    version     INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_active_email ON users (email) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS user_stats (
    user_id          TEXT PRIMARY KEY,
    product_count    INTEGER NOT NULL DEFAULT 0,
    products_created INTEGER NOT NULL DEFAULT 0,
    products_deleted INTEGER NOT NULL DEFAULT 0,
    last_event_at    TEXT,
    last_applied_at  TEXT
);
-- One row per product seen: makes the count exact whatever order
-- ProductCreated and ProductDeleted arrive in.
CREATE TABLE IF NOT EXISTS user_products (
    product_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'deleted'))
);
";

/// [`UserStore`] on SQLite.
#[derive(Clone)]
pub struct SqliteUserStore {
    db: SqliteDb,
    outbox_waker: Arc<Notify>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn invalid(e: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
}

fn read_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let deleted: Option<String> = r.get(6)?;
    Ok(User {
        id: r.get(0)?,
        email: Email::parse(&r.get::<_, String>(1)?).map_err(invalid)?,
        first_name: PersonName::parse(&r.get::<_, String>(2)?).map_err(invalid)?,
        last_name: PersonName::parse(&r.get::<_, String>(3)?).map_err(invalid)?,
        created_at: parse_time(&r.get::<_, String>(4)?)?,
        updated_at: parse_time(&r.get::<_, String>(5)?)?,
        deleted_at: deleted.as_deref().map(parse_time).transpose()?,
        version: r.get(7)?,
    })
}

fn append_all(conn: &Connection, events: &[Envelope]) -> rusqlite::Result<()> {
    for e in events {
        append(conn, Topic::UserEvents.name(), e, None)?;
    }
    Ok(())
}

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl SqliteUserStore {
    /// The store in `db` (creating its tables); `outbox_waker` is poked after
    /// every commit that wrote events.
    pub fn new(db: SqliteDb, outbox_waker: Arc<Notify>) -> Result<Self, StoreError> {
        db.with(|c| c.execute_batch(SCHEMA)).map_err(backend)?;
        Ok(SqliteUserStore { db, outbox_waker })
    }
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn create(&self, user: &User, events: &[Envelope]) -> Result<(), StoreError> {
        let (user, events) = (user.clone(), events.to_vec());
        let result = self
            .db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO users (id, email, first_name, last_name, created_at, updated_at, deleted_at, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
                )?
                .execute(params![
                    user.id,
                    user.email.as_str(),
                    user.first_name.as_str(),
                    user.last_name.as_str(),
                    user.created_at.to_rfc3339(),
                    user.updated_at.to_rfc3339(),
                    user.version
                ])?;
                append_all(tx, &events)
            })
            .await;
        match result {
            Ok(()) => {
                self.outbox_waker.notify_one();
                Ok(())
            }
            Err(e) if unique_violation(&e) => Err(StoreError::Conflict(
                "a user with this id or email already exists".into(),
            )),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.db
            .read(|conn| {
                conn.prepare_cached(
                    "SELECT id, email, first_name, last_name, created_at, updated_at, deleted_at, version
                     FROM users WHERE id = ?1",
                )?
                .query_row([id], read_user)
                .optional()
            })
            .map_err(backend)
    }

    async fn update(&self, user: &User, events: &[Envelope]) -> Result<(), StoreError> {
        let (user, events) = (user.clone(), events.to_vec());
        let result = self
            .db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE users SET email = ?2, first_name = ?3, last_name = ?4, updated_at = ?5,
                                          deleted_at = ?6, version = ?7
                         WHERE id = ?1 AND version = ?8",
                    )?
                    .execute(params![
                        user.id,
                        user.email.as_str(),
                        user.first_name.as_str(),
                        user.last_name.as_str(),
                        user.updated_at.to_rfc3339(),
                        user.deleted_at.map(|t| t.to_rfc3339()),
                        user.version,
                        user.version - 1
                    ])?;
                if n == 0 {
                    return Ok(false);
                }
                append_all(tx, &events)?;
                Ok(true)
            })
            .await;
        match result {
            Ok(true) => {
                self.outbox_waker.notify_one();
                Ok(())
            }
            Ok(false) => Err(StoreError::Concurrent),
            Err(e) if unique_violation(&e) => {
                Err(StoreError::Conflict("another user has this email".into()))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn stats(&self, user_id: &str) -> Result<UserStats, StoreError> {
        self.db
            .read(|conn| {
                conn.prepare_cached(
                    "SELECT product_count, products_created, products_deleted, last_event_at, last_applied_at
                     FROM user_stats WHERE user_id = ?1",
                )?
                .query_row([user_id], |r| {
                    let last: Option<String> = r.get(3)?;
                    let applied: Option<String> = r.get(4)?;
                    Ok(UserStats {
                        product_count: r.get(0)?,
                        products_created: r.get(1)?,
                        products_deleted: r.get(2)?,
                        last_event_at: last.as_deref().map(parse_time).transpose()?,
                        last_applied_at: applied.as_deref().map(parse_time).transpose()?,
                    })
                })
                .optional()
            })
            .map(Option::unwrap_or_default)
            .map_err(backend)
    }

    async fn apply_product_change(
        &self,
        consumer: &str,
        event: &Envelope,
        change: &ProductChange,
    ) -> Result<Handled, StoreError> {
        let (consumer, change) = (consumer.to_owned(), change.clone());
        let (event_id, event_at) = (event.meta.event_id, event.meta.timestamp);
        self.db
            .write(move |tx| -> rusqlite::Result<Handled> {
                if !inbox::claim(tx, &consumer, &event_id)? {
                    return Ok(Handled::Duplicate);
                }
                let (product_id, user_id, new_state) = change.parts();
                let state: Option<String> = tx
                    .prepare_cached("SELECT state FROM user_products WHERE product_id = ?1")?
                    .query_row([product_id], |r| r.get(0))
                    .optional()?;
                let c = CountChange::of(new_state, state.as_deref());
                if let Some(record) = c.record {
                    tx.prepare_cached(
                        "INSERT INTO user_products (product_id, user_id, state) VALUES (?1, ?2, ?3)
                         ON CONFLICT(product_id) DO UPDATE SET state = excluded.state",
                    )?
                    .execute(params![product_id, user_id, record])?;
                }
                let at = event_at.unwrap_or_else(Utc::now).to_rfc3339();
                tx.prepare_cached(
                    "INSERT INTO user_stats (user_id, product_count, products_created, products_deleted, last_event_at, last_applied_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(user_id) DO UPDATE SET
                        product_count = product_count + excluded.product_count,
                        products_created = products_created + excluded.products_created,
                        products_deleted = products_deleted + excluded.products_deleted,
                        last_event_at = excluded.last_event_at,
                        last_applied_at = excluded.last_applied_at",
                )?
                .execute(params![user_id, c.delta, c.created, c.deleted, at, Utc::now().to_rfc3339()])?;
                Ok(if c.applied() { Handled::Applied } else { Handled::Ignored("already reflected in the statistics".into()) })
            })
            .await
            .map_err(backend)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .map_err(backend)
    }
}
