//! `evilent migrate`: applies user-service's PostgreSQL migrations and
//! creates product-service's MongoDB indexes (both also happen on start).

use std::sync::Arc;

use evilent::config::{self, Config, ProductsDb, UsersDb};

pub async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    if matches!(config.users_db, UsersDb::Sqlite)
        && matches!(config.products_db, ProductsDb::Sqlite)
    {
        println!(
            "nothing to migrate: both services use SQLite (set EVILENT_USERS_DATABASE_URL / EVILENT_PRODUCTS_MONGODB_URL)"
        );
    }
    if let UsersDb::Postgres(_) = config.users_db {
        config::users_store(&config, Arc::default()).await?;
        println!("user-service: PostgreSQL migrations applied");
    }
    if let ProductsDb::Mongo { .. } = config.products_db {
        config::products_store(&config, Arc::default()).await?;
        println!("product-service: MongoDB indexes created");
    }
    Ok(())
}
