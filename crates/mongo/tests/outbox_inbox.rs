//! The outbox and inbox on MongoDB (SecantusDB): two relays publish every
//! event once and in per-aggregate order; a rolled-back claim is no claim.

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
use evilent_mongo::outbox::{MongoOutbox, append, create_indexes};
use evilent_mongo::{testing, transaction};

async fn database(prefix: &str) -> Option<(mongodb::Client, mongodb::Database)> {
    match testing::fresh_database(prefix).await {
        Ok(found) => {
            create_indexes(&found.1).await.unwrap();
            Some(found)
        }
        Err(reason) => {
            assert!(
                !required(),
                "CI=true requires a MongoDB-wire server, but: {reason}"
            );
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
async fn two_relays_publish_every_event_once_and_in_aggregate_order() {
    let Some((client, db)) = database("relays").await else {
        return;
    };
    for v in 1..=5 {
        for agg in 0..20 {
            transaction!(client, |s| {
                append(&db, s, Topic::ProductEvents.name(), &event(agg, v), None).await
            })
            .unwrap();
        }
    }
    let broker = EmbeddedBroker::new(Broker::in_memory(Arc::new(SystemClock)).unwrap());
    broker.create_topic("product-events", false).await.unwrap();
    broker
        .create_queue("q", &QueueAttributes::default())
        .await
        .unwrap();
    broker.subscribe("product-events", "q", None).await.unwrap();
    let faulty = Arc::new(Faulty::new(
        broker.clone(),
        Faults {
            fail_batch_entry: 0.2,
            seed: 5,
            ..Faults::default()
        },
    ));
    let config = RelayConfig {
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        ..RelayConfig::default()
    };
    let mut running = Vec::new();
    for _ in 0..2 {
        let relay = Arc::new(OutboxRelay::new(
            Arc::new(MongoOutbox::new(db.clone())),
            faulty.clone(),
            config.clone(),
        ));
        running.push(tokio::spawn(async move {
            let mut published = 0;
            for _ in 0..400 {
                published += relay.step().await.unwrap().published;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            published
        }));
    }
    let mut total = 0;
    for r in running {
        total += r.await.unwrap();
    }
    assert_eq!(MongoOutbox::new(db.clone()).unpublished().await.unwrap(), 0);
    assert_eq!(total, 100);
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
            assert!(ids.insert(env.meta.event_id), "published twice");
            versions
                .entry(env.event.aggregate_id().to_owned())
                .or_default()
                .push(env.meta.aggregate_version.unwrap());
        }
    }
    assert_eq!(ids.len(), 100);
    for (agg, v) in versions {
        assert_eq!(v, (1..=5).collect::<Vec<_>>(), "{agg} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_claims_once_and_a_rolled_back_claim_is_none() {
    let Some((client, db)) = database("inbox").await else {
        return;
    };
    let id = uuid::Uuid::now_v7();
    let claim = |consumer: &'static str| {
        let (client, db) = (client.clone(), db.clone());
        async move {
            transaction!(client, |s| {
                evilent_mongo::inbox::claim(&db, s, consumer, &id).await
            })
            .unwrap()
        }
    };
    assert!(claim("a").await);
    assert!(!claim("a").await);
    assert!(claim("b").await);
    let other = uuid::Uuid::now_v7();
    let failed: mongodb::error::Result<()> = transaction!(client, |s| {
        assert!(evilent_mongo::inbox::claim(&db, s, "a", &other).await?);
        Err(mongodb::error::Error::custom("the handler failed"))
    });
    assert!(failed.is_err());
    let again = transaction!(client, |s| {
        evilent_mongo::inbox::claim(&db, s, "a", &other).await
    })
    .unwrap();
    assert!(again, "the aborted transaction took its claim with it");
}
