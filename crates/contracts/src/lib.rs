//! # evilent-contracts — what travels between services
//!
//! Every domain event evilent's services exchange, exactly as it looks on the
//! wire, and nothing else: this crate does no I/O, so a service, a worker, a
//! Lambda and a test can all depend on it without pulling a database or a
//! broker with them.
//!
//! An event on the wire is **flat JSON**: the payload fields the users' original
//! analysis wrote (`userId`, `firstName`, `price`, …) side by side with the
//! metadata evilent adds (`eventId`, `version`, `aggregateVersion`,
//! `timestamp`, `source`, `correlationId`, `causationId`):
//!
//! ```
//! use evilent_contracts::{decode, Event};
//!
//! // The seed's own example, without any of the new metadata, still parses.
//! let env = decode(r#"{"eventType":"UserDeleted","userId":"user-123",
//!     "timestamp":"2025-11-10T11:00:00Z","source":"user-service"}"#).unwrap();
//! assert!(matches!(env.event, Event::UserDeleted(ref e) if e.user_id == "user-123"));
//! assert_eq!(env.meta.version, 1);
//! ```
//!
//! ## Map
//! - [`money`]: [`Money`], integer minor units inside, a decimal with at most two places outside.
//! - [`events`]: one struct per payload and the [`Event`] enum tagged by `eventType`.
//! - [`envelope`]: [`Envelope`] = [`Metadata`] + [`Event`]; [`decode`] and [`Envelope::to_json`],
//!   and how events written before the metadata existed are read (see [`envelope`]).
//! - [`schema`]: a JSON Schema per event type, exported by `evilent events schema`.

pub mod envelope;
pub mod events;
pub mod money;
pub mod schema;

pub use envelope::{DecodeError, Envelope, Metadata, decode};
pub use events::{
    Event, OrderCreated, OrderItem, ProductCreated, ProductDeleted, ProductStockUpdated,
    ProductUpdated, Topic, UserCreated, UserDeleted, UserProfileCreated, UserUpdated,
};
pub use money::{Money, MoneyError};
