//! The [`UserStore`] conformance suite: every adapter passes the same tests
//! (`tests/store_conformance.rs` runs them on SQLite and PostgreSQL).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;

use chrono::Utc;
use evilent_contracts::{Envelope, ProductCreated, ProductDeleted, UserCreated, UserDeleted};
use evilent_messaging::{Handled, OutboxStore};

use super::{ProductChange, StoreError, UserStore};
use crate::domain::{Email, PersonName, User};

/// A store and the outbox it writes to.
pub struct Fixture {
    pub store: Arc<dyn UserStore>,
    pub outbox: Arc<dyn OutboxStore>,
}

/// One `#[tokio::test]` per conformance test for a backend; `$fixture` is an
/// expression giving `Option<Fixture>` (`None`: skipped, with its reason printed).
#[macro_export]
macro_rules! user_store_conformance {
    ($fixture:expr) => {
        $crate::user_store_conformance!(@tests $fixture; create_then_get, same_id_or_email_conflicts,
            update_applies_over_the_version_read_only, soft_delete_frees_the_email,
            writes_and_their_events_commit_together, product_events_count_once_in_any_order);
    };
    (@tests $fixture:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(fixture) = $fixture.await else { return };
                $crate::store::conformance::$name(fixture).await;
            }
        )*
    };
}

fn user(id: &str, email: &str) -> User {
    let now = Utc::now();
    User {
        id: id.into(),
        email: Email::parse(email).unwrap(),
        first_name: PersonName::parse("Ada").unwrap(),
        last_name: PersonName::parse("Lovelace").unwrap(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
        version: 1,
    }
}

fn created(u: &User) -> Envelope {
    Envelope::new(UserCreated {
        user_id: u.id.clone(),
        email: u.email.as_str().into(),
        first_name: u.first_name.as_str().into(),
        last_name: u.last_name.as_str().into(),
    })
}

pub async fn create_then_get(f: Fixture) {
    let u = user("u1", "ada@example.com");
    f.store.create(&u, &[created(&u)]).await.unwrap();
    let got = f.store.get("u1").await.unwrap().unwrap();
    assert_eq!(got.email, u.email);
    assert_eq!(got.version, 1);
    assert_eq!(
        got.created_at.timestamp_millis(),
        u.created_at.timestamp_millis()
    );
    assert!(f.store.get("nobody").await.unwrap().is_none());
    f.store.ping().await.unwrap();
}

pub async fn same_id_or_email_conflicts(f: Fixture) {
    let u = user("u1", "ada@example.com");
    f.store.create(&u, &[]).await.unwrap();
    let err = f
        .store
        .create(&user("u1", "other@example.com"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = f
        .store
        .create(&user("u2", "ada@example.com"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

pub async fn update_applies_over_the_version_read_only(f: Fixture) {
    let u = user("u1", "ada@example.com");
    f.store.create(&u, &[]).await.unwrap();
    let mut a = f.store.get("u1").await.unwrap().unwrap();
    let mut b = a.clone();
    a.first_name = PersonName::parse("Augusta").unwrap();
    a.version += 1;
    f.store.update(&a, &[]).await.unwrap();
    b.first_name = PersonName::parse("Lost").unwrap();
    b.version += 1;
    assert!(
        matches!(f.store.update(&b, &[]).await, Err(StoreError::Concurrent)),
        "a stale write is refused"
    );
    assert_eq!(
        f.store
            .get("u1")
            .await
            .unwrap()
            .unwrap()
            .first_name
            .as_str(),
        "Augusta"
    );
}

pub async fn soft_delete_frees_the_email(f: Fixture) {
    let mut u = user("u1", "ada@example.com");
    f.store.create(&u, &[]).await.unwrap();
    u.version += 1;
    u.deleted_at = Some(Utc::now());
    f.store
        .update(
            &u,
            &[Envelope::new(UserDeleted {
                user_id: "u1".into(),
            })],
        )
        .await
        .unwrap();
    assert!(
        f.store
            .get("u1")
            .await
            .unwrap()
            .unwrap()
            .deleted_at
            .is_some(),
        "kept, marked deleted"
    );
    f.store
        .create(&user("u2", "ada@example.com"), &[])
        .await
        .unwrap();
}

pub async fn writes_and_their_events_commit_together(f: Fixture) {
    let u = user("u1", "ada@example.com");
    f.store
        .create(&u, &[created(&u), created(&u)])
        .await
        .unwrap();
    assert_eq!(f.outbox.unpublished().await.unwrap(), 2);
    // A failed write leaves no event behind.
    assert!(f.store.create(&u, &[created(&u)]).await.is_err());
    assert_eq!(f.outbox.unpublished().await.unwrap(), 2);
    let pending = f.outbox.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1, "one per aggregate at a time");
    assert_eq!(pending[0].topic, "user-events");
    assert_eq!(pending[0].attributes["eventType"].value, "UserCreated");
}

pub async fn product_events_count_once_in_any_order(f: Fixture) {
    let c = |p: &str| {
        (
            Envelope::new(ProductCreated {
                product_id: p.into(),
                user_id: "u1".into(),
                category_id: "c".into(),
                price: evilent_contracts::Money::from_minor(100),
                name: None,
            }),
            ProductChange::Created {
                product_id: p.into(),
                user_id: "u1".into(),
            },
        )
    };
    let d = |p: &str| {
        (
            Envelope::new(ProductDeleted {
                product_id: p.into(),
                user_id: "u1".into(),
            }),
            ProductChange::Deleted {
                product_id: p.into(),
                user_id: "u1".into(),
            },
        )
    };
    let (c1, c2, c3, d2, d3) = (c("p1"), c("p2"), c("p3"), d("p2"), d("p3"));
    // p3's deletion arrives before its creation; p1's creation twice.
    for (event, change) in [&d3, &c1, &c2, &c1, &d2, &c3, &d2] {
        f.store
            .apply_product_change("stats", event, change)
            .await
            .unwrap();
    }
    assert_eq!(
        f.store
            .apply_product_change("stats", &c1.0, &c1.1)
            .await
            .unwrap(),
        Handled::Duplicate
    );
    let s = f.store.stats("u1").await.unwrap();
    assert_eq!(s.product_count, 1, "only p1 is left");
    assert_eq!(
        (s.products_created, s.products_deleted),
        (3, 2),
        "created - deleted = count"
    );
    assert_eq!(f.store.stats("nobody").await.unwrap().product_count, 0);
}
