//! The consumer runtime: at-least-once delivery in, exactly-once effect out
//! (with the inbox), SQS's economics respected.
//!
//! One [`Consumer::step`]:
//! 1. receives up to 10 messages with one long-poll call;
//! 2. runs the handler on them with bounded concurrency (on a FIFO queue:
//!    the groups in parallel, each group's messages in order);
//! 3. while handlers run past half the visibility timeout, extends the
//!    visibility of the unfinished ones (the heartbeat), so a slow handler
//!    does not see its message delivered a second time;
//! 4. deletes the successes with one batch call;
//! 5. hands failures back with a visibility that grows with the receive
//!    count (backoff); after 3 receives the queue's redrive policy moves the
//!    message to its dead-letter queue. On a FIFO queue, after a failure the
//!    rest of that group in the batch is handed back too, untouched, so
//!    order holds.
//!
//! An `eventType` this build does not know is acknowledged and counted, not
//! retried forever. Tests call [`Consumer::step`] or [`Consumer::drain`]
//! by hand; processes call [`Consumer::run`], which runs
//! [`ConsumerConfig::pollers`] receive loops at once, each keeping one
//! receive ahead: the next long poll is out while a batch is handled and
//! acknowledged, so a busy queue never waits on this process between batches.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use evilent_broker::{BatchEntry, Message, ReceiveRequest, limits};
use evilent_contracts::{DecodeError, Envelope, decode};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::port::{QueueError, QueuePort};

/// What a handler did with a message; every variant acknowledges (deletes) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The effect was applied.
    Applied,
    /// Already applied before (the inbox had it): nothing done.
    Duplicate,
    /// Nothing to do with it (an unknown `eventType`, an out-of-date event).
    Ignored(String),
}

/// A handler failure: the message is retried, then dead-lettered.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Handles raw messages.
#[async_trait]
pub trait MessageHandler: Send + Sync + 'static {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError>;
}

/// Handles decoded events; wrap it in [`Events`] to get a [`MessageHandler`].
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, event: &Envelope, message: &Message) -> Result<Handled, HandlerError>;
}

/// Decodes each message body as an event for an [`EventHandler`]. Unknown
/// `eventType`s are [`Handled::Ignored`]; undecodable bodies are errors
/// (retried, then dead-lettered, where someone can look at them).
pub struct Events<H>(pub H);

#[async_trait]
impl<H: EventHandler> MessageHandler for Events<H> {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError> {
        match decode(&message.body) {
            Ok(envelope) => self.0.handle(&envelope, message).await,
            Err(DecodeError::UnknownEventType(t)) => {
                Ok(Handled::Ignored(format!("unknown eventType {t}")))
            }
            Err(e) => Err(Box::new(e)),
        }
    }
}

/// Consumer settings.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Messages per receive (1..=10).
    pub batch_size: u32,
    /// Long-poll wait per receive in [`Consumer::run`].
    pub wait: Duration,
    /// Handlers running at once, per batch.
    pub concurrency: usize,
    /// Receive loops [`Consumer::run`] runs at once. More than one keeps a
    /// busy queue flowing while a batch waits on its handlers (on a FIFO
    /// queue the broker never hands a group in flight to a second loop);
    /// on SQS each loop also long-polls an idle queue, a request per 20 s,
    /// and splits a shallow queue into smaller batches, so the default is one.
    pub pollers: usize,
    /// Visibility timeout for received messages; `None` takes the queue's.
    pub visibility_timeout: Option<u32>,
    /// Visibility given to a failed message after its first receive; doubles per receive.
    pub retry_base_seconds: u32,
    /// Longest retry visibility.
    pub retry_max_seconds: u32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            batch_size: 10,
            wait: Duration::from_secs(20),
            concurrency: 10,
            pollers: 1,
            visibility_timeout: None,
            retry_base_seconds: 1,
            retry_max_seconds: 60,
        }
    }
}

/// Counters of a consumer, for metrics and tests.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub received: AtomicU64,
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub ignored: AtomicU64,
    pub failed: AtomicU64,
    pub deleted: AtomicU64,
    pub heartbeats: AtomicU64,
}

