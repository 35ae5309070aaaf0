//! What must be refused, and how: 401, 403, 400/422 with field paths, 404,
//! and 503 (not a hang, not a 500) when product-service is down.

#![allow(clippy::unwrap_used)] // tests fail loudly

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{fields, spawn_app};
use evilent_platform::DevIssuer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn claims(issuer: &str, sub: &str, exp_from_now: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "iss": issuer, "token_use": "access", "client_id": "evilent-dev",
           "iat": now, "nbf": now - 10, "exp": now + exp_from_now})
}

async fn assert_401(app: &common::TestApp, token: Option<&str>, why: &str) {
    let (status, problem) = app
        .call(Method::GET, &app.users("/user/alice"), token, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {problem}");
    assert_eq!(problem["status"], 401, "{why}: a problem document");
    let (status, _) = app
        .call(
            Method::POST,
            &app.products("/product"),
            token,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why} (product-service)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_401() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let issuer = &app.system.issuer;
    assert_401(&app, None, "no token").await;
    assert_401(&app, Some("not.a.jwt"), "garbage").await;
    assert_401(
        &app,
        Some(&issuer.sign(&claims(issuer.issuer(), "alice", -120))),
        "expired",
    )
    .await;
    let stranger = DevIssuer::ephemeral(issuer.issuer());
    assert_401(
        &app,
        Some(&stranger.sign(&claims(issuer.issuer(), "alice", 600))),
        "signed by another key",
    )
    .await;
    assert_401(
        &app,
        Some(&issuer.sign(&claims("http://evil.example", "alice", 600))),
        "another issuer",
    )
    .await;
    let mut other_client = claims(issuer.issuer(), "alice", 600);
    other_client["client_id"] = json!("someone-else");
    assert_401(&app, Some(&issuer.sign(&other_client)), "another client").await;
    let mut no_use = claims(issuer.issuer(), "alice", 600);
    no_use.as_object_mut().unwrap().remove("token_use");
    assert_401(&app, Some(&issuer.sign(&no_use)), "no token_use").await;
    // alg: none, with no signature at all.
    let none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        B64.encode(claims(issuer.issuer(), "alice", 600).to_string())
    );
    assert_401(&app, Some(&none), "alg none").await;
    // HS256 "signed" with the public modulus as secret: the classic confusion attack.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(issuer.issuer(), "alice", 600),
        &jsonwebtoken::EncodingKey::from_secret(b"secret").unwrap(),
    )
    .unwrap();
    assert_401(&app, Some(&hs), "HS256").await;
    // Public endpoints need nothing.
    for url in [
        app.users("/health"),
        app.users("/ready"),
        app.users("/openapi.json"),
        app.products("/docs"),
        app.products("/openapi.json"),
    ] {
        let (status, _) = app.call(Method::GET, &url, None, None).await;
        assert_eq!(status, StatusCode::OK, "{url}");
    }
    app.system.stop().await;
}

