//! The outbox and inbox conformance suite on PostgreSQL.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;

use async_trait::async_trait;
use evilent_contracts::Envelope;
use evilent_messaging::conformance::required;
use evilent_messaging::outbox::conformance::{Fixture, OutboxWriter};
use evilent_pg::outbox::{PgOutbox, append};
use evilent_pg::{MESSAGING_MIGRATION, PgPool, migrate, testing};

struct Writer(PgPool);

#[async_trait]
impl OutboxWriter for Writer {
    async fn append(&self, topic: &str, events: &[Envelope]) {
        let mut tx = self.0.begin().await.unwrap();
        for e in events {
            append(&mut tx, topic, e, None).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    async fn claim(&self, consumer: &str, event_id: &uuid::Uuid, commit: bool) -> bool {
        let mut tx = self.0.begin().await.unwrap();
        let claimed = evilent_pg::inbox::claim(&mut tx, consumer, event_id)
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        claimed
    }
}

async fn fixture() -> Option<Fixture> {
    let pool = match testing::fresh_schema("outbox").await {
        Ok(pool) => pool,
        Err(reason) => {
            assert!(!required(), "CI=true requires PostgreSQL, but: {reason}");
            eprintln!("SKIPPED: {reason}");
            return None;
        }
    };
    migrate(&pool, &[MESSAGING_MIGRATION]).await.unwrap();
    Some(Fixture {
        store: Arc::new(PgOutbox::new(pool.clone())),
        writer: Arc::new(Writer(pool)),
    })
}

evilent_messaging::outbox_conformance!(fixture());
