//! The ports: what a service needs from a broker, as two traits.
//!
//! - [`QueuePort`]: SQS's operations on queues, plus creating queues, topics
//!   and subscriptions (so tests and `up` can build the topology).
//! - [`Publisher`]: publishing to a topic (SNS), which the outbox relay uses.
//!
//! Both speak the vocabulary of `evilent-broker`'s [`model`](evilent_broker::model)
//! (re-exported here). The embedded adapter ([`crate::embedded`]) forwards
//! to the in-process broker; the SNS/SQS adapter translates to the AWS SDK.
//! One conformance suite ([`crate::conformance`]) holds every adapter to the
//! same behaviour.

use async_trait::async_trait;
pub use evilent_broker::model::*;

/// The error of every port operation: SQS's error codes.
pub type QueueError = BrokerError;

/// SQS's queue operations (and SNS's topic set-up).
#[async_trait]
pub trait QueuePort: Send + Sync + 'static {
    /// A short name of the backend, for logs and test output (`embedded`, `sqs`).
    fn backend(&self) -> &'static str;

    async fn create_queue(
        &self,
        name: &str,
        attributes: &QueueAttributes,
    ) -> Result<(), QueueError>;
    async fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes, QueueError>;
    async fn create_topic(&self, name: &str, fifo: bool) -> Result<(), QueueError>;
    async fn subscribe(
        &self,
        topic: &str,
        queue: &str,
        event_types: Option<&[&str]>,
    ) -> Result<(), QueueError>;

    async fn send(&self, queue: &str, request: &SendRequest) -> Result<SendOutcome, QueueError>;
    async fn send_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError>;
    async fn receive(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<Message>, QueueError>;
    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError>;
    async fn delete_batch(
        &self,
        queue: &str,
        receipts: &[BatchEntry<String>],
    ) -> Result<Vec<BatchResult<()>>, QueueError>;
    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError>;
    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<(String, u32)>],
    ) -> Result<Vec<BatchResult<()>>, QueueError>;
    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError>;
    async fn purge(&self, queue: &str) -> Result<(), QueueError>;

    /// Moves every message of dead-letter queue `dlq` back to `queue` on the
    /// server side, if the backend can (SQS's `StartMessageMoveTask`);
    /// `Ok(None)` when it cannot, and the caller moves them itself.
    async fn start_move(&self, _dlq: &str, _queue: &str) -> Result<Option<u64>, QueueError> {
        Ok(None)
    }
}

/// Publishing to topics.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publishes up to 10 messages to `topic`; each entry succeeds or fails on its own.
    async fn publish_batch(
        &self,
        topic: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError>;

    /// Publishes several batches (each of up to 10 messages, each to its
    /// topic): one result per batch, in order. By default every batch is
    /// its own [`Publisher::publish_batch`], all in flight at once (on SNS,
    /// a request each); a backend that can take them together overrides it
    /// (the embedded broker: one transaction).
    async fn publish_batches(
        &self,
        batches: &[(&str, &[BatchEntry<SendRequest>])],
    ) -> Vec<Result<Vec<BatchResult<SendOutcome>>, QueueError>> {
        crate::join::join_all(
            batches
                .iter()
                .map(|(topic, entries)| self.publish_batch(topic, entries))
                .collect(),
        )
        .await
    }
}
