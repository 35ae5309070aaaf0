//! Where products and seller profiles live: the [`ProductStore`] port.
//!
//! As in the user-service, each write takes its events and commits them to
//! the outbox in the same transaction. Adapters: [`sqlite`] and [`mongo`]
//! (multi-document transactions); [`conformance`] is the suite both pass.

pub mod conformance;
#[cfg(feature = "mongodb")]
pub mod mongo;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use evilent_contracts::Envelope;
use evilent_messaging::Handled;

use crate::domain::{Product, Seller};

/// What a store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    /// Somebody changed the product since it was read.
    #[error("the product changed concurrently")]
    Concurrent,
    #[error("product store: {0}")]
    Backend(String),
}

/// Filters of `GET /product`.
#[derive(Clone, Debug, Default)]
pub struct ProductFilter {
    pub user_id: Option<String>,
    pub category_id: Option<String>,
    pub is_active: Option<bool>,
    /// 1..=100.
    pub limit: u32,
    /// Products after this id (ids grow with time: UUIDv7).
    pub after: Option<String>,
}

/// A seller's details from a user event.
#[derive(Clone, Debug)]
pub struct SellerDetails {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// Builds the event announcing a product's change. Owned, so that a store
/// can run it inside a write it hands to another thread (SQLite's group
/// commit), where it may run more than once: only the last run's events are
/// committed.
pub type EventFor = Arc<dyn Fn(&Product) -> Envelope + Send + Sync>;

/// The product-service's storage.
#[async_trait]
pub trait ProductStore: Send + Sync + 'static {
    async fn create(&self, product: &Product, events: &[Envelope]) -> Result<(), StoreError>;
    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError>;
    /// A page of products, ordered by id, and whether more follow.
    async fn list(&self, filter: &ProductFilter) -> Result<(Vec<Product>, bool), StoreError>;
    /// Saves `product` (whose `version` is one more than the stored one) and its events.
    async fn update(&self, product: &Product, events: &[Envelope]) -> Result<(), StoreError>;
    /// Deletes `product` (as read at its `version`) and records its events.
    async fn delete(&self, product: &Product, events: &[Envelope]) -> Result<(), StoreError>;
    async fn seller(&self, user_id: &str) -> Result<Option<Seller>, StoreError>;
    /// Creates or updates a seller profile from a user event, once per
    /// `(consumer, eventId)`, unless a newer version was applied already.
    async fn apply_seller(
        &self,
        consumer: &str,
        event: &Envelope,
        details: &SellerDetails,
    ) -> Result<Handled, StoreError>;
    /// Marks the seller inactive and each of their active products
    /// inactive, appending `event_for(product)` for each, all in one
    /// transaction, once per `(consumer, eventId)`.
    async fn deactivate_seller(
        &self,
        consumer: &str,
        event: &Envelope,
        user_id: &str,
        event_for: EventFor,
    ) -> Result<Handled, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}
