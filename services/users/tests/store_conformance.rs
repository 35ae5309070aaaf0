//! The user store conformance suite on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // tests fail loudly

mod sqlite {
    use std::sync::Arc;

    use evilent_messaging::SqliteDb;
    use evilent_messaging::outbox::sqlite::SqliteOutbox;
    use evilent_users::store::conformance::Fixture;
    use evilent_users::store::sqlite::SqliteUserStore;

    async fn fixture() -> Option<Fixture> {
        let db = SqliteDb::in_memory().unwrap();
        let store = SqliteUserStore::new(db.clone(), Arc::default()).unwrap();
        Some(Fixture {
            store: Arc::new(store),
            outbox: Arc::new(SqliteOutbox::new(db)),
        })
    }

    evilent_users::user_store_conformance!(fixture());
}

mod postgres {
    use std::sync::Arc;

    use evilent_messaging::conformance::required;
    use evilent_pg::outbox::PgOutbox;
    use evilent_users::store::conformance::Fixture;
    use evilent_users::store::postgres::PgUserStore;

    async fn fixture() -> Option<Fixture> {
        let pool = match evilent_pg::testing::fresh_schema("users").await {
            Ok(pool) => pool,
            Err(reason) => {
                assert!(!required(), "CI=true requires PostgreSQL, but: {reason}");
                eprintln!("SKIPPED: {reason}");
                return None;
            }
        };
        let store = PgUserStore::new(pool.clone(), Arc::default())
            .await
            .unwrap();
        Some(Fixture {
            store: Arc::new(store),
            outbox: Arc::new(PgOutbox::new(pool)),
        })
    }

    evilent_users::user_store_conformance!(fixture());
}
