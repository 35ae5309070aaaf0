//! Outbox → broker → consumer → inbox, end to end, with faults injected.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use evilent_broker::{
    Broker, BrokerOptions, Message, MessageAttribute, QueueAttributes, SendRequest,
};
use evilent_contracts::{Envelope, Money, ProductCreated, Topic};
use evilent_messaging::outbox::sqlite::{SqliteOutbox, append};
use evilent_messaging::{
    Consumer, ConsumerConfig, EmbeddedBroker, EventHandler, Events, Faults, Faulty, Handled,
    HandlerError, MessageHandler, OutboxRelay, OutboxStore, QueuePort, RelayConfig, SqliteDb, dlq,
    inbox, topology,
};

const QUEUE: &str = "product-events-queue";

/// The embedded broker with DESIGN.md's topology, in a file of a temp dir.
fn embedded(dir: &tempfile::TempDir) -> EmbeddedBroker {
    let broker =
        Broker::open_with(&dir.path().join("broker.db"), BrokerOptions::default()).unwrap();
    EmbeddedBroker::new(broker)
}

async fn topology(port: &dyn QueuePort, visibility: u32) {
    let mut t = topology::Topology::design();
    for q in &mut t.queues {
        q.visibility_timeout = visibility;
    }
    t.apply(port).await.unwrap();
}

fn product_event(i: usize) -> Envelope {
    Envelope::new(ProductCreated {
        product_id: format!("prod-{}", i % 97),
        user_id: format!("user-{}", i % 13),
        category_id: "cat-1".into(),
        price: Money::from_minor(i as i64 * 100 + 99),
        name: Some(format!("product {i}")),
    })
}

/// Writes `n` events through the producer's outbox, ten per transaction,
/// each transaction also changing the producer's own state.
fn produce(db: &SqliteDb, n: usize) {
    db.with(|conn| {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS products (n INTEGER)")
            .unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
            let tx = conn.transaction().unwrap();
            for i in chunk {
                tx.execute("INSERT INTO products (n) VALUES (?1)", [*i as i64])
                    .unwrap();
                append(&tx, Topic::ProductEvents.name(), &product_event(*i), None).unwrap();
            }
            tx.commit().unwrap();
        }
    });
}

/// A consumer whose effect is one row per applied event (no uniqueness on
/// purpose: a double application would show as an extra row).
struct CountEffects {
    db: SqliteDb,
}

#[async_trait]
impl EventHandler for CountEffects {
    async fn handle(&self, event: &Envelope, _message: &Message) -> Result<Handled, HandlerError> {
        self.db.with(|conn| {
            let tx = conn.transaction()?;
            if !inbox::claim(&tx, "effects", &event.meta.event_id)? {
                return Ok(Handled::Duplicate);
            }
            tx.execute(
                "INSERT INTO effects (event_id) VALUES (?1)",
                [event.meta.event_id.to_string()],
            )?;
            tx.commit()?;
            Ok(Handled::Applied)
        })
    }
}

fn effects_db() -> SqliteDb {
    let db = SqliteDb::in_memory().unwrap();
    db.with(|c| c.execute_batch("CREATE TABLE effects (event_id TEXT NOT NULL)"))
        .unwrap();
    db
}

