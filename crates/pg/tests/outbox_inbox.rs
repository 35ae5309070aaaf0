//! The outbox and inbox on PostgreSQL: two relays at once publish every row
//! exactly once and in per-aggregate order; the inbox claims once.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use evilent_broker::{Broker, QueueAttributes, ReceiveRequest, SystemClock};
use evilent_contracts::{Envelope, ProductStockUpdated, Topic};
use evilent_messaging::conformance::required;
use evilent_messaging::{
    EmbeddedBroker, Faults, Faulty, OutboxRelay, OutboxStore, QueuePort, RelayConfig,
};
use evilent_pg::outbox::{PgOutbox, append};
use evilent_pg::{MESSAGING_MIGRATION, PgPool, migrate, testing};

async fn pool(prefix: &str) -> Option<PgPool> {
    match testing::fresh_schema(prefix).await {
        Ok(pool) => {
            migrate(&pool, &[MESSAGING_MIGRATION]).await.unwrap();
            Some(pool)
        }
        Err(reason) => {
            assert!(!required(), "CI=true requires PostgreSQL, but: {reason}");
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

fn event(aggregate: usize, version: u64) -> Envelope {
    let e = Envelope::new(ProductStockUpdated {
        product_id: format!("p-{aggregate}"),
        user_id: "u".into(),
        stock: u32::try_from(version).unwrap(),
        delta: 1,
    });
    Envelope {
        meta: e.meta.clone().aggregate_version(version),
        ..e
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_publish_every_row_once_and_in_aggregate_order() {
    let Some(pool) = pool("relays").await else {
        return;
    };
    // 40 aggregates × 10 versions, written by concurrent transactions.
    let mut writers = Vec::new();
    for agg in 0..40 {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            for v in 1..=10 {
                let mut tx = pool.begin().await.unwrap();
                append(&mut tx, Topic::ProductEvents.name(), &event(agg, v), None)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    let broker = EmbeddedBroker::new(Broker::in_memory(Arc::new(SystemClock)).unwrap());
    broker.create_topic("product-events", false).await.unwrap();
    broker
        .create_queue("q", &QueueAttributes::default())
        .await
        .unwrap();
    broker.subscribe("product-events", "q", None).await.unwrap();
    // Both relays go through a publisher that fails a fifth of the entries.
    let faulty = Arc::new(Faulty::new(
        broker.clone(),
        Faults {
            fail_batch_entry: 0.2,
            seed: 3,
            ..Faults::default()
        },
    ));
    let config = RelayConfig {
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(10),
        ..RelayConfig::default()
    };
    let relays: Vec<_> = (0..2)
        .map(|_| {
            Arc::new(OutboxRelay::new(
                Arc::new(PgOutbox::new(pool.clone())),
                faulty.clone(),
                config.clone(),
            ))
        })
        .collect();
    let outbox = PgOutbox::new(pool.clone());
    let mut running = Vec::new();
    for relay in &relays {
        let relay = relay.clone();
        running.push(tokio::spawn(async move {
            let mut published = 0;
            for _ in 0..2000 {
                published += relay.step().await.unwrap().published;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            published
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let mut total = 0;
    for r in running {
        let n = r.await.unwrap();
        assert!(n > 0, "both relays took part");
        total += n;
    }
    assert_eq!(outbox.unpublished().await.unwrap(), 0);
    assert_eq!(total, 400, "published exactly once in all");
    let mut ids = HashSet::new();
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    loop {
        let got = broker
            .receive("q", &ReceiveRequest::up_to(10).visibility(600))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            let env = evilent_contracts::decode(&m.body).unwrap();
            assert!(
                ids.insert(env.meta.event_id),
                "event {} published twice",
                env.meta.event_id
            );
            versions
                .entry(env.event.aggregate_id().to_owned())
                .or_default()
                .push(env.meta.aggregate_version.unwrap());
        }
    }
    assert_eq!(ids.len(), 400);
    for (agg, v) in versions {
        assert_eq!(v, (1..=10).collect::<Vec<_>>(), "{agg} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_relays_lease_runs_out_and_pruning_keeps_history_for_the_retention() {
    let Some(pool) = pool("lease").await else {
        return;
    };
    let mut tx = pool.begin().await.unwrap();
    append(&mut tx, Topic::ProductEvents.name(), &event(1, 1), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let crashed = PgOutbox::new(pool.clone());
    assert_eq!(
        crashed.pending(10).await.unwrap().len(),
        1,
        "claimed, then the relay dies"
    );
    let other = PgOutbox::new(pool.clone());
    assert!(
        other.pending(10).await.unwrap().is_empty(),
        "leased rows are not taken"
    );
    sqlx::query("UPDATE outbox SET claimed_until = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let taken = other.pending(10).await.unwrap();
    assert_eq!(taken.len(), 1, "an expired lease is taken over");
    other.mark_published(&[taken[0].id]).await.unwrap();
    assert_eq!(
        other.prune(Duration::from_secs(3600)).await.unwrap(),
        0,
        "kept for the retention period"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(other.prune(Duration::from_millis(1)).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_claims_once_per_consumer() {
    let Some(pool) = pool("inbox").await else {
        return;
    };
    let id = uuid::Uuid::now_v7();
    let mut conn = pool.acquire().await.unwrap();
    assert!(evilent_pg::inbox::claim(&mut conn, "a", &id).await.unwrap());
    assert!(!evilent_pg::inbox::claim(&mut conn, "a", &id).await.unwrap());
    assert!(evilent_pg::inbox::claim(&mut conn, "b", &id).await.unwrap());
    // A rolled-back claim is no claim.
    let mut tx = pool.begin().await.unwrap();
    let other = uuid::Uuid::now_v7();
    assert!(
        evilent_pg::inbox::claim(&mut tx, "a", &other)
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    assert!(
        evilent_pg::inbox::claim(&mut conn, "a", &other)
            .await
            .unwrap()
    );
}
