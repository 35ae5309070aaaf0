//! JSON Schema of each event as it appears on the wire (payload + metadata, flat).
//!
//! Generated from the same structs that (de)serialise events, so the schema
//! cannot drift from the code. `evilent events schema --out DIR` writes one
//! file per `eventType`.

use schemars::JsonSchema;
use serde_json::{Value, json};

/// The metadata fields as the schema shows them. `eventId` is not required,
/// because events written before it existed are still accepted (see
/// [`crate::envelope`]).
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct MetadataFields {
    /// UUIDv7, also the deduplication id and the inbox key.
    event_id: Option<uuid::Uuid>,
    /// Schema version of this eventType (default 1).
    version: Option<u32>,
    /// Position of the event in its aggregate's history.
    aggregate_version: Option<u64>,
    timestamp: Option<chrono::DateTime<chrono::Utc>>,
    source: Option<String>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct Flat<T> {
    #[serde(flatten)]
    payload: T,
    #[serde(flatten)]
    meta: MetadataFields,
}

/// The schema of `T` on the wire as event type `event_type`.
pub(crate) fn for_payload<T: JsonSchema>(event_type: &str) -> Value {
    let mut schema = schemars::schema_for!(Flat<T>).to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), json!(event_type));
        obj.insert(
            "$id".into(),
            json!(format!("https://evilent.dev/events/{event_type}.json")),
        );
        if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("eventType".into(), json!({ "const": event_type }));
        }
        match obj.get_mut("required").and_then(Value::as_array_mut) {
            Some(req) => req.insert(0, json!("eventType")),
            None => {
                obj.insert("required".into(), json!(["eventType"]));
            }
        }
    }
    schema
}
