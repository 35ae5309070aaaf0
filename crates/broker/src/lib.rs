//! # evilent-broker — an embedded broker with the semantics of SNS + SQS
//!
//! Topics fan out to subscribed queues; queues hand messages out with
//! SQS's rules: visibility timeouts, long polling, batches of up to 10,
//! delays, retention, a 1 MiB size limit, redrive to a dead-letter queue after
//! `maxReceiveCount` receives, and FIFO queues with ordered, locked message
//! groups and a 5-minute deduplication window. Everything is stored in one
//! SQLite file, so a send that returned success survives the process being
//! killed.
//!
//! The same code that runs against AWS runs against this broker (through the
//! queue port of `evilent-messaging`), and one conformance suite checks both.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), evilent_broker::BrokerError> {
//! use evilent_broker::{Broker, QueueAttributes, ReceiveRequest, SendRequest, SystemClock};
//!
//! let broker = Broker::in_memory(std::sync::Arc::new(SystemClock))?;
//! broker.create_queue("jobs", &QueueAttributes::default())?;
//! broker.send("jobs", &SendRequest::new("hello"))?;
//! let got = broker.receive("jobs", &ReceiveRequest::up_to(10)).await?;
//! assert_eq!(got[0].body, "hello");
//! broker.delete("jobs", &got[0].receipt_handle)?;
//! # Ok(()) }
//! ```
//!
//! ## Map
//! - [`model`]: requests, messages, attributes, limits and SQS's error codes.
//! - [`engine`]: [`Broker`], how each rule maps to rows, and why one connection behind a mutex.
//! - [`store`]: SQLite settings (WAL, durability) shared by every evilent SQLite store.
//! - [`clock`]: time, replaceable in tests of windows measured in minutes.

pub mod clock;
pub mod engine;
pub mod model;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Broker, BrokerOptions};
pub use model::{
    Attributes, BatchEntry, BatchResult, BrokerError, Message, MessageAttribute, QueueAttributes,
    QueueCounts, ReceiveRequest, RedrivePolicy, SendOutcome, SendRequest, Subscription, limits,
};
pub use store::{Durability, open_sqlite};
