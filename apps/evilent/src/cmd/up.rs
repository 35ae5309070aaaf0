//! `evilent up`: everything in one process, on the embedded broker and SQLite files.

use std::net::IpAddr;
use std::path::PathBuf;

use evilent::config::MAX_POLLERS;
use evilent::system::{System, SystemConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Where the SQLite files live (created if missing).
    #[arg(long, env = "EVILENT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "EVILENT_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port of the dev token issuer (JWKS).
    #[arg(long, env = "EVILENT_ISSUER_PORT", default_value_t = 8080)]
    pub issuer_port: u16,
    /// Port of user-service.
    #[arg(long, env = "EVILENT_USERS_PORT", default_value_t = 8081)]
    pub users_port: u16,
    /// Port of product-service.
    #[arg(long, env = "EVILENT_PRODUCTS_PORT", default_value_t = 8082)]
    pub products_port: u16,
    /// Receive loops per queue.
    #[arg(long, env = "EVILENT_CONSUMER_POLLERS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_POLLERS)))]
    pub pollers: u16,
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn interrupted() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = SystemConfig {
        bind: args.bind,
        issuer_port: args.issuer_port,
        users_port: args.users_port,
        products_port: args.products_port,
        pollers: usize::from(args.pollers),
        ..SystemConfig::new(&args.data_dir)
    };
    let system = System::start(config).await?;
    println!("evilent is up — data in {}", args.data_dir.display());
    println!(
        "  user-service     {}   (docs {}/docs)",
        system.users_url, system.users_url
    );
    println!(
        "  product-service  {}   (docs {}/docs)",
        system.products_url, system.products_url
    );
    println!(
        "  token issuer     {}   (JWKS {}/.well-known/jwks.json)",
        system.issuer_url, system.issuer_url
    );
    println!(
        "  broker           {}/broker.db: topics user-events, product-events, order-events",
        args.data_dir.display()
    );
    println!();
    println!("Try:  cargo run --release -- demo");
    println!("      TOKEN=$(cargo run --release -q -- token --sub alice)");
    println!(
        "      curl -H \"Authorization: Bearer $TOKEN\" {}/user/alice",
        system.users_url
    );
    println!("Ctrl-C stops; a restart keeps all data and every pending event.");
    interrupted().await;
    println!("stopping…");
    system.stop().await;
    println!("stopped");
    Ok(())
}
