//! `evilent token`: a bearer token signed by the dev key of a data directory.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use evilent::system::dev_key_path;
use evilent_platform::DevIssuer;
use evilent_platform::auth::TokenRequest;

#[derive(clap::Args)]
pub struct Args {
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: String,
    #[arg(long)]
    pub email: Option<String>,
    /// Member of the `admin` group (may write anyone's resources).
    #[arg(long)]
    pub admin: bool,
    /// Where `evilent up` keeps its files (the dev key is created there if missing).
    #[arg(long, env = "EVILENT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The issuer the services trust.
    #[arg(
        long,
        env = "EVILENT_ISSUER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub issuer: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let issuer = DevIssuer::load_or_create(&dev_key_path(&args.data_dir), &args.issuer)
        .with_context(|| format!("loading the dev key of {}", args.data_dir.display()))?;
    println!(
        "{}",
        issuer.mint(&TokenRequest {
            sub: args.sub,
            email: args.email,
            admin: args.admin,
            ttl: Duration::from_secs(args.ttl)
        })
    );
    Ok(())
}
