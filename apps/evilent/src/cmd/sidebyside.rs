//! `evilent bench sqs-consumer`: the same N messages consumed from the same
//! moto once by evilent's consumer and once by bbc's `sqs-consumer` (npm),
//! each doing the same trivial work (counting), and the ratios.
//!
//! Both sides get a fresh queue that a feeder keeps shallow (20 to 60
//! messages: moto's receive slows down as queues deepen, from ~15 ms at 20
//! messages to ~300 ms at 2,000) until N messages went through, and use
//! their libraries' usual settings: batches of 10 and long polling. API
//! requests are counted in each side's SDK (the feeder's are not). The Node side lives in `bench/sqs-consumer/` and is
//! installed with npm on first use.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evilent_aws::{SqsBroker, SqsConfig};
use evilent_broker::{BatchEntry, Message, QueueAttributes, SendRequest};
use evilent_messaging::{
    Consumer, ConsumerConfig, Handled, HandlerError, MessageHandler, QueuePort,
};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    #[arg(
        long,
        env = "EVILENT_SQS_ENDPOINT",
        default_value = "http://127.0.0.1:4566"
    )]
    endpoint: String,
    /// Where `bench/sqs-consumer` is (default: found from the working directory).
    #[arg(long)]
    node_dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

struct Count(AtomicU64);

#[async_trait::async_trait]
impl MessageHandler for Count {
    async fn handle(&self, _: &Message) -> Result<Handled, HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Handled::Applied)
    }
}

/// Sends `n` messages to `queue`, keeping it shallow: tops it up to about
/// 60 whenever fewer than 20 are visible (looking every 25 ms).
async fn feed(sqs: Arc<SqsBroker>, queue: String, n: usize) -> anyhow::Result<()> {
    let mut sent = 0;
    while sent < n {
        if sqs.counts(&queue).await?.visible >= 20 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        }
        for _ in 0..4 {
            let k = (n - sent).min(10);
            if k == 0 {
                break;
            }
            let entries: Vec<_> = (sent..sent + k)
                .map(|i| BatchEntry {
                    id: (i - sent).to_string(),
                    entry: SendRequest::new(format!("{{\"n\":{i}}}")),
                })
                .collect();
            for r in sqs.send_batch(&queue, &entries).await? {
                r.result?;
            }
            sent += k;
        }
    }
    Ok(())
}

fn node_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d);
    }
    let mut dir = std::env::current_dir()?;
    loop {
        let candidate = dir.join("bench/sqs-consumer");
        if candidate.join("consume.mjs").exists() {
            return Ok(candidate);
        }
        if !dir.pop() {
            bail!("bench/sqs-consumer not found; run from the repository or pass --node-dir");
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let n = args.messages;
    let sqs = Arc::new(
        SqsBroker::connect(&SqsConfig {
            endpoint: Some(args.endpoint.clone()),
            region: None,
        })
        .await,
    );
    let tag = &uuid::Uuid::now_v7().simple().to_string()[20..];

    // evilent's consumer. The feeder uses a client of its own, so only the
    // consumers' requests are counted.
    let feeder = Arc::new(
        SqsBroker::connect(&SqsConfig {
            endpoint: Some(args.endpoint.clone()),
            region: None,
        })
        .await,
    );
    let ours = format!("side-evilent-{tag}");
    sqs.create_queue(&ours, &QueueAttributes::default()).await?;
    let counter = Arc::new(Count(AtomicU64::new(0)));
    let consumer = Consumer::new(
        "bench",
        sqs.clone(),
        ours.clone(),
        counter.clone(),
        ConsumerConfig {
            wait: Duration::from_secs(1),
            ..ConsumerConfig::default()
        },
    );
    let before = sqs.requests.messaging_total();
    let t0 = Instant::now();
    let feeding = tokio::spawn(feed(feeder.clone(), ours.clone(), n));
    while counter.0.load(Ordering::Relaxed) < n as u64 {
        consumer.step_with_wait(Duration::from_secs(1)).await?;
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "evilent's side did not finish"
        );
    }
    let ours_secs = t0.elapsed().as_secs_f64();
    let ours_requests = sqs.requests.messaging_total() - before;
    feeding.await??;

    // bbc/sqs-consumer.
    let dir = node_dir(args.node_dir)?;
    if !dir.join("node_modules/sqs-consumer").exists() {
        eprintln!("installing sqs-consumer with npm in {}", dir.display());
        let ok = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()?;
        anyhow::ensure!(ok.success(), "npm install failed in {}", dir.display());
    }
    let theirs = format!("side-sqsconsumer-{tag}");
    feeder
        .create_queue(&theirs, &QueueAttributes::default())
        .await?;
    let url = feeder.queue_url(&theirs).await?;
    let node = tokio::process::Command::new("node")
        .arg(dir.join("consume.mjs"))
        .env("QUEUE_URL", &url)
        .env("MESSAGES", n.to_string())
        .env("EVILENT_SQS_ENDPOINT", &args.endpoint)
        .output();
    let (out, fed) = tokio::join!(node, feed(feeder.clone(), theirs.clone(), n));
    fed?;
    let out = out.context("running node")?;
    anyhow::ensure!(
        out.status.success(),
        "sqs-consumer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("sqs-consumer's output")?;
    let their_secs = line["seconds"].as_f64().unwrap_or(f64::NAN);
    let their_requests = line["requests"].as_f64().unwrap_or(f64::NAN);

    #[allow(clippy::cast_precision_loss)]
    let (nf, ours_req) = (n as f64, ours_requests as f64);
    let (ours_rate, their_rate) = (nf / ours_secs, nf / their_secs);
    let (ours_rpm, their_rpm) = (ours_req / nf, their_requests / nf);
    let report = serde_json::json!({
        "messages": n,
        "evilent": {"messages_per_s": ours_rate, "requests_per_message": ours_rpm},
        "sqs_consumer": {"messages_per_s": their_rate, "requests_per_message": their_rpm},
        "throughput_ratio": ours_rate / their_rate,
        "requests_ratio": their_rpm / ours_rpm,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "side by side: {n} messages each, same moto ({}), batches of 10, trivial handler",
            args.endpoint
        );
        println!(
            "{:<28} {:>14} {:>22}",
            "consumer", "messages/s", "API requests/message"
        );
        println!(
            "{:<28} {:>14.0} {:>22.3}",
            "evilent Consumer", ours_rate, ours_rpm
        );
        println!(
            "{:<28} {:>14.0} {:>22.3}",
            "bbc sqs-consumer (Node)", their_rate, their_rpm
        );
        println!(
            "evilent is {:.2}x as fast, with {:.2}x fewer requests per message",
            ours_rate / their_rate,
            their_rpm / ours_rpm
        );
    }
    Ok(())
}
