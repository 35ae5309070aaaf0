//! `evilent demo`: the seed's scenario against a running `evilent up`, or a
//! system of its own when none answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use evilent::demo::{Target, run as play};
use evilent::system::{System, SystemConfig, dev_key_path};
use evilent_platform::DevIssuer;
use evilent_platform::auth::TokenRequest;

#[derive(clap::Args)]
pub struct Args {
    #[arg(
        long,
        env = "EVILENT_USERS_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub users_url: String,
    #[arg(
        long,
        env = "EVILENT_PRODUCTS_URL",
        default_value = "http://127.0.0.1:8082"
    )]
    pub products_url: String,
    /// The data directory of the running `evilent up` (for its dev key).
    #[arg(long, env = "EVILENT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(
        long,
        env = "EVILENT_ISSUER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub issuer: String,
}

fn minter(issuer: Arc<DevIssuer>) -> Box<dyn Fn(&str) -> String + Send + Sync> {
    Box::new(move |sub| {
        issuer.mint(&TokenRequest {
            sub: sub.to_owned(),
            email: None,
            admin: false,
            ttl: Duration::from_secs(3600),
        })
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let probe = reqwest::Client::new()
        .get(format!("{}/health", args.users_url))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    if probe.is_ok_and(|r| r.status().is_success()) {
        let issuer = Arc::new(DevIssuer::load_or_create(
            &dev_key_path(&args.data_dir),
            &args.issuer,
        )?);
        let target = Target {
            users_url: args.users_url,
            products_url: args.products_url,
            token_for: minter(issuer),
        };
        play(&target).await?;
        return Ok(());
    }
    println!(
        "no evilent answers at {}; starting one for the demo (temporary data, free ports)\n",
        args.users_url
    );
    let dir = tempfile::tempdir()?;
    let system = System::start(SystemConfig::new(dir.path()).ephemeral()).await?;
    let target = Target {
        users_url: system.users_url.clone(),
        products_url: system.products_url.clone(),
        token_for: minter(system.issuer.clone()),
    };
    let result = play(&target).await;
    system.stop().await;
    result.map(|_| ())
}
