//! The seed's example payloads parse exactly as written there and serialise
//! back with the same field names.

#![allow(clippy::unwrap_used)] // tests fail loudly

use evilent_contracts::{
    DecodeError, Envelope, Event, Money, ProductCreated, UserProfileCreated, decode,
};
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Parses `body`, writes it back, and checks every field of the original is
/// still there with the same value.
fn roundtrip(body: Value) -> Envelope {
    let env = decode(&body.to_string()).unwrap();
    let back: Value = serde_json::from_str(&env.to_json()).unwrap();
    for key in keys(&body) {
        assert_eq!(
            back[&key], body[&key],
            "field {key} changed on the way back"
        );
    }
    env
}

#[test]
fn seed_user_created_parses_and_roundtrips() {
    let env = roundtrip(json!({
        "eventType": "UserCreated",
        "userId": "user-123",
        "email": "user@example.com",
        "firstName": "John",
        "lastName": "Doe",
        "timestamp": "2025-11-10T10:30:00Z",
        "source": "user-service"
    }));
    assert_eq!(env.event.aggregate_id(), "user-123");
    assert_eq!(env.meta.source.as_deref(), Some("user-service"));
    assert_eq!(env.meta.version, 1);
    assert_eq!(env.meta.aggregate_version, None);
}

#[test]
fn seed_product_created_parses_with_money_in_cents() {
    let env = roundtrip(json!({
        "eventType": "ProductCreated",
        "productId": "prod-456",
        "userId": "user-123",
        "categoryId": "cat-789",
        "price": 99.99,
        "timestamp": "2025-11-10T10:35:00Z",
        "source": "product-service"
    }));
    match env.event {
        Event::ProductCreated(ProductCreated { price, .. }) => {
            assert_eq!(price, Money::from_minor(9999))
        }
        other => panic!("wrong event {other:?}"),
    }
    // CASO 2 writes it without timestamp and source: still an event.
    roundtrip(
        json!({"eventType": "ProductCreated", "productId": "prod-456",
        "userId": "user-123", "categoryId": "cat-789", "price": 99.99}),
    );
}

#[test]
fn seed_user_deleted_and_profile_created_parse() {
    let env = roundtrip(json!({"eventType": "UserDeleted", "userId": "user-123",
        "timestamp": "2025-11-10T11:00:00Z", "source": "user-service"}));
    assert_eq!(env.event.event_type(), "UserDeleted");
    let env = roundtrip(json!({
        "eventType": "UserProfileCreated",
        "userId": "user-123",
        "email": "seller@example.com",
        "firstName": "John",
        "lastName": "Doe"
    }));
    assert!(
        matches!(env.event, Event::UserProfileCreated(UserProfileCreated { ref email, .. }) if email == "seller@example.com")
    );
}

#[test]
fn legacy_event_without_id_gets_the_same_id_every_time() {
    let body = r#"{"eventType":"UserDeleted","userId":"u1"}"#;
    let a = decode(body).unwrap();
    let b = decode(body).unwrap();
    assert_eq!(
        a.meta.event_id, b.meta.event_id,
        "redeliveries must share an inbox key"
    );
    let c = decode(r#"{"eventType":"UserDeleted","userId":"u2"}"#).unwrap();
    assert_ne!(a.meta.event_id, c.meta.event_id);
}

#[test]
fn new_events_carry_all_metadata_and_unknown_fields_are_accepted() {
    let env = Envelope::new(ProductCreated {
        product_id: "p1".into(),
        user_id: "u1".into(),
        category_id: "c1".into(),
        price: Money::from_minor(1050),
        name: Some("Laptop".into()),
    });
    let mut v: Value = serde_json::from_str(&env.to_json()).unwrap();
    for key in [
        "eventType",
        "eventId",
        "version",
        "timestamp",
        "source",
        "correlationId",
        "price",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["price"], json!(10.5));
    assert_eq!(v["source"], json!("product-service"));
    assert_eq!(env.meta.event_id.get_version_num(), 7);
    v["someFutureField"] = json!({"nested": true});
    assert_eq!(decode(&v.to_string()).unwrap(), env);
}

#[test]
fn bad_events_get_clear_errors() {
    assert!(matches!(decode("[1,2]"), Err(DecodeError::Malformed(_))));
    assert!(matches!(
        decode(r#"{"userId":"u"}"#),
        Err(DecodeError::MissingEventType)
    ));
    assert!(
        matches!(decode(r#"{"eventType":"Martian"}"#), Err(DecodeError::UnknownEventType(t)) if t == "Martian")
    );
    let err = decode(r#"{"eventType":"ProductCreated","productId":"p","userId":"u","categoryId":"c","price":1.234}"#)
        .unwrap_err();
    assert!(err.to_string().contains("2 decimal places"), "{err}");
    let err = decode(r#"{"eventType":"UserCreated","userId":"u"}"#).unwrap_err();
    assert!(err.to_string().contains("email"), "{err}");
}

#[test]
fn every_event_has_a_schema_requiring_its_type() {
    let schemas = Event::schemas();
    assert_eq!(schemas.len(), Event::TYPES.len());
    for (name, schema) in schemas {
        assert_eq!(schema["properties"]["eventType"]["const"], json!(name));
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("eventType"))
        );
    }
    let (_, product) = Event::schemas()
        .into_iter()
        .find(|(n, _)| *n == "ProductCreated")
        .unwrap();
    let required = product["required"].as_array().unwrap();
    for field in ["productId", "userId", "categoryId", "price"] {
        assert!(
            required.contains(&json!(field)),
            "{field} not required in {product}"
        );
    }
    assert!(!required.contains(&json!("eventId")));
}
