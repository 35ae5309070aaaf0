//! `SqliteDb::write` and `SqliteDb::read`: writes that arrive together
//! share one commit, each caller gets its own result only after that
//! commit, and one failing write takes nothing of the others with it;
//! reads of a file database do not wait for the writer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use evilent_messaging::SqliteDb;

fn db() -> SqliteDb {
    let db = SqliteDb::in_memory().expect("in-memory db");
    db.with(|c| c.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"))
        .expect("table");
    db
}

fn count(db: &SqliteDb) -> i64 {
    db.with(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
        .expect("count")
}

/// Holds the connection from another thread until `release` is passed, so
/// that writers queue up behind it as they would behind a busy commit.
fn hold(db: &SqliteDb) -> (Arc<Barrier>, std::thread::JoinHandle<()>) {
    let (held, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let thread = {
        let (db, held, release) = (db.clone(), held.clone(), release.clone());
        std::thread::spawn(move || {
            db.with(|_| {
                held.wait();
                release.wait();
            });
        })
    };
    held.wait();
    (release, thread)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_that_arrive_together_share_a_commit() {
    let db = db();
    let (release, holder) = hold(&db);
    let writers: Vec<_> = (0..20)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| {
                    tx.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (format!("k{i}"), i))
                })
                .await
            })
        })
        .collect();
    // Let every writer queue; the first to arrive waits on the held connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.wait();
    holder.join().expect("holder");
    for w in writers {
        assert_eq!(w.await.expect("task").expect("write"), 1);
    }
    assert_eq!(count(&db), 20);
    assert!(
        db.commits() <= 2,
        "20 queued writes took {} commits",
        db.commits()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_undoes_only_itself() {
    let db = db();
    db.write(|tx| tx.execute("INSERT INTO t (k, v) VALUES ('taken', 0)", []))
        .await
        .expect("seed row");
    let (release, holder) = hold(&db);
    let spawn = |key: &'static str| {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(move |tx| {
                // Two statements: the first succeeds, the second may fail.
                tx.execute("INSERT INTO t (k, v) VALUES (?1 || '-side', 1)", [key])?;
                tx.execute("INSERT INTO t (k, v) VALUES (?1, 1)", [key])
            })
            .await
        })
    };
    let before = spawn("a");
    let failing = spawn("taken");
    let after = spawn("b");
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.wait();
    holder.join().expect("holder");
    assert!(before.await.expect("task").is_ok());
    let err = failing.await.expect("task").expect_err("duplicate key");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    assert!(after.await.expect("task").is_ok());
    let keys: Vec<String> = db
        .with(|c| {
            c.prepare("SELECT k FROM t ORDER BY k")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .expect("keys");
    // The failed write's first insert is gone with it; the others are whole.
    assert_eq!(keys, ["a", "a-side", "b", "b-side", "taken"]);
}

/// Runs `writes` as one round, in their order: a first write takes the
/// lead and waits on the held connection, so the others queue behind it
/// and share the next round. Their results, in order.
async fn one_round<F>(db: &SqliteDb, writes: Vec<F>) -> Vec<rusqlite::Result<usize>>
where
    F: Fn(&rusqlite::Connection) -> rusqlite::Result<usize> + Send + 'static,
{
    let (release, holder) = hold(db);
    let first = {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(|tx| tx.execute("INSERT INTO t (k, v) VALUES ('first', 1)", []))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut queued = Vec::new();
    for write in writes {
        let db = db.clone();
        queued.push(tokio::spawn(async move { db.write(write).await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    release.wait();
    holder.join().expect("holder");
    first.await.expect("task").expect("first write");
    let mut results = Vec::new();
    for w in queued {
        results.push(w.await.expect("task"));
    }
    results
}

type Body = fn(&rusqlite::Connection, &str) -> rusqlite::Result<usize>;
type Write = Box<dyn Fn(&rusqlite::Connection) -> rusqlite::Result<usize> + Send>;

/// A write per key doing `body`, and how many times each has run.
fn counted_writes(keys: &[&'static str], body: Body) -> (Arc<Vec<AtomicUsize>>, Vec<Write>) {
    let counted: Arc<Vec<AtomicUsize>> =
        Arc::new(keys.iter().map(|_| AtomicUsize::new(0)).collect());
    let writes = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (counted, key) = (counted.clone(), *key);
            Box::new(move |tx: &rusqlite::Connection| {
                counted[i].fetch_add(1, Ordering::Relaxed);
                body(tx, key)
            }) as Write
        })
        .collect();
    (counted, writes)
}

fn runs(counters: &[AtomicUsize]) -> Vec<usize> {
    counters.iter().map(|r| r.load(Ordering::Relaxed)).collect()
}

fn rows(db: &SqliteDb) -> Vec<(String, i64)> {
    db.with(|c| {
        c.prepare("SELECT k, v FROM t ORDER BY k")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()
    })
    .expect("rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_fails_on_a_rounds_own_change_leaves_the_rest_committed_once() {
    let db = db();
    let (counted, writes) = counted_writes(&["dup", "dup", "other"], |tx, key| {
        tx.execute("INSERT INTO t (k, v) VALUES (?1 || '-log', 1)", [key])
            .or_else(|_| tx.execute("UPDATE t SET v = v + 1 WHERE k = ?1 || '-log'", [key]))?;
        tx.execute("INSERT INTO t (k, v) VALUES (?1, 1)", [key])
    });
    let results = one_round(&db, writes).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let err = results[1]
        .as_ref()
        .expect_err("the second insert of the same key");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    assert!(results[2].is_ok(), "{:?}", results[2]);
    // The first write ran twice (the round was rolled back when the second
    // failed) yet is committed once: its log row counts one run; the failed
    // write's update of that row went with it.
    let expected = [
        ("dup", 1),
        ("dup-log", 1),
        ("first", 1),
        ("other", 1),
        ("other-log", 1),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    assert_eq!(rows(&db), expected);
    assert_eq!(runs(&counted), [2, 1, 1]);
    assert_eq!(db.commits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_failure_each_write_of_the_round_fails_alone_and_none_runs_three_times() {
    let db = db();
    db.write(|tx| tx.execute("INSERT INTO t (k, v) VALUES ('taken', 0)", []))
        .await
        .expect("seed row");
    // Good and failing writes alternate in one round.
    let keys = ["g0", "taken", "g2", "taken", "g4", "taken"];
    let (counted, writes) = counted_writes(&keys, |tx, key| {
        tx.execute("INSERT INTO t (k, v) VALUES (?1 || '-side', 1)", [key])?;
        tx.execute("INSERT INTO t (k, v) VALUES (?1, 1)", [key])
    });
    for (i, result) in one_round(&db, writes).await.iter().enumerate() {
        assert_eq!(result.is_ok(), i % 2 == 0, "write {i}: {result:?}");
    }
    // The first failure runs the round again, each write in a savepoint: the
    // write before it runs twice, every other write once.
    assert_eq!(runs(&counted), [2, 1, 1, 1, 1, 1]);
    assert_eq!(count(&db), 1 + 1 + 3 * 2);
    assert_eq!(db.commits(), 3);
}

#[tokio::test]
async fn a_lone_write_commits_at_once() {
    let db = db();
    let n = db
        .write(|tx| tx.execute("INSERT INTO t (k, v) VALUES ('x', 1)", []))
        .await
        .expect("write");
    assert_eq!(n, 1);
    assert_eq!(db.commits(), 1);
    // Visible to a plain read the moment write() returned.
    assert_eq!(count(&db), 1);
}

/// A file database answers reads from its read-only connections: a read
/// does not wait for the writer, sees every write already answered, and
/// cannot write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_do_not_wait_for_the_writer_and_see_every_answered_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SqliteDb::open(&dir.path().join("t.db")).expect("file db");
    db.with(|c| c.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"))
        .expect("table");
    db.write(|c| c.execute("INSERT INTO t VALUES ('a', 1)", []))
        .await
        .expect("write");
    let read = |db: &SqliteDb| {
        db.read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)))
            .expect("read")
    };
    assert_eq!(read(&db), 1, "a read sees the write answered before it");

    // The writer is busy (a commit in progress, say): reads still answer,
    // with the last committed state.
    let (release, holder) = hold(&db);
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || read(&db))
    };
    let started = std::time::Instant::now();
    while !reader.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a read waited for the writer"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(reader.join().expect("reader"), 1);
    release.wait();
    holder.join().expect("holder");

    let refused = db.read(|c| c.execute("INSERT INTO t VALUES ('b', 2)", []));
    assert!(refused.is_err(), "a read-only connection wrote");
    assert_eq!(read(&db), 1);
}

/// A caller that took the lead yields once before leading, so that writes
/// ready on its thread join the round. Dropped at that moment (a cancelled
/// request), it still leads: its write is committed and nobody waits for a
/// leader that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_dropped_before_leading_still_leads() {
    let db = db();
    let first = db.write(|c| c.execute("INSERT INTO t VALUES ('a', 1)", []));
    assert!(
        futures_lite::future::poll_once(first).await.is_none(),
        "the first poll yields before leading"
    );
    let second = db.write(|c| c.execute("INSERT INTO t VALUES ('b', 2)", []));
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("a write waited for a leader that was dropped")
        .expect("write");
    assert_eq!(count(&db), 2);
}
