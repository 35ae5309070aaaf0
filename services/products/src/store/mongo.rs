//! The product store on MongoDB: products, seller profiles, outbox and
//! inbox in one database; each write and its outbox entries in one
//! multi-document transaction; indexes created on start; duplicate keys → 409.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use evilent_contracts::{Envelope, Money, Topic};
use evilent_messaging::Handled;
use evilent_mongo::{inbox, outbox, transaction};
use futures_lite::StreamExt as _;
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use tokio::sync::Notify;

use super::{EventFor, ProductFilter, ProductStore, SellerDetails, StoreError};
use crate::domain::{Product, Seller};

/// [`ProductStore`] on MongoDB.
#[derive(Clone)]
pub struct MongoProductStore {
    client: Client,
    db: Database,
    outbox_waker: Arc<Notify>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn time(t: DateTime<Utc>) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(t.timestamp_millis())
}

fn chrono_time(t: &mongodb::bson::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or_default()
}

fn product_doc(p: &Product) -> Document {
    doc! {
        "_id": &p.id, "userId": &p.user_id, "name": &p.name,
        "description": p.description.as_ref().map_or(Bson::Null, |d| Bson::String(d.clone())),
        "priceMinor": p.price.minor(), "categoryId": &p.category_id, "stock": i64::from(p.stock),
        "isActive": p.is_active, "createdAt": time(p.created_at), "updatedAt": time(p.updated_at), "version": p.version,
    }
}

fn read_product(d: &Document) -> Result<Product, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(backend);
    let t = |k: &str| d.get_datetime(k).map(chrono_time).map_err(backend);
    Ok(Product {
        id: s("_id")?,
        user_id: s("userId")?,
        name: s("name")?,
        description: d.get_str("description").ok().map(str::to_owned),
        price: Money::from_minor(d.get_i64("priceMinor").map_err(backend)?),
        category_id: s("categoryId")?,
        stock: u32::try_from(d.get_i64("stock").map_err(backend)?).map_err(backend)?,
        is_active: d.get_bool("isActive").map_err(backend)?,
        created_at: t("createdAt")?,
        updated_at: t("updatedAt")?,
        version: d.get_i64("version").map_err(backend)?,
    })
}

fn read_seller(d: &Document) -> Result<Seller, StoreError> {
    let s = |k: &str| d.get_str(k).map(str::to_owned).map_err(backend);
    Ok(Seller {
        user_id: s("_id")?,
        email: s("email")?,
        first_name: s("firstName")?,
        last_name: s("lastName")?,
        is_active: d.get_bool("isActive").map_err(backend)?,
        version: d.get_i64("version").map_err(backend)?,
        updated_at: d
            .get_datetime("updatedAt")
            .map(chrono_time)
            .map_err(backend)?,
    })
}

fn version_of(event: &Envelope, stored: Option<&Seller>) -> i64 {
    event.meta.aggregate_version.map_or_else(
        || stored.map_or(0, |s| s.version),
        |v| i64::try_from(v).unwrap_or(i64::MAX),
    )
}

impl MongoProductStore {
    /// Connects to `url`, uses database `database`, creates the indexes.
    pub async fn connect(
        url: &str,
        database: &str,
        outbox_waker: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let client = evilent_mongo::connect(url).await.map_err(backend)?;
        let db = client.database(database);
        Self::new(client, db, outbox_waker).await
    }

    /// The store on `db`, after creating its indexes.
    pub async fn new(
        client: Client,
        db: Database,
        outbox_waker: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let products: Collection<Document> = db.collection("products");
        products
            .create_indexes([
                IndexModel::builder()
                    .keys(doc! { "userId": 1, "_id": 1 })
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "categoryId": 1, "_id": 1 })
                    .build(),
            ])
            .await
            .map_err(backend)?;
        outbox::create_indexes(&db).await.map_err(backend)?;
        Ok(MongoProductStore {
            client,
            db,
            outbox_waker,
        })
    }

    /// The database (for the outbox relay).
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn products(&self) -> Collection<Document> {
        self.db.collection("products")
    }

    fn sellers(&self) -> Collection<Document> {
        self.db.collection("sellers")
    }

    async fn append_all(
        &self,
        s: &mut ClientSession,
        events: &[Envelope],
    ) -> mongodb::error::Result<()> {
        for e in events {
            outbox::append(&self.db, s, Topic::ProductEvents.name(), e, None).await?;
        }
        Ok(())
    }

    async fn seller_in(
        &self,
        s: &mut ClientSession,
        user_id: &str,
    ) -> mongodb::error::Result<Option<Document>> {
        self.sellers()
            .find_one(doc! { "_id": user_id })
            .session(&mut *s)
            .await
    }
}

