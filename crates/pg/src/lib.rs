//! # evilent-pg — the outbox, the inbox and migrations on PostgreSQL
//!
//! What a service needs to keep its events on PostgreSQL exactly as it does
//! on SQLite:
//! - [`migrate`]: numbered SQL migrations, applied once each, under an
//!   advisory lock so several processes starting together do not race;
//! - [`outbox`]: [`outbox::append`] inside the service's transaction and
//!   [`outbox::PgOutbox`], the relay's view, which **claims** rows with
//!   `FOR UPDATE SKIP LOCKED` and a lease: several relays run at once, none
//!   publishes a row another holds, and a crashed relay's rows are taken
//!   over when its lease runs out;
//! - [`inbox::claim`]: `(consumer, eventId)` in the handler's transaction.
//!
//! Tests find the server through `EVILENT_TEST_POSTGRES_URL`
//! (default `postgres://evilent:evilent@127.0.0.1:5432/evilent`); [`testing`]
//! gives each test its own schema.

pub mod inbox;
pub mod migrate;
pub mod outbox;
pub mod testing;

pub use migrate::{Migration, migrate};
pub use sqlx::PgPool;

/// The outbox and inbox tables; services list it among their migrations.
pub const MESSAGING_MIGRATION: Migration = Migration {
    version: 1,
    name: "outbox and inbox",
    sql: "
CREATE TABLE IF NOT EXISTS outbox (
    id              BIGSERIAL PRIMARY KEY,
    topic           TEXT NOT NULL,
    aggregate_id    TEXT NOT NULL,
    event_id        UUID NOT NULL UNIQUE,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    attributes      JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at    TIMESTAMPTZ,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    claimed_until   TIMESTAMPTZ,
    claimed_by      TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (aggregate_id, id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS inbox (
    consumer     TEXT NOT NULL,
    event_id     UUID NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
",
};
