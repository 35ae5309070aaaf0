//! A service's SQLite database, shared by its store, its outbox and its inbox.
//!
//! The outbox's promise (a state change and its events commit together)
//! needs them in one database and one transaction, so a service, its relay
//! and its consumers share one [`SqliteDb`]. Access is a closure run under a
//! mutex, for the reasons given in `evilent_broker::engine`: SQLite has one
//! writer, and these transactions take microseconds.
//!
//! # Group commit
//!
//! What a commit costs is mostly the pages it writes to the WAL: every
//! b-tree page the transaction touched, in full, whatever the size of the
//! change. Thirty requests that each insert a product and its outbox row
//! write the same few leaf pages thirty times over. [`SqliteDb::write`]
//! therefore commits writes that arrive together as one transaction:
//! - a caller queues its closure and, if no other caller is committing,
//!   becomes the *leader*: it yields to the runtime once (so that writes
//!   ready to run on its thread, such as the rest of a consumer's batch,
//!   queue too), then runs every queued closure in one transaction,
//!   commits once, and hands each caller its result; if more
//!   writes queued meanwhile, a thread of the blocking pool leads on, so
//!   no caller waits on more than one round of others' writes;
//! - a caller that arrives while a leader is busy just waits (without
//!   blocking its thread) and is picked up by the leader's next round;
//! - a closure that fails takes only its own changes with it: the round's
//!   transaction is rolled back and run once more without it, each
//!   closure now in a savepoint so that a further failure undoes only
//!   itself (a closure may therefore run twice; only its last run counts);
//!   if the commit itself fails, every caller of that round gets the error
//!   and nothing of the round is kept.
//!
//! Why not a savepoint per closure from the start: a savepoint copies
//! every page its closure touches, in full, to a statement journal, in
//! case it must be undone, and writes rarely fail. Profiled under load,
//! the copies cost more CPU than the rare second run does.
//!
//! A caller gets its answer only after the commit that holds its change,
//! so an accepted write is as durable as with a transaction of its own.
//! Alone (no other write in flight) a write is committed by its own caller
//! after that one yield: the grouping adds no timer, it only forms under load.
//!
//! # Reads beside the writer
//!
//! In WAL mode a reader never waits for the writer: it reads the last
//! committed snapshot while a commit is being written. A file database
//! therefore also opens [`READERS`] read-only connections, and
//! [`SqliteDb::read`] runs on one of them, so that a request that only
//! looks something up (a seller's profile before a product is accepted, a
//! user's statistics, the relay's next due rows) does not queue behind a
//! round of commits. A read that starts after a write was answered sees
//! that write: each read is its own transaction, begun after the commit.
//! An in-memory database (tests) has one connection, and reads share it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use evilent_broker::{Durability, open_sqlite};
use rusqlite::{Connection, TransactionBehavior, ffi};
use tokio::sync::oneshot;

/// Most writes committed in one transaction.
const MAX_GROUP: usize = 64;

/// Read-only connections of a file database, beside its one writer.
pub const READERS: usize = 2;

/// A queued write.
trait Job: Send {
    /// Runs the write in the round's transaction (again, if the round was
    /// rolled back for another write); whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Hands the caller its result once the commit is known.
    fn finish(self: Box<Self>, commit_failed: Option<&rusqlite::Error>);
}

/// [`Job`] of one [`SqliteDb::write`]: the closure, its last result, and
/// where its caller waits.
struct Write<F, T> {
    f: F,
    out: Option<rusqlite::Result<T>>,
    caller: oneshot::Sender<rusqlite::Result<T>>,
}

impl<F, T> Job for Write<F, T>
where
    F: Fn(&Connection) -> rusqlite::Result<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let out = (self.f)(conn);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, commit_failed: Option<&rusqlite::Error>) {
        let _ = self.caller.send(match (self.out, commit_failed) {
            (Some(Err(e)), _) => Err(e),
            (_, Some(e)) => Err(copy_error(e)),
            (Some(out), None) => out,
            // Never ran: the transaction could not begin.
            (None, None) => Err(abandoned()),
        });
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn Job>>,
    /// A caller is running the queued writes.
    leading: bool,
}

/// Held while leading: if a write panics, the lead is given up so that the
/// next caller can take it.
struct Leading<'a>(&'a Mutex<Queue>);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(self.0).leading = false;
        }
    }
}

/// A caller that has taken the lead and not yet led: leads when dropped,
/// so that a cancelled caller never leaves the queue without a leader.
struct LeadPromised<'a>(Option<&'a SqliteDb>);

impl Drop for LeadPromised<'_> {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            db.lead();
        }
    }
}

