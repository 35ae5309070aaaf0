//! `evilent bench`: the whole system measured from the outside.
//!
//! It starts `evilent up` (this very binary) as a child on free ports with a
//! fresh data directory, and measures, in one run:
//! - **propagation latency**: at a fixed rate (default 200/s), `POST /product`
//!   and the time from its `201` until `GET /user/{id}/stats` shows the count
//!   (polled every 250 µs); and the broker-internal time from the event's
//!   `timestamp` (written in the outbox transaction) to its application in
//!   user-service (`lastAppliedAt`);
//! - **sustained throughput**: products created by concurrent clients and
//!   counted by user-service, per second (and, beside it, the rate of the
//!   `201`s alone while that ran), beside SQLite's raw rate of
//!   single-row transactions on the same disk, and beside the rate at which
//!   the same clients get through bare HTTP round trips (`GET /health`):
//!   the share of the machine that HTTP alone takes, when the load
//!   generator runs on the same cores as the system under test (its clients
//!   are as lean as wrk's, see [`super::loadgen`], so that they take as
//!   little of those cores as they can);
//! - **the same without HTTP**: a fresh system started in the bench's own
//!   process, products written straight into product-service's store (the
//!   handler's write: product row and event in one commit) and counted by
//!   user-service, per second: what the write and the event pipeline cost
//!   on their own, beside the same ceiling;
//! - **memory**: the RSS of the system under test, idle and the peak under load;
//! - with `EVILENT_BROKER=sqs`: the outbox → SNS → SQS → consumer path run
//!   in this process, with every SQS/SNS request counted at the SDK:
//!   requests per delivered event and the monthly cost at 100K events.
//!
//! The latency distribution is drawn as an SVG (cumulative distribution).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evilent::system::dev_key_path;
use evilent_platform::DevIssuer;
use evilent_platform::auth::TokenRequest;
use hyper::http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Requests per second in the latency run.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Products in the throughput run (enough for a few seconds of load:
    /// the figure is the sustained rate, not the first second's burst).
    #[arg(long, default_value_t = 20_000)]
    products: usize,
    /// Concurrent clients in the throughput run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Events through SNS/SQS when `EVILENT_BROKER=sqs`.
    #[arg(long, default_value_t = 400)]
    sqs_events: usize,
    /// Where to draw the latency distribution.
    #[arg(long, default_value = "bench-latency.svg")]
    svg: PathBuf,
}

#[derive(Serialize, Default)]
struct Percentiles {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    samples: usize,
}

#[derive(Serialize)]
struct SqsFigures {
    events: usize,
    requests: u64,
    requests_per_event: f64,
    by_kind: Value,
    monthly_requests_at_100k_events: f64,
    monthly_cost_usd_after_free_tier: f64,
    monthly_cost_usd_without_free_tier: f64,
}

#[derive(Serialize)]
struct Report {
    date: String,
    rate_per_s: u32,
    propagation: Percentiles,
    broker_internal: Percentiles,
    throughput_events_per_s: f64,
    /// `201`s per second during the throughput run: the rate at which the
    /// write API accepted products, while the events behind them still
    /// flowed (the rest of the work of an event is the pipeline's).
    accepted_per_s: f64,
    sqlite_insert_tx_per_s: f64,
    throughput_vs_sqlite: f64,
    /// `GET /health` round trips per second, same clients, same concurrency.
    http_round_trips_per_s: f64,
    throughput_vs_http: f64,
    /// Products written straight into product-service's store in a system
    /// started in the bench's process, counted per second by user-service:
    /// the same pipeline as `throughput_events_per_s` without HTTP.
    without_http_events_per_s: f64,
    without_http_vs_sqlite: f64,
    rss_idle_mib: f64,
    rss_load_peak_mib: f64,
    sqs: Option<SqsFigures>,
    /// Why `sqs` is empty: the SNS/SQS figures need an SQS endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    sqs_not_measured: Option<&'static str>,
    svg: String,
}

