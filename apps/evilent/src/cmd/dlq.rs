//! `evilent dlq list|show|redrive|purge --queue Q` and `evilent queues`.

use clap::{Subcommand, ValueEnum};
use evilent_messaging::dlq;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// The source queue (the one whose dead-letter queue to work on), e.g. user-events-queue.
    #[arg(long, global = true)]
    queue: Option<String>,
    /// Where `evilent up` keeps its files (embedded broker; default `EVILENT_DATA_DIR` or ./data).
    #[arg(long, global = true)]
    data_dir: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Action {
    /// List dead letters (left in place).
    List {
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Show one dead letter in full.
    Show { message_id: String },
    /// Send dead letters back to the queue.
    Redrive {
        /// At most this many (default: all).
        #[arg(long)]
        max: Option<usize>,
    },
    /// Delete every dead letter.
    Purge,
}

fn message_json(m: &evilent_broker::Message) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> = m
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.value.clone())))
        .collect();
    serde_json::json!({
        "messageId": m.message_id,
        "sentTimestamp": m.sent_timestamp,
        "attributes": attributes,
        "groupId": m.group_id,
        "body": serde_json::from_str::<serde_json::Value>(&m.body).unwrap_or_else(|_| m.body.clone().into()),
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let ports = evilent::config::ports(&super::config_with(args.data_dir)?).await?;
    let port = &*ports.queues;
    let queue = args
        .queue
        .ok_or_else(|| anyhow::anyhow!("--queue is required (e.g. --queue user-events-queue)"))?;
    match args.action {
        Action::List { max } => {
            let messages = dlq::list(port, &queue, max).await?;
            match args.format {
                Format::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &messages.iter().map(message_json).collect::<Vec<_>>()
                        )?
                    );
                }
                Format::Table => {
                    println!("{} dead letter(s) of {queue}", messages.len());
                    for m in &messages {
                        let event_type = m
                            .attributes
                            .get("eventType")
                            .map_or("-", |a| a.value.as_str());
                        let preview: String = m.body.chars().take(60).collect();
                        println!("{}  {event_type:<20} {preview}", m.message_id);
                    }
                }
            }
        }
        Action::Show { message_id } => match dlq::show(port, &queue, &message_id).await? {
            Some(m) => println!("{}", serde_json::to_string_pretty(&message_json(&m))?),
            None => {
                anyhow::bail!("no dead letter {message_id} in the dead-letter queue of {queue}")
            }
        },
        Action::Redrive { max } => {
            let moved = dlq::redrive(port, &queue, max).await?;
            println!("redrove {moved} message(s) to {queue}");
        }
        Action::Purge => {
            dlq::purge(port, &queue).await?;
            println!("purged the dead-letter queue of {queue}");
        }
    }
    Ok(())
}

pub async fn queues(data_dir: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let ports = evilent::config::ports(&super::config_with(data_dir)?).await?;
    let names = match (&ports.sqs, &ports.embedded) {
        (Some(sqs), _) => sqs.list_queues().await?,
        (None, Some(e)) => e.broker().list_queues()?,
        (None, None) => Vec::new(),
    };
    println!(
        "{:<32} {:>8} {:>10} {:>8}",
        "queue", "visible", "in flight", "delayed"
    );
    for name in names {
        let c = ports.queues.counts(&name).await?;
        println!(
            "{name:<32} {:>8} {:>10} {:>8}",
            c.visible, c.in_flight, c.delayed
        );
    }
    Ok(())
}
