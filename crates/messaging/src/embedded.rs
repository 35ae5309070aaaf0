//! The embedded adapter: the ports, answered by the in-process [`Broker`].

use async_trait::async_trait;
use evilent_broker::Broker;

use crate::port::{
    BatchEntry, BatchResult, Message, Publisher, QueueAttributes, QueueCounts, QueueError,
    QueuePort, ReceiveRequest, SendOutcome, SendRequest,
};

/// [`QueuePort`] and [`Publisher`] on the embedded broker.
#[derive(Clone)]
pub struct EmbeddedBroker {
    broker: Broker,
}

impl EmbeddedBroker {
    /// Wraps a broker.
    pub fn new(broker: Broker) -> Self {
        EmbeddedBroker { broker }
    }

    /// The broker underneath.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
}

#[async_trait]
impl QueuePort for EmbeddedBroker {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn create_queue(
        &self,
        name: &str,
        attributes: &QueueAttributes,
    ) -> Result<(), QueueError> {
        self.broker.create_queue(name, attributes)
    }

    async fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes, QueueError> {
        self.broker.queue_attributes(queue)
    }

    async fn create_topic(&self, name: &str, fifo: bool) -> Result<(), QueueError> {
        self.broker.create_topic(name, fifo)
    }

    async fn subscribe(
        &self,
        topic: &str,
        queue: &str,
        event_types: Option<&[&str]>,
    ) -> Result<(), QueueError> {
        self.broker.subscribe(topic, queue, event_types)
    }

    async fn send(&self, queue: &str, request: &SendRequest) -> Result<SendOutcome, QueueError> {
        self.broker.send(queue, request)
    }

    async fn send_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError> {
        self.broker.send_batch(queue, entries)
    }

    async fn receive(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<Message>, QueueError> {
        self.broker.receive(queue, request).await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        self.broker.delete(queue, receipt_handle)
    }

    async fn delete_batch(
        &self,
        queue: &str,
        receipts: &[BatchEntry<String>],
    ) -> Result<Vec<BatchResult<()>>, QueueError> {
        self.broker.delete_batch(queue, receipts)
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError> {
        self.broker
            .change_visibility(queue, receipt_handle, seconds)
    }

    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<(String, u32)>],
    ) -> Result<Vec<BatchResult<()>>, QueueError> {
        self.broker.change_visibility_batch(queue, entries)
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        self.broker.counts(queue)
    }

    async fn purge(&self, queue: &str) -> Result<(), QueueError> {
        self.broker.purge(queue).map(|_| ())
    }
}

#[async_trait]
impl Publisher for EmbeddedBroker {
    async fn publish_batch(
        &self,
        topic: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError> {
        self.broker.publish_batch(topic, entries)
    }

    async fn publish_batches(
        &self,
        batches: &[(&str, &[BatchEntry<SendRequest>])],
    ) -> Vec<Result<Vec<BatchResult<SendOutcome>>, QueueError>> {
        self.broker.publish_batches(batches)
    }
}
