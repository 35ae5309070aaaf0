//! The transactional outbox and its relay: no event is lost between the
//! database and the broker.
//!
//! A service never publishes from a request. It appends its events to the
//! `outbox` table in the transaction that changes its state
//! ([`sqlite::append`]), commits, and pokes the relay ([`OutboxRelay::waker`]).
//! The relay then:
//! - publishes at once (the fast path): it claims up to 100 due rows, sends
//!   them in batches of 10 (SNS's limit) all in flight together, and marks
//!   the accepted ones published in one write;
//! - also sweeps on a timer, so rows left behind by a crash between commit
//!   and publish, or by a failed publish, go out anyway;
//! - marks published only the entries the broker accepted: a batch can
//!   partly fail, and the failed entries are retried with backoff;
//! - keeps one aggregate's events in order: a batch holds at most the
//!   oldest unpublished event of each aggregate, so a later event never
//!   overtakes an earlier one that failed;
//! - keeps published rows for a retention period (the event history) and then prunes them.
//!
//! The store behind the relay is a trait, [`OutboxStore`]; SQLite's is in
//! [`sqlite`], PostgreSQL's and MongoDB's come with those backends.

pub mod conformance;
pub mod sqlite;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use evilent_broker::{Attributes, BatchEntry, SendRequest, limits};
use tokio::sync::Notify;

use crate::port::{Publisher, QueueError};

/// How often a running relay prunes published rows past retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One event waiting in (or published from) the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Position in the outbox.
    pub id: i64,
    pub topic: String,
    pub aggregate_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub attributes: Attributes,
    pub attempts: u32,
}

/// Why the outbox store failed.
#[derive(Debug, thiserror::Error)]
#[error("outbox store: {0}")]
pub struct OutboxError(pub String);

/// Where outbox rows live.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Up to `limit` entries due for publishing, in outbox order, at most one
    /// per aggregate (the oldest unpublished one of each).
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError>;
    /// Marks entries published.
    async fn mark_published(&self, ids: &[i64]) -> Result<(), OutboxError>;
    /// Records a failed attempt; the entry is due again after `retry_in`.
    async fn mark_failed(
        &self,
        ids: &[i64],
        error: &str,
        retry_in: Duration,
    ) -> Result<(), OutboxError>;
    /// Deletes entries published more than `retention` ago; returns how many.
    async fn prune(&self, retention: Duration) -> Result<u64, OutboxError>;
    /// Unpublished entries.
    async fn unpublished(&self) -> Result<u64, OutboxError>;
}

/// Relay settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How often to look for rows left behind when nobody pokes the relay.
    pub sweep_interval: Duration,
    /// How long published rows are kept.
    pub retention: Duration,
    /// First retry delay after a failed publish; doubles per attempt.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Most entries one step claims. They go out in batches of 10, all in
    /// flight at once, and are marked published in one write: a larger
    /// claim means fewer outbox reads and writes per event.
    pub claim: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            sweep_interval: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            claim: 100,
        }
    }
}

/// What one relay step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStep {
    pub published: usize,
    pub failed: usize,
}

/// Counters of a relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub published: AtomicU64,
    pub failed: AtomicU64,
}

/// Publishes outbox rows to their topics.
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    publisher: Arc<dyn Publisher>,
    config: RelayConfig,
    waker: Arc<Notify>,
    stats: Arc<RelayStats>,
}

impl OutboxRelay {
    /// A relay from `store` to `publisher`.
    pub fn new(
        store: Arc<dyn OutboxStore>,
        publisher: Arc<dyn Publisher>,
        config: RelayConfig,
    ) -> Self {
        OutboxRelay {
            store,
            publisher,
            config,
            waker: Arc::new(Notify::new()),
            stats: Arc::new(RelayStats::default()),
        }
    }

    /// A relay poked through an existing `waker` (built before the store
    /// that pokes it, when the store needs it at construction).
    pub fn with_waker(
        store: Arc<dyn OutboxStore>,
        publisher: Arc<dyn Publisher>,
        config: RelayConfig,
        waker: Arc<Notify>,
    ) -> Self {
        OutboxRelay {
            waker,
            ..Self::new(store, publisher, config)
        }
    }

