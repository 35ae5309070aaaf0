//! # evilent-products — the product-service
//!
//! Products (`/product`), stock, and seller profiles kept from user events;
//! when a user is deleted, their products become inactive, each with a
//! `ProductUpdated`, in the same transaction. A library: every entrypoint
//! builds the same [`http::router`] and [`handlers::UserEvents`].
//!
//! ## Map
//! - [`domain`]: products, seller profiles, field rules.
//! - [`store`]: the [`store::ProductStore`] port; [`store::sqlite`] keeps products,
//!   sellers, outbox and inbox in one SQLite database.
//! - [`http`]: routes and handlers; errors as problem+json.
//! - [`handlers`]: the user-events handler (seller profiles, deactivation).
//! - [`openapi`]: the OpenAPI document.

pub mod domain;
pub mod handlers;
pub mod http;
pub mod openapi;
pub mod store;
