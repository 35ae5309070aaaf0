//! # evilent-platform — what every service's HTTP side shares
//!
//! Nothing here knows about users or products: this is the plumbing each
//! service would otherwise write again, done once.
//!
//! ## Map
//! - [`problem`]: [`ApiError`], the one error type of every HTTP boundary, answered as
//!   `application/problem+json` (RFC 9457) with field paths for validation; [`JsonBody`],
//!   a JSON extractor whose failures say which field was wrong.
//! - [`auth`]: bearer-token validation as for Cognito (RS256 + JWKS, `iss`, `exp`/`nbf`,
//!   `token_use`, client id), the [`Principal`] extractor, and the dev issuer that
//!   `evilent up` runs so local tokens take the same path.
//! - [`client`]: [`ServiceClient`], calls between services: pooled connections, a
//!   timeout, retries with jitter, a circuit breaker.
//! - [`server`]: [`serve`]`(listener, router, shutdown)` with the common layers
//!   (request id, tracing, timeout, panic → 500 problem).
//! - [`docs`]: the `/openapi.json` route and an HTML page rendered from it.
//! - [`correlation`]: the metadata of the events a request writes (its request id as `correlationId`).

pub mod auth;
pub mod client;
pub mod correlation;
pub mod docs;
pub mod problem;
pub mod server;

pub use auth::{DevIssuer, JwtValidator, Principal};
pub use client::{ClientError, ServiceClient};
pub use problem::{ApiError, FieldError, JsonBody};
pub use server::serve;
