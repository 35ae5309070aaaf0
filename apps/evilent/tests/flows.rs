//! The seed's four flows through HTTP, on a clean broker and on a broker
//! that duplicates, reorders and loses deletes.

#![allow(clippy::unwrap_used)] // tests fail loudly

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestApp, spawn_app, spawn_faulty_app};
use reqwest::StatusCode;
use serde_json::json;

/// CASO 1: a new user profile becomes a seller profile in product-service.
async fn caso1(app: &TestApp) {
    let user = app.create_user("alice").await;
    assert_eq!(user["id"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["productCount"], 0);
    let seller = app
        .eventually(&app.products("/seller/alice"), "bob", |s, _| {
            s == StatusCode::OK
        })
        .await;
    assert_eq!(
        seller,
        json!({"userId": "alice", "email": "alice@example.com", "firstName": "First", "lastName": "Of alice", "isActive": true})
    );
    let product = app.create_product("alice", "Lamp").await;
    let (status, owner) = app
        .get(
            &app.products(&format!("/product/{product}/seller")),
            &app.token("bob"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owner["userId"], "alice");
}

/// CASO 2: products created and deleted keep productCount exact.
async fn caso2(app: &TestApp) {
    app.create_user("bob").await;
    let p1 = app.create_product("bob", "Laptop").await;
    app.create_product("bob", "Mouse").await;
    let p3 = app.create_product("bob", "Screen").await;
    app.eventually(&app.users("/user/bob/stats"), "bob", |_, b| {
        b["productCount"] == 3
    })
    .await;
    for p in [p1, p3] {
        let (status, _) = app
            .delete(&app.products(&format!("/product/{p}")), &app.token("bob"))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    app.eventually(&app.users("/user/bob/stats"), "bob", |_, b| {
        b["productCount"] == 1
    })
    .await;
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, stats) = app
        .get(&app.users("/user/bob/stats"), &app.token("bob"))
        .await;
    assert_eq!(
        stats["productCount"], 1,
        "duplicates must not change the count: {stats}"
    );
    assert_eq!(stats["productsCreated"], 3);
    assert_eq!(stats["productsDeleted"], 2);
    let (_, user) = app.get(&app.users("/user/bob"), &app.token("bob")).await;
    assert_eq!(user["productCount"], 1);
}

/// CASO 3: a deleted user's products become inactive.
async fn caso3(app: &TestApp) {
    app.create_user("carol").await;
    app.eventually(&app.products("/seller/carol"), "carol", |s, _| {
        s == StatusCode::OK
    })
    .await;
    let products = [
        app.create_product("carol", "Desk").await,
        app.create_product("carol", "Chair").await,
    ];
    let (status, _) = app
        .delete(&app.users("/user/carol"), &app.token("carol"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for p in &products {
        app.eventually(&app.products(&format!("/product/{p}")), "carol", |s, b| {
            s == StatusCode::OK && b["isActive"] == false
        })
        .await;
    }
    let seller = app
        .eventually(&app.products("/seller/carol"), "carol", |_, b| {
            b["isActive"] == false
        })
        .await;
    assert_eq!(seller["email"], "carol@example.com");
    let (status, _) = app
        .get(&app.users("/user/carol"), &app.token("carol"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a deleted user is gone");
    let (status, problem) = app
        .post(
            &app.products("/product"),
            &app.token("carol"),
            json!({"name": "Late", "price": 1, "categoryId": "c"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a deleted seller sells no more: {problem}"
    );
    let (_, listed) = app
        .get(
            &app.products("/product?userId=carol&isActive=true"),
            &app.token("carol"),
        )
        .await;
    assert_eq!(listed["items"], json!([]));
}

/// CASO 4: user-service lists a user's products by asking product-service.
async fn caso4(app: &TestApp) {
    app.create_user("dave").await;
    let mut ids = vec![
        app.create_product("dave", "A").await,
        app.create_product("dave", "B").await,
        app.create_product("dave", "C").await,
    ];
    app.create_product("erin", "Not dave's").await;
    let (status, body) = app
        .get(&app.users("/user/dave/products"), &app.token("erin"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userId"], "dave");
    let mut got: Vec<String> = body["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    let (status, _) = app
        .get(&app.users("/user/nobody/products"), &app.token("erin"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caso1_profile_becomes_seller_profile() {
    let app = spawn_app().await;
    caso1(&app).await;
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caso2_products_keep_product_count() {
    let app = spawn_app().await;
    caso2(&app).await;
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caso3_deleted_user_products_become_inactive() {
    let app = spawn_app().await;
    caso3(&app).await;
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caso4_user_products_over_http() {
    let app = spawn_app().await;
    caso4(&app).await;
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_flows_hold_with_duplicated_and_reordered_deliveries() {
    let app = spawn_faulty_app(42).await;
    caso1(&app).await;
    caso2(&app).await;
    caso3(&app).await;
    caso4(&app).await;
    let faults = app.system.faults.as_ref().unwrap();
    let duplicated = faults.stats.duplicated.load(Ordering::Relaxed);
    let reordered = faults.stats.reordered.load(Ordering::Relaxed);
    assert!(
        duplicated > 0 && reordered > 0,
        "faults were injected: {duplicated} duplicated, {reordered} reordered"
    );
    let absorbed = app
        .system
        .users_consumer
        .stats()
        .duplicates
        .load(Ordering::Relaxed)
        + app
            .system
            .products_consumer
            .stats()
            .duplicates
            .load(Ordering::Relaxed);
    eprintln!(
        "{duplicated} duplicated, {reordered} reordered; the inboxes absorbed {absorbed} duplicates"
    );
    app.system.stop().await;
}
