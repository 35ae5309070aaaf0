//! The outbox and inbox conformance suite: every backend (SQLite,
//! PostgreSQL, MongoDB) passes the same tests. A backend's test file gives
//! a [`Fixture`]: its [`OutboxStore`] and an [`OutboxWriter`] that appends
//! events and claims inbox rows the way its services do, each in a
//! transaction of its own.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use evilent_contracts::{Envelope, ProductStockUpdated};
use uuid::Uuid;

use super::OutboxStore;

/// Writes as a service does.
#[async_trait]
pub trait OutboxWriter: Send + Sync {
    /// Appends `events` to the outbox of `topic` in one transaction.
    async fn append(&self, topic: &str, events: &[Envelope]);
    /// Claims `(consumer, event_id)` in a transaction of its own; commits it
    /// when `commit`, rolls it back otherwise; returns the claim's answer.
    async fn claim(&self, consumer: &str, event_id: &Uuid, commit: bool) -> bool;
}

/// A backend's outbox and the writer of its services.
pub struct Fixture {
    pub store: Arc<dyn OutboxStore>,
    pub writer: Arc<dyn OutboxWriter>,
}

/// One `#[tokio::test]` per outbox/inbox conformance test.
#[macro_export]
macro_rules! outbox_conformance {
    ($fixture:expr) => {
        $crate::outbox_conformance!(@tests $fixture; pending_gives_the_oldest_of_each_aggregate_in_order,
            published_entries_leave_and_the_next_of_their_aggregate_comes, failed_entries_wait_for_their_retry,
            published_entries_are_kept_for_the_retention, entries_carry_their_event_and_attributes,
            inbox_claims_once_per_consumer_and_a_rollback_claims_nothing);
    };
    (@tests $fixture:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(fixture) = $fixture.await else { return };
                $crate::outbox::conformance::$name(fixture).await;
            }
        )*
    };
}

fn event(aggregate: &str, version: u64) -> Envelope {
    let e = Envelope::new(ProductStockUpdated {
        product_id: aggregate.into(),
        user_id: "u".into(),
        stock: u32::try_from(version).unwrap(),
        delta: 1,
    });
    Envelope {
        meta: e.meta.clone().aggregate_version(version),
        ..e
    }
}

fn versions(entries: &[super::OutboxEntry]) -> Vec<(String, u64)> {
    entries
        .iter()
        .map(|e| {
            let env = evilent_contracts::decode(&e.body).unwrap();
            (e.aggregate_id.clone(), env.meta.aggregate_version.unwrap())
        })
        .collect()
}

pub async fn pending_gives_the_oldest_of_each_aggregate_in_order(f: Fixture) {
    f.writer
        .append("product-events", &[event("a", 1), event("b", 1)])
        .await;
    f.writer
        .append("product-events", &[event("a", 2), event("c", 1)])
        .await;
    let pending = f.store.pending(10).await.unwrap();
    assert_eq!(
        versions(&pending),
        vec![("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]
    );
    assert_eq!(f.store.unpublished().await.unwrap(), 4);
}

pub async fn published_entries_leave_and_the_next_of_their_aggregate_comes(f: Fixture) {
    f.writer
        .append(
            "product-events",
            &[event("a", 1), event("a", 2), event("b", 1)],
        )
        .await;
    let first = f.store.pending(10).await.unwrap();
    let a1 = first.iter().find(|e| e.aggregate_id == "a").unwrap().id;
    f.store.mark_published(&[a1]).await.unwrap();
    let b1 = first.iter().find(|e| e.aggregate_id == "b").unwrap().id;
    f.store
        .mark_failed(&[b1], "later", Duration::ZERO)
        .await
        .unwrap();
    let next = f.store.pending(10).await.unwrap();
    let mut got = versions(&next);
    got.sort();
    assert_eq!(got, vec![("a".into(), 2), ("b".into(), 1)]);
    assert_eq!(f.store.unpublished().await.unwrap(), 2);
}

pub async fn failed_entries_wait_for_their_retry(f: Fixture) {
    f.writer
        .append("product-events", &[event("a", 1), event("a", 2)])
        .await;
    let first = f.store.pending(10).await.unwrap();
    assert_eq!(first.len(), 1);
    f.store
        .mark_failed(&[first[0].id], "broker said no", Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        f.store.pending(10).await.unwrap().is_empty(),
        "a1 waits, and a2 waits behind it"
    );
    f.writer.append("product-events", &[event("z", 1)]).await;
    assert_eq!(
        versions(&f.store.pending(10).await.unwrap()),
        vec![("z".into(), 1)],
        "other aggregates go on"
    );
}

pub async fn published_entries_are_kept_for_the_retention(f: Fixture) {
    f.writer.append("product-events", &[event("a", 1)]).await;
    let p = f.store.pending(10).await.unwrap();
    f.store.mark_published(&[p[0].id]).await.unwrap();
    assert_eq!(
        f.store.prune(Duration::from_secs(3600)).await.unwrap(),
        0,
        "kept: the event history"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(f.store.prune(Duration::from_millis(1)).await.unwrap(), 1);
    assert_eq!(f.store.unpublished().await.unwrap(), 0);
}

pub async fn entries_carry_their_event_and_attributes(f: Fixture) {
    let e = event("a", 1);
    f.writer
        .append("product-events", std::slice::from_ref(&e))
        .await;
    let p = f.store.pending(10).await.unwrap();
    assert_eq!(p[0].topic, "product-events");
    assert_eq!(p[0].event_id, e.meta.event_id.to_string());
    assert_eq!(p[0].event_type, "ProductStockUpdated");
    assert_eq!(p[0].attributes["eventType"].value, "ProductStockUpdated");
    assert_eq!(p[0].attributes["source"].value, "product-service");
    assert_eq!(evilent_contracts::decode(&p[0].body).unwrap(), e);
}

pub async fn inbox_claims_once_per_consumer_and_a_rollback_claims_nothing(f: Fixture) {
    let id = Uuid::now_v7();
    assert!(f.writer.claim("a", &id, true).await);
    assert!(!f.writer.claim("a", &id, true).await);
    assert!(f.writer.claim("b", &id, true).await);
    let other = Uuid::now_v7();
    assert!(
        f.writer.claim("a", &other, false).await,
        "claimed, then rolled back"
    );
    assert!(
        f.writer.claim("a", &other, true).await,
        "the rollback took the claim with it"
    );
}
