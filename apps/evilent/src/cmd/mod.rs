//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod dlq;
pub mod events;
pub mod infra;
pub mod loadgen;
pub mod migrate;
pub mod process;
pub mod sidebyside;
pub mod sysbench;
pub mod token;
pub mod up;

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

/// The configuration of the environment, with `--data-dir` (when given) over `EVILENT_DATA_DIR`.
pub fn config_with(
    data_dir: Option<std::path::PathBuf>,
) -> anyhow::Result<evilent::config::Config> {
    let mut config = evilent::config::Config::from_env()?;
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    Ok(config)
}
