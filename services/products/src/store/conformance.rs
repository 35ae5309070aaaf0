//! The [`ProductStore`] conformance suite: every adapter passes the same
//! tests (`tests/store_conformance.rs` runs them on SQLite and MongoDB).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;

use chrono::Utc;
use evilent_contracts::{
    Envelope, Metadata, Money, ProductCreated, Topic, UserDeleted, UserProfileCreated,
};
use evilent_messaging::{Handled, OutboxStore};

use super::{EventFor, ProductFilter, ProductStore, SellerDetails, StoreError};
use crate::domain::Product;
use crate::handlers::product_updated;

/// A store and the outbox it writes to.
pub struct Fixture {
    pub store: Arc<dyn ProductStore>,
    pub outbox: Arc<dyn OutboxStore>,
}

/// One `#[tokio::test]` per conformance test for a backend.
#[macro_export]
macro_rules! product_store_conformance {
    ($fixture:expr) => {
        $crate::product_store_conformance!(@tests $fixture; create_get_and_list_by_page,
            update_and_delete_apply_over_the_version_read_only, writes_and_their_events_commit_together,
            seller_profiles_follow_versions_and_deletion_wins, deactivation_changes_every_active_product_once);
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

pub(crate) fn product(id: &str, user: &str) -> Product {
    let now = Utc::now();
    Product {
        id: id.into(),
        user_id: user.into(),
        name: format!("product {id}"),
        description: None,
        price: Money::from_minor(1999),
        category_id: "cat".into(),
        stock: 3,
        is_active: true,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn created(p: &Product) -> Envelope {
    Envelope::new(ProductCreated {
        product_id: p.id.clone(),
        user_id: p.user_id.clone(),
        category_id: p.category_id.clone(),
        price: p.price,
        name: Some(p.name.clone()),
    })
}

pub async fn create_get_and_list_by_page(f: Fixture) {
    for i in 0..5 {
        f.store
            .create(
                &product(&format!("p{i}"), if i < 4 { "u1" } else { "u2" }),
                &[],
            )
            .await
            .unwrap();
    }
    let got = f.store.get("p1").await.unwrap().unwrap();
    assert_eq!(got.price, Money::from_minor(1999));
    assert!(f.store.get("nope").await.unwrap().is_none());
    let filter = ProductFilter {
        user_id: Some("u1".into()),
        limit: 3,
        ..ProductFilter::default()
    };
    let (page, more) = f.store.list(&filter).await.unwrap();
    assert_eq!(
        page.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        vec!["p0", "p1", "p2"]
    );
    assert!(more);
    let (rest, more) = f
        .store
        .list(&ProductFilter {
            after: Some("p2".into()),
            ..filter
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        vec!["p3"]
    );
    assert!(!more);
    let (inactive, _) = f
        .store
        .list(&ProductFilter {
            is_active: Some(false),
            limit: 10,
            ..ProductFilter::default()
        })
        .await
        .unwrap();
    assert!(inactive.is_empty());
    f.store.ping().await.unwrap();
}

pub async fn update_and_delete_apply_over_the_version_read_only(f: Fixture) {
    f.store.create(&product("p1", "u1"), &[]).await.unwrap();
    let mut a = f.store.get("p1").await.unwrap().unwrap();
    let mut b = a.clone();
    a.stock = 9;
    a.version += 1;
    f.store.update(&a, &[]).await.unwrap();
    b.stock = 0;
    b.version += 1;
    assert!(matches!(
        f.store.update(&b, &[]).await,
        Err(StoreError::Concurrent)
    ));
    let stale = product("p1", "u1");
    assert!(
        matches!(
            f.store.delete(&stale, &[]).await,
            Err(StoreError::Concurrent)
        ),
        "a stale delete is refused"
    );
    f.store.delete(&a, &[]).await.unwrap();
    assert!(f.store.get("p1").await.unwrap().is_none());
}

pub async fn writes_and_their_events_commit_together(f: Fixture) {
    let p = product("p1", "u1");
    f.store.create(&p, &[created(&p)]).await.unwrap();
    assert_eq!(f.outbox.unpublished().await.unwrap(), 1);
    let mut stale = p.clone();
    stale.version = 7;
    assert!(f.store.update(&stale, &[created(&p)]).await.is_err());
    assert_eq!(
        f.outbox.unpublished().await.unwrap(),
        1,
        "a refused write leaves no event"
    );
    let pending = f.outbox.pending(10).await.unwrap();
    assert_eq!(pending[0].topic, Topic::ProductEvents.name());
    assert_eq!(pending[0].attributes["eventType"].value, "ProductCreated");
}

fn details(name: &str) -> SellerDetails {
    SellerDetails {
        user_id: "u1".into(),
        email: "u1@example.com".into(),
        first_name: name.into(),
        last_name: "L".into(),
    }
}

fn at(version: u64) -> Envelope {
    let e = Envelope::new(UserProfileCreated {
        user_id: "u1".into(),
        email: "u1@example.com".into(),
        first_name: "F".into(),
        last_name: "L".into(),
    });
    Envelope {
        meta: e.meta.clone().aggregate_version(version),
        ..e
    }
}

pub async fn seller_profiles_follow_versions_and_deletion_wins(f: Fixture) {
    let v2 = at(2);
    assert_eq!(
        f.store
            .apply_seller("c", &v2, &details("Two"))
            .await
            .unwrap(),
        Handled::Applied
    );
    assert_eq!(
        f.store
            .apply_seller("c", &v2, &details("Two"))
            .await
            .unwrap(),
        Handled::Duplicate
    );
    assert!(matches!(
        f.store
            .apply_seller("c", &at(1), &details("One"))
            .await
            .unwrap(),
        Handled::Ignored(_)
    ));
    assert_eq!(
        f.store.seller("u1").await.unwrap().unwrap().first_name,
        "Two"
    );
    let deleted = Envelope::new(UserDeleted {
        user_id: "u1".into(),
    });
    let deleted = Envelope {
        meta: deleted.meta.clone().aggregate_version(3),
        ..deleted
    };
    let no_products: EventFor = Arc::new(|_: &Product| unreachable!("no products"));
    f.store
        .deactivate_seller("c", &deleted, "u1", no_products.clone())
        .await
        .unwrap();
    f.store
        .apply_seller("c", &at(4), &details("Four"))
        .await
        .unwrap();
    let s = f.store.seller("u1").await.unwrap().unwrap();
    assert!(!s.is_active, "a deleted user stays deleted");
    // A deletion overtaking the creation leaves a tombstone the creation fills in.
    let gone = Envelope::new(UserDeleted {
        user_id: "u9".into(),
    });
    let gone = Envelope {
        meta: gone.meta.clone().aggregate_version(2),
        ..gone
    };
    f.store
        .deactivate_seller("c", &gone, "u9", no_products)
        .await
        .unwrap();
    let mut late = SellerDetails {
        user_id: "u9".into(),
        ..details("Late")
    };
    late.email = "u9@example.com".into();
    f.store.apply_seller("c", &at(1), &late).await.unwrap();
    let s = f.store.seller("u9").await.unwrap().unwrap();
    assert_eq!((s.email.as_str(), s.is_active), ("u9@example.com", false));
}

pub async fn deactivation_changes_every_active_product_once(f: Fixture) {
    for id in ["a", "b"] {
        f.store.create(&product(id, "u1"), &[]).await.unwrap();
    }
    f.store.create(&product("other", "u2"), &[]).await.unwrap();
    let deleted = Envelope::new(UserDeleted {
        user_id: "u1".into(),
    });
    let cause = deleted.meta.clone();
    let event_for: EventFor = Arc::new(move |p: &Product| {
        product_updated(p, Metadata::new("product-service").follows(&cause))
    });
    assert_eq!(
        f.store
            .deactivate_seller("c", &deleted, "u1", event_for.clone())
            .await
            .unwrap(),
        Handled::Applied
    );
    assert_eq!(
        f.store
            .deactivate_seller("c", &deleted, "u1", event_for.clone())
            .await
            .unwrap(),
        Handled::Duplicate
    );
    for id in ["a", "b"] {
        let p = f.store.get(id).await.unwrap().unwrap();
        assert!(!p.is_active);
        assert_eq!(p.version, 2);
    }
    assert!(f.store.get("other").await.unwrap().unwrap().is_active);
    assert_eq!(
        f.outbox.unpublished().await.unwrap(),
        2,
        "one ProductUpdated per product, in the same transaction"
    );
}
