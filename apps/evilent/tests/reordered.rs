//! Events delivered in the worst order: the consumers are stepped by hand
//! after the queue's messages were put back in reverse.

#![allow(clippy::unwrap_used)] // tests fail loudly

mod common;

use common::{TestApp, spawn_app_with};
use evilent_broker::{BatchEntry, ReceiveRequest, SendRequest};
use evilent_messaging::QueuePort;
use reqwest::StatusCode;
use serde_json::json;

/// Takes every message of `queue` and sends it back in reverse order, twice (duplicates).
async fn reverse_and_duplicate(app: &TestApp, queue: &str) -> usize {
    let broker = &app.system.broker;
    let mut all = Vec::new();
    loop {
        let got = broker
            .receive(queue, &ReceiveRequest::up_to(10).visibility(600))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        all.extend(got);
    }
    for m in all.iter().rev().chain(all.iter()) {
        let req = SendRequest {
            body: m.body.clone(),
            attributes: m.attributes.clone(),
            ..SendRequest::default()
        };
        broker
            .send_batch(
                queue,
                &[BatchEntry {
                    id: "0".into(),
                    entry: req,
                }],
            )
            .await
            .unwrap();
    }
    for m in &all {
        broker.delete(queue, &m.receipt_handle).await.unwrap();
    }
    all.len()
}

async fn app_without_consumers() -> TestApp {
    spawn_app_with(|c| c.run_consumers = false).await
}

async fn until_queued(app: &TestApp, queue: &str, n: u64) {
    for _ in 0..500 {
        if app.system.broker.counts(queue).await.unwrap().visible >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} messages never reached {queue}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_deleted_before_its_creation_still_ends_inactive() {
    let app = app_without_consumers().await;
    app.create_user("zoe").await;
    let (status, _) = app
        .patch(
            &app.users("/user/zoe"),
            &app.token("zoe"),
            json!({"firstName": "Zoë"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let product = app.create_product("zoe", "Bike").await;
    let (status, _) = app.delete(&app.users("/user/zoe"), &app.token("zoe")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // UserCreated, UserProfileCreated, UserUpdated, UserDeleted.
    until_queued(&app, "user-events-queue", 4).await;
    assert_eq!(reverse_and_duplicate(&app, "user-events-queue").await, 4);
    app.system.products_consumer.drain().await.unwrap();
    let (_, seller) = app
        .get(&app.products("/seller/zoe"), &app.token("zoe"))
        .await;
    assert_eq!(
        seller["isActive"], false,
        "the deletion wins whatever came after it: {seller}"
    );
    let (_, p) = app
        .get(
            &app.products(&format!("/product/{product}")),
            &app.token("zoe"),
        )
        .await;
    assert_eq!(p["isActive"], false);
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_deleted_before_its_creation_never_counts() {
    let app = app_without_consumers().await;
    app.create_user("yann").await;
    let gone = app.create_product("yann", "Gone").await;
    app.create_product("yann", "Kept").await;
    let (status, _) = app
        .delete(
            &app.products(&format!("/product/{gone}")),
            &app.token("yann"),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_queued(&app, "product-events-queue", 3).await;
    assert_eq!(reverse_and_duplicate(&app, "product-events-queue").await, 3);
    let outcome = app.system.users_consumer.drain().await.unwrap();
    assert_eq!(outcome.received, 6);
    let (_, stats) = app
        .get(&app.users("/user/yann/stats"), &app.token("yann"))
        .await;
    assert_eq!(stats["productCount"], 1, "{stats}");
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_user_update_does_not_overwrite_a_newer_one() {
    let app = app_without_consumers().await;
    app.create_user("xavi").await;
    for name in ["Second", "Third"] {
        let (status, _) = app
            .patch(
                &app.users("/user/xavi"),
                &app.token("xavi"),
                json!({"firstName": name}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    until_queued(&app, "user-events-queue", 4).await;
    reverse_and_duplicate(&app, "user-events-queue").await;
    app.system.products_consumer.drain().await.unwrap();
    let (_, seller) = app
        .get(&app.products("/seller/xavi"), &app.token("xavi"))
        .await;
    assert_eq!(seller["firstName"], "Third", "{seller}");
    app.system.stop().await;
}
