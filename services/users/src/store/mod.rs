//! Where users live: the [`UserStore`] port and its adapters.
//!
//! Every write takes the events it causes; an adapter commits the change and
//! appends the events to its outbox in **one transaction**. Adapters:
//! [`sqlite`] and [`postgres`]; [`conformance`] is the suite both pass.

pub mod conformance;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use evilent_contracts::Envelope;
use evilent_messaging::Handled;

use crate::domain::User;

/// What a store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A user with this id or email exists.
    #[error("{0}")]
    Conflict(String),
    /// Somebody changed the user since it was read; read again and retry.
    #[error("the user changed concurrently")]
    Concurrent,
    #[error("user store: {0}")]
    Backend(String),
}

/// A product event, as the user-service's statistics see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductChange {
    Created { product_id: String, user_id: String },
    Deleted { product_id: String, user_id: String },
}

impl ProductChange {
    /// The product, its owner, and the state this event puts it in.
    pub fn parts(&self) -> (&str, &str, &'static str) {
        match self {
            ProductChange::Created {
                product_id,
                user_id,
            } => (product_id, user_id, "active"),
            ProductChange::Deleted {
                product_id,
                user_id,
            } => (product_id, user_id, "deleted"),
        }
    }
}

/// What one product event changes, given the state already recorded for its
/// product (`None`: never seen). Every store applies this one rule, so the
/// statistics come out the same whatever order the events arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountChange {
    pub created: i64,
    pub deleted: i64,
    /// Change of `productCount`.
    pub delta: i64,
    /// The product's state to record, if it changes.
    pub record: Option<&'static str>,
}

impl CountChange {
    /// The rule: a creation counts when first seen; a deletion counts once;
    /// a deletion that overtakes its creation leaves a tombstone, and the late
    /// creation then counts as created without changing `productCount`.
    pub fn of(new_state: &'static str, recorded: Option<&str>) -> CountChange {
        let (created, deleted, delta, record) = match (new_state, recorded) {
            ("active", None) => (1, 0, 1, Some("active")),
            ("deleted", Some("active")) => (0, 1, -1, Some("deleted")),
            ("deleted", None) => (0, 1, 0, Some("deleted")),
            ("active", Some("deleted")) => (1, 0, 0, None),
            _ => (0, 0, 0, None),
        };
        CountChange {
            created,
            deleted,
            delta,
            record,
        }
    }

    /// Whether the event changed anything.
    pub fn applied(&self) -> bool {
        self.created + self.deleted > 0
    }
}

/// A user's statistics, kept from product events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserStats {
    pub product_count: i64,
    pub products_created: i64,
    pub products_deleted: i64,
    pub last_event_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the last product event was applied here (its `timestamp` is when it was written).
    pub last_applied_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The user-service's storage.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a new user and its events.
    async fn create(&self, user: &User, events: &[Envelope]) -> Result<(), StoreError>;
    /// A user by id, deleted or not.
    async fn get(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// Saves `user` (whose `version` is one more than the stored one) and its events.
    async fn update(&self, user: &User, events: &[Envelope]) -> Result<(), StoreError>;
    /// A user's statistics (zero when no product event has arrived yet).
    async fn stats(&self, user_id: &str) -> Result<UserStats, StoreError>;
    /// Applies one product event to the statistics, once per `(consumer, eventId)`.
    async fn apply_product_change(
        &self,
        consumer: &str,
        event: &Envelope,
        change: &ProductChange,
    ) -> Result<Handled, StoreError>;
    /// Whether the store answers (for `/ready`).
    async fn ping(&self) -> Result<(), StoreError>;
}
