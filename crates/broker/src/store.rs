//! Opening SQLite the way every evilent store does, and the broker's schema.
//!
//! WAL journal with `synchronous = NORMAL`: a commit is a single append to
//! the write-ahead log, which the operating system holds even if the process
//! is killed (`kill -9`) the next instant. Only a power loss or a kernel crash
//! can take the last commits back; [`Durability::PowerLoss`] asks for an fsync
//! per commit for deployments that must survive those too.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::config::DbConfig;

/// How much a commit survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives the process dying at any instant (`synchronous = NORMAL`).
    #[default]
    ProcessCrash,
    /// Also survives power loss (`synchronous = FULL`, one fsync per commit).
    PowerLoss,
}

/// Opens (creating if needed) a SQLite database with evilent's settings.
pub fn open_sqlite(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn, durability)?;
    Ok(conn)
}

/// Applies evilent's settings to a connection.
pub fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::ProcessCrash => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals (a savepoint's, or a multi-row statement's inside
    // a transaction) keep the pages they change; in a file that is a write
    // syscall per page, on the writer's path. In memory it is a copy.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A service's store, outbox and inbox share one connection and use a few
    // dozen distinct statements; rusqlite keeps 16 prepared by default, and
    // re-preparing an evicted one costs more than running it.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Without the query planner stability guarantee, SQLite marks a bound
    // `LIMIT ?` (the relay's claim, the broker's receive) as something the
    // plan may depend on, and re-parses the statement on every execution
    // that binds it, cache or not. evilent's queries have one plan each.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

pub(crate) const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS queues (
    name        TEXT PRIMARY KEY,
    attributes  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS topics (
    name        TEXT PRIMARY KEY,
    fifo        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    topic       TEXT NOT NULL REFERENCES topics(name) ON DELETE CASCADE,
    queue       TEXT NOT NULL,
    event_types TEXT,
    PRIMARY KEY (topic, queue)
);
CREATE TABLE IF NOT EXISTS messages (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    queue             TEXT NOT NULL,
    id                TEXT NOT NULL UNIQUE,
    body              TEXT NOT NULL,
    attributes        TEXT,
    group_id          TEXT,
    dedup_id          TEXT,
    sent_at           INTEGER NOT NULL,
    visible_at        INTEGER NOT NULL,
    receive_count     INTEGER NOT NULL DEFAULT 0,
    first_received_at INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at);
CREATE INDEX IF NOT EXISTS messages_by_order ON messages (queue, seq);
CREATE TABLE IF NOT EXISTS dedup (
    scope       TEXT NOT NULL,
    dedup_id    TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    sequence    INTEGER,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, dedup_id)
);
";

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    #[test]
    fn a_bound_limit_does_not_re_prepare_a_cached_statement() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_sqlite(&dir.path().join("t.db"), Durability::default()).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        let sql = "SELECT x FROM t WHERE x >= ?1 ORDER BY x LIMIT ?2";
        for limit in [1_i64, 2, 3, 2] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let n = stmt
                .query_map([0, limit], |r| r.get::<_, i64>(0))
                .unwrap()
                .count();
            assert_eq!(n, usize::try_from(limit).unwrap());
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
        }
    }
}
