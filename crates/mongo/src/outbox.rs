//! The outbox on MongoDB.
//!
//! Each event is a document with a `seq` (milliseconds × 1000 + a counter
//! of this process): one aggregate's events are written one after another
//! (each write checks the aggregate's version), so their `seq`s grow in
//! their order. `pending` reads unpublished documents by `seq`, keeps the
//! first of each aggregate, and claims each with a conditional update that
//! only succeeds if no other relay holds a live lease on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use evilent_contracts::Envelope;
use evilent_messaging::outbox::sqlite::event_attributes;
use evilent_messaging::outbox::{OutboxEntry, OutboxError, OutboxStore};
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::{ClientSession, Collection, Database, IndexModel};

/// How long a claimed event stays with its relay.
pub const LEASE: Duration = Duration::from_secs(30);

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next_seq() -> i64 {
    let millis = chrono::Utc::now().timestamp_millis();
    let n = i64::try_from(COUNTER.fetch_add(1, Ordering::Relaxed) % 1000).unwrap_or(0);
    millis * 1000 + n
}

fn err(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

fn after(d: Duration) -> DateTime {
    DateTime::from_millis(
        DateTime::now().timestamp_millis() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4),
    )
}

fn outbox(db: &Database) -> Collection<Document> {
    db.collection("outbox")
}

/// Creates the outbox's and inbox's indexes.
pub async fn create_indexes(db: &Database) -> mongodb::error::Result<()> {
    outbox(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! { "publishedAt": 1, "seq": 1 })
                .build(),
            IndexModel::builder()
                .keys(doc! { "eventId": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(true)
                        .build(),
                )
                .build(),
        ])
        .await?;
    Ok(())
}

/// Appends `envelope` to the outbox of `topic`, in `session`'s transaction.
pub async fn append(
    db: &Database,
    session: &mut ClientSession,
    topic: &str,
    envelope: &Envelope,
    traceparent: Option<&str>,
) -> mongodb::error::Result<()> {
    let attributes: Document = event_attributes(envelope, traceparent)
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                Bson::Document(doc! { "dataType": v.data_type, "value": v.value }),
            )
        })
        .collect();
    outbox(db)
        .insert_one(doc! {
            "seq": next_seq(),
            "topic": topic,
            "aggregateId": envelope.event.aggregate_id(),
            "eventId": envelope.meta.event_id.to_string(),
            "eventType": envelope.event.event_type(),
            "body": envelope.to_json(),
            "attributes": attributes,
            "createdAt": DateTime::now(),
            "publishedAt": Bson::Null,
            "attempts": 0_i32,
            "nextAttemptAt": DateTime::now(),
            "claimedUntil": Bson::Null,
        })
        .session(&mut *session)
        .await?;
    Ok(())
}

/// The relay's side of a MongoDB outbox.
#[derive(Clone)]
pub struct MongoOutbox {
    db: Database,
    relay_id: String,
}

impl MongoOutbox {
    pub fn new(db: Database) -> Self {
        MongoOutbox {
            db,
            relay_id: uuid::Uuid::now_v7().to_string(),
        }
    }
}

fn entry(d: &Document) -> Option<OutboxEntry> {
    let attributes = d
        .get_document("attributes")
        .ok()?
        .iter()
        .filter_map(|(k, v)| {
            let v = v.as_document()?;
            Some((
                k.clone(),
                evilent_broker::MessageAttribute {
                    data_type: v.get_str("dataType").ok()?.to_owned(),
                    value: v.get_str("value").ok()?.to_owned(),
                },
            ))
        })
        .collect();
    Some(OutboxEntry {
        id: d.get_i64("seq").ok()?,
        topic: d.get_str("topic").ok()?.to_owned(),
        aggregate_id: d.get_str("aggregateId").ok()?.to_owned(),
        event_id: d.get_str("eventId").ok()?.to_owned(),
        event_type: d.get_str("eventType").ok()?.to_owned(),
        body: d.get_str("body").ok()?.to_owned(),
        attributes,
        attempts: u32::try_from(d.get_i32("attempts").unwrap_or(0)).unwrap_or(0),
    })
}

#[async_trait]
impl OutboxStore for MongoOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        use futures_lite::StreamExt as _;
        let coll = outbox(&self.db);
        let mut cursor = coll
            .find(doc! { "publishedAt": Bson::Null })
            .sort(doc! { "seq": 1 })
            .limit(i64::try_from(limit * 20).unwrap_or(200))
            .await
            .map_err(err)?;
        let now = DateTime::now();
        let mut seen = std::collections::HashSet::new();
        let mut due = Vec::new();
        while let Some(d) = cursor.next().await {
            let d = d.map_err(err)?;
            let Ok(aggregate) = d.get_str("aggregateId") else {
                continue;
            };
            if !seen.insert(aggregate.to_owned()) {
                continue; // not the oldest of its aggregate
            }
            let ready = d.get_datetime("nextAttemptAt").is_ok_and(|t| *t <= now)
                && d.get_datetime("claimedUntil").map_or(true, |t| *t < now);
            if ready {
                due.push(d);
            }
            if due.len() >= limit {
                break;
            }
        }
        let mut claimed = Vec::new();
        for d in due {
            let Ok(id) = d.get_object_id("_id") else {
                continue;
            };
            let won = coll
                .update_one(
                    doc! { "_id": id, "publishedAt": Bson::Null,
                    "$or": [ { "claimedUntil": Bson::Null }, { "claimedUntil": { "$lt": now } } ] },
                    doc! { "$set": { "claimedUntil": after(LEASE), "claimedBy": &self.relay_id } },
                )
                .await
                .map_err(err)?;
            if won.modified_count == 1
                && let Some(e) = entry(&d)
            {
                claimed.push(e);
            }
        }
        Ok(claimed)
    }

    async fn mark_published(&self, ids: &[i64]) -> Result<(), OutboxError> {
        outbox(&self.db)
            .update_many(
                doc! { "seq": { "$in": ids } },
                doc! { "$set": { "publishedAt": DateTime::now(), "claimedUntil": Bson::Null } },
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        ids: &[i64],
        error: &str,
        retry_in: Duration,
    ) -> Result<(), OutboxError> {
        outbox(&self.db)
            .update_many(
                doc! { "seq": { "$in": ids } },
                doc! { "$inc": { "attempts": 1 },
                       "$set": { "lastError": error, "nextAttemptAt": after(retry_in), "claimedUntil": Bson::Null } },
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn prune(&self, retention: Duration) -> Result<u64, OutboxError> {
        let cutoff = DateTime::from_millis(
            DateTime::now().timestamp_millis() - i64::try_from(retention.as_millis()).unwrap_or(0),
        );
        let done = outbox(&self.db)
            .delete_many(doc! { "publishedAt": { "$ne": Bson::Null, "$lt": cutoff } })
            .await
            .map_err(err)?;
        Ok(done.deleted_count)
    }

    async fn unpublished(&self) -> Result<u64, OutboxError> {
        outbox(&self.db)
            .count_documents(doc! { "publishedAt": Bson::Null })
            .await
            .map_err(err)
    }
}