impl ConsumerStats {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepOutcome {
    pub received: usize,
    pub acknowledged: usize,
    pub failed: usize,
    /// FIFO: handed back untouched because an earlier message of their group failed.
    pub skipped: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ack,
    Fail,
    Skip,
}

/// A batch and when it arrived (its lease runs from then).
struct Received {
    messages: Vec<Message>,
    at: tokio::time::Instant,
}

/// Consumes one queue.
pub struct Consumer {
    name: String,
    port: Arc<dyn QueuePort>,
    queue: String,
    handler: Arc<dyn MessageHandler>,
    config: ConsumerConfig,
    stats: Arc<ConsumerStats>,
    visibility: tokio::sync::OnceCell<u32>,
}

impl Consumer {
    /// A consumer named `name` (for logs) of `queue`.
    pub fn new(
        name: impl Into<String>,
        port: Arc<dyn QueuePort>,
        queue: impl Into<String>,
        handler: Arc<dyn MessageHandler>,
        config: ConsumerConfig,
    ) -> Self {
        Consumer {
            name: name.into(),
            port,
            queue: queue.into(),
            handler,
            config,
            stats: Arc::new(ConsumerStats::default()),
            visibility: tokio::sync::OnceCell::new(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// The queue consumed.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    async fn visibility_timeout(&self) -> Result<u32, QueueError> {
        if let Some(v) = self.config.visibility_timeout {
            return Ok(v);
        }
        let v = self
            .visibility
            .get_or_try_init(|| async {
                self.port
                    .queue_attributes(&self.queue)
                    .await
                    .map(|a| a.visibility_timeout)
            })
            .await?;
        Ok(*v)
    }

    /// Receives one batch, long polling up to `wait`. Cancelling this
    /// future loses nothing: what was received stays invisible until its
    /// visibility timeout and is then delivered again.
    pub async fn receive(&self, wait: Duration) -> Result<Vec<Message>, QueueError> {
        let request = ReceiveRequest {
            max_messages: self.config.batch_size.clamp(1, limits::MAX_BATCH as u32),
            visibility_timeout: self.config.visibility_timeout,
            wait: Some(wait),
        };
        let messages = self.port.receive(&self.queue, &request).await?;
        ConsumerStats::add(&self.stats.received, messages.len());
        Ok(messages)
    }

    /// Runs the handlers on a received batch and acknowledges it.
    pub async fn handle(&self, messages: &[Message]) -> Result<StepOutcome, QueueError> {
        self.handle_since(messages, tokio::time::Instant::now())
            .await
    }

    /// [`Consumer::handle`] for a batch received at `received_at`.
    async fn handle_since(
        &self,
        messages: &[Message],
        received_at: tokio::time::Instant,
    ) -> Result<StepOutcome, QueueError> {
        if messages.is_empty() {
            return Ok(StepOutcome::default());
        }
        let visibility = self.visibility_timeout().await?;
        let verdicts = self.process(messages, visibility, received_at).await;
        self.settle(messages, &verdicts).await
    }

    /// Receives one batch (long polling up to `wait`) and processes it.
    pub async fn step_with_wait(&self, wait: Duration) -> Result<StepOutcome, QueueError> {
        let messages = self.receive(wait).await?;
        self.handle(&messages).await
    }

    /// One step without waiting.
    pub async fn step(&self) -> Result<StepOutcome, QueueError> {
        self.step_with_wait(Duration::ZERO).await
    }

    /// Steps until a receive comes back empty; returns the total.
    pub async fn drain(&self) -> Result<StepOutcome, QueueError> {
        let mut total = StepOutcome::default();
        loop {
            let s = self.step().await?;
            if s.received == 0 {
                return Ok(total);
            }
            total.received += s.received;
            total.acknowledged += s.acknowledged;
            total.failed += s.failed;
            total.skipped += s.skipped;
        }
    }

    /// Consumes until `shutdown` resolves with [`ConsumerConfig::pollers`]
    /// receive loops, each one receive ahead; returns when all of them
    /// have finished what they hold.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let loops: Vec<_> = (0..self.config.pollers.max(1))
            .map(|_| {
                let mut stopped = stopped.clone();
                self.receive_loop(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
            })
            .collect();
        let signal = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        // The loops end only after the signal, so both finish.
        tokio::join!(signal, crate::join::join_all(loops));
    }

    /// One receive loop, until `shutdown` resolves, one receive ahead:
    /// while a batch is handled and acknowledged, the next long poll is
    /// already out, so the queue never waits for this process between
    /// batches. Only the long poll is interrupted; a batch in hand (and one
    /// already received ahead) is finished, handlers completed and
    /// acknowledgements sent, before returning. The batch received ahead
    /// keeps its lease: its heartbeat counts from when it was received, not
    /// from when its handlers start.
    async fn receive_loop(&self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut stopping = false;
        let mut failures = 0u32;
        let mut ahead: Option<Result<Received, QueueError>> = None;
        loop {
            let received = match ahead.take() {
                Some(r) => r,
                None if stopping => return,
                None => tokio::select! {
                    biased;
                    () = &mut shutdown => return,
                    r = self.receive_at(self.config.wait) => r,
                },
            };
            let result = match received {
                Ok(batch) if batch.messages.is_empty() => Ok(()),
                Ok(batch) => {
                    let work = self.handle_since(&batch.messages, batch.at);
                    let next = async {
                        if stopping {
                            return None;
                        }
                        tokio::select! {
                            biased;
                            () = &mut shutdown => None,
                            r = self.receive_at(self.config.wait) => Some(r),
                        }
                    };
                    let (done, next) = tokio::join!(work, next);
                    stopping |= next.is_none();
                    ahead = next;
                    done.map(|_| ())
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let pause = Duration::from_millis(100u64 << failures.min(6));
                    tracing::error!(consumer = %self.name, queue = %self.queue, error = %e, "consuming failed");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn receive_at(&self, wait: Duration) -> Result<Received, QueueError> {
        let messages = self.receive(wait).await?;
        Ok(Received {
            messages,
            at: tokio::time::Instant::now(),
        })
    }

    /// Runs the handlers; extends visibility of the ones still running (heartbeat).
    async fn process(
        &self,
        messages: &[Message],
        visibility: u32,
        received_at: tokio::time::Instant,
    ) -> Vec<Verdict> {
        let unfinished: Arc<Mutex<HashSet<usize>>> =
            Arc::new(Mutex::new((0..messages.len()).collect()));
        let semaphore = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        // Lanes run in parallel; messages within a lane in order. A standard
        // queue gives each message its own lane; a FIFO queue one lane per group.
        let mut lanes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let lane = match &m.group_id {
                Some(g) if self.queue.ends_with(".fifo") => g.clone(),
                _ => format!("\u{0}{i}"),
            };
            lanes.entry(lane).or_default().push(i);
        }
        let mut set = JoinSet::new();
        for (_, indexes) in lanes {
            let lane: Vec<(usize, Message)> =
                indexes.iter().map(|i| (*i, messages[*i].clone())).collect();
            let handler = self.handler.clone();
            let semaphore = semaphore.clone();
            let unfinished = unfinished.clone();
            let stats = self.stats.clone();
            let name = self.name.clone();
            set.spawn(async move {
                let mut out = Vec::with_capacity(lane.len());
                let mut failed = false;
                for (i, message) in lane {
                    if failed {
                        out.push((i, Verdict::Skip));
                        unfinished
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(&i);
                        continue;
                    }
                    let verdict = match semaphore.acquire().await {
                        Ok(_permit) => run_handler(&*handler, &message, &stats, &name).await,
                        Err(_) => Verdict::Fail,
                    };
                    failed = verdict == Verdict::Fail;
                    unfinished
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&i);
                    out.push((i, verdict));
                }
                out
            });
        }
        let mut verdicts = vec![Verdict::Fail; messages.len()];
        let beat = Duration::from_millis(u64::from(visibility.max(1)) * 500);
        let mut ticker = tokio::time::interval_at(received_at + beat, beat);
        loop {
            tokio::select! {
                joined = set.join_next() => match joined {
                    Some(Ok(lane)) => for (i, v) in lane { verdicts[i] = v },
                    Some(Err(e)) => tracing::error!(consumer = %self.name, error = %e, "handler task panicked"),
                    None => break,
                },
                _ = ticker.tick(), if visibility > 0 => {
                    let running: Vec<usize> = unfinished.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().copied().collect();
                    let entries: Vec<BatchEntry<(String, u32)>> = running.iter()
                        .map(|i| BatchEntry { id: i.to_string(), entry: (messages[*i].receipt_handle.clone(), visibility) })
                        .collect();
                    for chunk in entries.chunks(limits::MAX_BATCH) {
                        match self.port.change_visibility_batch(&self.queue, chunk).await {
                            Ok(_) => ConsumerStats::add(&self.stats.heartbeats, chunk.len()),
                            Err(e) => tracing::warn!(consumer = %self.name, error = %e, "visibility heartbeat failed"),
                        }
                    }
                }
            }
        }
        verdicts
    }

    /// Deletes the acknowledged, hands back the failed (with backoff) and the skipped (at once).
    async fn settle(
        &self,
        messages: &[Message],
        verdicts: &[Verdict],
    ) -> Result<StepOutcome, QueueError> {
        let mut outcome = StepOutcome {
            received: messages.len(),
            ..StepOutcome::default()
        };
        let mut deletes = Vec::new();
        let mut returns = Vec::new();
        for (i, (m, v)) in messages.iter().zip(verdicts).enumerate() {
            match v {
                Verdict::Ack => {
                    outcome.acknowledged += 1;
                    deletes.push(BatchEntry {
                        id: i.to_string(),
                        entry: m.receipt_handle.clone(),
                    });
                }
                Verdict::Fail => {
                    outcome.failed += 1;
                    returns.push(BatchEntry {
                        id: i.to_string(),
                        entry: (m.receipt_handle.clone(), self.backoff(m.receive_count)),
                    });
                }
                Verdict::Skip => {
                    outcome.skipped += 1;
                    returns.push(BatchEntry {
                        id: i.to_string(),
                        entry: (m.receipt_handle.clone(), 0),
                    });
                }
            }
        }
        for chunk in deletes.chunks(limits::MAX_BATCH) {
            let results = self.port.delete_batch(&self.queue, chunk).await?;
            let ok = results.iter().filter(|r| r.result.is_ok()).count();
            ConsumerStats::add(&self.stats.deleted, ok);
            for r in results.iter().filter(|r| r.result.is_err()) {
                // The message comes back and the inbox makes the redelivery a no-op.
                tracing::warn!(consumer = %self.name, entry = %r.id, "delete failed; the message will be redelivered");
            }
        }
        for chunk in returns.chunks(limits::MAX_BATCH) {
            // A message whose lease already ran out cannot be changed; it is visible anyway.
            if let Err(e) = self.port.change_visibility_batch(&self.queue, chunk).await {
                tracing::warn!(consumer = %self.name, error = %e, "could not hand failed messages back early");
            }
        }
        Ok(outcome)
    }

    fn backoff(&self, receive_count: u32) -> u32 {
        let factor = 1u32
            .checked_shl(receive_count.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        self.config
            .retry_base_seconds
            .saturating_mul(factor)
            .min(self.config.retry_max_seconds)
    }
}

async fn run_handler(
    handler: &dyn MessageHandler,
    message: &Message,
    stats: &ConsumerStats,
    name: &str,
) -> Verdict {
    match handler.handle(message).await {
        Ok(Handled::Applied) => {
            ConsumerStats::add(&stats.applied, 1);
            Verdict::Ack
        }
        Ok(Handled::Duplicate) => {
            ConsumerStats::add(&stats.duplicates, 1);
            Verdict::Ack
        }
        Ok(Handled::Ignored(reason)) => {
            ConsumerStats::add(&stats.ignored, 1);
            tracing::info!(consumer = name, message_id = %message.message_id, %reason, "message ignored");
            Verdict::Ack
        }
        Err(e) => {
            ConsumerStats::add(&stats.failed, 1);
            tracing::warn!(consumer = name, message_id = %message.message_id, receive_count = message.receive_count, error = %e, "handler failed");
            Verdict::Fail
        }
    }
}
