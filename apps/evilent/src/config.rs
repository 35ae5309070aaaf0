//! Configuration of the per-service processes (`serve`, `worker`, `dlq`,
//! `infra`, `migrate`): compiled-in defaults, overridden by `EVILENT_*`
//! environment variables, checked once at start — an incomplete combination
//! is refused with a message saying what to set.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EVILENT_BROKER` | `embedded` (SQLite file in the data dir) or `sqs` (SNS + SQS) | `embedded` |
//! | `EVILENT_SQS_ENDPOINT` | SQS/SNS endpoint override (moto) | AWS's |
//! | `AWS_REGION`, `AWS_ACCESS_KEY_ID`, … | the standard AWS chain | — |
//! | `EVILENT_DATA_DIR` | SQLite files, dev key | `./data` |
//! | `EVILENT_USERS_DATABASE_URL` | `postgres://…` for user-service | SQLite `users.db` |
//! | `EVILENT_PRODUCTS_MONGODB_URL` | `mongodb://…` for product-service | SQLite `products.db` |
//! | `EVILENT_PRODUCTS_MONGODB_DATABASE` | its database | `evilent` |
//! | `EVILENT_ISSUER_URL` | the token issuer services trust | `http://127.0.0.1:8080` |
//! | `EVILENT_CLIENT_ID` | the client id tokens must carry | `evilent-dev` |
//! | `EVILENT_PRODUCTS_URL` | where user-service finds product-service | `http://127.0.0.1:8082` |
//! | `EVILENT_WORKER_THREADS` | runtime threads (read in `main.rs`; SQLite calls hold a thread for microseconds, so more threads than cores) | 4 per core |
//! | `EVILENT_VISIBILITY_TIMEOUT` | seconds a worker holds a received message (overrides the queue's) | the queue's |
//! | `EVILENT_CONSUMER_POLLERS` | receive loops per consumer (on SQS each is a billed long poll) | 1 (`up`: 2) |

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use evilent_aws::{SqsBroker, SqsConfig};
use evilent_broker::Broker;
use evilent_messaging::{EmbeddedBroker, OutboxStore, Publisher, QueuePort, SqliteDb, Topology};
use tokio::sync::Notify;

/// Which broker.
#[derive(Clone, Debug)]
pub enum BrokerChoice {
    Embedded,
    Sqs(SqsConfig),
}

/// Where user-service keeps its data.
#[derive(Clone, Debug)]
pub enum UsersDb {
    Sqlite,
    Postgres(String),
}

/// Where product-service keeps its data.
#[derive(Clone, Debug)]
pub enum ProductsDb {
    Sqlite,
    Mongo { url: String, database: String },
}

/// The whole configuration of a process.
#[derive(Clone, Debug)]
pub struct Config {
    pub broker: BrokerChoice,
    pub data_dir: PathBuf,
    pub users_db: UsersDb,
    pub products_db: ProductsDb,
    pub issuer_url: String,
    pub client_id: String,
    pub products_url: String,
    pub visibility_timeout: Option<u32>,
    /// Receive loops of a worker's consumer ([`evilent_messaging::ConsumerConfig::pollers`]).
    pub pollers: usize,
}

/// Most receive loops a consumer may run (`EVILENT_CONSUMER_POLLERS`).
pub const MAX_POLLERS: u16 = 64;

/// `EVILENT_CONSUMER_POLLERS`, else `default`.
pub fn pollers_from_env(default: usize) -> anyhow::Result<usize> {
    match var("EVILENT_CONSUMER_POLLERS") {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=usize::from(MAX_POLLERS)).contains(n))
            .with_context(|| {
                format!(
                    "EVILENT_CONSUMER_POLLERS={v:?}: a number of receive loops, 1..={MAX_POLLERS}"
                )
            }),
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads and checks the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let broker = match var("EVILENT_BROKER").as_deref().unwrap_or("embedded") {
            "embedded" => BrokerChoice::Embedded,
            "sqs" => {
                let sqs = SqsConfig::from_env();
                if sqs.endpoint.is_none() && sqs.region.is_none() {
                    bail!(
                        "EVILENT_BROKER=sqs needs AWS_REGION (on AWS) or EVILENT_SQS_ENDPOINT (moto: http://127.0.0.1:4566)"
                    );
                }
                BrokerChoice::Sqs(sqs)
            }
            other => bail!("EVILENT_BROKER={other:?}: use \"embedded\" or \"sqs\""),
        };
        let users_db = match var("EVILENT_USERS_DATABASE_URL") {
            None => UsersDb::Sqlite,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                UsersDb::Postgres(url)
            }
            Some(_) => {
                bail!("EVILENT_USERS_DATABASE_URL must be a postgres:// URL (unset it for SQLite)")
            }
        };
        let products_db = match var("EVILENT_PRODUCTS_MONGODB_URL") {
            None => {
                if var("EVILENT_PRODUCTS_MONGODB_DATABASE").is_some() {
                    bail!(
                        "EVILENT_PRODUCTS_MONGODB_DATABASE is set but EVILENT_PRODUCTS_MONGODB_URL is not"
                    );
                }
                ProductsDb::Sqlite
            }
            Some(url) if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") => {
                ProductsDb::Mongo {
                    url,
                    database: var("EVILENT_PRODUCTS_MONGODB_DATABASE")
                        .unwrap_or_else(|| "evilent".into()),
                }
            }
            Some(_) => {
                bail!("EVILENT_PRODUCTS_MONGODB_URL must be a mongodb:// URL (unset it for SQLite)")
            }
        };
        Ok(Config {
            broker,
            data_dir: var("EVILENT_DATA_DIR")
                .map_or_else(|| PathBuf::from("./data"), PathBuf::from),
            users_db,
            products_db,
            issuer_url: var("EVILENT_ISSUER_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            client_id: var("EVILENT_CLIENT_ID")
                .unwrap_or_else(|| evilent_platform::auth::DEV_CLIENT_ID.into()),
            products_url: var("EVILENT_PRODUCTS_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8082".into()),
            visibility_timeout: match var("EVILENT_VISIBILITY_TIMEOUT") {
                None => None,
                Some(v) => Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|v| *v <= evilent_broker::limits::MAX_VISIBILITY_TIMEOUT)
                        .context("EVILENT_VISIBILITY_TIMEOUT must be seconds, 0..=43200")?,
                ),
            },
            pollers: pollers_from_env(1)?,
        })
    }
}

