//! The broker itself: every operation is one SQLite transaction.
//!
//! ## Why a `std::sync::Mutex` around one connection
//! SQLite admits one writer at a time anyway, and every operation here is a
//! short transaction (tens of microseconds with WAL), so one connection
//! behind a plain mutex is both the simplest and the fastest choice: no
//! connection pool, no hop to a blocking thread. The lock is never held
//! across an `.await`. Long polling waits *outside* the lock, on a
//! per-queue [`Notify`] that every send (and every "make visible now")
//! signals.
//!
//! ## How SQS's rules map to rows
//! A message row has `visible_at` and `receive_count`:
//! - visible: `visible_at <= now`;
//! - in flight: `receive_count > 0 AND visible_at > now`;
//! - delayed: `receive_count = 0 AND visible_at > now`.
//!
//! A receive picks visible rows, bumps `receive_count` and pushes
//! `visible_at` by the visibility timeout. With a redrive policy, a row
//! whose `receive_count` already equals `maxReceiveCount` is not delivered:
//! that receive moves it to the dead-letter queue instead (as SQS does, and
//! as moto shows: the 4th receive moves a message received 3 times).
//! FIFO: a group is skipped while any of its messages is in flight, and a
//! group's messages are handed out in send order.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::model::{
    Attributes, BatchEntry, BatchResult, BrokerError, Message, QueueAttributes, QueueCounts,
    ReceiveRequest, SendOutcome, SendRequest, Subscription, check_visibility, limits,
    validate_batch, validate_message, validate_topic_name,
};
use crate::store::{Durability, SCHEMA, configure, open_sqlite};

/// While long polling, re-check at least this often, so messages sent by
/// another process sharing the file (a CLI redrive, say) are seen.
const CROSS_PROCESS_RECHECK: Duration = Duration::from_millis(500);

/// Expired messages and deduplication entries are swept at most this often per queue.
const SWEEP_EVERY_MS: i64 = 1000;

/// Namespace of content-based deduplication ids.
const CONTENT_DEDUP_NAMESPACE: Uuid = Uuid::from_u128(0x6576_696c_656e_7400_8000_0000_0000_00cb);

/// How to open a broker.
#[derive(Clone)]
pub struct BrokerOptions {
    pub durability: Durability,
    pub clock: Arc<dyn Clock>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            durability: Durability::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The embedded broker. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<Db>,
    clock: Arc<dyn Clock>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

struct Db {
    conn: Connection,
    queues: HashMap<String, QueueAttributes>,
    last_sweep: HashMap<String, i64>,
}

/// A receipt handle: which message, and which receive of it.
struct Receipt<'a> {
    message_id: &'a str,
}

impl<'a> Receipt<'a> {
    fn issue(message_id: &str, receive_count: u32) -> String {
        format!("{message_id}~{receive_count}~{:08x}", fastrand::u32(..))
    }

    fn parse(handle: &'a str) -> Result<Self, BrokerError> {
        let mut parts = handle.split('~');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(count), Some(nonce), None)
                if Uuid::parse_str(id).is_ok()
                    && count.parse::<u32>().is_ok()
                    && nonce.len() == 8 =>
            {
                Ok(Receipt { message_id: id })
            }
            _ => Err(BrokerError::ReceiptHandleIsInvalid(handle.to_owned())),
        }
    }
}

/// A row picked by a receive.
struct Row {
    seq: i64,
    id: String,
    body: String,
    attributes: Option<String>,
    group_id: Option<String>,
    dedup_id: Option<String>,
    sent_at: i64,
    visible_at: i64,
    receive_count: u32,
    first_received_at: Option<i64>,
}

const ROW_COLUMNS: &str = "seq, id, body, attributes, group_id, dedup_id, sent_at, visible_at, \
                           receive_count, first_received_at";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        id: r.get(1)?,
        body: r.get(2)?,
        attributes: r.get(3)?,
        group_id: r.get(4)?,
        dedup_id: r.get(5)?,
        sent_at: r.get(6)?,
        visible_at: r.get(7)?,
        receive_count: r.get(8)?,
        first_received_at: r.get(9)?,
    })
}

fn secs_ms(seconds: u32) -> i64 {
    i64::from(seconds) * 1000
}

fn sequence(seq: i64) -> String {
    format!("{seq:020}")
}

fn internal<E: std::fmt::Display>(e: E) -> BrokerError {
    BrokerError::Internal(e.to_string())
}

impl Broker {
    /// Opens (creating if needed) the broker stored at `path`.
    pub fn open(path: &Path) -> Result<Self, BrokerError> {
        Self::open_with(path, BrokerOptions::default())
    }

