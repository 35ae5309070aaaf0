//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod dlq;
pub mod events;
pub mod token;
pub mod up;

use std::path::Path;

use anyhow::Context;
use evilent_broker::Broker;
use evilent_messaging::EmbeddedBroker;

/// Logs to stderr; `EVILENT_LOG` (or `RUST_LOG`) filters, `EVILENT_LOG_FORMAT=json` for JSON lines.
pub fn init_tracing(server: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("EVILENT_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(if server { "info" } else { "warn" }));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("EVILENT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The embedded broker of a data directory (created if missing).
pub fn open_broker(data_dir: &Path) -> anyhow::Result<EmbeddedBroker> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let path = data_dir.join("broker.db");
    let broker =
        Broker::open(&path).with_context(|| format!("opening broker {}", path.display()))?;
    Ok(EmbeddedBroker::new(broker))
}
