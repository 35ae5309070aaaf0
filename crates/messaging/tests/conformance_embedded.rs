//! The queue conformance suite on the embedded broker.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;

use evilent_broker::{Broker, SystemClock};
use evilent_messaging::EmbeddedBroker;
use evilent_messaging::conformance::Fixture;

async fn embedded() -> Option<Fixture> {
    let broker = Broker::in_memory(Arc::new(SystemClock)).expect("in-memory broker");
    let port = Arc::new(EmbeddedBroker::new(broker));
    Some(Fixture::new(port.clone(), port, "emb"))
}

evilent_messaging::queue_conformance!(embedded());