    /// Opens with explicit options.
    pub fn open_with(path: &Path, options: BrokerOptions) -> Result<Self, BrokerError> {
        let conn = open_sqlite(path, options.durability)?;
        Self::from_connection(conn, options.clock)
    }

    /// A broker in memory (lost when dropped); for tests and benchmarks of the engine alone.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Result<Self, BrokerError> {
        let conn = Connection::open_in_memory()?;
        configure(&conn, Durability::ProcessCrash)?;
        Self::from_connection(conn, clock)
    }

    fn from_connection(conn: Connection, clock: Arc<dyn Clock>) -> Result<Self, BrokerError> {
        conn.execute_batch(SCHEMA)?;
        let mut db = Db {
            conn,
            queues: HashMap::new(),
            last_sweep: HashMap::new(),
        };
        db.reload_queues()?;
        Ok(Broker {
            inner: Arc::new(Inner {
                db: Mutex::new(db),
                clock,
                wakers: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn db(&self) -> Result<MutexGuard<'_, Db>, BrokerError> {
        self.inner
            .db
            .lock()
            .map_err(|_| BrokerError::Internal("broker lock poisoned".into()))
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    fn waker(&self, queue: &str) -> Arc<Notify> {
        let mut wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        wakers.entry(queue.to_owned()).or_default().clone()
    }

    fn wake(&self, queue: &str) {
        self.waker(queue).notify_waiters();
    }

    // ---- queues, topics, subscriptions -------------------------------------------------

    /// Creates a queue; creating it again with the same attributes is a no-op,
    /// with different ones an error (as SQS does).
    pub fn create_queue(
        &self,
        name: &str,
        attributes: &QueueAttributes,
    ) -> Result<(), BrokerError> {
        attributes.validate(name)?;
        let mut db = self.db()?;
        db.check_redrive_target(attributes)?;
        if let Some(existing) = db.queue(name)? {
            return if existing == *attributes {
                Ok(())
            } else {
                Err(BrokerError::QueueAlreadyExists(name.to_owned()))
            };
        }
        let json = serde_json::to_string(attributes).map_err(internal)?;
        db.conn.execute(
            "INSERT INTO queues (name, attributes, created_at) VALUES (?1, ?2, ?3)",
            params![name, json, self.now()],
        )?;
        db.queues.insert(name.to_owned(), attributes.clone());
        Ok(())
    }

    /// Replaces a queue's attributes (its FIFO-ness cannot change).
    pub fn set_queue_attributes(
        &self,
        name: &str,
        attributes: &QueueAttributes,
    ) -> Result<(), BrokerError> {
        attributes.validate(name)?;
        let mut db = self.db()?;
        db.require_queue(name)?;
        db.check_redrive_target(attributes)?;
        let json = serde_json::to_string(attributes).map_err(internal)?;
        db.conn.execute(
            "UPDATE queues SET attributes = ?2 WHERE name = ?1",
            params![name, json],
        )?;
        db.queues.insert(name.to_owned(), attributes.clone());
        Ok(())
    }

    /// A queue's attributes.
    pub fn queue_attributes(&self, name: &str) -> Result<QueueAttributes, BrokerError> {
        self.db()?.require_queue(name)
    }

    /// Every queue's name, sorted.
    pub fn list_queues(&self) -> Result<Vec<String>, BrokerError> {
        let mut db = self.db()?;
        db.reload_queues()?;
        let mut names: Vec<String> = db.queues.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// Deletes a queue, its messages and its subscriptions.
    pub fn delete_queue(&self, name: &str) -> Result<(), BrokerError> {
        let mut db = self.db()?;
        db.require_queue(name)?;
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM messages WHERE queue = ?1", [name])?;
        tx.execute("DELETE FROM subscriptions WHERE queue = ?1", [name])?;
        tx.execute("DELETE FROM queues WHERE name = ?1", [name])?;
        tx.commit()?;
        db.queues.remove(name);
        Ok(())
    }

    /// Creates a topic (idempotent).
    pub fn create_topic(&self, name: &str, fifo: bool) -> Result<(), BrokerError> {
        validate_topic_name(name, fifo)?;
        let db = self.db()?;
        db.conn.execute(
            "INSERT INTO topics (name, fifo, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            params![name, fifo, self.now()],
        )?;
        Ok(())
    }

    /// Every topic's name, sorted.
    pub fn list_topics(&self) -> Result<Vec<String>, BrokerError> {
        let db = self.db()?;
        let mut stmt = db.conn.prepare("SELECT name FROM topics ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// Subscribes `queue` to `topic`, optionally only to some `eventType`s
    /// (idempotent; subscribing again replaces the filter). A FIFO queue takes
    /// only a FIFO topic's messages and a FIFO topic delivers only to FIFO queues.
    pub fn subscribe(
        &self,
        topic: &str,
        queue: &str,
        event_types: Option<&[&str]>,
    ) -> Result<(), BrokerError> {
        let mut db = self.db()?;
        let topic_fifo = db.topic_fifo(topic)?;
        let attributes = db.require_queue(queue)?;
        if topic_fifo != attributes.fifo {
            return Err(BrokerError::InvalidParameterValue(format!(
                "topic {topic:?} and queue {queue:?} must both be FIFO or both standard"
            )));
        }
        let filter = event_types
            .map(serde_json::to_string)
            .transpose()
            .map_err(internal)?;
        db.conn.execute(
            "INSERT INTO subscriptions (topic, queue, event_types) VALUES (?1, ?2, ?3)
             ON CONFLICT(topic, queue) DO UPDATE SET event_types = excluded.event_types",
            params![topic, queue, filter],
        )?;
        Ok(())
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>, BrokerError> {
        let db = self.db()?;
        let mut stmt = db
            .conn
            .prepare("SELECT topic, queue, event_types FROM subscriptions ORDER BY topic, queue")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut subs = Vec::new();
        for row in rows {
            let (topic, queue, filter) = row?;
            let event_types = filter
                .map(|f| serde_json::from_str(&f))
                .transpose()
                .map_err(internal)?;
            subs.push(Subscription {
                topic,
                queue,
                event_types,
            });
        }
        Ok(subs)
    }

    // ---- sending -------------------------------------------------------------------------

    /// Sends one message.
    pub fn send(&self, queue: &str, request: &SendRequest) -> Result<SendOutcome, BrokerError> {
        let now = self.now();
        let mut db = self.db()?;
        let attributes = db.require_queue(queue)?;
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = send_in(&tx, queue, &attributes, request, now)?;
        tx.commit()?;
        drop(db);
        self.wake(queue);
        Ok(outcome)
    }

    /// Sends up to 10 messages; each entry succeeds or fails on its own.
    pub fn send_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, BrokerError> {
        validate_batch(entries)?;
        let total: usize = entries.iter().map(|e| e.entry.size()).sum();
        let now = self.now();
        let mut db = self.db()?;
        let attributes = db.require_queue(queue)?;
        if total > attributes.max_message_size as usize {
            return Err(BrokerError::BatchRequestTooLong(total));
        }
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(entries.len());
        for e in entries {
            let result = match send_in(&tx, queue, &attributes, &e.entry, now) {
                Err(BrokerError::Internal(m)) => return Err(BrokerError::Internal(m)),
                other => other,
            };
            results.push(BatchResult {
                id: e.id.clone(),
                result,
            });
        }
        tx.commit()?;
        drop(db);
        self.wake(queue);
        Ok(results)
    }

    /// Publishes one message to a topic: it is sent, in one transaction, to
    /// every subscribed queue whose filter admits its `eventType` attribute.
    pub fn publish(&self, topic: &str, request: &SendRequest) -> Result<SendOutcome, BrokerError> {
        let batch = [BatchEntry {
            id: "0".into(),
            entry: request.clone(),
        }];
        let mut results = self.publish_batch(topic, &batch)?;
        match results.pop() {
            Some(r) => r.result,
            None => Err(BrokerError::Internal("publish returned no result".into())),
        }
    }

    /// Publishes up to 10 messages, each with its own result.
    pub fn publish_batch(
        &self,
        topic: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, BrokerError> {
        self.publish_batches(&[(topic, entries)])
            .pop()
            .unwrap_or_else(|| Err(BrokerError::Internal("publish returned no result".into())))
    }

    /// Publishes several batches (each of up to 10 messages, each to its
    /// topic) in one transaction, so a relay's whole claim costs one commit
    /// rather than one per batch: one result per batch, in order. A batch
    /// that is malformed, or whose topic does not exist, fails alone; a
    /// storage failure fails them all, and nothing of them is kept.
    pub fn publish_batches(
        &self,
        batches: &[(&str, &[BatchEntry<SendRequest>])],
    ) -> Vec<Result<Vec<BatchResult<SendOutcome>>, BrokerError>> {
        let now = self.now();
        let mut woken = HashSet::new();
        let outcome = (|| {
            let mut db = self.db()?;
            let mut plans = Vec::with_capacity(batches.len());
            for (topic, entries) in batches {
                plans.push(validate_batch(entries).and_then(|()| db.publish_targets(topic)));
            }
            let tx = db
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(batches.len());
            for ((topic, entries), plan) in batches.iter().zip(plans) {
                let (fifo, targets) = match plan {
                    Ok(plan) => plan,
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                };
                let mut batch = Vec::with_capacity(entries.len());
                for e in *entries {
                    let result = publish_in(&tx, topic, fifo, &targets, &e.entry, now, &mut woken);
                    if let Err(BrokerError::Internal(m)) = result {
                        return Err(BrokerError::Internal(m));
                    }
                    batch.push(BatchResult {
                        id: e.id.clone(),
                        result,
                    });
                }
                results.push(Ok(batch));
            }
            tx.commit()?;
            Ok(results)
        })();
        match outcome {
            Ok(results) => {
                for q in woken {
                    self.wake(&q);
                }
                results
            }
            Err(e) => {
                // Every failure here is already an internal one: each batch
                // gets its message as it is.
                let message = match e {
                    BrokerError::Internal(m) => m,
                    other => other.to_string(),
                };
                batches
                    .iter()
                    .map(|_| Err(BrokerError::Internal(message.clone())))
                    .collect()
            }
        }
    }

    // ---- receiving -----------------------------------------------------------------------

    /// Receives up to `max_messages`, long polling up to `wait`: returns as
    /// soon as at least one message can be handed out, or empty at the deadline.
    pub async fn receive(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<Message>, BrokerError> {
        request.validate()?;
        let wait = match request.wait {
            Some(w) => w,
            None => Duration::from_secs(u64::from(
                self.queue_attributes(queue)?.receive_wait_seconds,
            )),
        };
        let deadline = Instant::now() + wait;
        let waker = self.waker(queue);
        loop {
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (messages, next_visible_at) = self.receive_now(queue, request)?;
            let now = Instant::now();
            if !messages.is_empty() || now >= deadline {
                return Ok(messages);
            }
            let mut until = deadline.min(now + CROSS_PROCESS_RECHECK);
            if let Some(at) = next_visible_at {
                let in_ms = u64::try_from(at - self.now()).unwrap_or(0);
                until = until.min(now + Duration::from_millis(in_ms));
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// One receive attempt without waiting. Also returns when the next
    /// hidden message becomes visible, for the long poll's timer.
    pub fn receive_now(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<(Vec<Message>, Option<i64>), BrokerError> {
        request.validate()?;
        let now = self.now();
        let mut db = self.db()?;
        let attributes = db.require_queue(queue)?;
        db.sweep(queue, &attributes, now)?;
        let dlq = match &attributes.redrive {
            Some(policy) => db.queue(&policy.dead_letter_queue)?.map(|_| policy.clone()),
            None => None,
        };
        let vt = request
            .visibility_timeout
            .unwrap_or(attributes.visibility_timeout);
        let cutoff = now - secs_ms(attributes.retention_seconds);
        let max = request.max_messages as usize;
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut taken: Vec<Row> = Vec::new();
        let mut moved = false;
        if attributes.fifo {
            let (take, to_dlq) = pick_fifo(
                &tx,
                queue,
                now,
                cutoff,
                max,
                dlq.as_ref().map(|d| d.max_receive_count),
            )?;
            if let Some(policy) = &dlq {
                for seq in &to_dlq {
                    move_to(&tx, *seq, &policy.dead_letter_queue, now)?;
                }
                moved = !to_dlq.is_empty();
            }
            taken = take;
        } else {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE queue = ?1 AND visible_at <= ?2 AND sent_at > ?3
                 ORDER BY visible_at, seq LIMIT ?4"
            ))?;
            // Rows moved to the dead-letter queue leave gaps: select again
            // until the batch is full or nothing new turns up. Rows already
            // taken are still at the front (they are hidden below), so skip them.
            loop {
                let rows: Vec<Row> = stmt
                    .query_map(params![queue, now, cutoff, max as i64], read_row)?
                    .collect::<Result<_, _>>()?;
                let mut moved_now = false;
                for row in rows {
                    if taken.iter().any(|t| t.seq == row.seq) {
                        continue;
                    }
                    match &dlq {
                        Some(policy) if row.receive_count >= policy.max_receive_count => {
                            move_to(&tx, row.seq, &policy.dead_letter_queue, now)?;
                            moved_now = true;
                        }
                        _ => taken.push(row),
                    }
                }
                moved |= moved_now;
                if taken.len() >= max || !moved_now {
                    break;
                }
            }
        }
        let mut messages = Vec::with_capacity(taken.len());
        for row in taken {
            let receive_count = row.receive_count + 1;
            let first = row.first_received_at.unwrap_or(now);
            tx.prepare_cached(
                "UPDATE messages SET receive_count = ?2, visible_at = ?3, first_received_at = ?4 WHERE seq = ?1",
            )?
            .execute(params![row.seq, receive_count, now + secs_ms(vt), first])?;
            let attributes: Attributes = match &row.attributes {
                Some(json) => serde_json::from_str(json).map_err(internal)?,
                None => Attributes::new(),
            };
            messages.push(Message {
                receipt_handle: Receipt::issue(&row.id, receive_count),
                message_id: row.id,
                body: row.body,
                attributes,
                sequence_number: row.group_id.as_ref().map(|_| sequence(row.seq)),
                group_id: row.group_id,
                deduplication_id: row.dedup_id,
                receive_count,
                sent_timestamp: row.sent_at,
                first_receive_timestamp: first,
            });
        }
        let next_visible_at = if messages.is_empty() {
            tx.prepare_cached(
                "SELECT MIN(visible_at) FROM messages WHERE queue = ?1 AND visible_at > ?2",
            )?
            .query_row(params![queue, now], |r| r.get::<_, Option<i64>>(0))?
        } else {
            None
        };
        tx.commit()?;
        drop(db);
        if moved && let Some(policy) = &dlq {
            self.wake(&policy.dead_letter_queue);
        }
        Ok((messages, next_visible_at))
    }

    // ---- acknowledging -------------------------------------------------------------------

    /// Deletes a received message. Deleting one already deleted (or moved to
    /// the dead-letter queue) succeeds and does nothing, as on SQS.
    pub fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), BrokerError> {
        Receipt::parse(receipt_handle)?;
        let entry = [BatchEntry {
            id: "0".into(),
            entry: receipt_handle.to_owned(),
        }];
        match self.delete_batch(queue, &entry)?.pop() {
            Some(r) => r.result,
            None => Err(BrokerError::Internal("no result".into())),
        }
    }

    /// Deletes up to 10 messages, each with its own result.
    pub fn delete_batch(
        &self,
        queue: &str,
        receipts: &[BatchEntry<String>],
    ) -> Result<Vec<BatchResult<()>>, BrokerError> {
        validate_batch(receipts)?;
        let mut db = self.db()?;
        let fifo = db.require_queue(queue)?.fifo;
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(receipts.len());
        for e in receipts {
            let result = match Receipt::parse(&e.entry) {
                Ok(receipt) => tx
                    .prepare_cached("DELETE FROM messages WHERE id = ?1 AND queue = ?2")
                    .and_then(|mut stmt| stmt.execute(params![receipt.message_id, queue]))
                    .map(|_| ())
                    .map_err(BrokerError::from),
                Err(err) => Err(err),
            };
            if let Err(BrokerError::Internal(m)) = result {
                return Err(BrokerError::Internal(m));
            }
            results.push(BatchResult {
                id: e.id.clone(),
                result,
            });
        }
        tx.commit()?;
        drop(db);
        if fifo {
            // A delete can release a message group: a long poll waiting
            // for that group's next message may go on at once.
            self.wake(queue);
        }
        Ok(results)
    }

    /// Changes the visibility timeout of a message in flight: `0` makes it
    /// visible at once, more extends the lease (a heartbeat).
    pub fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), BrokerError> {
        let entry = [BatchEntry {
            id: "0".into(),
            entry: (receipt_handle.to_owned(), seconds),
        }];
        let mut results = self.change_visibility_batch(queue, &entry)?;
        match results.pop() {
            Some(r) => r.result,
            None => Err(BrokerError::Internal("no result".into())),
        }
    }

    /// Changes the visibility of up to 10 messages, each with its own result.
    pub fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<(String, u32)>],
    ) -> Result<Vec<BatchResult<()>>, BrokerError> {
        validate_batch(entries)?;
        let now = self.now();
        let mut db = self.db()?;
        db.require_queue(queue)?;
        let tx = db
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(entries.len());
        let mut wake = false;
        for e in entries {
            let (handle, seconds) = (&e.entry.0, e.entry.1);
            let result = change_visibility_in(&tx, queue, handle, seconds, now);
            if let Err(BrokerError::Internal(m)) = result {
                return Err(BrokerError::Internal(m));
            }
            wake |= result.is_ok() && seconds == 0;
            results.push(BatchResult {
                id: e.id.clone(),
                result,
            });
        }
        tx.commit()?;
        drop(db);
        if wake {
            self.wake(queue);
        }
        Ok(results)
    }

    // ---- inspecting ----------------------------------------------------------------------

    /// Approximate counts (exact here): visible, in flight, delayed.
    pub fn counts(&self, queue: &str) -> Result<QueueCounts, BrokerError> {
        let now = self.now();
        let mut db = self.db()?;
        let attributes = db.require_queue(queue)?;
        let cutoff = now - secs_ms(attributes.retention_seconds);
        let counts = db.conn.query_row(
            "SELECT COALESCE(SUM(visible_at <= ?2), 0),
                    COALESCE(SUM(visible_at > ?2 AND receive_count > 0), 0),
                    COALESCE(SUM(visible_at > ?2 AND receive_count = 0), 0)
             FROM messages WHERE queue = ?1 AND sent_at > ?3",
            params![queue, now, cutoff],
            |r| {
                Ok(QueueCounts {
                    visible: r.get::<_, i64>(0)?.unsigned_abs(),
                    in_flight: r.get::<_, i64>(1)?.unsigned_abs(),
                    delayed: r.get::<_, i64>(2)?.unsigned_abs(),
                })
            },
        )?;
        Ok(counts)
    }

    /// Deletes every message of a queue.
    pub fn purge(&self, queue: &str) -> Result<u64, BrokerError> {
        let mut db = self.db()?;
        db.require_queue(queue)?;
        let n = db
            .conn
            .execute("DELETE FROM messages WHERE queue = ?1", [queue])?;
        Ok(n as u64)
    }
}

impl Db {
    fn reload_queues(&mut self) -> Result<(), BrokerError> {
        let mut stmt = self.conn.prepare("SELECT name, attributes FROM queues")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut queues = HashMap::new();
        for row in rows {
            let (name, json) = row?;
            queues.insert(name, serde_json::from_str(&json).map_err(internal)?);
        }
        drop(stmt);
        self.queues = queues;
        Ok(())
    }

    /// A queue's attributes; looks in the file when the cache misses, since
    /// another process may have created the queue.
    fn queue(&mut self, name: &str) -> Result<Option<QueueAttributes>, BrokerError> {
        if let Some(q) = self.queues.get(name) {
            return Ok(Some(q.clone()));
        }
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT attributes FROM queues WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        match json {
            Some(json) => {
                let attrs: QueueAttributes = serde_json::from_str(&json).map_err(internal)?;
                self.queues.insert(name.to_owned(), attrs.clone());
                Ok(Some(attrs))
            }
            None => Ok(None),
        }
    }

    fn require_queue(&mut self, name: &str) -> Result<QueueAttributes, BrokerError> {
        self.queue(name)?
            .ok_or_else(|| BrokerError::QueueDoesNotExist(name.to_owned()))
    }

    fn check_redrive_target(&mut self, attributes: &QueueAttributes) -> Result<(), BrokerError> {
        if let Some(policy) = &attributes.redrive {
            let dlq = self.queue(&policy.dead_letter_queue)?.ok_or_else(|| {
                BrokerError::InvalidParameterValue(format!(
                    "dead-letter queue {:?} does not exist",
                    policy.dead_letter_queue
                ))
            })?;
            if dlq.fifo != attributes.fifo {
                return Err(BrokerError::InvalidParameterValue(
                    "a FIFO queue's dead-letter queue must be FIFO, a standard queue's standard"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// Whether `topic` is FIFO, and the queues subscribed to it that exist.
    fn publish_targets(
        &mut self,
        topic: &str,
    ) -> Result<(bool, Vec<(Subscription, QueueAttributes)>), BrokerError> {
        let fifo = self.topic_fifo(topic)?;
        let targets = self
            .topic_subscriptions(topic)?
            .into_iter()
            .filter_map(|s| match self.queue(&s.queue) {
                Ok(Some(attrs)) => Some(Ok((s, attrs))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        Ok((fifo, targets))
    }

    fn topic_fifo(&self, topic: &str) -> Result<bool, BrokerError> {
        self.conn
            .prepare_cached("SELECT fifo FROM topics WHERE name = ?1")?
            .query_row([topic], |r| r.get(0))
            .optional()?
            .ok_or_else(|| BrokerError::TopicDoesNotExist(topic.to_owned()))
    }

    fn topic_subscriptions(&self, topic: &str) -> Result<Vec<Subscription>, BrokerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT queue, event_types FROM subscriptions WHERE topic = ?1")?;
        let rows = stmt.query_map([topic], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut subs = Vec::new();
        for row in rows {
            let (queue, filter) = row?;
            let event_types = filter
                .map(|f| serde_json::from_str(&f))
                .transpose()
                .map_err(internal)?;
            subs.push(Subscription {
                topic: topic.to_owned(),
                queue,
                event_types,
            });
        }
        Ok(subs)
    }

    /// Drops messages past retention and deduplication entries past their window.
    fn sweep(
        &mut self,
        queue: &str,
        attributes: &QueueAttributes,
        now: i64,
    ) -> Result<(), BrokerError> {
        if let Some(last) = self.last_sweep.get(queue)
            && (0..SWEEP_EVERY_MS).contains(&(now - last))
        {
            return Ok(());
        }
        self.last_sweep.insert(queue.to_owned(), now);
        let cutoff = now - secs_ms(attributes.retention_seconds);
        self.conn.execute(
            "DELETE FROM messages WHERE queue = ?1 AND sent_at <= ?2",
            params![queue, cutoff],
        )?;
        self.conn
            .execute("DELETE FROM dedup WHERE expires_at <= ?1", [now])?;
        Ok(())
    }
}

/// Sends one validated message inside `tx`.
fn send_in(
    tx: &Transaction<'_>,
    queue: &str,
    attributes: &QueueAttributes,
    request: &SendRequest,
    now: i64,
) -> Result<SendOutcome, BrokerError> {
    validate_message(request, attributes.max_message_size)?;
    let mut dedup_id = None;
    let delay = if attributes.fifo {
        if request.delay_seconds.is_some() {
            return Err(BrokerError::InvalidParameterValue(
                "DelaySeconds per message is not supported on FIFO queues; set the queue's DelaySeconds".into(),
            ));
        }
        let Some(group) = &request.group_id else {
            return Err(BrokerError::MissingParameter(
                "MessageGroupId is required on FIFO queues".into(),
            ));
        };
        check_fifo_id("MessageGroupId", group)?;
        let id = fifo_dedup_id(request, attributes.content_based_deduplication)?;
        if let Some(original) = dedup_hit(tx, queue, &id, now)? {
            return Ok(original);
        }
        dedup_id = Some(id);
        attributes.delay_seconds
    } else {
        let delay = request.delay_seconds.unwrap_or(attributes.delay_seconds);
        if delay > limits::MAX_DELAY_SECONDS {
            return Err(BrokerError::InvalidParameterValue(format!(
                "DelaySeconds must be 0..=900, got {delay}"
            )));
        }
        delay
    };
    let message_id = Uuid::now_v7().to_string();
    let attrs_json = if request.attributes.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&request.attributes).map_err(internal)?)
    };
    tx.prepare_cached(
        "INSERT INTO messages (queue, id, body, attributes, group_id, dedup_id, sent_at, visible_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        queue,
        message_id,
        request.body,
        attrs_json,
        request.group_id,
        dedup_id,
        now,
        now + secs_ms(delay)
    ])?;
    let seq = tx.last_insert_rowid();
    if let Some(id) = &dedup_id {
        remember_dedup(tx, queue, id, &message_id, Some(seq), now)?;
    }
    Ok(SendOutcome {
        message_id,
        sequence_number: attributes.fifo.then(|| sequence(seq)),
    })
}

/// Publishes one message to a topic's subscribed queues inside `tx`.
fn publish_in(
    tx: &Transaction<'_>,
    topic: &str,
    fifo: bool,
    targets: &[(Subscription, QueueAttributes)],
    request: &SendRequest,
    now: i64,
    woken: &mut HashSet<String>,
) -> Result<SendOutcome, BrokerError> {
    validate_message(request, limits::MAX_MESSAGE_SIZE)?;
    let scope = format!("topic:{topic}");
    let mut dedup = None;
    if fifo {
        let Some(group) = &request.group_id else {
            return Err(BrokerError::MissingParameter(
                "MessageGroupId is required on FIFO topics".into(),
            ));
        };
        check_fifo_id("MessageGroupId", group)?;
        let id = fifo_dedup_id(request, true)?;
        if let Some(original) = dedup_hit(tx, &scope, &id, now)? {
            return Ok(original);
        }
        dedup = Some(id);
    }
    let event_type = request
        .attributes
        .get("eventType")
        .map(|a| a.value.as_str());
    let mut per_queue = request.clone();
    per_queue.deduplication_id.clone_from(&dedup);
    for (sub, attributes) in targets {
        let admitted = match (&sub.event_types, event_type) {
            (None, _) => true,
            (Some(types), Some(t)) => types.iter().any(|x| x == t),
            (Some(_), None) => false,
        };
        if admitted {
            send_in(tx, &sub.queue, attributes, &per_queue, now)?;
            woken.insert(sub.queue.clone());
        }
    }
    let message_id = Uuid::now_v7().to_string();
    if let Some(id) = &dedup {
        remember_dedup(tx, &scope, id, &message_id, None, now)?;
    }
    Ok(SendOutcome {
        message_id,
        sequence_number: None,
    })
}

fn check_fifo_id(what: &str, id: &str) -> Result<(), BrokerError> {
    let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(BrokerError::InvalidParameterValue(format!(
            "{what} is 1-128 printable ASCII characters, got {id:?}"
        )))
    }
}

fn fifo_dedup_id(request: &SendRequest, content_based: bool) -> Result<String, BrokerError> {
    match (&request.deduplication_id, content_based) {
        (Some(id), _) => {
            check_fifo_id("MessageDeduplicationId", id)?;
            Ok(id.clone())
        }
        (None, true) => Ok(Uuid::new_v5(&CONTENT_DEDUP_NAMESPACE, request.body.as_bytes()).simple().to_string()),
        (None, false) => Err(BrokerError::InvalidParameterValue(
            "the queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly"
                .into(),
        )),
    }
}

fn dedup_hit(
    tx: &Transaction<'_>,
    scope: &str,
    id: &str,
    now: i64,
) -> Result<Option<SendOutcome>, BrokerError> {
    let hit = tx
        .prepare_cached("SELECT message_id, sequence FROM dedup WHERE scope = ?1 AND dedup_id = ?2 AND expires_at > ?3")?
        .query_row(params![scope, id, now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))
        .optional()?;
    Ok(hit.map(|(message_id, seq)| SendOutcome {
        message_id,
        sequence_number: seq.map(sequence),
    }))
}

fn remember_dedup(
    tx: &Transaction<'_>,
    scope: &str,
    id: &str,
    message_id: &str,
    seq: Option<i64>,
    now: i64,
) -> Result<(), BrokerError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO dedup (scope, dedup_id, message_id, sequence, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![scope, id, message_id, seq, now + limits::DEDUP_WINDOW_MS])?;
    Ok(())
}

fn move_to(tx: &Transaction<'_>, seq: i64, dlq: &str, now: i64) -> Result<(), BrokerError> {
    tx.execute(
        "UPDATE messages SET queue = ?2, visible_at = ?3, receive_count = 0, first_received_at = NULL WHERE seq = ?1",
        params![seq, dlq, now],
    )?;
    Ok(())
}

/// FIFO selection: walk the queue in send order; skip groups with a message
/// in flight (or whose head is still delayed); hand out the rest in order.
fn pick_fifo(
    tx: &Transaction<'_>,
    queue: &str,
    now: i64,
    cutoff: i64,
    max: usize,
    max_receive_count: Option<u32>,
) -> Result<(Vec<Row>, Vec<i64>), BrokerError> {
    let mut blocked: HashSet<String> = {
        let mut stmt = tx.prepare_cached(
            "SELECT DISTINCT group_id FROM messages WHERE queue = ?1 AND receive_count > 0 AND visible_at > ?2",
        )?;
        stmt.query_map(params![queue, now], |r| r.get::<_, Option<String>>(0))?
            .filter_map(|g| g.transpose())
            .collect::<Result<_, _>>()?
    };
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM messages WHERE queue = ?1 AND sent_at > ?2 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![queue, cutoff])?;
    let mut take = Vec::new();
    let mut to_dlq = Vec::new();
    while let Some(r) = rows.next()? {
        let row = read_row(r)?;
        let group = row.group_id.clone().unwrap_or_default();
        if blocked.contains(&group) {
            continue;
        }
        if row.visible_at > now {
            blocked.insert(group);
            continue;
        }
        if max_receive_count.is_some_and(|m| row.receive_count >= m) {
            to_dlq.push(row.seq);
            continue;
        }
        take.push(row);
        if take.len() >= max {
            break;
        }
    }
    Ok((take, to_dlq))
}

fn change_visibility_in(
    tx: &Transaction<'_>,
    queue: &str,
    handle: &str,
    seconds: u32,
    now: i64,
) -> Result<(), BrokerError> {
    check_visibility(seconds)?;
    let receipt = Receipt::parse(handle)?;
    let state: Option<(u32, i64)> = tx
        .prepare_cached(
            "SELECT receive_count, visible_at FROM messages WHERE id = ?1 AND queue = ?2",
        )?
        .query_row(params![receipt.message_id, queue], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match state {
        None => Err(BrokerError::ReceiptHandleIsInvalid(handle.to_owned())),
        Some((count, visible_at)) if count == 0 || visible_at <= now => {
            Err(BrokerError::MessageNotInflight)
        }
        Some(_) => {
            tx.prepare_cached("UPDATE messages SET visible_at = ?3 WHERE id = ?1 AND queue = ?2")?
                .execute(params![receipt.message_id, queue, now + secs_ms(seconds)])?;
            Ok(())
        }
    }
}
