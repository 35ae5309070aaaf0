//! The outbox and inbox conformance suite on SQLite.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;

use async_trait::async_trait;
use evilent_contracts::Envelope;
use evilent_messaging::outbox::conformance::{Fixture, OutboxWriter};
use evilent_messaging::outbox::sqlite::{SqliteOutbox, append};
use evilent_messaging::{SqliteDb, inbox};

struct Writer(SqliteDb);

#[async_trait]
impl OutboxWriter for Writer {
    async fn append(&self, topic: &str, events: &[Envelope]) {
        self.0.with(|c| {
            let tx = c.transaction().unwrap();
            for e in events {
                append(&tx, topic, e, None).unwrap();
            }
            tx.commit().unwrap();
        });
    }

    async fn claim(&self, consumer: &str, event_id: &uuid::Uuid, commit: bool) -> bool {
        self.0.with(|c| {
            let tx = c.transaction().unwrap();
            let claimed = inbox::claim(&tx, consumer, event_id).unwrap();
            if commit {
                tx.commit().unwrap();
            }
            claimed
        })
    }
}

async fn fixture() -> Option<Fixture> {
    let db = SqliteDb::in_memory().unwrap();
    Some(Fixture {
        store: Arc::new(SqliteOutbox::new(db.clone())),
        writer: Arc::new(Writer(db)),
    })
}

evilent_messaging::outbox_conformance!(fixture());
