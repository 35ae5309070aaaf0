//! The events a request writes carry its request id (`x-request-id`, set by
//! [`crate::server`]) as `correlationId` and `causationId`, so logs and
//! events of one client call can be found together.

use axum::http::HeaderMap;
use evilent_contracts::{Metadata, Topic};

/// Fresh metadata for an event of `topic` at aggregate `version`, written by the request of `headers`.
pub fn event_metadata(headers: &HeaderMap, topic: Topic, version: i64) -> Metadata {
    let meta = Metadata::new(topic.source()).aggregate_version(version.unsigned_abs());
    match headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        Some(id) => meta.caused_by(id, id),
        None => meta,
    }
}
