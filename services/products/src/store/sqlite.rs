//! The product store on SQLite, sharing one database with its outbox and inbox.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use evilent_contracts::{Envelope, Money, Topic};
use evilent_messaging::outbox::sqlite::append;
use evilent_messaging::sqlite::parse_time;
use evilent_messaging::{Handled, SqliteDb, inbox};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use super::{EventFor, ProductFilter, ProductStore, SellerDetails, StoreError};
use crate::domain::{Product, Seller};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    price_minor INTEGER NOT NULL,
    category_id TEXT NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    is_active   INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS products_by_user ON products (user_id, id);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category_id, id);
CREATE TABLE IF NOT EXISTS sellers (
    user_id     TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    is_active   INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
";

const COLUMNS: &str = "id, user_id, name, description, price_minor, category_id, stock, is_active, created_at, updated_at, version";

/// [`ProductStore`] on SQLite.
#[derive(Clone)]
pub struct SqliteProductStore {
    db: SqliteDb,
    outbox_waker: Arc<Notify>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn read_product(r: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        price: Money::from_minor(r.get(4)?),
        category_id: r.get(5)?,
        stock: r.get(6)?,
        is_active: r.get(7)?,
        created_at: parse_time(&r.get::<_, String>(8)?)?,
        updated_at: parse_time(&r.get::<_, String>(9)?)?,
        version: r.get(10)?,
    })
}

fn append_all(conn: &Connection, events: &[Envelope]) -> rusqlite::Result<()> {
    for e in events {
        append(conn, Topic::ProductEvents.name(), e, None)?;
    }
    Ok(())
}

/// Writes `p` over the stored row at `p.version - 1`; false if that row moved on.
fn save(conn: &Connection, p: &Product) -> rusqlite::Result<bool> {
    let n = conn.prepare_cached(
        "UPDATE products SET name = ?2, description = ?3, price_minor = ?4, category_id = ?5, stock = ?6,
                             is_active = ?7, updated_at = ?8, version = ?9
         WHERE id = ?1 AND version = ?10",
    )?
    .execute(
        params![
            p.id,
            p.name,
            p.description,
            p.price.minor(),
            p.category_id,
            p.stock,
            p.is_active,
            p.updated_at.to_rfc3339(),
            p.version,
            p.version - 1
        ],
    )?;
    Ok(n == 1)
}