/// A SQLite connection shared by a service's parts. Cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections (none for an in-memory database).
    readers: Arc<[Mutex<Connection>]>,
    queue: Arc<Mutex<Queue>>,
    /// Transactions committed by [`SqliteDb::write`].
    commits: Arc<AtomicU64>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path` and creates the
    /// outbox and inbox tables.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let mut db = Self::from_connection(open_sqlite(path, Durability::default())?)?;
        db.readers = (0..READERS)
            .map(|_| {
                let reader = open_sqlite(path, Durability::default())?;
                reader.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(reader))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into();
        Ok(db)
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
            readers: Arc::new([]),
            queue: Arc::default(),
            commits: Arc::default(),
        })
    }

    /// Runs `f` with the writer's connection: writes that manage their own
    /// transaction (tests, tools, rare multi-step changes). A service's
    /// writes go through [`SqliteDb::write`], its reads through
    /// [`SqliteDb::read`].
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut lock(&self.conn))
    }

    /// Runs `f` on a read-only connection, which reads the last committed
    /// state without waiting for a commit in progress (see the module
    /// docs). Writing through it fails (`query_only`).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        if self.readers.is_empty() {
            return f(&lock(&self.conn));
        }
        // A free reader if there is one, else wait for the first.
        let reader = self
            .readers
            .iter()
            .find_map(|r| r.try_lock().ok())
            .unwrap_or_else(|| lock(&self.readers[0]));
        f(&reader)
    }

    /// Runs `f` inside a transaction and returns its result once that
    /// transaction has committed; an `Err` from `f` undoes what `f` did and
    /// nothing else. Writes that arrive together share one commit (see the
    /// module docs). `f` must not begin or end transactions itself, and may
    /// be run twice (when another write of its round fails): only its last
    /// run is committed and returned, so it must have no effect outside the
    /// connection.
    pub async fn write<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (caller, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write {
            f,
            out: None,
            caller,
        });
        let lead = {
            let mut queue = lock(&self.queue);
            queue.jobs.push(job);
            !std::mem::replace(&mut queue.leading, true)
        };
        if lead {
            // Let the writes that are ready to run on this thread (the rest
            // of a consumer's batch, other requests) queue first, so they
            // share this round's commit. Leading is promised: if this future
            // is dropped while yielding, the guard leads.
            let mut promised = LeadPromised(Some(self));
            tokio::task::yield_now().await;
            if let Some(db) = promised.0.take() {
                db.lead();
            }
        }
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }

    /// Leads as the caller: commits one round (the caller's own write is in
    /// it), then, if more writes queued meanwhile, hands the lead to a
    /// thread of the blocking pool rather than keep this caller (and its
    /// async thread) waiting on other callers' writes. Runs without
    /// awaiting, so it cannot be cancelled halfway.
    fn lead(&self) {
        let _leading = Leading(&self.queue);
        if !self.round() {
            return;
        }
        {
            let mut queue = lock(&self.queue);
            if queue.jobs.is_empty() {
                queue.leading = false;
                return;
            }
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let db = self.clone();
                runtime.spawn_blocking(move || {
                    let _leading = Leading(&db.queue);
                    while db.round() {}
                });
            }
            Err(_) => while self.round() {},
        }
    }

    /// Commits one round of queued writes; `false` (and the lead given up)
    /// when none was left.
    fn round(&self) -> bool {
        let round: Vec<Box<dyn Job>> = {
            let mut queue = lock(&self.queue);
            if queue.jobs.is_empty() {
                queue.leading = false;
                return false;
            }
            let n = queue.jobs.len().min(MAX_GROUP);
            queue.jobs.drain(..n).collect()
        };
        if commit_round(&mut lock(&self.conn), round) {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// How many transactions [`SqliteDb::write`] has committed (fewer than
    /// the writes when they were grouped).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// One transaction for `round`, committed once, then every caller told the
/// outcome. The writes run plainly; if one fails, the transaction is rolled
/// back (what that write did before failing goes with it) and the round
/// runs once more without it, this time each write in a savepoint, so that
/// any further failure undoes only itself: no write runs more than twice.
/// Returns whether the round committed.
fn commit_round(conn: &mut Connection, mut round: Vec<Box<dyn Job>>) -> bool {
    let mut failed = vec![false; round.len()];
    let mut careful = false;
    let outcome = loop {
        let attempt = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let step = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([]));
            for (job, failed) in round.iter_mut().zip(&mut failed) {
                if *failed {
                    continue;
                }
                if careful {
                    step("SAVEPOINT evilent_write")?;
                    if !job.run(&tx) {
                        *failed = true;
                        step("ROLLBACK TO evilent_write")?;
                    }
                    step("RELEASE evilent_write")?;
                } else if !job.run(&tx) {
                    // Dropping `tx` rolls the round back.
                    *failed = true;
                    return Ok(false);
                }
            }
            tx.commit().map(|()| true)
        })();
        match attempt {
            Ok(false) => careful = true,
            Ok(true) => break None,
            Err(e) => break Some(e),
        }
    };
    if let Some(e) = &outcome {
        tracing::error!(error = %e, writes = round.len(), "group commit failed");
    }
    for job in round {
        job.finish(outcome.as_ref());
    }
    outcome.is_none()
}

/// What the caller of a write that never ran is told.
fn abandoned() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_ABORT),
        Some("the write was abandoned: its group's transaction failed before it ran".into()),
    )
}

/// The commit error for each caller of a failed round.
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_ERROR),
            Some(format!("commit failed: {other}")),
        ),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a time stored as RFC 3339 text (as evilent's SQLite stores write them).
pub fn parse_time(s: &str) -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}
