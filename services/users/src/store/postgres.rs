//! The user store on PostgreSQL, sharing one database with its outbox and inbox.
//!
//! Same rules as [`super::sqlite`]: each write and its events commit
//! together; an update applies only over the version it was read at.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use evilent_contracts::{Envelope, Topic};
use evilent_messaging::Handled;
use evilent_pg::{MESSAGING_MIGRATION, Migration, PgPool, inbox, migrate, outbox};
use sqlx::Row;
use tokio::sync::Notify;

use super::{CountChange, ProductChange, StoreError, UserStats, UserStore};
use crate::domain::{Email, PersonName, User};

/// The user-service's migrations (the outbox and inbox first).
pub const MIGRATIONS: &[Migration] = &[
    MESSAGING_MIGRATION,
    Migration {
        version: 100,
        name: "users, statistics",
        sql: "
CREATE TABLE IF NOT EXISTS users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ,
    version     BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_active_email ON users (email) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS user_stats (
    user_id          TEXT PRIMARY KEY,
    product_count    BIGINT NOT NULL DEFAULT 0,
    products_created BIGINT NOT NULL DEFAULT 0,
    products_deleted BIGINT NOT NULL DEFAULT 0,
    last_event_at    TIMESTAMPTZ,
    last_applied_at  TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS user_products (
    product_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'deleted'))
);
",
    },
];

/// [`UserStore`] on PostgreSQL.
#[derive(Clone)]
pub struct PgUserStore {
    pool: PgPool,
    outbox_waker: Arc<Notify>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

fn read_user(r: &sqlx::postgres::PgRow) -> Result<User, StoreError> {
    let text = |c: &str| r.try_get::<String, _>(c).map_err(backend);
    Ok(User {
        id: text("id")?,
        email: Email::parse(&text("email")?).map_err(backend)?,
        first_name: PersonName::parse(&text("first_name")?).map_err(backend)?,
        last_name: PersonName::parse(&text("last_name")?).map_err(backend)?,
        created_at: r.try_get("created_at").map_err(backend)?,
        updated_at: r.try_get("updated_at").map_err(backend)?,
        deleted_at: r.try_get("deleted_at").map_err(backend)?,
        version: r.try_get("version").map_err(backend)?,
    })
}

impl PgUserStore {
    /// Connects to `url` and applies the migrations.
    pub async fn connect(url: &str, outbox_waker: Arc<Notify>) -> Result<Self, StoreError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await
            .map_err(backend)?;
        Self::new(pool, outbox_waker).await
    }

    /// The store on `pool`, after applying the migrations.
    pub async fn new(pool: PgPool, outbox_waker: Arc<Notify>) -> Result<Self, StoreError> {
        migrate(&pool, MIGRATIONS).await.map_err(backend)?;
        Ok(PgUserStore { pool, outbox_waker })
    }

    /// The pool (for the outbox relay).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl UserStore for PgUserStore {
    async fn create(&self, user: &User, events: &[Envelope]) -> Result<(), StoreError> {
        let result: Result<(), sqlx::Error> = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO users (id, email, first_name, last_name, created_at, updated_at, deleted_at, version)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
            )
            .bind(&user.id)
            .bind(user.email.as_str())
            .bind(user.first_name.as_str())
            .bind(user.last_name.as_str())
            .bind(user.created_at)
            .bind(user.updated_at)
            .bind(user.version)
            .execute(&mut *tx)
            .await?;
            for e in events {
                outbox::append(&mut tx, Topic::UserEvents.name(), e, None).await?;
            }
            tx.commit().await
        }
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
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(read_user).transpose()
    }

    async fn update(&self, user: &User, events: &[Envelope]) -> Result<(), StoreError> {
        let result: Result<bool, sqlx::Error> = async {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(
                "UPDATE users SET email = $2, first_name = $3, last_name = $4, updated_at = $5, deleted_at = $6, version = $7
                 WHERE id = $1 AND version = $8",
            )
            .bind(&user.id)
            .bind(user.email.as_str())
            .bind(user.first_name.as_str())
            .bind(user.last_name.as_str())
            .bind(user.updated_at)
            .bind(user.deleted_at)
            .bind(user.version)
            .bind(user.version - 1)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            for e in events {
                outbox::append(&mut tx, Topic::UserEvents.name(), e, None).await?;
            }
            tx.commit().await?;
            Ok(true)
        }
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
        let row = sqlx::query("SELECT * FROM user_stats WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(r) = row else {
            return Ok(UserStats::default());
        };
        Ok(UserStats {
            product_count: r.try_get("product_count").map_err(backend)?,
            products_created: r.try_get("products_created").map_err(backend)?,
            products_deleted: r.try_get("products_deleted").map_err(backend)?,
            last_event_at: r
                .try_get::<Option<DateTime<Utc>>, _>("last_event_at")
                .map_err(backend)?,
            last_applied_at: r
                .try_get::<Option<DateTime<Utc>>, _>("last_applied_at")
                .map_err(backend)?,
        })
    }

    async fn apply_product_change(
        &self,
        consumer: &str,
        event: &Envelope,
        change: &ProductChange,
    ) -> Result<Handled, StoreError> {
        let result: Result<Handled, sqlx::Error> = async {
            let mut tx = self.pool.begin().await?;
            if !inbox::claim(&mut tx, consumer, &event.meta.event_id).await? {
                return Ok(Handled::Duplicate);
            }
            let (product_id, user_id, new_state) = change.parts();
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM user_products WHERE product_id = $1 FOR UPDATE")
                    .bind(product_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let c = CountChange::of(new_state, state.as_deref());
            if let Some(record) = c.record {
                sqlx::query(
                    "INSERT INTO user_products (product_id, user_id, state) VALUES ($1, $2, $3)
                     ON CONFLICT (product_id) DO UPDATE SET state = excluded.state",
                )
                .bind(product_id)
                .bind(user_id)
                .bind(record)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO user_stats (user_id, product_count, products_created, products_deleted, last_event_at, last_applied_at)
                 VALUES ($1, $2, $3, $4, $5, now())
                 ON CONFLICT (user_id) DO UPDATE SET
                    product_count = user_stats.product_count + excluded.product_count,
                    products_created = user_stats.products_created + excluded.products_created,
                    products_deleted = user_stats.products_deleted + excluded.products_deleted,
                    last_event_at = excluded.last_event_at,
                    last_applied_at = excluded.last_applied_at",
            )
            .bind(user_id)
            .bind(c.delta)
            .bind(c.created)
            .bind(c.deleted)
            .bind(event.meta.timestamp.unwrap_or_else(Utc::now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(if c.applied() { Handled::Applied } else { Handled::Ignored("already reflected in the statistics".into()) })
        }
        .await;
        result.map_err(backend)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
