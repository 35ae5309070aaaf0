//! `evilent demo`: the seed's end-to-end scenario, step by step, timed.
//!
//! 1. create a user profile (CASO 1) and watch the seller profile appear in product-service;
//! 2. create a product (CASO 2) and watch `productCount` become 1 in user-service;
//! 3. list the user's products through user-service, which asks product-service over HTTP (CASO 4);
//! 4. delete the user (CASO 3) and watch the product become inactive.
//!
//! Each step prints the client's response time and, for events, how long
//! the event took to take effect on the other service.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Where the services are, and how to get a token.
pub struct Target {
    pub users_url: String,
    pub products_url: String,
    pub token_for: Box<dyn Fn(&str) -> String + Send + Sync>,
}

/// One step's timings.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    pub response: Duration,
    pub propagation: Option<Duration>,
}

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value, Duration)> {
        let started = Instant::now();
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| format!("calling {url}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let elapsed = started.elapsed();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            elapsed,
        ))
    }

    /// Polls `url` until `done(status, body)`; returns how long it took.
    async fn until(
        &self,
        url: &str,
        done: impl Fn(u16, &Value) -> bool,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let (status, body, _) = self.call(reqwest::Method::GET, url, None).await?;
            if done(status, &body) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(15) {
                bail!("gave up waiting on {url}: last answer {status} {body}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn expect(step: &str, status: u16, want: u16, body: &Value) -> anyhow::Result<()> {
    if status != want {
        bail!("{step}: expected {want}, got {status}: {body}");
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Plays the scenario, printing each step; returns the timings.
pub async fn run(target: &Target) -> anyhow::Result<Vec<Step>> {
    let user_id = format!("demo-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let client = Client {
        http: reqwest::Client::new(),
        token: (target.token_for)(&user_id),
    };
    let (u, p) = (&target.users_url, &target.products_url);
    let mut steps = Vec::new();
    println!("evilent demo: user {user_id}\n  user-service    {u}\n  product-service {p}\n");

    let body =
        json!({"firstName": "John", "lastName": "Doe", "email": format!("{user_id}@example.com")});
    let (status, created, response) = client
        .call(reqwest::Method::POST, &format!("{u}/user"), Some(body))
        .await?;
    expect("POST /user", status, 201, &created)?;
    let propagation = client
        .until(&format!("{p}/seller/{user_id}"), |s, _| s == 200)
        .await?;
    println!(
        "1. POST /user -> 201 in {}; seller profile in product-service after {} (UserProfileCreated)",
        ms(response),
        ms(propagation)
    );
    steps.push(Step {
        name: "profile -> seller profile",
        response,
        propagation: Some(propagation),
    });

    let body = json!({"name": "Laptop", "price": 999.99, "categoryId": "cat-789", "stock": 5});
    let (status, product, response) = client
        .call(reqwest::Method::POST, &format!("{p}/product"), Some(body))
        .await?;
    expect("POST /product", status, 201, &product)?;
    let product_id = product["id"]
        .as_str()
        .context("product without id")?
        .to_owned();
    let propagation = client
        .until(&format!("{u}/user/{user_id}/stats"), |s, b| {
            s == 200 && b["productCount"] == json!(1)
        })
        .await?;
    println!(
        "2. POST /product -> 201 in {}; productCount = 1 in user-service after {} (ProductCreated)",
        ms(response),
        ms(propagation)
    );
    steps.push(Step {
        name: "product -> productCount",
        response,
        propagation: Some(propagation),
    });

    let (status, listed, response) = client
        .call(
            reqwest::Method::GET,
            &format!("{u}/user/{user_id}/products"),
            None,
        )
        .await?;
    expect("GET /user/{id}/products", status, 200, &listed)?;
    let n = listed["products"].as_array().map_or(0, Vec::len);
    println!(
        "3. GET /user/{{id}}/products -> 200 in {} with {n} product(s), over HTTP from product-service",
        ms(response)
    );
    steps.push(Step {
        name: "user's products over HTTP",
        response,
        propagation: None,
    });

    let (status, deleted, response) = client
        .call(
            reqwest::Method::DELETE,
            &format!("{u}/user/{user_id}"),
            None,
        )
        .await?;
    expect("DELETE /user/{id}", status, 204, &deleted)?;
    let propagation = client
        .until(&format!("{p}/product/{product_id}"), |s, b| {
            s == 200 && b["isActive"] == json!(false)
        })
        .await?;
    println!(
        "4. DELETE /user/{{id}} -> 204 in {}; product inactive after {} (UserDeleted -> ProductUpdated)",
        ms(response),
        ms(propagation)
    );
    steps.push(Step {
        name: "user deleted -> products inactive",
        response,
        propagation: Some(propagation),
    });
    println!("\nall four flows of the seed work.");
    Ok(steps)
}
