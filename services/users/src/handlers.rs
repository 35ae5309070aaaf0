//! The user-service's event handler, for product events (seed CASO 2): the
//! same code runs in `evilent up`, in `evilent worker users` and in Lambda.

use std::sync::Arc;

use async_trait::async_trait;
use evilent_broker::Message;
use evilent_contracts::{Envelope, Event};
use evilent_messaging::{EventHandler, Handled, HandlerError};

use crate::store::{ProductChange, UserStore};

/// The consumer name under which the inbox records applied events.
pub const CONSUMER: &str = "user-service.product-events";

/// Keeps each user's product statistics from `ProductCreated` (+1) and `ProductDeleted` (−1).
pub struct ProductEvents {
    pub store: Arc<dyn UserStore>,
}

#[async_trait]
impl EventHandler for ProductEvents {
    #[tracing::instrument(skip_all, fields(event_type = event.event.event_type(), event_id = %event.meta.event_id, correlation_id = event.meta.correlation_id.as_deref().unwrap_or("-")))]
    async fn handle(&self, event: &Envelope, _message: &Message) -> Result<Handled, HandlerError> {
        let change = match &event.event {
            Event::ProductCreated(e) => ProductChange::Created {
                product_id: e.product_id.clone(),
                user_id: e.user_id.clone(),
            },
            Event::ProductDeleted(e) => ProductChange::Deleted {
                product_id: e.product_id.clone(),
                user_id: e.user_id.clone(),
            },
            other => {
                return Ok(Handled::Ignored(format!(
                    "{} does not change user statistics",
                    other.event_type()
                )));
            }
        };
        Ok(self
            .store
            .apply_product_change(CONSUMER, event, &change)
            .await?)
    }
}
