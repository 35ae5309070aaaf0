//! The envelope: metadata plus payload, flat on the wire.
//!
//! ## Events written before the metadata existed
//! The seed's example payloads carry no `eventId`, `version` or
//! `aggregateVersion`, and two of them no `timestamp` or `source`. They must
//! still be accepted (a producer that has not been upgraded keeps working), so
//! [`decode`] fills the gaps instead of refusing:
//!
//! | missing | becomes | why |
//! |---|---|---|
//! | `eventId` | a UUIDv5 of the exact body bytes | a redelivered copy of the same legacy message gets the same id, so the inbox still deduplicates it |
//! | `version` | `1` | the only schema version that existed before the field |
//! | `aggregateVersion` | `None` | no ordering information: consumers apply it |
//! | `timestamp`, `source`, `correlationId`, `causationId` | `None` | and are left out again when written |
//!
//! A body that is not a JSON object, has no `eventType`, or whose payload
//! fields are missing or of the wrong type is refused with a [`DecodeError`]
//! naming the problem; an `eventType` this build does not know is its own
//! error, [`DecodeError::UnknownEventType`], which consumers acknowledge and
//! count instead of retrying.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::Event;

/// Namespace of the ids given to events that arrived without an `eventId`.
const LEGACY_EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6576_696c_656e_7400_8000_0000_0000_0001);

/// What evilent adds to every payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// UUIDv7; also the SQS deduplication id and the inbox key.
    pub event_id: Uuid,
    /// Schema version of this `eventType`.
    pub version: u32,
    /// Position of this event in its aggregate's history (1, 2, …).
    pub aggregate_version: Option<u64>,
    pub timestamp: Option<DateTime<Utc>>,
    /// The publishing service (`user-service`, …).
    pub source: Option<String>,
    /// The id shared by everything one client request caused.
    pub correlation_id: Option<String>,
    /// The event or request that directly caused this one.
    pub causation_id: Option<String>,
}

impl Metadata {
    /// Fresh metadata for an event `source` is about to publish.
    pub fn new(source: &str) -> Self {
        let event_id = Uuid::now_v7();
        Metadata {
            event_id,
            version: 1,
            aggregate_version: None,
            timestamp: Some(Utc::now().trunc_subsecs(6)),
            source: Some(source.to_owned()),
            correlation_id: Some(event_id.to_string()),
            causation_id: None,
        }
    }

    /// Sets the aggregate version.
    #[must_use]
    pub fn aggregate_version(mut self, version: u64) -> Self {
        self.aggregate_version = Some(version);
        self
    }

    /// Marks this event as caused by a request or event with `correlation_id`
    /// and `causation_id`.
    #[must_use]
    pub fn caused_by(mut self, correlation_id: &str, causation_id: &str) -> Self {
        self.correlation_id = Some(correlation_id.to_owned());
        self.causation_id = Some(causation_id.to_owned());
        self
    }

    /// Marks this event as caused by `parent` (same correlation, causation = parent's id).
    #[must_use]
    pub fn follows(self, parent: &Metadata) -> Self {
        let correlation = parent
            .correlation_id
            .clone()
            .unwrap_or_else(|| parent.event_id.to_string());
        self.caused_by(&correlation, &parent.event_id.to_string())
    }
}

/// One event: metadata and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub meta: Metadata,
    pub event: Event,
}

/// Why a message body is not an event this build can apply.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event body is not a JSON object: {0}")]
    Malformed(serde_json::Error),
    #[error("event body has no \"eventType\"")]
    MissingEventType,
    #[error("unknown eventType {0:?}")]
    UnknownEventType(String),
    #[error("invalid {event_type} event: {source}")]
    Invalid {
        event_type: String,
        source: serde_json::Error,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireOut<'a> {
    #[serde(flatten)]
    event: &'a Event,
    event_id: &'a Uuid,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregate_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<&'a str>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireIn {
    #[serde(flatten)]
    event: Event,
    #[serde(default)]
    event_id: Option<Uuid>,
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    aggregate_version: Option<u64>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    causation_id: Option<String>,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "eventType")]
    event_type: Option<serde_json::Value>,
}

impl Envelope {
    /// An event with fresh metadata from the topic's service.
    pub fn new(event: impl Into<Event>) -> Self {
        let event = event.into();
        let meta = Metadata::new(event.topic().source());
        Envelope { meta, event }
    }

    /// Replaces the metadata (builder style).
    #[must_use]
    pub fn with_meta(mut self, meta: Metadata) -> Self {
        self.meta = meta;
        self
    }

    /// The flat wire JSON.
    pub fn to_json(&self) -> String {
        let m = &self.meta;
        let wire = WireOut {
            event: &self.event,
            event_id: &m.event_id,
            version: m.version,
            aggregate_version: m.aggregate_version,
            timestamp: m.timestamp.as_ref(),
            source: m.source.as_deref(),
            correlation_id: m.correlation_id.as_deref(),
            causation_id: m.causation_id.as_deref(),
        };
        // Only strings, integers, finite floats and maps: serialising cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

/// Reads one event from a message body (see the module docs for what may be missing).
pub fn decode(body: &str) -> Result<Envelope, DecodeError> {
    let probe: Probe = serde_json::from_str(body).map_err(DecodeError::Malformed)?;
    let event_type = match probe.event_type {
        Some(serde_json::Value::String(t)) => t,
        Some(other) => return Err(DecodeError::UnknownEventType(other.to_string())),
        None => return Err(DecodeError::MissingEventType),
    };
    if !Event::is_known(&event_type) {
        return Err(DecodeError::UnknownEventType(event_type));
    }
    let wire: WireIn =
        serde_json::from_str(body).map_err(|source| DecodeError::Invalid { event_type, source })?;
    let event_id = wire
        .event_id
        .unwrap_or_else(|| Uuid::new_v5(&LEGACY_EVENT_ID_NAMESPACE, body.as_bytes()));
    Ok(Envelope {
        meta: Metadata {
            event_id,
            version: wire.version,
            aggregate_version: wire.aggregate_version,
            timestamp: wire.timestamp,
            source: wire.source,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
        },
        event: wire.event,
    })
}
