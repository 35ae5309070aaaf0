//! The queue conformance suite on SQS + SNS, against moto
//! (`moto_server -H 127.0.0.1 -p 4566`, or `EVILENT_SQS_ENDPOINT`).
//! Skipped with a reason when moto is not running; required under `CI=true`.

use std::sync::Arc;
use std::time::Duration;

use evilent_aws::{SqsBroker, SqsConfig};
use evilent_messaging::conformance::{Fixture, skip};

/// The SQS endpoint of the tests.
pub fn endpoint() -> String {
    std::env::var("EVILENT_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

async fn moto() -> Option<Fixture> {
    let url = endpoint();
    let reachable = reqwest::Client::new()
        .get(format!("{url}/moto-api/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok();
    if !reachable {
        return skip(&format!(
            "no SQS endpoint at {url} (start moto: moto_server -H 127.0.0.1 -p 4566)"
        ));
    }
    let broker = Arc::new(
        SqsBroker::connect(&SqsConfig {
            endpoint: Some(url),
            region: None,
        })
        .await,
    );
    Some(Fixture::new(broker.clone(), broker, "moto"))
}

// What moto (5.x) does not do as SQS does; each is checked on the embedded
// broker, and docs/moto.md keeps the list.
evilent_messaging::queue_conformance!(moto(), except: {
    change_visibility_needs_a_message_in_flight =>
        "moto changes the visibility of a message whose lease ran out; SQS answers MessageNotInflight",
    fifo_duplicate_send_answers_with_the_original_id =>
        "moto answers a deduplicated send with a fresh MessageId; SQS returns the original's (the duplicate is still dropped)",
});
