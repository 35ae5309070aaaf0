//! # evilent-messaging — events between services, without loss or doubles
//!
//! The ports a service talks to, their adapters, and the machinery that
//! turns SQS's at-least-once delivery into exactly-once effects:
//!
//! ```text
//!  service tx ──► outbox ──relay──► Publisher (topic) ──► queue ──► Consumer ──► handler + inbox (one tx)
//!               (same commit)     (batches, retries)            (batches, heartbeat, backoff, DLQ)
//! ```
//!
//! ## Map
//! - [`port`]: [`QueuePort`] (SQS) and [`Publisher`] (SNS), the only broker API services see.
//! - [`embedded`]: both ports on the in-process broker (`evilent-broker`).
//! - [`topology`]: DESIGN.md's topics, queues, dead-letter queues and subscriptions.
//! - [`outbox`]: the transactional outbox and its relay; [`outbox::sqlite`] stores it in SQLite.
//! - [`inbox`]: `(consumer, eventId)` claimed in the handler's transaction.
//! - [`consumer`]: the consumer runtime ([`Consumer::step`] for tests, [`Consumer::run`] for processes).
//! - [`dlq`]: list, show, redrive and purge dead letters.
//! - [`faults`]: a wrapper that injects duplicates, reordering, lost deletes, failing batch entries.
//! - [`conformance`]: the behaviour suite every queue backend must pass.
//! - [`sqlite`]: the SQLite database a service, its outbox and its inbox share.

pub mod conformance;
pub mod consumer;
pub mod dlq;
pub mod embedded;
pub mod faults;
pub mod inbox;
mod join;
pub mod outbox;
pub mod port;
pub mod sqlite;
pub mod topology;

pub use consumer::{
    Consumer, ConsumerConfig, EventHandler, Events, Handled, HandlerError, MessageHandler,
    StepOutcome,
};
pub use embedded::EmbeddedBroker;
pub use faults::{Faults, Faulty};
pub use outbox::{OutboxRelay, OutboxStore, RelayConfig};
pub use port::{Publisher, QueueError, QueuePort};
pub use sqlite::SqliteDb;
pub use topology::Topology;
