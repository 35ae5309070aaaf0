//! The whole system in one process: the composition root of `evilent up`,
//! of `evilent demo` and of the end-to-end tests.
//!
//! It opens the SQLite files of a data directory (broker, users, products,
//! the dev issuer's key), creates DESIGN.md's topology, and starts:
//! - the dev token issuer (JWKS) on the issuer port;
//! - user-service and product-service, each with its outbox relay;
//! - the two consumers: product-service on `user-events-queue`,
//!   user-service on `product-events-queue`.
//!
//! Everything stops gracefully on [`System::stop`]: servers finish their
//! requests, consumers finish the batch in hand, relays stop. Whatever was
//! committed but not yet published or consumed stays in the files and goes
//! out on the next start.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use evilent_broker::Broker;
use evilent_messaging::outbox::sqlite::SqliteOutbox;
use evilent_messaging::{
    Consumer, ConsumerConfig, EmbeddedBroker, Events, Faults, Faulty, OutboxRelay, Publisher,
    QueuePort, RelayConfig, SqliteDb, Topology,
};
use evilent_platform::auth::{DEV_CLIENT_ID, TokenRequest};
use evilent_platform::client::ClientConfig;
use evilent_platform::{DevIssuer, JwtValidator, ServiceClient, serve};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How to start the system.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    pub data_dir: PathBuf,
    pub bind: IpAddr,
    pub issuer_port: u16,
    pub users_port: u16,
    pub products_port: u16,
    /// The issuer URL written into tokens; `http://{bind}:{issuer_port}` when `None`.
    pub issuer_url: Option<String>,
    /// Inject broker faults (tests).
    pub faults: Option<Faults>,
    /// Long-poll wait of the consumers.
    pub consumer_wait: Duration,
    /// Receive loops per queue. Two by default: the embedded broker's
    /// receives cost nothing, and a second loop keeps the queue flowing
    /// while a batch waits on its handlers' commit.
    pub pollers: usize,
    /// Run the outbox relays (tests turn them off to hold events in the outboxes).
    pub run_relays: bool,
    /// Run the consumers (tests turn them off to hold events in the queues).
    pub run_consumers: bool,
}

impl SystemConfig {
    /// The defaults of `evilent up`: ports 8080-8082 on 127.0.0.1.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        SystemConfig {
            data_dir: data_dir.into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            issuer_port: 8080,
            users_port: 8081,
            products_port: 8082,
            issuer_url: None,
            faults: None,
            consumer_wait: Duration::from_secs(20),
            pollers: 2,
            run_relays: true,
            run_consumers: true,
        }
    }

    /// Every port chosen by the OS (tests).
    #[must_use]
    pub fn ephemeral(mut self) -> Self {
        self.issuer_port = 0;
        self.users_port = 0;
        self.products_port = 0;
        self
    }
}

/// The key file of the dev issuer in a data directory.
pub fn dev_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-issuer-key.der")
}

/// A running system.
pub struct System {
    pub issuer_url: String,
    pub users_url: String,
    pub products_url: String,
    pub issuer: Arc<DevIssuer>,
    /// The broker, without injected faults (for inspection).
    pub broker: EmbeddedBroker,
    pub users_consumer: Arc<Consumer>,
    pub products_consumer: Arc<Consumer>,
    /// product-service's store, the one its HTTP handlers write through
    /// (the bench writes to it directly to weigh the pipeline without HTTP).
    pub products_store: Arc<dyn evilent_products::store::ProductStore>,
    /// The fault injector, when the system runs with faults.
    pub faults: Option<Arc<Faulty<EmbeddedBroker>>>,
    shutdown: watch::Sender<bool>,
    products_stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

async fn bind(ip: IpAddr, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .with_context(|| {
            format!(
                "binding {what} to {ip}:{port} (is another evilent running? choose another port)"
            )
        })
}

fn url(listener: &TcpListener) -> anyhow::Result<String> {
    Ok(format!("http://{}", listener.local_addr()?))
}

/// Resolves when `rx` says stop.
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

impl System {
    /// Opens the data directory and starts everything.
    pub async fn start(config: SystemConfig) -> anyhow::Result<System> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;

        let issuer_listener = bind(config.bind, config.issuer_port, "the token issuer").await?;
        let users_listener = bind(config.bind, config.users_port, "user-service").await?;
        let products_listener = bind(config.bind, config.products_port, "product-service").await?;
        let issuer_url = config.issuer_url.clone().unwrap_or(url(&issuer_listener)?);
        let users_url = url(&users_listener)?;
        let products_url = url(&products_listener)?;

        let issuer = Arc::new(
            DevIssuer::load_or_create(&dev_key_path(dir), &issuer_url)
                .context("loading the dev issuer's key")?,
        );

