//! `evilent serve users|products|issuer` and `evilent worker users|products`:
//! one service's HTTP API (with its outbox relay), or one service's consumer
//! (with a relay for the events its handlers write), as separate processes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use evilent::config::{self, Config};
use evilent::system::{dev_key_path, stopped};
use evilent_messaging::{Consumer, ConsumerConfig, Events, OutboxRelay, RelayConfig};
use evilent_platform::client::ClientConfig;
use evilent_platform::{DevIssuer, JwtValidator, ServiceClient, serve};
use tokio::sync::{Notify, watch};

#[derive(Clone, Copy, ValueEnum)]
pub enum Service {
    Users,
    Products,
    /// The dev token issuer (JWKS), for process mode without Cognito.
    Issuer,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Worker {
    Users,
    Products,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    pub service: Service,
    #[arg(long, env = "EVILENT_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port (default: issuer 8080, users 8081, products 8082).
    #[arg(long, env = "EVILENT_PORT")]
    pub port: Option<u16>,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    pub worker: Worker,
}

fn shutdown_channel() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        super::up::interrupted().await;
        let _ = tx.send(true);
    });
    rx
}

pub async fn serve_service(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let port = args.port.unwrap_or(match args.service {
        Service::Issuer => 8080,
        Service::Users => 8081,
        Service::Products => 8082,
    });
    let rx = shutdown_channel();
    let validator = Arc::new(JwtValidator::new(&config.issuer_url, &config.client_id));
    // Everything is ready before the port opens: whoever sees it open may use it.
    let router = match args.service {
        Service::Issuer => {
            let issuer =
                DevIssuer::load_or_create(&dev_key_path(&config.data_dir), &config.issuer_url)?;
            Arc::new(issuer).router()
        }
        Service::Users | Service::Products => {
            let ports = config::ports(&config).await?;
            let waker = Arc::new(Notify::new());
            let (router, outbox) = match args.service {
                Service::Users => {
                    let (store, outbox) = config::users_store(&config, waker.clone()).await?;
                    let products = Arc::new(ServiceClient::new(
                        "product-service",
                        &config.products_url,
                        ClientConfig::default(),
                    ));
                    let state = evilent_users::http::AppState {
                        store,
                        products,
                        validator,
                    };
                    (evilent_users::http::router(state), outbox)
                }
                _ => {
                    let (store, outbox) = config::products_store(&config, waker.clone()).await?;
                    (
                        evilent_products::http::router(evilent_products::http::AppState {
                            store,
                            validator,
                        }),
                        outbox,
                    )
                }
            };
            let relay = Arc::new(OutboxRelay::with_waker(
                outbox,
                ports.publisher,
                RelayConfig::default(),
                waker,
            ));
            tokio::spawn(relay.run(stopped(rx.clone())));
            router
        }
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, port))
        .await
        .with_context(|| format!("binding {}:{port}", args.bind))?;
    println!("serving on http://{}", listener.local_addr()?);
    serve(listener, router, stopped(rx)).await?;
    Ok(())
}

pub async fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let ports = config::ports(&config).await?;
    let rx = shutdown_channel();
    let waker = Arc::new(Notify::new());
    let consumer_config = ConsumerConfig {
        visibility_timeout: config.visibility_timeout,
        pollers: config.pollers,
        ..ConsumerConfig::default()
    };
    let (consumer, outbox) = match args.worker {
        Worker::Users => {
            let (store, outbox) = config::users_store(&config, waker.clone()).await?;
            let handler = Arc::new(Events(evilent_users::handlers::ProductEvents { store }));
            (
                Consumer::new(
                    "user-service",
                    ports.queues.clone(),
                    "product-events-queue",
                    handler,
                    consumer_config,
                ),
                outbox,
            )
        }
        Worker::Products => {
            let (store, outbox) = config::products_store(&config, waker.clone()).await?;
            let handler = Arc::new(Events(evilent_products::handlers::UserEvents { store }));
            (
                Consumer::new(
                    "product-service",
                    ports.queues.clone(),
                    "user-events-queue",
                    handler,
                    consumer_config,
                ),
                outbox,
            )
        }
    };
    // Handlers write events too (UserDeleted → ProductUpdated): publish them from here.
    let relay = Arc::new(OutboxRelay::with_waker(
        outbox,
        ports.publisher,
        RelayConfig::default(),
        waker,
    ));
    let relay_task = tokio::spawn(relay.run(stopped(rx.clone())));
    println!("consuming {}", consumer.queue());
    consumer.run(stopped(rx)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), relay_task).await;
    Ok(())
}
