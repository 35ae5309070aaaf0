//! The product-service's event handler, for user events (seed CASO 1 and 3).

use std::sync::Arc;

use async_trait::async_trait;
use evilent_broker::Message;
use evilent_contracts::{Envelope, Event, Metadata, ProductCreated, ProductUpdated, Topic};
use evilent_messaging::{EventHandler, Handled, HandlerError};

use crate::domain::Product;
use crate::store::{EventFor, ProductStore, SellerDetails};

/// The consumer name under which the inbox records applied events.
pub const CONSUMER: &str = "product-service.user-events";

/// Keeps seller profiles from user events; deactivates a deleted user's products.
pub struct UserEvents {
    pub store: Arc<dyn ProductStore>,
}

/// The `ProductCreated` announcing the new product `p`.
pub fn product_created(p: &Product, meta: Metadata) -> Envelope {
    Envelope {
        meta: meta.aggregate_version(p.version.unsigned_abs()),
        event: ProductCreated {
            product_id: p.id.clone(),
            user_id: p.user_id.clone(),
            category_id: p.category_id.clone(),
            price: p.price,
            name: Some(p.name.clone()),
        }
        .into(),
    }
}

/// The `ProductUpdated` announcing `p` as it is now.
pub fn product_updated(p: &Product, meta: Metadata) -> Envelope {
    Envelope {
        meta: meta.aggregate_version(p.version.unsigned_abs()),
        event: ProductUpdated {
            product_id: p.id.clone(),
            user_id: p.user_id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            category_id: p.category_id.clone(),
            price: p.price,
            stock: p.stock,
            is_active: p.is_active,
        }
        .into(),
    }
}

#[async_trait]
impl EventHandler for UserEvents {
    #[tracing::instrument(skip_all, fields(event_type = event.event.event_type(), event_id = %event.meta.event_id, correlation_id = event.meta.correlation_id.as_deref().unwrap_or("-")))]
    async fn handle(&self, event: &Envelope, _message: &Message) -> Result<Handled, HandlerError> {
        let details = match &event.event {
            Event::UserCreated(e) => SellerDetails {
                user_id: e.user_id.clone(),
                email: e.email.clone(),
                first_name: e.first_name.clone(),
                last_name: e.last_name.clone(),
            },
            Event::UserProfileCreated(e) => SellerDetails {
                user_id: e.user_id.clone(),
                email: e.email.clone(),
                first_name: e.first_name.clone(),
                last_name: e.last_name.clone(),
            },
            Event::UserUpdated(e) => SellerDetails {
                user_id: e.user_id.clone(),
                email: e.email.clone(),
                first_name: e.first_name.clone(),
                last_name: e.last_name.clone(),
            },
            Event::UserDeleted(e) => {
                let cause = event.meta.clone();
                let event_for: EventFor = Arc::new(move |p: &Product| {
                    product_updated(
                        p,
                        Metadata::new(Topic::ProductEvents.source()).follows(&cause),
                    )
                });
                return Ok(self
                    .store
                    .deactivate_seller(CONSUMER, event, &e.user_id, event_for)
                    .await?);
            }
            other => {
                return Ok(Handled::Ignored(format!(
                    "{} is not for the product-service",
                    other.event_type()
                )));
            }
        };
        Ok(self.store.apply_seller(CONSUMER, event, &details).await?)
    }
}
