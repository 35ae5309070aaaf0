//! Stopping with events still in flight and starting again delivers them.

#![allow(clippy::unwrap_used)] // tests fail loudly

mod common;

use common::{spawn_app_with, start_in};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_left_in_the_outboxes_go_out_after_a_restart() {
    // No relays: every event stays in its service's outbox.
    let app = spawn_app_with(|c| c.run_relays = false).await;
    app.create_user("olga").await;
    app.create_product("olga", "Kettle").await;
    app.system.stop().await;

    let app = start_in(app.dir, |_| {}).await;
    app.eventually(&app.products("/seller/olga"), "olga", |s, _| {
        s == StatusCode::OK
    })
    .await;
    app.eventually(&app.users("/user/olga/stats"), "olga", |_, b| {
        b["productCount"] == 1
    })
    .await;
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_left_in_the_queues_are_consumed_after_a_restart() {
    // Relays run, consumers do not: events wait in the broker's queues.
    let app = spawn_app_with(|c| c.run_consumers = false).await;
    app.create_user("pete").await;
    app.create_product("pete", "Spoon").await;
    for _ in 0..500 {
        let u = evilent_messaging::QueuePort::counts(&app.system.broker, "user-events-queue")
            .await
            .unwrap();
        let p = evilent_messaging::QueuePort::counts(&app.system.broker, "product-events-queue")
            .await
            .unwrap();
        if u.visible == 2 && p.visible == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.system.stop().await;

    let app = start_in(app.dir, |_| {}).await;
    let seller = app
        .eventually(&app.products("/seller/pete"), "pete", |s, _| {
            s == StatusCode::OK
        })
        .await;
    assert_eq!(seller["email"], "pete@example.com");
    app.eventually(&app.users("/user/pete/stats"), "pete", |_, b| {
        b["productCount"] == 1
    })
    .await;
    let (status, user) = app.get(&app.users("/user/pete"), &app.token("pete")).await;
    assert_eq!(
        (status, user["email"].as_str()),
        (StatusCode::OK, Some("pete@example.com")),
        "data kept across the restart"
    );
    app.system.stop().await;
}