fn progress(phase: &str, done: usize, total: usize) {
    let width = 30;
    let filled = (done * width)
        .checked_div(total)
        .map_or(width, |f| f.min(width));
    eprint!(
        "\r{phase:<12} [{}{}] {done}/{total}   ",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    if done >= total {
        eprintln!();
    }
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if v.is_empty() {
            return 0.0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i]
    };
    Percentiles {
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
        max_ms: v.last().copied().unwrap_or(0.0),
        samples: v.len(),
    }
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

struct Child2(Child);

impl Drop for Child2 {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn parse_time(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Draws the cumulative distributions as an SVG.
fn svg(series: &[(&str, &str, Vec<f64>)]) -> String {
    let (w, h, m) = (720.0, 400.0, 50.0);
    let mut all: Vec<f64> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    let max_x = all
        .get(((all.len() as f64) * 0.999) as usize)
        .copied()
        .unwrap_or(1.0)
        .max(0.001)
        * 1.05;
    let mut out = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
         <rect width='100%' height='100%' fill='white'/>\
         <text x='{m}' y='20' font-size='14'>evilent bench: latency, cumulative distribution</text>\
         <line x1='{m}' y1='{}' x2='{}' y2='{}' stroke='black'/><line x1='{m}' y1='{m}' x2='{m}' y2='{}' stroke='black'/>",
        h - m,
        w - m,
        h - m,
        h - m
    );
    for i in 0..=5 {
        let fx = f64::from(i) / 5.0;
        let x = m + fx * (w - 2.0 * m);
        let y = h - m - fx * (h - 2.0 * m);
        out.push_str(&format!(
            "<text x='{x}' y='{}' text-anchor='middle'>{:.2} ms</text>",
            h - m + 18.0,
            fx * max_x
        ));
        out.push_str(&format!(
            "<text x='{}' y='{}' text-anchor='end'>{:.0}%</text>",
            m - 6.0,
            y + 4.0,
            fx * 100.0
        ));
    }
    for (i, (name, color, data)) in series.iter().enumerate() {
        let mut d = data.clone();
        d.sort_by(f64::total_cmp);
        let n = d.len().max(1) as f64;
        let points: Vec<String> = d
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let x = m + (v / max_x).min(1.0) * (w - 2.0 * m);
                let y = h - m - ((k + 1) as f64 / n) * (h - 2.0 * m);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        out.push_str(&format!(
            "<polyline fill='none' stroke='{color}' stroke-width='2' points='{}'/>",
            points.join(" ")
        ));
        out.push_str(&format!(
            "<text x='{}' y='{}' fill='{color}'>{name}</text>",
            w - m - 220.0,
            m + 20.0 + 16.0 * i as f64
        ));
    }
    out.push_str("</svg>\n");
    out
}

/// Creates the user `bench` (whose token is `token`) in user-service at `users`.
async fn create_bench_user(http: &reqwest::Client, users: &str, token: &str) -> anyhow::Result<()> {
    let resp = http
        .post(format!("{users}/user"))
        .bearer_auth(token)
        .json(&json!({"firstName": "Bench", "lastName": "Mark", "email": "bench@example.com"}))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status() == 201,
        "creating the bench user: {}",
        resp.status()
    );
    Ok(())
}

/// The `productCount` that user-service's statistics at `stats_url` show.
async fn product_count(
    http: &reqwest::Client,
    stats_url: &str,
    token: &str,
) -> anyhow::Result<usize> {
    let b: Value = http
        .get(stats_url)
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    Ok(usize::try_from(b["productCount"].as_i64().unwrap_or(0)).unwrap_or(0))
}

/// The pipeline behind the `201`, without HTTP: the same system as
/// `evilent up` (same files, relays, broker and consumers), started in this
/// process, with `concurrency` tasks writing `total` products straight into
/// product-service's store — the write its `POST /product` handler makes,
/// the product row and its `ProductCreated` in one commit — until
/// user-service's statistics count them all. Products counted per second:
/// what the product write and the event pipeline cost on their own, so that
/// the gap to the end-to-end figure is what HTTP, JSON, tokens and the
/// load generator take.
async fn without_http(dir: &Path, total: usize, concurrency: usize) -> anyhow::Result<f64> {
    use evilent::system::{System, SystemConfig};
    use evilent_contracts::{Metadata, Money, Topic};
    use evilent_products::domain::Product;
    use evilent_products::handlers::product_created;

    let system = System::start(SystemConfig::new(dir).ephemeral()).await?;
    let token = system.token("bench", false);
    let http = reqwest::Client::new();
    create_bench_user(&http, &system.users_url, &token).await?;
    let stats_url = format!("{}/user/bench/stats", system.users_url);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (store, next) = (system.products_store.clone(), next.clone());
        writers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let now = chrono::Utc::now();
                let product = Product {
                    id: uuid::Uuid::now_v7().to_string(),
                    user_id: "bench".into(),
                    name: "bench".into(),
                    description: None,
                    price: Money::from_minor(100),
                    category_id: "bench".into(),
                    stock: 0,
                    is_active: true,
                    created_at: now,
                    updated_at: now,
                    version: 1,
                };
                let meta = Metadata::new(Topic::ProductEvents.source());
                let event = product_created(&product, meta);
                store.create(&product, &[event]).await?;
            }
            anyhow::Ok(())
        });
    }
    loop {
        let count = product_count(&http, &stats_url, &token).await?;
        progress("without HTTP", count, total);
        if count >= total {
            break;
        }
        // A failed write stops the run now rather than at the time limit.
        while let Some(done) = writers.try_join_next() {
            done??;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(300),
            "the run without HTTP did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t0.elapsed();
    while let Some(done) = writers.join_next().await {
        done??;
    }
    system.stop().await;
    #[allow(clippy::cast_precision_loss)]
    Ok(total as f64 / elapsed.as_secs_f64())
}

async fn sqs_figures(events: usize) -> anyhow::Result<Option<SqsFigures>> {
    use evilent_messaging::outbox::sqlite::{SqliteOutbox, append};
    use evilent_messaging::{
        Consumer, ConsumerConfig, Handled, HandlerError, MessageHandler, OutboxRelay, OutboxStore,
        QueuePort, RelayConfig, SqliteDb,
    };
    let config = evilent::config::Config::from_env()?;
    let evilent::config::BrokerChoice::Sqs(sqs_config) = config.broker else {
        return Ok(None);
    };
    let sqs = Arc::new(evilent_aws::SqsBroker::connect(&sqs_config).await);
    let tag = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let (topic, queue, dlq) = (
        format!("bench-{tag}-events"),
        format!("bench-{tag}-queue"),
        format!("bench-{tag}-queue-dlq"),
    );
    sqs.create_topic(&topic, false).await?;
    sqs.create_queue(&dlq, &evilent_broker::QueueAttributes::default())
        .await?;
    let redrive = evilent_broker::RedrivePolicy {
        dead_letter_queue: dlq.clone(),
        max_receive_count: 3,
    };
    sqs.create_queue(
        &queue,
        &evilent_broker::QueueAttributes {
            redrive: Some(redrive),
            ..Default::default()
        },
    )
    .await?;
    sqs.subscribe(&topic, &queue, None).await?;
    let before = sqs.requests.messaging_total();
    let kinds = |s: &evilent_aws::SqsBroker| {
        [
            &s.requests.send,
            &s.requests.receive,
            &s.requests.delete,
            &s.requests.change_visibility,
            &s.requests.publish,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    };
    let start_kinds = kinds(&sqs);

    struct Count(AtomicU64);
    #[async_trait::async_trait]
    impl MessageHandler for Count {
        async fn handle(&self, _: &evilent_broker::Message) -> Result<Handled, HandlerError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(Handled::Applied)
        }
    }
    let db = SqliteDb::in_memory()?;
    let outbox = Arc::new(SqliteOutbox::new(db.clone()));
    let relay = OutboxRelay::new(outbox.clone(), sqs.clone(), RelayConfig::default());
    let counter = Arc::new(Count(AtomicU64::new(0)));
    let consumer = Arc::new(Consumer::new(
        "bench",
        sqs.clone(),
        queue.clone(),
        counter.clone(),
        ConsumerConfig::default(),
    ));
    let done = Arc::new(AtomicBool::new(false));
    let consuming = {
        let (consumer, done) = (consumer.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let _ = consumer.step_with_wait(Duration::from_secs(1)).await;
            }
        })
    };
    // Events arrive in bursts, as under load: the relay publishes them in batches.
    for chunk in (0..events).collect::<Vec<_>>().chunks(50) {
        db.with(|c| -> anyhow::Result<()> {
            let tx = c.transaction()?;
            for i in chunk {
                let e = evilent_contracts::Envelope::new(evilent_contracts::ProductDeleted {
                    product_id: format!("p{i}"),
                    user_id: "u".into(),
                });
                append(&tx, &topic, &e, None)?;
            }
            tx.commit()?;
            Ok(())
        })?;
        relay.drain().await?;
        progress("sqs", counter.0.load(Ordering::Relaxed) as usize, events);
    }
    let started = Instant::now();
    while counter.0.load(Ordering::Relaxed) < events as u64 {
        if started.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {events} events consumed from SQS",
                counter.0.load(Ordering::Relaxed)
            );
        }
        relay.drain().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done.store(true, Ordering::Relaxed);
    let _ = consuming.await;
    progress("sqs", events, events);
    anyhow::ensure!(outbox.unpublished().await? == 0, "outbox not drained");
    let requests = sqs.requests.messaging_total() - before;
    let end_kinds = kinds(&sqs);
    let names = ["send", "receive", "delete", "change_visibility", "publish"];
    let by_kind: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).to_owned(), json!(end_kinds[i] - start_kinds[i])))
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let per_event = requests as f64 / events as f64;
    let monthly = 100_000.0 * per_event;
    Ok(Some(SqsFigures {
        events,
        requests,
        requests_per_event: per_event,
        by_kind: Value::Object(by_kind),
        monthly_requests_at_100k_events: monthly,
        monthly_cost_usd_after_free_tier: ((monthly - 1_000_000.0).max(0.0)) * 0.40 / 1_000_000.0,
        monthly_cost_usd_without_free_tier: monthly * 0.40 / 1_000_000.0,
    }))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; benchmark with `cargo run --release -- bench`");
    }
    let dir = tempfile::tempdir()?;
    let ceiling = super::bench::sqlite_ceiling(dir.path(), 20_000)?;
    let ports = [free_port()?, free_port()?, free_port()?];
    let data = dir.path().join("system");
    let exe = std::env::current_exe()?;
    let child = Command::new(&exe)
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--issuer-port",
            &ports[0].to_string(),
            "--users-port",
            &ports[1].to_string(),
            "--products-port",
            &ports[2].to_string(),
        ])
        .env("EVILENT_LOG", "error")
        .env("EVILENT_BROKER", "embedded")
        .stdout(Stdio::null())
        .spawn()
        .context("starting evilent up")?;
    let up = Child2(child);
    let pid = up.0.id();
    let (users, products) = (
        format!("http://127.0.0.1:{}", ports[1]),
        format!("http://127.0.0.1:{}", ports[2]),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let started = Instant::now();
    while http.get(format!("{products}/health")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("evilent up did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_mib(pid);

    let issuer = DevIssuer::load_or_create(
        &dev_key_path(&data),
        &format!("http://127.0.0.1:{}", ports[0]),
    )?;
    let token = issuer.mint(&TokenRequest {
        sub: "bench".into(),
        email: None,
        admin: false,
        ttl: Duration::from_secs(7200),
    });
    create_bench_user(&http, &users, &token).await?;
    let stats_url = format!("{users}/user/bench/stats");
    let product = json!({"name": "bench", "price": 1.0, "categoryId": "bench"});

    // 1. Propagation at a fixed rate.
    #[allow(clippy::cast_possible_truncation)]
    let n = (u64::from(args.rate) * args.seconds) as usize;
    let base = Instant::now();
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let internal = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (http, token, url, seen, internal, stop) = (
            http.clone(),
            token.clone(),
            stats_url.clone(),
            seen.clone(),
            internal.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut last = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = http.get(&url).bearer_auth(&token).send().await
                    && let Ok(b) = r.json::<Value>().await
                {
                    let count = usize::try_from(b["productCount"].as_i64().unwrap_or(0))
                        .unwrap_or(0)
                        .min(seen.len());
                    if count > last {
                        let now = base.elapsed().as_micros() as u64 + 1;
                        for k in last..count {
                            seen[k].store(now, Ordering::Relaxed);
                        }
                        if let (Some(e), Some(a)) = (
                            parse_time(&b["lastEventAt"]),
                            parse_time(&b["lastAppliedAt"]),
                        ) {
                            internal
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push((a - e).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                        }
                        last = count;
                    }
                }
                tokio::time::sleep(Duration::from_micros(250)).await;
            }
        })
    };
    let mut tick =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for k in 0..n {
        tick.tick().await;
        let r = http
            .post(format!("{products}/product"))
            .bearer_auth(&token)
            .json(&product)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "POST /product: {}", r.status());
        acked[k].store(base.elapsed().as_micros() as u64 + 1, Ordering::Relaxed);
        if k % 50 == 0 {
            progress("latency", k, n);
        }
    }
    progress("latency", n, n);
    let wait = Instant::now();
    while seen[n - 1].load(Ordering::Relaxed) == 0 && wait.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = poller.await;
    let propagation: Vec<f64> = (0..n)
        .filter(|k| seen[*k].load(Ordering::Relaxed) > 0)
        .map(|k| {
            seen[k]
                .load(Ordering::Relaxed)
                .saturating_sub(acked[k].load(Ordering::Relaxed)) as f64
                / 1000.0
        })
        .collect();
    let internal: Vec<f64> = internal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();

    // 2. Sustained throughput, and memory under load.
    let total = args.products;
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max((rss_mib(pid) * 1024.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let create = super::loadgen::Prepared {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, ports[2])),
        method: Method::POST,
        path: "/product".into(),
        bearer: Some(token.clone()),
        json: Some(serde_json::to_vec(&product)?.into()),
        expect: StatusCode::CREATED,
    };
    let t0 = Instant::now();
    let clients = {
        let concurrency = args.concurrency;
        tokio::spawn(
            async move { super::loadgen::hammer(&create, total as u64, concurrency).await },
        )
    };
    let target = n + total;
    let mut clients = Some(clients);
    let mut accepted = None;
    loop {
        let count = product_count(&http, &stats_url, &token).await?;
        progress("throughput", count.saturating_sub(n), total);
        if count >= target {
            break;
        }
        // A client that got another answer than 201 stops the run now,
        // rather than leave it waiting for products that will never count.
        if let Some(done) = clients.take_if(|c| c.is_finished()) {
            accepted = Some(done.await??);
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(300),
            "throughput run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t0.elapsed();
    if let Some(running) = clients {
        accepted = Some(running.await??);
    }
    let accepted = accepted.context("the clients finished without a rate")?;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    #[allow(clippy::cast_precision_loss)]
    let throughput = total as f64 / elapsed.as_secs_f64();

    // 3. Bare HTTP round trips with the same clients: what is left of the
    // two cores for everything behind the 201 once HTTP is paid for.
    let health = super::loadgen::Prepared {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, ports[2])),
        method: Method::GET,
        path: "/health".into(),
        bearer: None,
        json: None,
        expect: StatusCode::OK,
    };
    let round_trips = super::loadgen::hammer(&health, total as u64, args.concurrency).await?;
    drop(up);

    // 4. The same products again, without HTTP, in a fresh system.
    let behind = without_http(&dir.path().join("without-http"), total, args.concurrency).await?;

    // 5. SNS + SQS requests per event, when configured.
    let sqs = sqs_figures(args.sqs_events).await?;

    let picture = svg(&[
        (
            "201 -> visible in user-service",
            "#1f77b4",
            propagation.clone(),
        ),
        ("outbox commit -> applied", "#d62728", internal.clone()),
    ]);
    std::fs::write(&args.svg, picture)
        .with_context(|| format!("writing {}", args.svg.display()))?;
    let report = Report {
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        rate_per_s: args.rate,
        propagation: percentiles(propagation),
        broker_internal: percentiles(internal),
        throughput_events_per_s: throughput,
        accepted_per_s: accepted,
        sqlite_insert_tx_per_s: ceiling,
        throughput_vs_sqlite: throughput / ceiling,
        http_round_trips_per_s: round_trips,
        throughput_vs_http: throughput / round_trips,
        without_http_events_per_s: behind,
        without_http_vs_sqlite: behind / ceiling,
        rss_idle_mib: rss_idle,
        rss_load_peak_mib: peak.load(Ordering::Relaxed) as f64 / 1024.0,
        sqs_not_measured: sqs.is_none().then_some(
            "SNS/SQS requests are counted against an SQS endpoint: set EVILENT_BROKER=sqs and EVILENT_SQS_ENDPOINT (moto or AWS)",
        ),
        sqs,
        svg: args.svg.display().to_string(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_table(&report);
    Ok(())
}

fn print_table(r: &Report) {
    let row = |name: &str, value: String| println!("{name:<52} {value:>16}");
    println!(
        "evilent bench — {} (embedded broker, SQLite files, `evilent up` as the system under test)",
        r.date
    );
    let p = &r.propagation;
    row(
        &format!(
            "propagation 201 -> stats at {}/s p50 / p90 (ms)",
            r.rate_per_s
        ),
        format!("{:.2} / {:.2}", p.p50_ms, p.p90_ms),
    );
    row(
        "propagation p99 / max (ms)",
        format!("{:.2} / {:.2}", p.p99_ms, p.max_ms),
    );
    let b = &r.broker_internal;
    row(
        "outbox commit -> applied p50 / p99 (ms)",
        format!("{:.2} / {:.2}", b.p50_ms, b.p99_ms),
    );
    row(
        "sustained products created+counted (events/s)",
        format!("{:.0}", r.throughput_events_per_s),
    );
    row(
        "POST /product answered 201 meanwhile (req/s)",
        format!("{:.0}", r.accepted_per_s),
    );
    row(
        "SQLite 1-row transactions (tx/s, ceiling)",
        format!("{:.0}", r.sqlite_insert_tx_per_s),
    );
    row(
        "throughput / ceiling",
        format!("{:.2}", r.throughput_vs_sqlite),
    );
    row(
        "bare HTTP round trips, same clients (req/s)",
        format!("{:.0}", r.http_round_trips_per_s),
    );
    row(
        "throughput / bare HTTP",
        format!("{:.2}", r.throughput_vs_http),
    );
    row(
        "without HTTP: store written in-process (events/s)",
        format!("{:.0}", r.without_http_events_per_s),
    );
    row(
        "without HTTP / ceiling",
        format!("{:.2}", r.without_http_vs_sqlite),
    );
    row(
        "RSS idle / peak under load (MiB)",
        format!("{:.1} / {:.1}", r.rss_idle_mib, r.rss_load_peak_mib),
    );
    if let Some(s) = &r.sqs {
        row(
            "SNS+SQS requests per delivered event",
            format!("{:.3}", s.requests_per_event),
        );
        row(
            "monthly requests at 100K events",
            format!("{:.0}", s.monthly_requests_at_100k_events),
        );
        row(
            "monthly cost, free tier / list price (USD)",
            format!(
                "{:.2} / {:.4}",
                s.monthly_cost_usd_after_free_tier, s.monthly_cost_usd_without_free_tier
            ),
        );
    } else {
        row(
            "SNS+SQS requests per event",
            "(set EVILENT_BROKER=sqs)".into(),
        );
    }
    row("latency distribution", r.svg.clone());
}
