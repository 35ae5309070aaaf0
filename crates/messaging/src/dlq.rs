//! Dead letters: look at them, send them back, or drop them.
//!
//! These work through the [`QueuePort`], so they behave the same on the
//! embedded broker and on SQS. `queue` is always the *source* queue (the one
//! whose redrive policy names the dead-letter queue), as in
//! `evilent dlq redrive --queue user-events-queue`.
//!
//! Listing uses what SQS offers: receive with a visibility timeout (so each
//! message is seen once while listing), then hand every message back at once.

use std::time::Duration;

use evilent_broker::{BatchEntry, Message, ReceiveRequest, SendRequest, limits};
use uuid::Uuid;

use crate::port::{QueueError, QueuePort};

/// How long listed messages stay hidden while the listing runs.
const LIST_VISIBILITY: u32 = 30;

/// The dead-letter queue of `queue`.
pub async fn dead_letter_queue(port: &dyn QueuePort, queue: &str) -> Result<String, QueueError> {
    port.queue_attributes(queue)
        .await?
        .redrive
        .map(|r| r.dead_letter_queue)
        .ok_or_else(|| {
            QueueError::InvalidParameterValue(format!("queue {queue:?} has no dead-letter queue"))
        })
}

/// Up to `max` messages of `queue`'s dead-letter queue, left in place.
pub async fn list(
    port: &dyn QueuePort,
    queue: &str,
    max: usize,
) -> Result<Vec<Message>, QueueError> {
    let dlq = dead_letter_queue(port, queue).await?;
    let mut seen = Vec::new();
    while seen.len() < max {
        let want = (max - seen.len()).min(limits::MAX_BATCH) as u32;
        let batch = port
            .receive(
                &dlq,
                &ReceiveRequest::up_to(want).visibility(LIST_VISIBILITY),
            )
            .await?;
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
    }
    for chunk in seen.chunks(limits::MAX_BATCH) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| BatchEntry {
                id: i.to_string(),
                entry: (m.receipt_handle.clone(), 0),
            })
            .collect();
        port.change_visibility_batch(&dlq, &entries).await?;
    }
    Ok(seen)
}

/// One dead letter by message id.
pub async fn show(
    port: &dyn QueuePort,
    queue: &str,
    message_id: &str,
) -> Result<Option<Message>, QueueError> {
    Ok(list(port, queue, usize::MAX)
        .await?
        .into_iter()
        .find(|m| m.message_id == message_id))
}

/// Moves up to `max` dead letters back to `queue`. All of them: with the
/// server's own move task where there is one (SQS's `StartMessageMoveTask`;
/// the count returned is the number waiting when it started). Otherwise, or
/// for a given `max`, message by message: each is sent first and
/// deleted from the dead-letter queue only once the send succeeded, so a
/// crash in between duplicates (which the inbox absorbs) and never loses.
/// Returns how many moved.
pub async fn redrive(
    port: &dyn QueuePort,
    queue: &str,
    max: Option<usize>,
) -> Result<usize, QueueError> {
    let dlq = dead_letter_queue(port, queue).await?;
    let mut moved = 0;
    while max.is_none_or(|m| moved < m) {
        let want = max.map_or(limits::MAX_BATCH, |m| (m - moved).min(limits::MAX_BATCH)) as u32;
        let batch = port
            .receive(
                &dlq,
                &ReceiveRequest::up_to(want)
                    .visibility(LIST_VISIBILITY)
                    .wait(Duration::ZERO),
            )
            .await?;
        if batch.is_empty() {
            break;
        }
        let sends: Vec<BatchEntry<SendRequest>> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| BatchEntry {
                id: i.to_string(),
                entry: resend(m),
            })
            .collect();
        let results = port.send_batch(queue, &sends).await?;
        let mut deletes = Vec::new();
        for r in results {
            let Ok(i) = r.id.parse::<usize>() else {
                continue;
            };
            match r.result {
                Ok(_) => deletes.push(BatchEntry {
                    id: r.id.clone(),
                    entry: batch[i].receipt_handle.clone(),
                }),
                Err(e) => {
                    tracing::warn!(message_id = %batch[i].message_id, error = %e, "redrive send failed; left in the DLQ")
                }
            }
        }
        if deletes.is_empty() {
            break;
        }
        moved += deletes.len();
        port.delete_batch(&dlq, &deletes).await?;
    }
    Ok(moved)
}

/// Deletes every dead letter of `queue`.
pub async fn purge(port: &dyn QueuePort, queue: &str) -> Result<(), QueueError> {
    let dlq = dead_letter_queue(port, queue).await?;
    port.purge(&dlq).await
}

/// The message to send back: same body, attributes and group. A FIFO message
/// gets a fresh deduplication id, or the 5-minute window would drop it as a
/// copy of itself.
fn resend(m: &Message) -> SendRequest {
    SendRequest {
        body: m.body.clone(),
        attributes: m.attributes.clone(),
        delay_seconds: None,
        group_id: m.group_id.clone(),
        deduplication_id: m
            .group_id
            .as_ref()
            .map(|_| format!("redrive-{}", Uuid::now_v7().simple())),
    }
}
