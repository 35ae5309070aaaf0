//! `evilent up`: everything in one process, on the embedded broker and SQLite files.

use std::path::PathBuf;

use evilent_messaging::{QueuePort, Topology};

#[derive(clap::Args)]
pub struct Args {
    /// Where the SQLite files live (created if missing).
    #[arg(long, env = "EVILENT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let port = super::open_broker(&args.data_dir)?;
    Topology::design().apply(&port).await?;
    println!("evilent is up (data in {})", args.data_dir.display());
    for q in Topology::design().queues {
        let c = port.counts(&q.name).await?;
        println!(
            "  topic {:<16} -> queue {:<22} (dlq {}) visible {}",
            q.topic, q.name, q.dead_letter_queue, c.visible
        );
    }
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    println!("stopped");
    Ok(())
}
