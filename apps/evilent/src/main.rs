//! `evilent`: the command line and the all-in-one binary.
//!
//! This crate only wires: every behaviour lives in a library crate
//! (`evilent-broker`, `evilent-messaging`, the services). See `evilent --help`.

mod cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "evilent",
    version,
    about = "A marketplace backend whose services talk through events with SQS semantics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process on the embedded broker and SQLite files.
    Up(cmd::up::Args),
    /// Print a bearer token signed by the dev key of a data directory.
    Token(cmd::token::Args),
    /// Play the seed's end-to-end scenario against a running `up` (or a temporary one).
    Demo(cmd::demo::Args),
    /// Event contracts: export their JSON Schemas.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Run one service's HTTP API (and its outbox relay) as its own process.
    Serve(cmd::process::ServeArgs),
    /// Run one service's consumer as its own process.
    Worker(cmd::process::WorkerArgs),
    /// Create (apply) or print (show) the topics, queues, DLQs and subscriptions.
    Infra {
        #[command(subcommand)]
        action: cmd::infra::Action,
    },
    /// Apply database migrations (PostgreSQL) and indexes (MongoDB).
    Migrate,
    /// Dead-letter queues: list, show, redrive, purge (on the configured broker).
    Dlq(cmd::dlq::Args),
    /// Show queues with their message counts (on the configured broker).
    Queues {
        /// Where `evilent up` keeps its files (embedded broker).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The crash suite: kill `evilent up` with SIGKILL N times under load, then check every invariant.
    Crash {
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Keep the data here (default: a temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Benchmarks (build with --release): the whole system by default, or `bench broker`.
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        #[command(flatten)]
        args: cmd::sysbench::Args,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print every event's JSON Schema (one object keyed by eventType), or write one file each.
    Schema {
        /// Write `<eventType>.schema.json` files into this directory instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Embedded broker: send → receive → delete throughput and latency, beside SQLite's raw insert rate.
    Broker(cmd::bench::BrokerArgs),
    /// evilent's consumer beside bbc's sqs-consumer (npm) on the same moto.
    SqsConsumer(cmd::sidebyside::Args),
}

/// Threads of the runtime: `EVILENT_WORKER_THREADS`, else four per core.
///
/// evilent's SQLite work runs on these threads and holds them for
/// microseconds at a time (a mutex, a commit). With one thread per core, a
/// thread waiting on SQLite leaves its core idle while requests queue;
/// a few threads per core keep the cores busy. Measured with `evilent up`
/// on 2 cores, products created and counted per second: 2 threads 4,300,
/// 4 threads 7,700, 8 threads 8,700, 16 threads 9,200.
fn worker_threads() -> anyhow::Result<usize> {
    match std::env::var("EVILENT_WORKER_THREADS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => anyhow::bail!("EVILENT_WORKER_THREADS={v:?}: a number of threads, 1 or more"),
        },
        Err(_) => Ok(4 * std::thread::available_parallelism().map_or(1, usize::from)),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cmd::init_tracing(matches!(cli.command, Command::Up(_)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads()?)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => cmd::up::run(args).await,
            Command::Token(args) => cmd::token::run(args),
            Command::Demo(args) => cmd::demo::run(args).await,
            Command::Events {
                command: EventsCommand::Schema { out },
            } => cmd::events::schema(out.as_deref()),
            Command::Serve(args) => cmd::process::serve_service(args).await,
            Command::Worker(args) => cmd::process::run_worker(args).await,
            Command::Infra { action } => cmd::infra::run(action).await,
            Command::Migrate => cmd::migrate::run().await,
            Command::Dlq(args) => cmd::dlq::run(args).await,
            Command::Crash { kills, data_dir } => {
                let report =
                    evilent::crash::run(&std::env::current_exe()?, kills, data_dir).await?;
                println!("{report}");
                Ok(())
            }
            Command::Queues { data_dir } => cmd::dlq::queues(data_dir).await,
            Command::Bench {
                command: Some(BenchCommand::Broker(args)),
                ..
            } => cmd::bench::broker(args).await,
            Command::Bench {
                command: Some(BenchCommand::SqsConsumer(args)),
                ..
            } => cmd::sidebyside::run(args).await,
            Command::Bench {
                command: None,
                args,
            } => cmd::sysbench::run(args).await,
        }
    })
}