    /// Poke this after committing outbox rows: the relay publishes at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.waker.clone()
    }

    /// The relay's counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// Publishes one claim of due entries: up to [`RelayConfig::claim`]
    /// rows, sent in batches of 10 (SNS's limit) with one
    /// [`Publisher::publish_batches`] (on SNS all in flight at once, on the
    /// embedded broker one transaction), then marked published together.
    /// A claim holds at most one entry per aggregate, so batches in flight
    /// together never reorder an aggregate's events.
    pub async fn step(&self) -> Result<RelayStep, OutboxError> {
        let entries = self.store.pending(self.config.claim.max(1)).await?;
        let mut batches: Vec<(String, Vec<&OutboxEntry>)> = Vec::new();
        for entry in &entries {
            match batches
                .iter_mut()
                .find(|(topic, b)| *topic == entry.topic && b.len() < limits::MAX_BATCH)
            {
                Some((_, batch)) => batch.push(entry),
                None => batches.push((entry.topic.clone(), vec![entry])),
            }
        }
        let requests: Vec<Vec<BatchEntry<SendRequest>>> = batches
            .iter()
            .map(|(_, batch)| {
                batch
                    .iter()
                    .map(|e| BatchEntry {
                        id: e.id.to_string(),
                        entry: to_request(e),
                    })
                    .collect()
            })
            .collect();
        let sends: Vec<(&str, &[BatchEntry<SendRequest>])> = batches
            .iter()
            .zip(&requests)
            .map(|((topic, _), requests)| (topic.as_str(), requests.as_slice()))
            .collect();
        let outcomes = self.publisher.publish_batches(&sends).await;
        let mut ok = Vec::new();
        let mut failures: Vec<(usize, Vec<i64>, String)> = Vec::new();
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(results) => {
                    let mut failed = Vec::new();
                    let mut error = String::new();
                    for r in results {
                        let Ok(id) = r.id.parse::<i64>() else {
                            continue;
                        };
                        match r.result {
                            Ok(_) => ok.push(id),
                            Err(e) => {
                                error = e.to_string();
                                failed.push(id);
                            }
                        }
                    }
                    if !failed.is_empty() {
                        failures.push((index, failed, error));
                    }
                }
                Err(e) => {
                    failures.push((
                        index,
                        batches[index].1.iter().map(|e| e.id).collect(),
                        e.to_string(),
                    ));
                }
            }
        }
        if !ok.is_empty() {
            self.store.mark_published(&ok).await?;
        }
        let mut step = RelayStep {
            published: ok.len(),
            failed: 0,
        };
        for (index, failed, error) in failures {
            let (topic, batch) = &batches[index];
            let attempts = batch.iter().map(|e| e.attempts).max().unwrap_or(0);
            tracing::warn!(topic, failed = failed.len(), %error, "outbox publish failed; will retry");
            self.store
                .mark_failed(&failed, &error, self.retry_delay(attempts))
                .await?;
            step.failed += failed.len();
        }
        self.stats
            .published
            .fetch_add(step.published as u64, Ordering::Relaxed);
        self.stats
            .failed
            .fetch_add(step.failed as u64, Ordering::Relaxed);
        Ok(step)
    }

    /// Steps until nothing due is left to publish; returns how many were published.
    pub async fn drain(&self) -> Result<usize, OutboxError> {
        let mut total = 0;
        loop {
            let step = self.step().await?;
            total += step.published;
            if step.published == 0 {
                return Ok(total);
            }
        }
    }

    fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX);
        self.config
            .retry_base
            .saturating_mul(factor)
            .min(self.config.retry_max)
    }

    /// Runs until `shutdown` resolves: publishes when poked, sweeps on a
    /// timer, prunes published rows past retention now and then.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            match self.drain().await {
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "outbox relay step failed"),
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(tokio::time::Instant::now());
                if let Err(e) = self.store.prune(self.config.retention).await {
                    tracing::error!(error = %e, "outbox prune failed");
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.waker.notified() => {}
                () = tokio::time::sleep(self.config.sweep_interval) => {}
            }
        }
    }
}

/// The broker message of an outbox entry. On a FIFO topic the group is the
/// aggregate and the deduplication id the event id.
fn to_request(e: &OutboxEntry) -> SendRequest {
    let mut request = SendRequest {
        body: e.body.clone(),
        attributes: e.attributes.clone(),
        ..SendRequest::default()
    };
    if e.topic.ends_with(".fifo") {
        request.group_id = Some(e.aggregate_id.clone());
        request.deduplication_id = Some(e.event_id.clone());
    }
    request
}

impl From<QueueError> for OutboxError {
    fn from(e: QueueError) -> Self {
        OutboxError(e.to_string())
    }
}
