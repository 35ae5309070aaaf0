//! Test databases: a fresh database per test on `EVILENT_TEST_MONGODB_URL`.

use mongodb::Database;

/// The test server's URL (SecantusDB on 127.0.0.1:27017 by default).
pub fn url() -> String {
    std::env::var("EVILENT_TEST_MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".to_owned())
}

/// A new, empty database (and its client); `Err` with the reason when the
/// server cannot be reached.
pub async fn fresh_database(prefix: &str) -> Result<(mongodb::Client, Database), String> {
    let url = url();
    let client = crate::connect(&url)
        .await
        .map_err(|e| format!("bad EVILENT_TEST_MONGODB_URL {url}: {e}"))?;
    client
        .database("admin")
        .run_command(mongodb::bson::doc! { "ping": 1 })
        .await
        .map_err(|e| format!("no MongoDB-wire server at {url}: {e}"))?;
    let name = format!(
        "{prefix}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    );
    let db = client.database(&name);
    Ok((client, db))
}