fn effect_counts(db: &SqliteDb) -> (i64, i64) {
    db.with(|c| {
        c.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM effects",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_under_faults_give_exactly_thousand_effects() {
    let dir = tempfile::tempdir().unwrap();
    let broker = embedded(&dir);
    topology(&broker, 1).await;
    let faults = Faults {
        duplicate: 0.3,
        reorder: 0.3,
        lose_delete: 0.3,
        fail_batch_entry: 0.3,
        expire_visibility: 0.1,
        seed: 0x5eed,
    };
    let faulty = Arc::new(Faulty::new(broker.clone(), faults));

    let producer = SqliteDb::open(&dir.path().join("products.db")).unwrap();
    produce(&producer, 1000);
    let relay_config = RelayConfig {
        retry_base: Duration::from_millis(5),
        retry_max: Duration::from_millis(50),
        ..RelayConfig::default()
    };
    let outbox = Arc::new(SqliteOutbox::new(producer.clone()));
    let relay = OutboxRelay::new(outbox.clone(), faulty.clone(), relay_config);

    let effects = effects_db();
    let consumer = Consumer::new(
        "effects",
        faulty.clone(),
        QUEUE,
        Arc::new(Events(CountEffects {
            db: effects.clone(),
        })),
        ConsumerConfig {
            retry_base_seconds: 0,
            concurrency: 8,
            ..ConsumerConfig::default()
        },
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        relay.drain().await.unwrap();
        consumer
            .step_with_wait(Duration::from_millis(200))
            .await
            .unwrap();
        let pending = outbox.unpublished().await.unwrap();
        let counts = broker.counts(QUEUE).await.unwrap();
        let dead = broker.counts("product-events-queue-dlq").await.unwrap();
        if pending == 0 && counts.visible + counts.in_flight + counts.delayed == 0 {
            if dead.visible > 0 {
                // Lost deletes made some messages come back often enough to
                // be dead-lettered although applied: redrive them, as ops would.
                dlq::redrive(&broker, QUEUE, None).await.unwrap();
                continue;
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not drained: outbox {pending}, queue {counts:?}, dlq {dead:?}"
        );
    }
    let (rows, distinct) = effect_counts(&effects);
    let stats = &faulty.stats;
    eprintln!(
        "faults: {} duplicated, {} reordered, {} held back, {} lost deletes, {} failed entries, {} expired; consumer saw {} duplicates",
        stats.duplicated.load(Ordering::Relaxed),
        stats.reordered.load(Ordering::Relaxed),
        stats.held_back.load(Ordering::Relaxed),
        stats.lost_deletes.load(Ordering::Relaxed),
        stats.failed_entries.load(Ordering::Relaxed),
        stats.expired.load(Ordering::Relaxed),
        consumer.stats().duplicates.load(Ordering::Relaxed),
    );
    assert_eq!(distinct, 1000, "every event took effect");
    assert_eq!(rows, 1000, "no event took effect twice");
    assert!(
        stats.duplicated.load(Ordering::Relaxed) > 50
            && stats.lost_deletes.load(Ordering::Relaxed) > 50
    );
    assert!(
        consumer.stats().duplicates.load(Ordering::Relaxed) > 0,
        "the inbox absorbed duplicates"
    );
}

/// Fails every message whose body contains "poison" until told otherwise.
struct Picky {
    poison_calls: AtomicU32,
    cured: AtomicBool,
    db: SqliteDb,
}

#[async_trait]
impl MessageHandler for Picky {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError> {
        if message.body.contains("poison") {
            self.poison_calls.fetch_add(1, Ordering::SeqCst);
            if !self.cured.load(Ordering::SeqCst) {
                return Err("cannot digest poison".into());
            }
        }
        self.db.with(|c| {
            c.execute(
                "INSERT INTO effects (event_id) VALUES (?1)",
                [&message.body],
            )
        })?;
        Ok(Handled::Applied)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_is_dead_lettered_after_exactly_three_receives_and_redrive_returns_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Arc::new(embedded(&dir));
    topology(&*broker, 30).await;
    for body in ["good 1", "poison", "good 2"] {
        broker.send(QUEUE, &SendRequest::new(body)).await.unwrap();
    }
    let handler = Arc::new(Picky {
        poison_calls: AtomicU32::new(0),
        cured: AtomicBool::new(false),
        db: effects_db(),
    });
    let consumer = Consumer::new(
        "picky",
        broker.clone(),
        QUEUE,
        handler.clone(),
        ConsumerConfig {
            retry_base_seconds: 0,
            ..ConsumerConfig::default()
        },
    );
    for _ in 0..10 {
        consumer.step().await.unwrap();
    }
    assert_eq!(
        handler.poison_calls.load(Ordering::SeqCst),
        3,
        "handled exactly 3 times"
    );
    assert_eq!(broker.counts(QUEUE).await.unwrap().visible, 0);
    let dead = dlq::list(&*broker, QUEUE, 10).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["poison"]
    );
    assert_eq!(
        dlq::list(&*broker, QUEUE, 10).await.unwrap().len(),
        1,
        "listing leaves it in place"
    );

    handler.cured.store(true, Ordering::SeqCst);
    assert_eq!(dlq::redrive(&*broker, QUEUE, None).await.unwrap(), 1);
    assert!(dlq::list(&*broker, QUEUE, 10).await.unwrap().is_empty());
    consumer.drain().await.unwrap();
    let mut bodies: Vec<String> = handler
        .db
        .with(|c| {
            c.prepare("SELECT event_id FROM effects")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()
        })
        .unwrap();
    bodies.sort();
    assert_eq!(bodies, vec!["good 1", "good 2", "poison"], "nothing lost");
}

struct Recorder {
    seen: std::sync::Mutex<Vec<String>>,
    fail_on: Option<String>,
    delay: Duration,
}

#[async_trait]
impl MessageHandler for Recorder {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError> {
        tokio::time::sleep(self.delay).await;
        self.seen.lock().unwrap().push(message.body.clone());
        if self.fail_on.as_deref() == Some(message.body.as_str()) {
            return Err("failing on purpose".into());
        }
        Ok(Handled::Applied)
    }
}

fn recorder(fail_on: Option<&str>, delay: Duration) -> Arc<Recorder> {
    Arc::new(Recorder {
        seen: Default::default(),
        fail_on: fail_on.map(str::to_owned),
        delay,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_failure_hands_back_the_rest_of_its_group_only() {
    let broker = Arc::new(EmbeddedBroker::new(
        Broker::in_memory(Arc::new(evilent_broker::SystemClock)).unwrap(),
    ));
    broker
        .create_queue("q.fifo", &QueueAttributes::fifo())
        .await
        .unwrap();
    for (i, (body, group)) in [
        ("a1", "a"),
        ("a2", "a"),
        ("b1", "b"),
        ("a3", "a"),
        ("b2", "b"),
    ]
    .iter()
    .enumerate()
    {
        broker
            .send(
                "q.fifo",
                &SendRequest::new(*body).group(*group).dedup(i.to_string()),
            )
            .await
            .unwrap();
    }
    let handler = recorder(Some("a2"), Duration::ZERO);
    let consumer = Consumer::new(
        "fifo",
        broker.clone(),
        "q.fifo",
        handler.clone(),
        ConsumerConfig::default(),
    );
    let step = consumer.step().await.unwrap();
    assert_eq!(
        (step.received, step.acknowledged, step.failed, step.skipped),
        (5, 3, 1, 1)
    );
    let seen = handler.seen.lock().unwrap().clone();
    assert!(
        !seen.contains(&"a3".to_string()),
        "a3 must not run after a2 failed: {seen:?}"
    );
    assert!(seen.contains(&"b2".to_string()), "group b goes on");
    // a2 comes back first (after its backoff of 1 s), then a3.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    handler.seen.lock().unwrap().clear();
    let handler2 = recorder(None, Duration::ZERO);
    let consumer2 = Consumer::new(
        "fifo",
        broker.clone(),
        "q.fifo",
        handler2.clone(),
        ConsumerConfig::default(),
    );
    consumer2.drain().await.unwrap();
    assert_eq!(*handler2.seen.lock().unwrap(), vec!["a2", "a3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handler_keeps_its_message_with_a_heartbeat() {
    let broker = Arc::new(EmbeddedBroker::new(
        Broker::in_memory(Arc::new(evilent_broker::SystemClock)).unwrap(),
    ));
    broker
        .create_queue(
            "q",
            &QueueAttributes {
                visibility_timeout: 1,
                ..QueueAttributes::default()
            },
        )
        .await
        .unwrap();
    broker.send("q", &SendRequest::new("slow")).await.unwrap();
    let handler = recorder(None, Duration::from_millis(2500));
    let consumer = Arc::new(Consumer::new(
        "slow",
        broker.clone(),
        "q",
        handler.clone(),
        ConsumerConfig::default(),
    ));
    let running = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.step().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let other = broker
        .receive("q", &evilent_broker::ReceiveRequest::up_to(10))
        .await
        .unwrap();
    assert!(
        other.is_empty(),
        "the lease was extended past the 1 s visibility timeout"
    );
    let step = running.await.unwrap();
    assert_eq!(step.acknowledged, 1);
    assert!(consumer.stats().heartbeats.load(Ordering::Relaxed) >= 1);
    assert_eq!(broker.counts("q").await.unwrap(), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_event_type_is_acknowledged_and_counted_bad_event_retried() {
    let broker = Arc::new(EmbeddedBroker::new(
        Broker::in_memory(Arc::new(evilent_broker::SystemClock)).unwrap(),
    ));
    topology(&*broker, 30).await;
    let attr = MessageAttribute::string("FromTheFuture");
    broker
        .send(
            QUEUE,
            &SendRequest::new(r#"{"eventType":"FromTheFuture","x":1}"#)
                .attribute("eventType", attr),
        )
        .await
        .unwrap();
    broker
        .send(
            QUEUE,
            &SendRequest::new(r#"{"eventType":"ProductCreated","productId":"p"}"#),
        )
        .await
        .unwrap();
    let consumer = Consumer::new(
        "effects",
        broker.clone(),
        QUEUE,
        Arc::new(Events(CountEffects { db: effects_db() })),
        ConsumerConfig {
            retry_base_seconds: 0,
            ..ConsumerConfig::default()
        },
    );
    for _ in 0..6 {
        consumer.step().await.unwrap();
    }
    let stats = consumer.stats();
    assert_eq!(
        stats.ignored.load(Ordering::Relaxed),
        1,
        "unknown type acknowledged once"
    );
    assert_eq!(
        stats.failed.load(Ordering::Relaxed),
        3,
        "the malformed event was retried 3 times"
    );
    assert_eq!(
        broker
            .counts("product-events-queue-dlq")
            .await
            .unwrap()
            .visible,
        1,
        "then dead-lettered"
    );
    assert_eq!(broker.counts(QUEUE).await.unwrap(), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_keeps_each_aggregates_order_through_failing_entries() {
    let dir = tempfile::tempdir().unwrap();
    let broker = embedded(&dir);
    topology(&broker, 30).await;
    let faulty = Arc::new(Faulty::new(
        broker.clone(),
        Faults {
            fail_batch_entry: 0.5,
            seed: 7,
            ..Faults::default()
        },
    ));
    let producer = SqliteDb::in_memory().unwrap();
    // Three aggregates, ten versions each, interleaved.
    producer.with(|conn| {
        for v in 1..=10u64 {
            for agg in ["p-a", "p-b", "p-c"] {
                let env = Envelope::new(evilent_contracts::ProductStockUpdated {
                    product_id: agg.into(),
                    user_id: "u".into(),
                    stock: v as u32,
                    delta: 1,
                });
                let env = Envelope {
                    meta: env.meta.aggregate_version(v),
                    ..env
                };
                append(
                    conn,
                    Topic::ProductEvents.name(),
                    &env,
                    Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                )
                .unwrap();
            }
        }
    });
    let outbox = Arc::new(SqliteOutbox::new(producer.clone()));
    let config = RelayConfig {
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        ..RelayConfig::default()
    };
    let relay = OutboxRelay::new(outbox.clone(), faulty.clone(), config);
    while outbox.unpublished().await.unwrap() > 0 {
        relay.step().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(faulty.stats.failed_entries.load(Ordering::Relaxed) > 5);
    let mut versions: std::collections::HashMap<String, Vec<u64>> = Default::default();
    loop {
        let got = broker
            .receive(
                QUEUE,
                &evilent_broker::ReceiveRequest::up_to(10).visibility(600),
            )
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            assert!(
                m.attributes.contains_key("traceparent")
                    && m.attributes["eventType"].value == "ProductStockUpdated"
            );
            let env = evilent_contracts::decode(&m.body).unwrap();
            versions
                .entry(env.event.aggregate_id().to_owned())
                .or_default()
                .push(env.meta.aggregate_version.unwrap());
        }
    }
    for (agg, v) in versions {
        assert_eq!(
            v,
            (1..=10).collect::<Vec<_>>(),
            "aggregate {agg} published out of order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sweeps_rows_nobody_announced_and_prunes_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Arc::new(embedded(&dir));
    topology(&*broker, 30).await;
    let producer = SqliteDb::in_memory().unwrap();
    let outbox = Arc::new(SqliteOutbox::new(producer.clone()));
    let config = RelayConfig {
        sweep_interval: Duration::from_millis(50),
        ..RelayConfig::default()
    };
    let relay = Arc::new(OutboxRelay::new(outbox.clone(), broker.clone(), config));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.clone().run(async move {
        let _ = stopped.await;
    }));
    // As if a process had committed these and crashed before poking the relay.
    produce(&producer, 5);
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.counts(QUEUE).await.unwrap().visible < 5 {
        assert!(
            Instant::now() < deadline,
            "the sweep never published the rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(outbox.unpublished().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let rows: Vec<(i64, Option<i64>)> = producer.with(|c| {
        c.prepare("SELECT id, published_at FROM outbox")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    });
    eprintln!("{rows:?} now {}", chrono::Utc::now().timestamp_millis());
    assert_eq!(
        outbox.prune(Duration::ZERO).await.unwrap(),
        5,
        "published rows pruned past retention"
    );
}

/// A queue on a fresh in-memory broker, with `n` messages in it.
async fn queue_with(n: usize, visibility_timeout: u32) -> Arc<EmbeddedBroker> {
    let broker = Arc::new(EmbeddedBroker::new(
        Broker::in_memory(Arc::new(evilent_broker::SystemClock)).unwrap(),
    ));
    broker
        .create_queue(
            "q",
            &QueueAttributes {
                visibility_timeout,
                ..QueueAttributes::default()
            },
        )
        .await
        .unwrap();
    for i in 0..n {
        broker
            .send("q", &SendRequest::new(format!("m{i}")))
            .await
            .unwrap();
    }
    broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_finishes_the_batch_received_ahead_when_stopped() {
    let broker = queue_with(20, 30).await;
    let handler = recorder(None, Duration::from_millis(300));
    let consumer = Consumer::new(
        "ahead",
        broker.clone(),
        "q",
        handler.clone(),
        ConsumerConfig::default(),
    );
    // Stop while the first batch is in its handlers: the second batch has
    // already been received ahead, and must be handled too, not stranded
    // in flight until its visibility timeout.
    consumer
        .run(tokio::time::sleep(Duration::from_millis(100)))
        .await;
    let mut seen = handler.seen.lock().unwrap().clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20, "both batches handled: {seen:?}");
    assert_eq!(broker.counts("q").await.unwrap(), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_received_ahead_keeps_its_lease_while_it_waits() {
    // Visibility 1 s; a batch takes 700 ms to handle. The second batch is
    // received ahead at once and waits 700 ms before its handlers start:
    // its heartbeat must count from its receipt, or its lease runs out
    // at 1 s while it is handled and it is delivered twice.
    let broker = queue_with(20, 1).await;
    let handler = recorder(None, Duration::from_millis(700));
    let consumer = Consumer::new(
        "lease",
        broker.clone(),
        "q",
        handler.clone(),
        ConsumerConfig {
            // The long poll out while the second batch is handled spans
            // the moment its lease would run out.
            wait: Duration::from_secs(2),
            ..ConsumerConfig::default()
        },
    );
    let done = {
        let handler = handler.clone();
        async move {
            while handler.seen.lock().unwrap().len() < 20 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    consumer.run(done).await;
    // Anything delivered twice would come back within the next second.
    let stats = consumer.stats();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(consumer.step().await.unwrap().received, 0);
    assert_eq!(handler.seen.lock().unwrap().len(), 20);
    assert_eq!(stats.received.load(Ordering::Relaxed), 20);
    assert!(stats.heartbeats.load(Ordering::Relaxed) >= 10);
    assert_eq!(broker.counts("q").await.unwrap(), Default::default());
}

#[tokio::test]
async fn one_relay_step_sends_its_claim_in_batches_of_ten_and_keeps_each_aggregate_in_order() {
    // 250 events over 97 products: a step claims at most one event per
    // aggregate, so the first step takes 97 (in ten batches), and each
    // product's events still go out oldest first, one step apart.
    let dir = tempfile::tempdir().unwrap();
    let broker = embedded(&dir);
    topology(&broker, 30).await;
    let producer = SqliteDb::open(&dir.path().join("products.db")).unwrap();
    produce(&producer, 250);
    let relay = OutboxRelay::new(
        Arc::new(SqliteOutbox::new(producer.clone())),
        Arc::new(broker.clone()),
        RelayConfig::default(),
    );
    let first = relay.step().await.unwrap();
    assert_eq!((first.published, first.failed), (97, 0));
    let mut steps = 1;
    while relay.step().await.unwrap().published > 0 {
        steps += 1;
    }
    assert_eq!(steps, 3, "250 events of 97 aggregates: 97 + 97 + 56");
    let consumer = Consumer::new(
        "order",
        Arc::new(broker.clone()),
        QUEUE,
        Arc::new(Events(CountEffects { db: effects_db() })),
        ConsumerConfig::default(),
    );
    let mut seen: Vec<Envelope> = Vec::new();
    loop {
        let batch = consumer.receive(Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(
            batch
                .iter()
                .map(|m| evilent_contracts::decode(&m.body).unwrap()),
        );
        consumer.handle(&batch).await.unwrap();
    }
    assert_eq!(seen.len(), 250);
    // Per product, the names (product 0, 97, 194, ...) arrive in outbox order.
    let mut last: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in &seen {
        let evilent_contracts::Event::ProductCreated(p) = &e.event else {
            panic!("unexpected event {:?}", e.event.event_type());
        };
        let n: usize = p.name.as_deref().unwrap()["product ".len()..]
            .parse()
            .unwrap();
        if let Some(prev) = last.insert(p.product_id.clone(), n) {
            assert!(prev < n, "{}: {prev} then {n}", p.product_id);
        }
    }
}