/// Validated tokens are remembered (no RSA check per request), but never
/// past their `exp`: one accepted at the edge of the clock-skew allowance is
/// refused a moment later, from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_token_is_refused_once_it_expires() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let issuer = &app.system.issuer;
    // exp 4 s ago: still within the 5 s leeway, so accepted (and remembered).
    let token = issuer.sign(&claims(issuer.issuer(), "alice", -4));
    let url = app.users("/user/alice");
    let (status, body) = app.call(Method::GET, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.call(Method::GET, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "the remembered token, again");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, problem) = app.call(Method::GET, &url, Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["detail"], "token expired");
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_or_an_admin_writes() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let product = app.create_product("alice", "Lamp").await;
    let bob = app.token("bob");
    let writes = [
        (
            Method::PATCH,
            app.users("/user/alice"),
            Some(json!({"firstName": "Mallory"})),
        ),
        (Method::DELETE, app.users("/user/alice"), None),
        (
            Method::PATCH,
            app.products(&format!("/product/{product}")),
            Some(json!({"name": "Mine now"})),
        ),
        (
            Method::PATCH,
            app.products(&format!("/product/{product}/stock")),
            Some(json!({"delta": -1})),
        ),
        (
            Method::DELETE,
            app.products(&format!("/product/{product}")),
            None,
        ),
    ];
    for (method, url, body) in &writes {
        let (status, problem) = app
            .call(method.clone(), url, Some(&bob), body.clone())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {url}: {problem}");
        assert_eq!(problem["type"], "https://evilent.dev/problems/forbidden");
    }
    let admin = app.admin_token("root");
    let (status, user) = app
        .patch(
            &app.users("/user/alice"),
            &admin,
            json!({"firstName": "Alicia"}),
        )
        .await;
    assert_eq!(
        (status, user["firstName"].clone()),
        (StatusCode::OK, json!("Alicia"))
    );
    let (status, _) = app
        .patch(
            &app.products(&format!("/product/{product}/stock")),
            &admin,
            json!({"delta": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_name_the_failing_fields() {
    let app = spawn_app().await;
    let t = app.token("vera");
    let (status, problem) = app.post(&app.users("/user"), &t, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), vec!["email", "firstName", "lastName"]);
    let (status, problem) = app
        .post(
            &app.users("/user"),
            &t,
            json!({"email": "nope", "firstName": " ", "lastName": "Ok"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), vec!["email", "firstName"]);
    let (status, problem) = app.post(&app.users("/user"), &t, json!({"email": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&problem), vec!["email"]);
    let resp = app
        .http
        .post(app.users("/user"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = app
        .http
        .post(app.users("/user"))
        .bearer_auth(&t)
        .body("firstName=x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "form bodies are refused"
    );

    let (status, problem) = app
        .post(
            &app.products("/product"),
            &t,
            json!({"name": "X", "price": 1.234, "categoryId": "c"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&problem), vec!["price"]);
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2 decimal places"),
        "{problem}"
    );
    let (status, problem) = app
        .post(
            &app.products("/product"),
            &t,
            json!({"name": "", "price": -1, "categoryId": "bad id!"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), vec!["name", "price", "categoryId"]);
    let (status, problem) = app
        .post(
            &app.products("/product"),
            &t,
            json!({"name": "X", "price": 1, "categoryId": "c", "stock": -1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&problem), vec!["stock"]);

    let product = app.create_product("vera", "Cup").await;
    let stock = app.products(&format!("/product/{product}/stock"));
    let (status, _) = app.patch(&stock, &t, json!({"delta": 1, "stock": 3})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, problem) = app.patch(&stock, &t, json!({"delta": -4})).await;
    assert_eq!(status, StatusCode::CONFLICT, "stock 3 - 4 < 0: {problem}");
    let (status, p) = app.patch(&stock, &t, json!({"stock": 0})).await;
    assert_eq!((status, p["stock"].clone()), (StatusCode::OK, json!(0)));
    let (status, problem) = app
        .get(&app.products("/product?limit=1000&isActive=maybe"), &t)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), vec!["isActive", "limit"]);
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_404_and_duplicates_409() {
    let app = spawn_app().await;
    let t = app.token("walt");
    for url in [
        app.users("/user/ghost"),
        app.users("/user/ghost/stats"),
        app.products("/product/ghost"),
        app.products("/seller/ghost"),
        app.products("/product/ghost/seller"),
    ] {
        let (status, problem) = app.get(&url, &t).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{url}: {problem}");
        assert_eq!(problem["title"], "Not found");
    }
    app.create_user("walt").await;
    let (status, _) = app
        .post(
            &app.users("/user"),
            &t,
            json!({"firstName": "W", "lastName": "W", "email": "other@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the same user twice");
    let (status, _) = app
        .post(
            &app.users("/user"),
            &app.token("wanda"),
            json!({"firstName": "W", "lastName": "W", "email": "walt@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "an email in use");
    app.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_service_down_gives_503_within_two_seconds() {
    let app = spawn_app().await;
    app.create_user("una").await;
    app.create_product("una", "Kite").await;
    let t = app.token("una");
    let (status, _) = app.get(&app.users("/user/una/products"), &t).await;
    assert_eq!(status, StatusCode::OK);
    app.system.stop_product_server();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for attempt in 0..8 {
        let started = Instant::now();
        let (status, problem) = app.get(&app.users("/user/una/products"), &t).await;
        let took = started.elapsed();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}: {problem}"
        );
        assert_eq!(
            problem["type"],
            "https://evilent.dev/problems/dependency-unavailable"
        );
        assert!(
            took <= Duration::from_secs(2),
            "attempt {attempt} took {took:?}"
        );
    }
    // The rest of user-service still answers.
    let (status, _) = app.get(&app.users("/user/una"), &t).await;
    assert_eq!(status, StatusCode::OK);
    app.system.stop().await;
}