        let broker = EmbeddedBroker::new(
            Broker::open(&dir.join("broker.db")).context("opening the broker")?,
        );
        Topology::design()
            .apply(&broker)
            .await
            .context("creating topics and queues")?;
        let faults = config
            .faults
            .as_ref()
            .map(|f| Arc::new(Faulty::new(broker.clone(), f.clone())));
        let (port, publisher): (Arc<dyn QueuePort>, Arc<dyn Publisher>) = match &faults {
            Some(faulty) => (faulty.clone(), faulty.clone()),
            None => (Arc::new(broker.clone()), Arc::new(broker.clone())),
        };

        let (shutdown, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let validator = Arc::new(JwtValidator::new(&issuer_url, DEV_CLIENT_ID));
        let consumer_config = ConsumerConfig {
            wait: config.consumer_wait,
            pollers: config.pollers,
            ..ConsumerConfig::default()
        };

        // user-service
        let users_db = SqliteDb::open(&dir.join("users.db")).context("opening users.db")?;
        let users_relay = Arc::new(OutboxRelay::new(
            Arc::new(SqliteOutbox::new(users_db.clone())),
            publisher.clone(),
            RelayConfig::default(),
        ));
        let users_store: Arc<dyn evilent_users::store::UserStore> = Arc::new(
            evilent_users::store::sqlite::SqliteUserStore::new(users_db, users_relay.waker())?,
        );
        let products_client = Arc::new(ServiceClient::new(
            "product-service",
            &products_url,
            ClientConfig::default(),
        ));
        let users_router = evilent_users::http::router(evilent_users::http::AppState {
            store: users_store.clone(),
            products: products_client,
            validator: validator.clone(),
        });
        let users_consumer = Arc::new(Consumer::new(
            "user-service",
            port.clone(),
            "product-events-queue",
            Arc::new(Events(evilent_users::handlers::ProductEvents {
                store: users_store,
            })),
            consumer_config.clone(),
        ));

        // product-service
        let products_db =
            SqliteDb::open(&dir.join("products.db")).context("opening products.db")?;
        let products_relay = Arc::new(OutboxRelay::new(
            Arc::new(SqliteOutbox::new(products_db.clone())),
            publisher.clone(),
            RelayConfig::default(),
        ));
        let products_store: Arc<dyn evilent_products::store::ProductStore> =
            Arc::new(evilent_products::store::sqlite::SqliteProductStore::new(
                products_db,
                products_relay.waker(),
            )?);
        let products_router = evilent_products::http::router(evilent_products::http::AppState {
            store: products_store.clone(),
            validator,
        });
        let products_consumer = Arc::new(Consumer::new(
            "product-service",
            port,
            "user-events-queue",
            Arc::new(Events(evilent_products::handlers::UserEvents {
                store: products_store.clone(),
            })),
            consumer_config,
        ));

        let (products_stop, products_rx) = watch::channel(false);
        let servers = [
            (issuer_listener, issuer.clone().router(), "issuer", None),
            (users_listener, users_router, "user-service", None),
            (
                products_listener,
                products_router,
                "product-service",
                Some(products_rx),
            ),
        ];
        for (listener, router, name, own) in servers {
            let rx = rx.clone();
            let stop = async move {
                match own {
                    Some(own) => tokio::select! {
                        () = stopped(rx) => {}
                        () = stopped(own) => {}
                    },
                    None => stopped(rx).await,
                }
            };
            tasks.spawn(async move {
                if let Err(e) = serve(listener, router, stop).await {
                    tracing::error!(server = name, error = %e, "server failed");
                }
            });
        }
        if config.run_relays {
            for relay in [users_relay, products_relay] {
                tasks.spawn(relay.run(stopped(rx.clone())));
            }
        }
        if config.run_consumers {
            for consumer in [users_consumer.clone(), products_consumer.clone()] {
                let rx = rx.clone();
                tasks.spawn(async move { consumer.run(stopped(rx)).await });
            }
        }

        Ok(System {
            issuer_url,
            users_url,
            products_url,
            issuer,
            broker,
            users_consumer,
            products_consumer,
            products_store,
            faults,
            shutdown,
            products_stop,
            tasks,
        })
    }

    /// A token for `sub`, valid one hour.
    pub fn token(&self, sub: &str, admin: bool) -> String {
        self.issuer.mint(&TokenRequest {
            sub: sub.to_owned(),
            email: None,
            admin,
            ttl: Duration::from_secs(3600),
        })
    }

    /// Stops product-service's HTTP server only (its worker and relay go on):
    /// how tests see user-service cope with a dependency that is down.
    pub fn stop_product_server(&self) {
        let _ = self.products_stop.send(true);
    }

    /// Stops everything and waits for it.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
