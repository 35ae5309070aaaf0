//! `spawn_app()`: the whole system on free ports with its own data directory,
//! and a small typed client for the tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use evilent::system::{System, SystemConfig};
use evilent_messaging::Faults;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct TestApp {
    pub system: System,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// The system with defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The system with broker faults: duplicates, reordering, lost deletes,
/// failing batch entries, visibility expiring mid-handler.
pub async fn spawn_faulty_app(seed: u64) -> TestApp {
    spawn_app_with(|c| {
        c.faults = Some(Faults {
            duplicate: 0.5,
            reorder: 0.5,
            lose_delete: 0.2,
            fail_batch_entry: 0.2,
            expire_visibility: 0.2,
            seed,
        });
    })
    .await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut SystemConfig)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, configure).await
}

/// Starts a system on an existing data directory (restarts).
pub async fn start_in(
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut SystemConfig),
) -> TestApp {
    let mut config = SystemConfig::new(dir.path()).ephemeral();
    config.consumer_wait = Duration::from_millis(500);
    configure(&mut config);
    let system = System::start(config).await.unwrap();
    TestApp {
        system,
        http: reqwest::Client::new(),
        dir,
    }
}

impl TestApp {
    pub fn token(&self, sub: &str) -> String {
        self.system.token(sub, false)
    }

    pub fn admin_token(&self, sub: &str) -> String {
        self.system.token(sub, true)
    }

    pub fn users(&self, path: &str) -> String {
        format!("{}{path}", self.system.users_url)
    }

    pub fn products(&self, path: &str) -> String {
        format!("{}{path}", self.system.products_url)
    }

    /// Calls `url` with `token` (if any) and a JSON `body` (if any).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, url: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, url, Some(token), None).await
    }

    pub async fn post(&self, url: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, url, Some(token), Some(body)).await
    }

    pub async fn patch(&self, url: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, url, Some(token), Some(body)).await
    }

    pub async fn delete(&self, url: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, url, Some(token), None).await
    }

    /// Creates `sub`'s user profile.
    pub async fn create_user(&self, sub: &str) -> Value {
        let body = serde_json::json!({"firstName": "First", "lastName": format!("Of {sub}"), "email": format!("{sub}@example.com")});
        let (status, user) = self
            .post(&self.users("/user"), &self.token(sub), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        user
    }

    /// Creates a product owned by `sub`; returns its id.
    pub async fn create_product(&self, sub: &str, name: &str) -> String {
        let body =
            serde_json::json!({"name": name, "price": 19.99, "categoryId": "cat-1", "stock": 3});
        let (status, product) = self
            .post(&self.products("/product"), &self.token(sub), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{product}");
        product["id"].as_str().unwrap().to_owned()
    }

    /// Polls `url` (as `sub`) until `check` holds; panics after 10 s with the last answer.
    pub async fn eventually(
        &self,
        url: &str,
        sub: &str,
        check: impl Fn(StatusCode, &Value) -> bool,
    ) -> Value {
        let token = self.token(sub);
        let started = Instant::now();
        loop {
            let (status, body) = self.get(url, &token).await;
            if check(status, &body) {
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "gave up on {url}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until no message is left in the queues (visible, in flight or
    /// delayed) and every outbox is published, then a little longer.
    pub async fn settle(&self) {
        let started = Instant::now();
        loop {
            let mut busy = 0;
            for q in ["user-events-queue", "product-events-queue"] {
                let c = evilent_messaging::QueuePort::counts(&self.system.broker, q)
                    .await
                    .unwrap();
                busy += c.visible + c.delayed;
            }
            if busy == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "queues never drained"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The problem document's failing fields.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}
