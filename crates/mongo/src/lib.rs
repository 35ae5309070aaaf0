//! # evilent-mongo — the outbox and the inbox on MongoDB
//!
//! - [`outbox::append`] inserts events in the caller's multi-document
//!   transaction (the session of the state change);
//! - [`outbox::MongoOutbox`] is the relay's view: it picks the oldest
//!   unpublished event of each aggregate and **claims** each with a
//!   conditional update (a lease), so several relays can run;
//! - [`inbox::claim`] records `(consumer, eventId)` in the handler's transaction;
//! - [`transaction!`] runs a block in a transaction and retries it on
//!   MongoDB's `TransientTransactionError`.
//!
//! Tested against SecantusDB (a MongoDB-wire server with transactions);
//! `docs/mongodb.md` lists where it differs from MongoDB.

pub mod inbox;
pub mod outbox;
pub mod testing;

use mongodb::Client;

/// Connects (`mongodb://…`; SecantusDB wants `?directConnection=true`).
pub async fn connect(url: &str) -> mongodb::error::Result<Client> {
    let mut options = mongodb::options::ClientOptions::parse(url).await?;
    options.app_name = Some("evilent".into());
    options.server_selection_timeout = Some(std::time::Duration::from_secs(5));
    Client::with_options(options)
}

/// Runs a block in a multi-document transaction and commits it; retries
/// the whole block (up to 5 times) when MongoDB labels an error transient.
/// The block sees the session as `$session` and evaluates to
/// `mongodb::error::Result<T>`; so does the macro.
///
/// ```ignore
/// let n = transaction!(client, |s| {
///     products.insert_one(doc).session(&mut *s).await?;
///     Ok(1)
/// })?;
/// ```
#[macro_export]
macro_rules! transaction {
    ($client:expr, |$session:ident| $body:block) => {
        async {
            let mut owned = $client.start_session().await?;
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                owned.start_transaction().await?;
                let result: ::mongodb::error::Result<_> = {
                    let $session = &mut owned;
                    async { $body }.await
                };
                let result = match result {
                    Ok(v) => owned.commit_transaction().await.map(|()| v),
                    Err(e) => {
                        let _ = owned.abort_transaction().await;
                        Err(e)
                    }
                };
                match result {
                    Err(e)
                        if e.contains_label(::mongodb::error::TRANSIENT_TRANSACTION_ERROR)
                            && attempt < 5 =>
                    {
                        ::tokio::time::sleep(::std::time::Duration::from_millis(5 << attempt))
                            .await;
                    }
                    other => break other,
                }
            }
        }
        .await
    };
}

/// Whether `e` is a duplicate-key error (a unique index said no).
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        ErrorKind::InsertMany(m) => m.write_errors.iter().flatten().any(|w| w.code == 11000),
        _ => e.to_string().contains("E11000"),
    }
}
