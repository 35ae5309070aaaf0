//! The topics, queues, dead-letter queues and subscriptions of DESIGN.md.
//!
//! Each publishing service owns a topic; each consuming service owns a queue
//! subscribed to the topics it needs, with its own dead-letter queue after
//! 3 receives. The seed's queue names are kept for the first consumers.

use evilent_contracts::Topic;

use crate::port::{QueueAttributes, QueueError, QueuePort, RedrivePolicy};

/// Receives before a message goes to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 3;

/// One consumer's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub topic: String,
    /// Only these `eventType`s, or all.
    pub event_types: Option<Vec<String>>,
    pub dead_letter_queue: String,
    pub visibility_timeout: u32,
}

/// Everything to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub topics: Vec<String>,
    pub queues: Vec<QueueSpec>,
}

/// The dead-letter queue of `queue`.
pub fn dead_letter_queue_of(queue: &str) -> String {
    match queue.strip_suffix(".fifo") {
        Some(base) => format!("{base}-dlq.fifo"),
        None => format!("{queue}-dlq"),
    }
}

impl Topology {
    /// DESIGN.md's topology: `user-events` → `user-events-queue` (product-service),
    /// `product-events` → `product-events-queue` (user-service),
    /// `order-events` → `order-events-queue`.
    pub fn design() -> Self {
        let queue = |topic: Topic| {
            let name = format!("{}-queue", topic.name());
            QueueSpec {
                dead_letter_queue: dead_letter_queue_of(&name),
                name,
                topic: topic.name().to_owned(),
                event_types: None,
                visibility_timeout: 30,
            }
        };
        Topology {
            topics: Topic::ALL.iter().map(|t| t.name().to_owned()).collect(),
            queues: Topic::ALL.into_iter().map(queue).collect(),
        }
    }

    /// Creates everything, idempotently.
    pub async fn apply(&self, port: &dyn QueuePort) -> Result<(), QueueError> {
        for topic in &self.topics {
            port.create_topic(topic, topic.ends_with(".fifo")).await?;
        }
        for q in &self.queues {
            let fifo = q.name.ends_with(".fifo");
            let dlq = QueueAttributes {
                fifo,
                retention_seconds: evilent_broker::limits::MAX_RETENTION,
                ..QueueAttributes::default()
            };
            port.create_queue(&q.dead_letter_queue, &dlq).await?;
            let attributes = QueueAttributes {
                fifo,
                visibility_timeout: q.visibility_timeout,
                redrive: Some(RedrivePolicy {
                    dead_letter_queue: q.dead_letter_queue.clone(),
                    max_receive_count: MAX_RECEIVE_COUNT,
                }),
                ..QueueAttributes::default()
            };
            port.create_queue(&q.name, &attributes).await?;
            let filter: Option<Vec<&str>> = q
                .event_types
                .as_ref()
                .map(|t| t.iter().map(String::as_str).collect());
            port.subscribe(&q.topic, &q.name, filter.as_deref()).await?;
        }
        Ok(())
    }
}
