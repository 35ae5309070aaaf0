//! # evilent-users — the user-service
//!
//! Users (`POST/GET/PATCH/DELETE /user`), their statistics kept from product
//! events, and their products asked of product-service over HTTP. A library:
//! every entrypoint (`evilent up`, `evilent serve users`, a Lambda) builds the
//! same [`http::router`] and the same [`handlers::ProductEvents`].
//!
//! ## Map
//! - [`domain`]: users and the rules of their fields.
//! - [`store`]: the [`store::UserStore`] port; [`store::sqlite`] keeps users, statistics,
//!   outbox and inbox in one SQLite database.
//! - [`http`]: the routes and handlers; errors as problem+json.
//! - [`handlers`]: the product-events handler (`ProductCreated` +1, `ProductDeleted` −1).
//! - [`openapi`]: the OpenAPI document.

pub mod domain;
pub mod handlers;
pub mod http;
pub mod openapi;
pub mod store;
