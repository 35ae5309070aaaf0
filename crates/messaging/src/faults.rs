//! A fault-injecting wrapper around any backend, for tests and benchmarks.
//!
//! It makes the network and SQS misbehave the ways they are allowed to:
//! - **duplicates**: a send or publish goes through twice (standard queues
//!   deliver at least once);
//! - **reordering**: a received batch is shuffled, and some messages are held
//!   back (hidden for a second) so they arrive after later ones;
//! - **lost deletes**: a delete reports success but the message stays, and
//!   comes back when its visibility runs out;
//! - **failing batch entries**: single entries of a send or publish batch fail
//!   and are not sent, while the rest succeed;
//! - **visibility expiry mid-handler**: a received message is made visible
//!   again at once, so another receive gets it while the first handler runs.
//!
//! FIFO queues keep their ordering guarantees: reordering and early expiry
//! apply only to standard queues. Every decision comes from one seeded RNG,
//! so a failing run can be replayed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use evilent_broker::{
    BatchEntry, BatchResult, Message, QueueAttributes, QueueCounts, ReceiveRequest, SendOutcome,
    SendRequest,
};

use crate::port::{Publisher, QueueError, QueuePort};

/// How often each fault happens (0.0..=1.0).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub duplicate: f64,
    pub reorder: f64,
    pub lose_delete: f64,
    pub fail_batch_entry: f64,
    pub expire_visibility: f64,
    pub seed: u64,
}

impl Faults {
    /// Every fault at rate `p`.
    pub fn all(p: f64, seed: u64) -> Self {
        Faults {
            duplicate: p,
            reorder: p,
            lose_delete: p,
            fail_batch_entry: p,
            expire_visibility: p,
            seed,
        }
    }
}

/// How many faults were injected.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub held_back: AtomicU64,
    pub lost_deletes: AtomicU64,
    pub failed_entries: AtomicU64,
    pub expired: AtomicU64,
}

/// A [`QueuePort`] and [`Publisher`] that injects [`Faults`] into `inner`.
pub struct Faulty<P> {
    inner: P,
    faults: Faults,
    rng: Mutex<fastrand::Rng>,
    pub stats: FaultStats,
}

impl<P> Faulty<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, faults: Faults) -> Self {
        let rng = Mutex::new(fastrand::Rng::with_seed(faults.seed));
        Faulty {
            inner,
            faults,
            rng,
            stats: FaultStats::default(),
        }
    }

    fn roll(&self, p: f64) -> bool {
        p > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .f64()
                < p
    }

    fn count(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Drops some entries (failing them) and repeats some (duplicating them).
    fn mangle_batch(&self, entries: &[BatchEntry<SendRequest>], fifo: bool) -> MangledBatch {
        let mut forward = Vec::new();
        let mut again = Vec::new();
        let mut failed = Vec::new();
        for e in entries {
            if self.roll(self.faults.fail_batch_entry) {
                Self::count(&self.stats.failed_entries, 1);
                failed.push(BatchResult {
                    id: e.id.clone(),
                    result: Err(QueueError::Internal("injected entry failure".into())),
                });
                continue;
            }
            if !fifo && self.roll(self.faults.duplicate) {
                Self::count(&self.stats.duplicated, 1);
                again.push(e.clone());
            }
            forward.push(e.clone());
        }
        (forward, again, failed)
    }
}

/// Entries to forward, entries to send a second time, and the results of the failed ones.
type MangledBatch = (
    Vec<BatchEntry<SendRequest>>,
    Vec<BatchEntry<SendRequest>>,
    Vec<BatchResult<SendOutcome>>,
);

fn is_fifo(name: &str) -> bool {
    name.ends_with(".fifo")
}

