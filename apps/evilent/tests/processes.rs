//! The real deployment shape: user-service, product-service and both
//! workers as separate processes on PostgreSQL + SecantusDB (MongoDB wire) +
//! moto (SNS/SQS). The seed's four flows; a worker killed mid-batch loses
//! and doubles nothing; a poison message ends in the DLQ and `evilent dlq
//! redrive` returns it. Skipped with a reason without the servers; required
//! under `CI=true`.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evilent_aws::{SqsBroker, SqsConfig};
use evilent_broker::SendRequest;
use evilent_messaging::conformance::skip;
use evilent_messaging::{QueuePort, Topology};
use evilent_platform::DevIssuer;
use evilent_platform::auth::TokenRequest;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_evilent");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Env {
    vars: HashMap<&'static str, String>,
    ports: HashMap<&'static str, u16>,
    data: tempfile::TempDir,
}

impl Env {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).envs(&self.vars).env("EVILENT_LOG", "warn");
        c
    }

    /// `evilent serve SERVICE` on its port.
    fn serve(&self, service: &str) -> Child {
        self.spawn(&["serve", service])
            .env("EVILENT_PORT", self.ports[service].to_string())
            .spawn()
            .unwrap()
    }

    /// `evilent worker SERVICE`.
    fn worker(&self, service: &str) -> Child {
        self.spawn(&["worker", service]).spawn().unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Command {
        let mut c = self.command(args);
        c.stdout(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "evilent {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service])
    }
}

fn wait_port(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes stopped (SIGINT, then SIGKILL) when the test ends, even by a panic.
#[derive(Default)]
struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self.0.drain(..) {
            stop(child);
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn eventually(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    what: &str,
    check: impl Fn(u16, &Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let resp = http.get(url).bearer_auth(token).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if check(status, &body) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: gave up on {url}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_on_postgres_mongodb_and_sqs() {
    let sqs_url =
        std::env::var("EVILENT_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let moto_up = reqwest::Client::new()
        .get(format!("{sqs_url}/moto-api/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok();
    if !moto_up {
        skip(&format!("no SQS endpoint at {sqs_url}"));
        return;
    }
    let pg = match evilent_pg::testing::fresh_database_url("e2e").await {
        Ok(url) => url,
        Err(reason) => {
            skip(&reason);
            return;
        }
    };
    let mongo_db = match evilent_mongo::testing::fresh_database("e2e").await {
        Ok((_, db)) => db.name().to_owned(),
        Err(reason) => {
            skip(&reason);
            return;
        }
    };
    let ports: HashMap<&str, u16> = [
        ("issuer", free_port()),
        ("users", free_port()),
        ("products", free_port()),
    ]
    .into_iter()
    .collect();
    let data = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, String> = [
        ("EVILENT_BROKER", "sqs".to_owned()),
        ("EVILENT_SQS_ENDPOINT", sqs_url.clone()),
        ("EVILENT_USERS_DATABASE_URL", pg),
        (
            "EVILENT_PRODUCTS_MONGODB_URL",
            evilent_mongo::testing::url(),
        ),
        ("EVILENT_PRODUCTS_MONGODB_DATABASE", mongo_db),
        ("EVILENT_DATA_DIR", data.path().display().to_string()),
        (
            "EVILENT_ISSUER_URL",
            format!("http://127.0.0.1:{}", ports["issuer"]),
        ),
        (
            "EVILENT_PRODUCTS_URL",
            format!("http://127.0.0.1:{}", ports["products"]),
        ),
        ("EVILENT_VISIBILITY_TIMEOUT", "3".to_owned()),
    ]
    .into_iter()
    .collect();
    let env = Env { vars, ports, data };

    // The topology on SQS, emptied of what earlier runs on this moto left.
    let shown = env.run(&["infra", "apply"]);
    assert!(
        shown.contains("user-events -> user-events-queue"),
        "{shown}"
    );
    assert!(
        shown.contains("-> user-events-queue-dlq after 3 receives"),
        "{shown}"
    );
    let sqs = SqsBroker::connect(&SqsConfig {
        endpoint: Some(sqs_url),
        region: None,
    })
    .await;
    for q in Topology::design().queues {
        sqs.purge(&q.name).await.unwrap();
        sqs.purge(&q.dead_letter_queue).await.unwrap();
    }
    env.run(&["migrate"]);

    let mut fleet = Fleet::default();
    fleet.0.push(env.serve("issuer"));
    fleet.0.push(env.serve("users"));
    fleet.0.push(env.serve("products"));
    for (name, port) in &env.ports {
        wait_port(*port, name);
    }
    fleet.0.push(env.worker("products"));
    let mut doomed = Fleet(vec![env.worker("users")]);

    // 1-4: the seed's four flows, as the demo plays them.
    let out = env.run(&[
        "demo",
        "--users-url",
        &env.url("users"),
        "--products-url",
        &env.url("products"),
        "--issuer",
        &env.url("issuer"),
        "--data-dir",
        &env.data.path().display().to_string(),
    ]);
    assert!(out.contains("all four flows of the seed work"), "{out}");

    // A worker killed mid-batch loses and doubles nothing.
    let dev = DevIssuer::load_or_create(
        &env.data.path().join("dev-issuer-key.der"),
        &env.url("issuer"),
    )
    .unwrap();
    let token = dev.mint(&TokenRequest {
        sub: "kim".into(),
        email: None,
        admin: false,
        ttl: Duration::from_secs(600),
    });
    let http = reqwest::Client::new();
    let body = json!({"firstName": "Kim", "lastName": "K", "email": "kim@example.com"});
    assert_eq!(
        http.post(format!("{}/user", env.url("users")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    for i in 0..30 {
        let body = json!({"name": format!("thing {i}"), "price": 1.5, "categoryId": "c"});
        let resp = http
            .post(format!("{}/product", env.url("products")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        if i == 12 {
            doomed.0[0].kill().unwrap(); // SIGKILL, whatever it holds
            doomed.0[0].wait().unwrap();
        }
    }
    fleet.0.push(env.worker("users"));
    let stats = eventually(
        &http,
        &format!("{}/user/kim/stats", env.url("users")),
        &token,
        "after the kill",
        |s, b| s == 200 && b["productCount"] == 30,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await; // past the visibility timeout: late redeliveries arrive
    let again: Value = http
        .get(format!("{}/user/kim/stats", env.url("users")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            again["productCount"].clone(),
            again["productsCreated"].clone()
        ),
        (json!(30), json!(30)),
        "before {stats}, after {again}"
    );

    // A message that always fails ends in the DLQ; `evilent dlq redrive` returns it.
    let poison = SendRequest::new(r#"{"eventType":"UserCreated","userId":"broken"}"#);
    sqs.send("user-events-queue", &poison).await.unwrap();
    let started = Instant::now();
    while sqs.counts("user-events-queue-dlq").await.unwrap().visible == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the poison never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = env.run(&["dlq", "list", "--queue", "user-events-queue"]);
    assert!(
        listed.contains("1 dead letter(s)") && listed.contains("broken"),
        "{listed}"
    );
    let redriven = env.run(&["dlq", "redrive", "--queue", "user-events-queue"]);
    assert!(redriven.contains("redrove 1"), "{redriven}");
    assert_eq!(
        sqs.counts("user-events-queue-dlq").await.unwrap().visible,
        0
    );
}
