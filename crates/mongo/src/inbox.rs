//! The inbox on MongoDB: an `inbox` document per `(consumer, eventId)`.

use mongodb::bson::{DateTime, doc};
use mongodb::{ClientSession, Database};
use uuid::Uuid;

/// Records that `consumer` applies `event_id`, in `session`'s transaction; `false` if it already had.
pub async fn claim(
    db: &Database,
    session: &mut ClientSession,
    consumer: &str,
    event_id: &Uuid,
) -> mongodb::error::Result<bool> {
    let inbox = db.collection::<mongodb::bson::Document>("inbox");
    let id = doc! { "consumer": consumer, "eventId": event_id.to_string() };
    if inbox
        .find_one(doc! { "_id": &id })
        .session(&mut *session)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    match inbox
        .insert_one(doc! { "_id": id, "processedAt": DateTime::now() })
        .session(&mut *session)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if crate::is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
