//! The product store conformance suite on SQLite and on MongoDB (SecantusDB).

#![allow(clippy::unwrap_used)] // tests fail loudly

mod sqlite {
    use std::sync::Arc;

    use evilent_messaging::SqliteDb;
    use evilent_messaging::outbox::sqlite::SqliteOutbox;
    use evilent_products::store::conformance::Fixture;
    use evilent_products::store::sqlite::SqliteProductStore;

    async fn fixture() -> Option<Fixture> {
        let db = SqliteDb::in_memory().unwrap();
        let store = SqliteProductStore::new(db.clone(), Arc::default()).unwrap();
        Some(Fixture {
            store: Arc::new(store),
            outbox: Arc::new(SqliteOutbox::new(db)),
        })
    }

    evilent_products::product_store_conformance!(fixture());
}

mod mongodb {
    use std::sync::Arc;

    use evilent_messaging::conformance::required;
    use evilent_mongo::outbox::MongoOutbox;
    use evilent_products::store::conformance::Fixture;
    use evilent_products::store::mongo::MongoProductStore;

    async fn fixture() -> Option<Fixture> {
        let (client, db) = match evilent_mongo::testing::fresh_database("products").await {
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
        let store = MongoProductStore::new(client, db.clone(), Arc::default())
            .await
            .unwrap();
        Some(Fixture {
            store: Arc::new(store),
            outbox: Arc::new(MongoOutbox::new(db)),
        })
    }

    evilent_products::product_store_conformance!(fixture());
}
