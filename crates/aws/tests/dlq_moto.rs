//! On moto: a message that always fails is in the DLQ after exactly 3
//! receives, and redrive returns it.

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use evilent_aws::{SqsBroker, SqsConfig};
use evilent_broker::{Message, QueueAttributes, RedrivePolicy, SendRequest};
use evilent_messaging::conformance::skip;
use evilent_messaging::{
    Consumer, ConsumerConfig, Handled, HandlerError, MessageHandler, QueuePort, dlq,
};

struct AlwaysFails(AtomicU32);

#[async_trait]
impl MessageHandler for AlwaysFails {
    async fn handle(&self, _: &Message) -> Result<Handled, HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err("always".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dlq_after_three_receives_and_redrive_returns_it() {
    let endpoint =
        std::env::var("EVILENT_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    if reqwest::Client::new()
        .get(format!("{endpoint}/moto-api/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_err()
    {
        skip(&format!("no SQS endpoint at {endpoint}"));
        return;
    }
    let sqs = Arc::new(
        SqsBroker::connect(&SqsConfig {
            endpoint: Some(endpoint),
            region: None,
        })
        .await,
    );
    let tag = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let (q, dead) = (format!("poison-{tag}"), format!("poison-{tag}-dlq"));
    sqs.create_queue(&dead, &QueueAttributes::default())
        .await
        .unwrap();
    let redrive = RedrivePolicy {
        dead_letter_queue: dead.clone(),
        max_receive_count: 3,
    };
    sqs.create_queue(
        &q,
        &QueueAttributes {
            redrive: Some(redrive),
            ..QueueAttributes::default()
        },
    )
    .await
    .unwrap();
    sqs.send(&q, &SendRequest::new("poison")).await.unwrap();

    let handler = Arc::new(AlwaysFails(AtomicU32::new(0)));
    let consumer = Consumer::new(
        "poison",
        sqs.clone(),
        q.clone(),
        handler.clone(),
        ConsumerConfig {
            retry_base_seconds: 0,
            ..ConsumerConfig::default()
        },
    );
    let started = Instant::now();
    while sqs.counts(&dead).await.unwrap().visible == 0 {
        consumer
            .step_with_wait(Duration::from_millis(200))
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never dead-lettered"
        );
    }
    assert_eq!(
        handler.0.load(Ordering::SeqCst),
        3,
        "handled exactly 3 times, then moved"
    );
    let listed = dlq::list(&*sqs, &q, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["poison"]
    );
    assert_eq!(dlq::redrive(&*sqs, &q, None).await.unwrap(), 1);
    assert_eq!(sqs.counts(&dead).await.unwrap().visible, 0);
    let back = sqs
        .receive(&q, &evilent_broker::ReceiveRequest::up_to(10))
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["poison"],
        "nothing lost"
    );
}