fn read_seller(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<Seller>> {
    conn.prepare_cached(
        "SELECT user_id, email, first_name, last_name, is_active, version, updated_at FROM sellers WHERE user_id = ?1",
    )?
    .query_row([user_id], |r| {
        Ok(Seller {
            user_id: r.get(0)?,
            email: r.get(1)?,
            first_name: r.get(2)?,
            last_name: r.get(3)?,
            is_active: r.get(4)?,
            version: r.get(5)?,
            updated_at: parse_time(&r.get::<_, String>(6)?)?,
        })
    })
    .optional()
}

/// Whether an event at `incoming` is older than (or as old as) what was applied.
fn stale(event: &Envelope, stored: Option<&Seller>) -> bool {
    match (event.meta.aggregate_version, stored) {
        (Some(v), Some(s)) => i64::try_from(v).unwrap_or(i64::MAX) <= s.version,
        _ => false,
    }
}

impl SqliteProductStore {
    /// The store in `db` (creating its tables); `outbox_waker` is poked after
    /// every commit that wrote events.
    pub fn new(db: SqliteDb, outbox_waker: Arc<Notify>) -> Result<Self, StoreError> {
        db.with(|c| c.execute_batch(SCHEMA)).map_err(backend)?;
        Ok(SqliteProductStore { db, outbox_waker })
    }

    fn committed(&self, wrote_events: bool) {
        if wrote_events {
            self.outbox_waker.notify_one();
        }
    }
}

#[async_trait]
impl ProductStore for SqliteProductStore {
    async fn create(&self, p: &Product, events: &[Envelope]) -> Result<(), StoreError> {
        let (p, events, wrote_events) = (p.clone(), events.to_vec(), !events.is_empty());
        self.db
            .write(move |tx| {
                tx.prepare_cached(&format!(
                    "INSERT INTO products ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))?
                .execute(params![
                    p.id,
                    p.user_id,
                    p.name,
                    p.description,
                    p.price.minor(),
                    p.category_id,
                    p.stock,
                    p.is_active,
                    p.created_at.to_rfc3339(),
                    p.updated_at.to_rfc3339(),
                    p.version
                ])?;
                append_all(tx, &events)
            })
            .await
            .map_err(backend)?;
        self.committed(wrote_events);
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
        self.db
            .read(|conn| {
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM products WHERE id = ?1"))?
                    .query_row([id], read_product)
                    .optional()
            })
            .map_err(backend)
    }

    async fn list(&self, f: &ProductFilter) -> Result<(Vec<Product>, bool), StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM products WHERE 1 = 1");
        let mut args: Vec<Sql> = Vec::new();
        let mut push = |clause: &str, v: Sql| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(u) = &f.user_id {
            push("user_id =", Sql::Text(u.clone()));
        }
        if let Some(c) = &f.category_id {
            push("category_id =", Sql::Text(c.clone()));
        }
        if let Some(a) = f.is_active {
            push("is_active =", Sql::Integer(a.into()));
        }
        if let Some(after) = &f.after {
            push("id >", Sql::Text(after.clone()));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", f.limit + 1));
        let mut rows: Vec<Product> = self
            .db
            .read(|conn| {
                conn.prepare_cached(&sql)?
                    .query_map(rusqlite::params_from_iter(args.iter()), read_product)?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(backend)?;
        let more = rows.len() > f.limit as usize;
        rows.truncate(f.limit as usize);
        Ok((rows, more))
    }

    async fn update(&self, p: &Product, events: &[Envelope]) -> Result<(), StoreError> {
        let (p, events, wrote_events) = (p.clone(), events.to_vec(), !events.is_empty());
        let saved = self
            .db
            .write(move |tx| -> rusqlite::Result<bool> {
                if !save(tx, &p)? {
                    return Ok(false);
                }
                append_all(tx, &events)?;
                Ok(true)
            })
            .await
            .map_err(backend)?;
        if !saved {
            return Err(StoreError::Concurrent);
        }
        self.committed(wrote_events);
        Ok(())
    }

    async fn delete(&self, p: &Product, events: &[Envelope]) -> Result<(), StoreError> {
        let (id, version) = (p.id.clone(), p.version);
        let (events, wrote_events) = (events.to_vec(), !events.is_empty());
        let deleted = self
            .db
            .write(move |tx| -> rusqlite::Result<bool> {
                if tx
                    .prepare_cached("DELETE FROM products WHERE id = ?1 AND version = ?2")?
                    .execute(params![id, version])?
                    == 0
                {
                    return Ok(false);
                }
                append_all(tx, &events)?;
                Ok(true)
            })
            .await
            .map_err(backend)?;
        if !deleted {
            return Err(StoreError::Concurrent);
        }
        self.committed(wrote_events);
        Ok(())
    }

    async fn seller(&self, user_id: &str) -> Result<Option<Seller>, StoreError> {
        self.db
            .read(|conn| read_seller(conn, user_id))
            .map_err(backend)
    }

    async fn apply_seller(
        &self,
        consumer: &str,
        event: &Envelope,
        d: &SellerDetails,
    ) -> Result<Handled, StoreError> {
        let (consumer, d) = (consumer.to_owned(), d.clone());
        let event = event.clone();
        self.db
            .write(move |tx| -> rusqlite::Result<Handled> {
                if !inbox::claim(tx, &consumer, &event.meta.event_id)? {
                    return Ok(Handled::Duplicate);
                }
                let stored = read_seller(tx, &d.user_id)?;
                if stale(&event, stored.as_ref()) {
                    // A deletion that overtook the creation left a tombstone
                    // without details: an older event may still fill them in,
                    // never change what is newer.
                    let filled = tx.prepare_cached(
                        "UPDATE sellers SET email = ?2, first_name = ?3, last_name = ?4 WHERE user_id = ?1 AND email = ''",
                    )?
                    .execute(
                        params![d.user_id, d.email, d.first_name, d.last_name],
                    )?;
                    return Ok(if filled == 1 {
                        Handled::Applied
                    } else {
                        Handled::Ignored("an equal or newer version of the user was applied".into())
                    });
                }
                let version = event
                    .meta
                    .aggregate_version
                    .map_or_else(|| stored.as_ref().map_or(0, |s| s.version), |v| i64::try_from(v).unwrap_or(i64::MAX));
                let active = stored.as_ref().is_none_or(|s| s.is_active);
                tx.prepare_cached(
                    "INSERT INTO sellers (user_id, email, first_name, last_name, is_active, version, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(user_id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name,
                        last_name = excluded.last_name, version = excluded.version, updated_at = excluded.updated_at",
                )?
                .execute(
                    params![d.user_id, d.email, d.first_name, d.last_name, active, version, Utc::now().to_rfc3339()],
                )?;
                Ok(Handled::Applied)
            })
            .await
            .map_err(backend)
    }

    async fn deactivate_seller(
        &self,
        consumer: &str,
        event: &Envelope,
        user_id: &str,
        event_for: EventFor,
    ) -> Result<Handled, StoreError> {
        let (consumer, event, user_id) = (consumer.to_owned(), event.clone(), user_id.to_owned());
        let (handled, wrote) = self
            .db
            .write(move |tx| -> rusqlite::Result<(Handled, bool)> {
                let (consumer, user_id) = (consumer.as_str(), user_id.as_str());
                if !inbox::claim(tx, consumer, &event.meta.event_id)? {
                    return Ok((Handled::Duplicate, false));
                }
                let stored = read_seller(tx, user_id)?;
                let version = event
                    .meta
                    .aggregate_version
                    .map_or_else(|| stored.as_ref().map_or(0, |s| s.version), |v| i64::try_from(v).unwrap_or(i64::MAX));
                let now = Utc::now();
                // Deletion wins over any version: a deleted user stays deleted.
                tx.prepare_cached(
                    "INSERT INTO sellers (user_id, email, first_name, last_name, is_active, version, updated_at)
                     VALUES (?1, '', '', '', 0, ?2, ?3)
                     ON CONFLICT(user_id) DO UPDATE SET is_active = 0, version = MAX(version, excluded.version),
                        updated_at = excluded.updated_at",
                )?
                .execute(
                    params![user_id, version, now.to_rfc3339()],
                )?;
                let products: Vec<Product> = tx
                    .prepare_cached(&format!("SELECT {COLUMNS} FROM products WHERE user_id = ?1 AND is_active = 1"))?
                    .query_map([user_id], read_product)?
                    .collect::<rusqlite::Result<_>>()?;
                let wrote = !products.is_empty();
                for mut p in products {
                    p.is_active = false;
                    p.version += 1;
                    p.updated_at = now;
                    save(tx, &p)?;
                    append(tx, Topic::ProductEvents.name(), &event_for(&p), None)?;
                }
                Ok((Handled::Applied, wrote))
            })
            .await
            .map_err(backend)?;
        self.committed(wrote);
        Ok(handled)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())))
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use evilent_contracts::{Metadata, UserDeleted};

    use super::*;
    use crate::handlers::product_updated;
    use crate::store::conformance::product;

    /// A deletion changes a seller's products and appends their events in
    /// a round of the group commit, like every other write of the store,
    /// instead of taking the writer's connection while an async thread
    /// waits for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deactivating_a_seller_is_a_write_of_the_group_commit() {
        let db = SqliteDb::in_memory().expect("db");
        let store = SqliteProductStore::new(db.clone(), Arc::default()).expect("store");
        store
            .create(&product("a", "u1"), &[])
            .await
            .expect("create");
        let before = db.commits();
        let deleted = Envelope::new(UserDeleted {
            user_id: "u1".into(),
        });
        let cause = deleted.meta.clone();
        let event_for: EventFor = Arc::new(move |p: &Product| {
            product_updated(p, Metadata::new("product-service").follows(&cause))
        });
        let handled = store
            .deactivate_seller("c", &deleted, "u1", event_for)
            .await
            .expect("deactivate");
        assert_eq!(handled, Handled::Applied);
        assert_eq!(db.commits(), before + 1, "one commit of SqliteDb::write");
        let a = store.get("a").await.expect("get").expect("product a");
        assert!(!a.is_active);
        let events: i64 = db
            .read(|c| c.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)))
            .expect("outbox");
        assert_eq!(events, 1, "the product's ProductUpdated is in the outbox");
    }
}
