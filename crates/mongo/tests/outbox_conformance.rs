//! The outbox and inbox conformance suite on MongoDB (SecantusDB).

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;

use async_trait::async_trait;
use evilent_contracts::Envelope;
use evilent_messaging::conformance::required;
use evilent_messaging::outbox::conformance::{Fixture, OutboxWriter};
use evilent_mongo::outbox::{MongoOutbox, append, create_indexes};
use evilent_mongo::{testing, transaction};

struct Writer(mongodb::Client, mongodb::Database);

#[async_trait]
impl OutboxWriter for Writer {
    async fn append(&self, topic: &str, events: &[Envelope]) {
        let (client, db) = (&self.0, &self.1);
        transaction!(client, |s| {
            for e in events {
                append(db, s, topic, e, None).await?;
            }
            Ok(())
        })
        .unwrap();
    }

    async fn claim(&self, consumer: &str, event_id: &uuid::Uuid, commit: bool) -> bool {
        let (client, db) = (&self.0, &self.1);
        let mut claimed = false;
        let result: mongodb::error::Result<()> = transaction!(client, |s| {
            claimed = evilent_mongo::inbox::claim(db, s, consumer, event_id).await?;
            if commit {
                Ok(())
            } else {
                Err(mongodb::error::Error::custom("roll back"))
            }
        });
        assert_eq!(result.is_ok(), commit);
        claimed
    }
}

async fn fixture() -> Option<Fixture> {
    let (client, db) = match testing::fresh_database("outbox").await {
        Ok(found) => found,
        Err(reason) => {
            assert!(
                !required(),
                "CI=true requires a MongoDB-wire server, but: {reason}"
            );
            eprintln!("SKIPPED: {reason}");
            return None;
        }
    };
    create_indexes(&db).await.unwrap();
    Some(Fixture {
        store: Arc::new(MongoOutbox::new(db.clone())),
        writer: Arc::new(Writer(client, db)),
    })
}

evilent_messaging::outbox_conformance!(fixture());
