//! A service's SQLite database, shared by its store, its outbox and its inbox.
//!
//! The outbox's promise (a state change and its events commit together)
//! needs them in one database and one transaction, so a service, its relay
//! and its consumers share one [`SqliteDb`]. Access is a closure run under a
//! mutex, for the reasons given in `evilent_broker::engine`: SQLite has one
//! writer, and these transactions take microseconds.

use std::path::Path;
use std::sync::{Arc, Mutex};

use evilent_broker::{Durability, open_sqlite};
use rusqlite::Connection;

/// A SQLite connection shared by a service's parts. Cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path` and creates the
    /// outbox and inbox tables.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = open_sqlite(path, Durability::default())?;
        Self::from_connection(conn)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> rusqlite::Result<Self> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(conn: Connection) -> rusqlite::Result<Self> {
        crate::outbox::sqlite::migrate(&conn)?;
        crate::inbox::migrate(&conn)?;
        Ok(SqliteDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection.
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn)
    }
}

/// Reads a time stored as RFC 3339 text (as evilent's SQLite stores write them).
pub fn parse_time(s: &str) -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}
