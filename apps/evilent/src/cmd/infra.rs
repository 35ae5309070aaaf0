//! `evilent infra apply|show`: DESIGN.md's topics, queues, DLQs and
//! subscriptions on the configured broker (SNS + SQS with `EVILENT_BROKER=sqs`).

use clap::Subcommand;
use evilent::config::{self, Config};
use evilent_messaging::Topology;

#[derive(Subcommand)]
pub enum Action {
    /// Create everything that is missing (idempotent).
    Apply,
    /// Print topics, queues (with their redrive policies) and subscriptions.
    Show,
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let ports = config::ports(&config).await?;
    if let Action::Apply = action {
        Topology::design().apply(&*ports.queues).await?;
        println!(
            "applied: {} topics, {} queues with their dead-letter queues",
            Topology::design().topics.len(),
            Topology::design().queues.len()
        );
    }
    let (topics, queues, subs) = match (&ports.sqs, &ports.embedded) {
        (Some(sqs), _) => (
            sqs.list_topics().await?,
            sqs.list_queues().await?,
            sqs.subscriptions().await?,
        ),
        (None, Some(e)) => (
            e.broker().list_topics()?,
            e.broker().list_queues()?,
            e.broker().subscriptions()?,
        ),
        (None, None) => anyhow::bail!("no broker"),
    };
    println!("topics:");
    for t in topics {
        println!("  {t}");
    }
    println!("queues:");
    for q in queues {
        let a = ports.queues.queue_attributes(&q).await?;
        let redrive = a
            .redrive
            .map(|r| {
                format!(
                    " -> {} after {} receives",
                    r.dead_letter_queue, r.max_receive_count
                )
            })
            .unwrap_or_default();
        println!(
            "  {q} (visibility {} s{}){redrive}",
            a.visibility_timeout,
            if a.fifo { ", FIFO" } else { "" }
        );
    }
    println!("subscriptions (raw delivery):");
    for s in subs {
        let filter = s
            .event_types
            .map(|t| format!(" eventType in {t:?}"))
            .unwrap_or_default();
        println!("  {} -> {}{filter}", s.topic, s.queue);
    }
    Ok(())
}