#[async_trait]
impl ProductStore for MongoProductStore {
    async fn create(&self, p: &Product, events: &[Envelope]) -> Result<(), StoreError> {
        let result = transaction!(self.client, |s| {
            self.products()
                .insert_one(product_doc(p))
                .session(&mut *s)
                .await?;
            self.append_all(s, events).await
        });
        match result {
            Ok(()) => {
                self.outbox_waker.notify_one();
                Ok(())
            }
            Err(e) if evilent_mongo::is_duplicate_key(&e) => {
                Err(StoreError::Conflict("the product exists".into()))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let d = self
            .products()
            .find_one(doc! { "_id": id })
            .await
            .map_err(backend)?;
        d.as_ref().map(read_product).transpose()
    }

    async fn list(&self, f: &ProductFilter) -> Result<(Vec<Product>, bool), StoreError> {
        let mut filter = Document::new();
        if let Some(u) = &f.user_id {
            filter.insert("userId", u);
        }
        if let Some(c) = &f.category_id {
            filter.insert("categoryId", c);
        }
        if let Some(a) = f.is_active {
            filter.insert("isActive", a);
        }
        if let Some(after) = &f.after {
            filter.insert("_id", doc! { "$gt": after });
        }
        let mut cursor = self
            .products()
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(f.limit) + 1)
            .await
            .map_err(backend)?;
        let mut items = Vec::new();
        while let Some(d) = cursor.next().await {
            items.push(read_product(&d.map_err(backend)?)?);
        }
        let more = items.len() > f.limit as usize;
        items.truncate(f.limit as usize);
        Ok((items, more))
    }

    async fn update(&self, p: &Product, events: &[Envelope]) -> Result<(), StoreError> {
        let saved = transaction!(self.client, |s| {
            let done = self
                .products()
                .replace_one(
                    doc! { "_id": &p.id, "version": p.version - 1 },
                    product_doc(p),
                )
                .session(&mut *s)
                .await?;
            if done.matched_count == 0 {
                return Ok(false);
            }
            self.append_all(s, events).await?;
            Ok(true)
        })
        .map_err(backend)?;
        if !saved {
            return Err(StoreError::Concurrent);
        }
        self.outbox_waker.notify_one();
        Ok(())
    }

    async fn delete(&self, p: &Product, events: &[Envelope]) -> Result<(), StoreError> {
        let deleted = transaction!(self.client, |s| {
            let done = self
                .products()
                .delete_one(doc! { "_id": &p.id, "version": p.version })
                .session(&mut *s)
                .await?;
            if done.deleted_count == 0 {
                return Ok(false);
            }
            self.append_all(s, events).await?;
            Ok(true)
        })
        .map_err(backend)?;
        if !deleted {
            return Err(StoreError::Concurrent);
        }
        self.outbox_waker.notify_one();
        Ok(())
    }

    async fn seller(&self, user_id: &str) -> Result<Option<Seller>, StoreError> {
        let d = self
            .sellers()
            .find_one(doc! { "_id": user_id })
            .await
            .map_err(backend)?;
        d.as_ref().map(read_seller).transpose()
    }

    async fn apply_seller(
        &self,
        consumer: &str,
        event: &Envelope,
        d: &SellerDetails,
    ) -> Result<Handled, StoreError> {
        transaction!(self.client, |s| {
            if !inbox::claim(&self.db, s, consumer, &event.meta.event_id).await? {
                return Ok(Handled::Duplicate);
            }
            let stored = self.seller_in(s, &d.user_id).await?.as_ref().and_then(|x| read_seller(x).ok());
            let stale = match (event.meta.aggregate_version, &stored) {
                (Some(v), Some(st)) => i64::try_from(v).unwrap_or(i64::MAX) <= st.version,
                _ => false,
            };
            if stale {
                // Fill in a tombstone's missing details; never change what is newer.
                let filled = self
                    .sellers()
                    .update_one(
                        doc! { "_id": &d.user_id, "email": "" },
                        doc! { "$set": { "email": &d.email, "firstName": &d.first_name, "lastName": &d.last_name } },
                    )
                    .session(&mut *s)
                    .await?;
                return Ok(if filled.modified_count == 1 {
                    Handled::Applied
                } else {
                    Handled::Ignored("an equal or newer version of the user was applied".into())
                });
            }
            let active = stored.as_ref().is_none_or(|st| st.is_active);
            self.sellers()
                .update_one(
                    doc! { "_id": &d.user_id },
                    doc! { "$set": { "email": &d.email, "firstName": &d.first_name, "lastName": &d.last_name,
                                     "isActive": active, "version": version_of(event, stored.as_ref()),
                                     "updatedAt": mongodb::bson::DateTime::now() } },
                )
                .upsert(true)
                .session(&mut *s)
                .await?;
            Ok(Handled::Applied)
        })
        .map_err(backend)
    }

    async fn deactivate_seller(
        &self,
        consumer: &str,
        event: &Envelope,
        user_id: &str,
        event_for: EventFor,
    ) -> Result<Handled, StoreError> {
        let (handled, wrote) = transaction!(self.client, |s| {
            if !inbox::claim(&self.db, s, consumer, &event.meta.event_id).await? {
                return Ok((Handled::Duplicate, false));
            }
            let stored = self.seller_in(s, user_id).await?.as_ref().and_then(|x| read_seller(x).ok());
            let version = version_of(event, stored.as_ref()).max(stored.as_ref().map_or(0, |st| st.version));
            let now = Utc::now();
            // Deletion wins over any version: a deleted user stays deleted.
            self.sellers()
                .update_one(
                    doc! { "_id": user_id },
                    doc! { "$set": { "isActive": false, "version": version, "updatedAt": time(now) },
                           "$setOnInsert": { "email": "", "firstName": "", "lastName": "" } },
                )
                .upsert(true)
                .session(&mut *s)
                .await?;
            let mut cursor = self
                .products()
                .find(doc! { "userId": user_id, "isActive": true })
                .session(&mut *s)
                .await?;
            let mut products = Vec::new();
            while let Some(d) = cursor.next(&mut *s).await {
                if let Ok(p) = read_product(&d?) {
                    products.push(p);
                }
            }
            let wrote = !products.is_empty();
            for mut p in products {
                p.is_active = false;
                p.version += 1;
                p.updated_at = now;
                self.products()
                    .replace_one(doc! { "_id": &p.id, "version": p.version - 1 }, product_doc(&p))
                    .session(&mut *s)
                    .await?;
                outbox::append(&self.db, s, Topic::ProductEvents.name(), &event_for(&p), None).await?;
            }
            Ok((Handled::Applied, wrote))
        })
        .map_err(backend)?;
        if wrote {
            self.outbox_waker.notify_one();
        }
        Ok(handled)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(backend)?;
        Ok(())
    }
}
