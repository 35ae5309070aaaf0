//! `evilent bench broker`: what the embedded broker does per second, and
//! how that compares with the most SQLite itself can do on this machine.
//!
//! Three measurements in one run, on files in a fresh temp directory:
//! 1. **ceiling**: raw SQLite, one `INSERT` per transaction, same settings
//!    as the broker (WAL, `synchronous = NORMAL`);
//! 2. **throughput**: a producer sending batches of 10 while a consumer
//!    receives batches of 10 (long polling) and deletes them in batches,
//!    until every message has been sent, received and deleted;
//! 3. **latency**: messages sent one at a time at a fixed rate, timed from
//!    the `send` call to the consumer holding them.

use std::time::{Duration, Instant};

use anyhow::Context;
use evilent_broker::{
    BatchEntry, Broker, Durability, QueueAttributes, ReceiveRequest, SendRequest, open_sqlite,
};
use serde::Serialize;

#[derive(clap::Args)]
pub struct BrokerArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Messages in the throughput run.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Messages per second in the latency run.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Messages in the latency run.
    #[arg(long, default_value_t = 3_000)]
    latency_messages: usize,
}

#[derive(Serialize)]
struct Report {
    messages: usize,
    /// Messages sent, received and deleted per second.
    throughput_msgs_per_s: f64,
    latency_rate_per_s: u32,
    latency_p50_ms: f64,
    latency_p90_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    /// Raw SQLite single-row transactions per second (the ceiling).
    sqlite_insert_tx_per_s: f64,
    /// Broker messages/s ÷ raw SQLite transactions/s.
    throughput_vs_sqlite: f64,
}

const PAYLOAD: usize = 200;

fn body(base: Instant, pad: &str) -> String {
    format!("{:020}{pad}", base.elapsed().as_nanos())
}

fn sent_at(body: &str) -> Option<Duration> {
    body.get(..20)
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_nanos)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// SQLite's raw rate of single-row transactions, same settings as the broker.
pub fn sqlite_ceiling(dir: &std::path::Path, rows: usize) -> anyhow::Result<f64> {
    let conn = open_sqlite(&dir.join("raw.db"), Durability::default())?;
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, queue TEXT, body TEXT, at INTEGER)",
    )?;
    let pad = "x".repeat(PAYLOAD);
    let start = Instant::now();
    for i in 0..rows {
        let tx = conn.unchecked_transaction()?;
        tx.prepare_cached("INSERT INTO t (queue, body, at) VALUES ('bench', ?1, ?2)")?
            .execute(rusqlite::params![pad, i as i64])?;
        tx.commit()?;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

async fn throughput(broker: &Broker, n: usize) -> anyhow::Result<f64> {
    broker.create_queue("throughput", &QueueAttributes::default())?;
    let base = Instant::now();
    let producer = {
        let broker = broker.clone();
        tokio::spawn(async move {
            let pad = "x".repeat(PAYLOAD - 20);
            let mut sent = 0;
            while sent < n {
                let k = (n - sent).min(10);
                let entries: Vec<_> = (0..k)
                    .map(|i| BatchEntry {
                        id: i.to_string(),
                        entry: SendRequest::new(body(base, &pad)),
                    })
                    .collect();
                broker.send_batch("throughput", &entries)?;
                sent += k;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(())
        })
    };
    let mut done = 0;
    while done < n {
        let got = broker
            .receive(
                "throughput",
                &ReceiveRequest::up_to(10).wait(Duration::from_secs(2)),
            )
            .await?;
        anyhow::ensure!(
            !got.is_empty(),
            "the consumer starved after {done} messages"
        );
        delete_all(broker, "throughput", &got)?;
        done += got.len();
    }
    producer.await??;
    #[allow(clippy::cast_precision_loss)]
    Ok(n as f64 / base.elapsed().as_secs_f64())
}

/// Deletes a received batch with one call.
fn delete_all(broker: &Broker, queue: &str, got: &[evilent_broker::Message]) -> anyhow::Result<()> {
    let receipts: Vec<_> = got
        .iter()
        .enumerate()
        .map(|(i, m)| BatchEntry {
            id: i.to_string(),
            entry: m.receipt_handle.clone(),
        })
        .collect();
    broker.delete_batch(queue, &receipts)?;
    Ok(())
}

async fn latency(broker: &Broker, n: usize, rate: u32) -> anyhow::Result<Vec<f64>> {
    broker.create_queue("latency", &QueueAttributes::default())?;
    let base = Instant::now();
    let producer = {
        let broker = broker.clone();
        tokio::spawn(async move {
            let pad = "x".repeat(PAYLOAD - 20);
            let mut tick =
                tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..n {
                tick.tick().await;
                broker.send("latency", &SendRequest::new(body(base, &pad)))?;
            }
            anyhow::Ok(())
        })
    };
    let mut samples = Vec::with_capacity(n);
    while samples.len() < n {
        let got = broker
            .receive(
                "latency",
                &ReceiveRequest::up_to(10).wait(Duration::from_secs(2)),
            )
            .await?;
        anyhow::ensure!(
            !got.is_empty(),
            "the consumer starved after {} messages",
            samples.len()
        );
        let now = base.elapsed();
        for m in &got {
            let at = sent_at(&m.body).context("bench message without a timestamp")?;
            samples.push(now.saturating_sub(at).as_secs_f64() * 1000.0);
        }
        delete_all(broker, "latency", &got)?;
    }
    producer.await??;
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}

pub async fn broker(args: BrokerArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; benchmark with `cargo run --release -- bench broker`");
    }
    let dir = tempfile::tempdir()?;
    let ceiling = sqlite_ceiling(dir.path(), args.messages)?;
    let broker = Broker::open(&dir.path().join("broker.db"))?;
    let throughput = throughput(&broker, args.messages).await?;
    let samples = latency(&broker, args.latency_messages, args.rate).await?;
    let report = Report {
        messages: args.messages,
        throughput_msgs_per_s: throughput,
        latency_rate_per_s: args.rate,
        latency_p50_ms: percentile(&samples, 0.50),
        latency_p90_ms: percentile(&samples, 0.90),
        latency_p99_ms: percentile(&samples, 0.99),
        latency_max_ms: samples.last().copied().unwrap_or(0.0),
        sqlite_insert_tx_per_s: ceiling,
        throughput_vs_sqlite: throughput / ceiling,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "evilent bench broker ({} messages of {PAYLOAD} B; latency at {}/s)",
            report.messages, report.latency_rate_per_s
        );
        println!("{:<44} {:>14}", "measure", "value");
        println!(
            "{:<44} {:>14.0}",
            "throughput, send+receive+delete (msgs/s)", report.throughput_msgs_per_s
        );
        println!(
            "{:<44} {:>14.0}",
            "SQLite ceiling, 1-row transactions (tx/s)", report.sqlite_insert_tx_per_s
        );
        println!(
            "{:<44} {:>14.2}",
            "throughput / ceiling", report.throughput_vs_sqlite
        );
        println!("{:<44} {:>14.3}", "latency p50 (ms)", report.latency_p50_ms);
        println!("{:<44} {:>14.3}", "latency p90 (ms)", report.latency_p90_ms);
        println!("{:<44} {:>14.3}", "latency p99 (ms)", report.latency_p99_ms);
        println!("{:<44} {:>14.3}", "latency max (ms)", report.latency_max_ms);
    }
    Ok(())
}