/// The broker's two ports (and the SQS adapter itself, for its listings and counters).
#[derive(Clone)]
pub struct Ports {
    pub queues: Arc<dyn QueuePort>,
    pub publisher: Arc<dyn Publisher>,
    pub sqs: Option<Arc<SqsBroker>>,
    pub embedded: Option<EmbeddedBroker>,
}

/// Opens the configured broker. The embedded one also gets DESIGN.md's
/// topology (on SQS that is `evilent infra apply`'s job).
pub async fn ports(config: &Config) -> anyhow::Result<Ports> {
    match &config.broker {
        BrokerChoice::Embedded => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating {}", config.data_dir.display()))?;
            let broker = EmbeddedBroker::new(Broker::open(&config.data_dir.join("broker.db"))?);
            Topology::design().apply(&broker).await?;
            Ok(Ports {
                queues: Arc::new(broker.clone()),
                publisher: Arc::new(broker.clone()),
                sqs: None,
                embedded: Some(broker),
            })
        }
        BrokerChoice::Sqs(sqs) => {
            let broker = Arc::new(SqsBroker::connect(sqs).await);
            Ok(Ports {
                queues: broker.clone(),
                publisher: broker.clone(),
                sqs: Some(broker),
                embedded: None,
            })
        }
    }
}

/// user-service's store and outbox, as configured; `waker` is poked after commits.
pub async fn users_store(
    config: &Config,
    waker: Arc<Notify>,
) -> anyhow::Result<(
    Arc<dyn evilent_users::store::UserStore>,
    Arc<dyn OutboxStore>,
)> {
    match &config.users_db {
        UsersDb::Sqlite => {
            std::fs::create_dir_all(&config.data_dir)?;
            let db =
                SqliteDb::open(&config.data_dir.join("users.db")).context("opening users.db")?;
            let store = evilent_users::store::sqlite::SqliteUserStore::new(db.clone(), waker)?;
            Ok((
                Arc::new(store),
                Arc::new(evilent_messaging::outbox::sqlite::SqliteOutbox::new(db)),
            ))
        }
        UsersDb::Postgres(url) => {
            let store = evilent_users::store::postgres::PgUserStore::connect(url, waker)
                .await
                .context("connecting to user-service's PostgreSQL")?;
            let outbox = evilent_pg::outbox::PgOutbox::new(store.pool().clone());
            Ok((Arc::new(store), Arc::new(outbox)))
        }
    }
}

/// product-service's store and outbox, as configured.
pub async fn products_store(
    config: &Config,
    waker: Arc<Notify>,
) -> anyhow::Result<(
    Arc<dyn evilent_products::store::ProductStore>,
    Arc<dyn OutboxStore>,
)> {
    match &config.products_db {
        ProductsDb::Sqlite => {
            std::fs::create_dir_all(&config.data_dir)?;
            let db = SqliteDb::open(&config.data_dir.join("products.db"))
                .context("opening products.db")?;
            let store =
                evilent_products::store::sqlite::SqliteProductStore::new(db.clone(), waker)?;
            Ok((
                Arc::new(store),
                Arc::new(evilent_messaging::outbox::sqlite::SqliteOutbox::new(db)),
            ))
        }
        ProductsDb::Mongo { url, database } => {
            let store =
                evilent_products::store::mongo::MongoProductStore::connect(url, database, waker)
                    .await
                    .context("connecting to product-service's MongoDB")?;
            let outbox = evilent_mongo::outbox::MongoOutbox::new(store.database().clone());
            Ok((Arc::new(store), Arc::new(outbox)))
        }
    }
}