#[async_trait]
impl<P: QueuePort> QueuePort for Faulty<P> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn create_queue(
        &self,
        name: &str,
        attributes: &QueueAttributes,
    ) -> Result<(), QueueError> {
        self.inner.create_queue(name, attributes).await
    }

    async fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes, QueueError> {
        self.inner.queue_attributes(queue).await
    }

    async fn create_topic(&self, name: &str, fifo: bool) -> Result<(), QueueError> {
        self.inner.create_topic(name, fifo).await
    }

    async fn subscribe(
        &self,
        topic: &str,
        queue: &str,
        event_types: Option<&[&str]>,
    ) -> Result<(), QueueError> {
        self.inner.subscribe(topic, queue, event_types).await
    }

    async fn send(&self, queue: &str, request: &SendRequest) -> Result<SendOutcome, QueueError> {
        let outcome = self.inner.send(queue, request).await?;
        if !is_fifo(queue) && self.roll(self.faults.duplicate) {
            Self::count(&self.stats.duplicated, 1);
            self.inner.send(queue, request).await?;
        }
        Ok(outcome)
    }

    async fn send_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError> {
        let (forward, again, mut results) = self.mangle_batch(entries, is_fifo(queue));
        if !forward.is_empty() {
            results.extend(self.inner.send_batch(queue, &forward).await?);
        }
        if !again.is_empty() {
            self.inner.send_batch(queue, &again).await?;
        }
        Ok(results)
    }

    async fn receive(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<Message>, QueueError> {
        let mut messages = self.inner.receive(queue, request).await?;
        if is_fifo(queue) || messages.is_empty() {
            return Ok(messages);
        }
        if self.roll(self.faults.reorder) {
            Self::count(&self.stats.reordered, 1);
            self.rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .shuffle(&mut messages);
            if messages.len() > 1 {
                // Hold one back: it reappears after a second, behind later messages.
                if let Some(m) = messages.pop() {
                    Self::count(&self.stats.held_back, 1);
                    let _ = self
                        .inner
                        .change_visibility(queue, &m.receipt_handle, 1)
                        .await;
                }
            }
        }
        for m in &messages {
            if self.roll(self.faults.expire_visibility) {
                Self::count(&self.stats.expired, 1);
                let _ = self
                    .inner
                    .change_visibility(queue, &m.receipt_handle, 0)
                    .await;
            }
        }
        Ok(messages)
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        if self.roll(self.faults.lose_delete) {
            Self::count(&self.stats.lost_deletes, 1);
            return Ok(());
        }
        self.inner.delete(queue, receipt_handle).await
    }

    async fn delete_batch(
        &self,
        queue: &str,
        receipts: &[BatchEntry<String>],
    ) -> Result<Vec<BatchResult<()>>, QueueError> {
        let mut lost = Vec::new();
        let mut forward = Vec::new();
        for r in receipts {
            if self.roll(self.faults.lose_delete) {
                Self::count(&self.stats.lost_deletes, 1);
                lost.push(BatchResult {
                    id: r.id.clone(),
                    result: Ok(()),
                });
            } else {
                forward.push(r.clone());
            }
        }
        if !forward.is_empty() {
            lost.extend(self.inner.delete_batch(queue, &forward).await?);
        }
        Ok(lost)
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError> {
        self.inner
            .change_visibility(queue, receipt_handle, seconds)
            .await
    }

    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<(String, u32)>],
    ) -> Result<Vec<BatchResult<()>>, QueueError> {
        self.inner.change_visibility_batch(queue, entries).await
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        self.inner.counts(queue).await
    }

    async fn purge(&self, queue: &str) -> Result<(), QueueError> {
        self.inner.purge(queue).await
    }
}

#[async_trait]
impl<P: Publisher> Publisher for Faulty<P> {
    async fn publish_batch(
        &self,
        topic: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError> {
        let (forward, again, mut results) = self.mangle_batch(entries, is_fifo(topic));
        if !forward.is_empty() {
            results.extend(self.inner.publish_batch(topic, &forward).await?);
        }
        if !again.is_empty() {
            self.inner.publish_batch(topic, &again).await?;
        }
        Ok(results)
    }
}
