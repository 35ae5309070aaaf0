//! `evilent bench sqs-consumer`: the same N messages consumed from the same
//! moto once by evilent's consumer and once by bbc's `sqs-consumer` (npm),
//! each doing the same trivial work (counting), and the ratios.
//!
//! Both sides get a fresh queue that a feeder keeps shallow (by default at
//! most 20 messages sent and not yet handled, `--outstanding`) until N
//! messages went through. Shallow because every moto call slows down as a
//! queue deepens: for each message it receives or is sent, moto recomputes
//! the queue's attributes by scanning every message in it, so a receive of
//! 10 costs ~15 ms of moto's CPU at 10 messages and ~300 ms at 200. Twenty is
//! two batches: enough for a consumer that keeps one receive ahead, and
//! both sides are faster at 20 than at 40 (measured 2026-12-04: evilent
//! 297 vs 184 msg/s, sqs-consumer 140 vs 102). Both sides use their
//! libraries' usual settings: batches of 10 and long polling. The feeder
//! follows each consumer's own count of handled messages (the Node side
//! prints it), so it adds nothing to moto's load but its sends, the same
//! for both. API requests are counted in each side's SDK (the feeder's are not). The
//! Node side lives in `bench/sqs-consumer/` and is installed with npm on
//! first use.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evilent_aws::{SqsBroker, SqsConfig};
use evilent_broker::{BatchEntry, Message, QueueAttributes, SendRequest};
use evilent_messaging::{
    Consumer, ConsumerConfig, Handled, HandlerError, MessageHandler, QueuePort,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

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
    /// Most messages sent and not yet handled (the queue's depth, visible
    /// and in flight) that the feeder allows; at least 10.
    #[arg(long, default_value_t = 20)]
    outstanding: usize,
    #[arg(long)]
    json: bool,
}

/// The trivial work both sides do: count the message.
struct Count(watch::Sender<u64>);

#[async_trait::async_trait]
impl MessageHandler for Count {
    async fn handle(&self, _: &Message) -> Result<Handled, HandlerError> {
        self.0.send_modify(|n| *n += 1);
        Ok(Handled::Applied)
    }
}

/// Sends `n` messages to `queue` in batches of 10, keeping it shallow: at
/// most `outstanding` messages sent and not yet handled. It follows the
/// consumer's own count (`handled`) rather than asking the queue, so the
/// feeder adds no requests of its own beyond the sends.
async fn feed(
    sqs: Arc<SqsBroker>,
    queue: String,
    n: usize,
    outstanding: usize,
    mut handled: watch::Receiver<u64>,
) -> anyhow::Result<()> {
    let mut sent = 0;
    while sent < n {
        let done = usize::try_from(*handled.borrow_and_update()).unwrap_or(usize::MAX);
        if sent.saturating_sub(done) + 10 > outstanding.max(10) {
            if handled.changed().await.is_err() {
                bail!("the consumer stopped after {done} of {n} messages");
            }
            continue;
        }
        let k = (n - sent).min(10);
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
    let (handled_tx, handled) = watch::channel(0u64);
    let consumer = Consumer::new(
        "bench",
        sqs.clone(),
        ours.clone(),
        Arc::new(Count(handled_tx)),
        ConsumerConfig {
            wait: Duration::from_secs(1),
            ..ConsumerConfig::default()
        },
    );
    let before = sqs.requests.messaging_total();
    let feeding = tokio::spawn(feed(
        feeder.clone(),
        ours.clone(),
        n,
        args.outstanding,
        handled.clone(),
    ));
    let t0 = Instant::now();
    let ours_secs = Arc::new(std::sync::Mutex::new(f64::NAN));
    let all_handled = {
        let (mut handled, ours_secs) = (handled.clone(), ours_secs.clone());
        async move {
            let _ = handled.wait_for(|k| *k >= n as u64).await;
            *ours_secs.lock().unwrap_or_else(PoisonError::into_inner) = t0.elapsed().as_secs_f64();
        }
    };
    tokio::time::timeout(Duration::from_secs(600), consumer.run(all_handled))
        .await
        .context("evilent's side did not finish in 10 minutes")?;
    let ours_secs = *ours_secs.lock().unwrap_or_else(PoisonError::into_inner);
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
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("consume.mjs"))
        .env("QUEUE_URL", &url)
        .env("MESSAGES", n.to_string())
        .env("EVILENT_SQS_ENDPOINT", &args.endpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running node")?;
    let stdout = node.stdout.take().context("node's stdout")?;
    // consume.mjs prints its count after every message, then one JSON line.
    let (handled_tx, handled) = watch::channel(0u64);
    let reading = async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            match line.trim().parse::<u64>() {
                Ok(k) => {
                    handled_tx.send_replace(k);
                }
                Err(_) => return Ok(serde_json::from_str::<serde_json::Value>(&line)?),
            }
        }
        bail!("sqs-consumer ended without a result")
    };
    let (line, fed) = tokio::time::timeout(Duration::from_secs(600), async {
        tokio::join!(
            reading,
            feed(feeder.clone(), theirs.clone(), n, args.outstanding, handled,)
        )
    })
    .await
    .context("sqs-consumer's side did not finish in 10 minutes")?;
    let out = node.wait_with_output().await.context("running node")?;
    anyhow::ensure!(
        out.status.success(),
        "sqs-consumer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fed?;
    let line = line.context("sqs-consumer's output")?;
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
            "side by side: {n} messages each, same moto ({}), at most {} outstanding, batches of 10, trivial handler",
            args.endpoint, args.outstanding
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
