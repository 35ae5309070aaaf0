//! The payloads, with the field names of the users' original analysis.
//!
//! Each payload is a plain struct; [`Event`] is the closed set of them,
//! tagged on the wire by `eventType`. Snapshots rather than diffs: an
//! `UserUpdated` carries the user as it is after the change, so a consumer
//! that missed an earlier update still ends up right.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::money::Money;

/// The topic an event is published on; each publishing service owns one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    UserEvents,
    ProductEvents,
    OrderEvents,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 3] = [Topic::UserEvents, Topic::ProductEvents, Topic::OrderEvents];

    /// The topic's name (`user-events`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Topic::UserEvents => "user-events",
            Topic::ProductEvents => "product-events",
            Topic::OrderEvents => "order-events",
        }
    }

    /// The service that publishes on this topic (the `source` of its events).
    pub const fn source(self) -> &'static str {
        match self {
            Topic::UserEvents => "user-service",
            Topic::ProductEvents => "product-service",
            Topic::OrderEvents => "order-service",
        }
    }
}

/// A user was created (seed: "Usuario Creado").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A user's profile was created (seed CASO 1); product-service makes a seller profile of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserProfileCreated {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A user changed; the payload is the user after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A user was (soft) deleted (seed CASO 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDeleted {
    pub user_id: String,
}

/// A product was created (seed CASO 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    pub product_id: String,
    pub user_id: String,
    pub category_id: String,
    pub price: Money,
    /// Not in the seed's payload; present when evilent publishes, optional when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A product changed; the payload is the product after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductUpdated {
    pub product_id: String,
    pub user_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub category_id: String,
    pub price: Money,
    pub stock: u32,
    pub is_active: bool,
}

/// A product was deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductDeleted {
    pub product_id: String,
    pub user_id: String,
}

/// A product's stock changed to `stock` (by `delta`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductStockUpdated {
    pub product_id: String,
    pub user_id: String,
    pub stock: u32,
    pub delta: i64,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: u32,
    pub unit_price: Money,
}

/// An order was created (PENDING); the saga starts here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderItem>,
    pub total: Money,
}

macro_rules! events {
    ($($variant:ident => $topic:ident, $aggregate:ident;)*) => {
        /// Every event evilent knows, tagged on the wire by `eventType`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "eventType")]
        pub enum Event {
            $($variant($variant),)*
        }

        impl Event {
            /// Every `eventType` this build understands.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($variant)),*];

            /// The `eventType` on the wire.
            pub const fn event_type(&self) -> &'static str {
                match self { $(Event::$variant(_) => stringify!($variant),)* }
            }

            /// The topic this event is published on.
            pub const fn topic(&self) -> Topic {
                match self { $(Event::$variant(_) => Topic::$topic,)* }
            }

            /// The id of the aggregate the event is about: the FIFO message group,
            /// and the key of per-aggregate ordering in the outbox.
            pub fn aggregate_id(&self) -> &str {
                match self { $(Event::$variant(e) => &e.$aggregate,)* }
            }

            /// The JSON Schema of every event type, by `eventType`.
            pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
                vec![$((stringify!($variant), crate::schema::for_payload::<$variant>(stringify!($variant))),)*]
            }
        }

        $(impl From<$variant> for Event {
            fn from(e: $variant) -> Self { Event::$variant(e) }
        })*
    };
}

events! {
    UserCreated => UserEvents, user_id;
    UserUpdated => UserEvents, user_id;
    UserDeleted => UserEvents, user_id;
    UserProfileCreated => UserEvents, user_id;
    ProductCreated => ProductEvents, product_id;
    ProductUpdated => ProductEvents, product_id;
    ProductDeleted => ProductEvents, product_id;
    ProductStockUpdated => ProductEvents, product_id;
    OrderCreated => OrderEvents, order_id;
}

impl Event {
    /// Whether `event_type` is one this build understands.
    pub fn is_known(event_type: &str) -> bool {
        Self::TYPES.contains(&event_type)
    }
}
