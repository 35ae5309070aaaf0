//! The queue port's conformance suite: one set of behaviour tests that every
//! backend must pass (the embedded broker, and SNS/SQS on moto or AWS).
//!
//! Each test is a plain `async fn(Fixture)`. A backend's test file turns all
//! of them into `#[tokio::test]`s with one macro call, giving a function that
//! builds a [`Fixture`] (or `None`, with a printed reason, when its server is
//! absent — which `CI=true` turns into a failure):
//!
//! ```ignore
//! async fn fixture() -> Option<Fixture> { let b = Arc::new(my_backend()); Some(Fixture::new(b.clone(), b, "t")) }
//! evilent_messaging::queue_conformance!(fixture());
//! ```
//!
//! A behaviour a backend's server cannot show (moto lacks a few) is named
//! with its reason: `queue_conformance!(fixture(), except: { test_name => "why" })`;
//! the test then prints the reason instead of passing silently.
//!
//! The behaviours are SQS's as documented and as moto shows them (DESIGN.md):
//! visibility timeouts, long polling, batches of ≤ 10 with per-entry
//! results, delays, counts, purge, size limit, redrive after
//! `maxReceiveCount`, FIFO order, group locking and deduplication, topic
//! fan-out and filters. Timing tests use 1–2 s timeouts, SQS's granularity.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use evilent_broker::{
    BatchEntry, BatchResult, MessageAttribute, QueueAttributes, ReceiveRequest, RedrivePolicy,
    SendOutcome, SendRequest,
};
use uuid::Uuid;

use crate::port::{Publisher, QueueError, QueuePort};

/// A backend under test and a unique name prefix for this test's queues.
pub struct Fixture {
    pub port: Arc<dyn QueuePort>,
    pub publisher: Arc<dyn Publisher>,
    prefix: String,
}

impl Fixture {
    /// `port` with names prefixed by `prefix` and a random suffix.
    pub fn new(port: Arc<dyn QueuePort>, publisher: Arc<dyn Publisher>, prefix: &str) -> Self {
        let unique = Uuid::now_v7().simple().to_string();
        Fixture {
            port,
            publisher,
            prefix: format!("{prefix}-{}", &unique[20..]),
        }
    }

    /// A unique name for `base` (FIFO names keep their `.fifo`).
    pub fn name(&self, base: &str) -> String {
        match base.strip_suffix(".fifo") {
            Some(b) => format!("{}-{b}.fifo", self.prefix),
            None => format!("{}-{base}", self.prefix),
        }
    }

    /// Creates a queue and returns its name.
    pub async fn queue(&self, base: &str, attributes: QueueAttributes) -> String {
        let name = self.name(base);
        self.port.create_queue(&name, &attributes).await.unwrap();
        name
    }

    /// A standard queue with the given visibility timeout.
    pub async fn standard(&self, base: &str, visibility: u32) -> String {
        self.queue(
            base,
            QueueAttributes {
                visibility_timeout: visibility,
                ..QueueAttributes::default()
            },
        )
        .await
    }

    /// A FIFO queue with the given visibility timeout.
    pub async fn fifo(&self, base: &str, visibility: u32) -> String {
        self.queue(
            base,
            QueueAttributes {
                visibility_timeout: visibility,
                ..QueueAttributes::fifo()
            },
        )
        .await
    }

    async fn receive(&self, queue: &str, n: u32) -> Vec<evilent_broker::Message> {
        self.port
            .receive(queue, &ReceiveRequest::up_to(n))
            .await
            .unwrap()
    }
}

/// Whether a backend that cannot run here must fail instead of skip (`CI=true`).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips (prints why) or, under `CI=true`, fails.
pub fn skip(reason: &str) -> Option<Fixture> {
    assert!(!required(), "CI=true requires this backend, but: {reason}");
    eprintln!("SKIPPED: {reason}");
    None
}

fn fifo_msg(body: &str, group: &str, dedup: &str) -> SendRequest {
    SendRequest::new(body).group(group).dedup(dedup)
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Generates one `#[tokio::test]` per conformance test for a backend.
#[macro_export]
macro_rules! queue_conformance {
    ($fixture:expr) => {
        $crate::queue_conformance!($fixture, except: {});
    };
    ($fixture:expr, except: { $($ex:ident => $reason:expr),* $(,)? }) => {
        $crate::queue_conformance!(@tests $fixture, [$((stringify!($ex), $reason)),*];
            send_receive_roundtrip, receive_on_empty_queue_returns_at_once, long_poll_returns_as_soon_as_a_message_arrives,
            long_poll_times_out_empty, received_message_is_hidden_until_its_visibility_timeout,
            per_call_visibility_timeout_overrides_the_queue, delete_removes_the_message,
            delete_with_garbage_receipt_is_rejected, delete_batch_reports_each_entry,
            change_visibility_to_zero_makes_it_visible, change_visibility_extends_the_lease,
            change_visibility_needs_a_message_in_flight, send_batch_reports_each_entry,
            send_batch_of_eleven_is_rejected, send_batch_with_repeated_ids_is_rejected,
            receive_returns_at_most_ten, per_message_delay_hides_the_message, queue_delay_applies_to_every_message,
            approximate_counts_track_visible_in_flight_and_delayed, purge_removes_every_message,
            oversized_message_is_rejected_and_large_one_accepted, message_attributes_roundtrip,
            empty_message_is_rejected, out_of_range_visibility_is_rejected, unknown_queue_is_an_error,
            dead_lettered_on_the_receive_after_max_receive_count, fifo_keeps_group_order,
            fifo_group_is_locked_while_a_message_is_in_flight, fifo_failed_head_holds_back_its_group,
            fifo_deduplicates_within_the_window, fifo_duplicate_send_answers_with_the_original_id,
            fifo_content_based_deduplication,
            fifo_requires_a_group_id, fifo_requires_a_dedup_id_or_content_based_dedup,
            fifo_dead_letters_the_head_and_releases_the_group,
            topic_fans_out_to_every_subscribed_queue, subscription_filter_admits_listed_event_types,
            fifo_topic_keeps_group_order, publish_batches_answers_each_batch_on_its_own);
    };
    (@tests $fixture:expr, $except:tt; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let except: &[(&str, &str)] = &$except;
                if let Some((_, reason)) = except.iter().find(|(n, _)| *n == stringify!($name)) {
                    eprintln!("NOT SHOWN ON THIS BACKEND: {}: {reason}", stringify!($name));
                    return;
                }
                let Some(fixture) = $fixture.await else { return };
                $crate::conformance::$name(fixture).await;
            }
        )*
    };
}

pub async fn send_receive_roundtrip(f: Fixture) {
    let q = f.standard("roundtrip", 30).await;
    let sent = f
        .port
        .send(&q, &SendRequest::new(r#"{"hello":"world"}"#))
        .await
        .unwrap();
    let got = f.receive(&q, 10).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.message_id, sent.message_id);
    assert_eq!(m.body, r#"{"hello":"world"}"#);
    assert_eq!(m.receive_count, 1);
    assert!(m.sent_timestamp > 0 && m.first_receive_timestamp >= m.sent_timestamp - 1000);
    assert!(!m.receipt_handle.is_empty());
}

pub async fn receive_on_empty_queue_returns_at_once(f: Fixture) {
    let q = f.standard("empty", 30).await;
    let start = Instant::now();
    assert!(f.receive(&q, 10).await.is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a receive without wait must not block"
    );
}

pub async fn long_poll_returns_as_soon_as_a_message_arrives(f: Fixture) {
    let q = f.standard("longpoll", 30).await;
    let port = f.port.clone();
    let q2 = q.clone();
    tokio::spawn(async move {
        sleep_ms(500).await;
        port.send(&q2, &SendRequest::new("late")).await.unwrap();
    });
    let start = Instant::now();
    let got = f
        .port
        .receive(&q, &ReceiveRequest::up_to(10).wait(Duration::from_secs(10)))
        .await
        .unwrap();
    let waited = start.elapsed();
    assert_eq!(got.len(), 1, "the long poll must return the message");
    assert!(
        waited >= Duration::from_millis(400),
        "returned before the send: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "did not return as soon as the message was sent: {waited:?}"
    );
}

pub async fn long_poll_times_out_empty(f: Fixture) {
    let q = f.standard("longpoll-empty", 30).await;
    let start = Instant::now();
    let got = f
        .port
        .receive(&q, &ReceiveRequest::up_to(10).wait(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "returned early: {:?}",
        start.elapsed()
    );
}

pub async fn received_message_is_hidden_until_its_visibility_timeout(f: Fixture) {
    let q = f.standard("hidden", 1).await;
    f.port.send(&q, &SendRequest::new("m")).await.unwrap();
    let first = f.receive(&q, 10).await;
    assert_eq!(first.len(), 1);
    assert!(
        f.receive(&q, 10).await.is_empty(),
        "in flight: must be hidden"
    );
    sleep_ms(1600).await;
    let again = f.receive(&q, 10).await;
    assert_eq!(again.len(), 1, "visible again after the timeout");
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(
        again[0].receipt_handle, first[0].receipt_handle,
        "each receive has its own receipt"
    );
}

pub async fn per_call_visibility_timeout_overrides_the_queue(f: Fixture) {
    let q = f.standard("percall", 30).await;
    f.port.send(&q, &SendRequest::new("m")).await.unwrap();
    assert_eq!(
        f.port
            .receive(&q, &ReceiveRequest::up_to(1).visibility(1))
            .await
            .unwrap()
            .len(),
        1
    );
    sleep_ms(1600).await;
    assert_eq!(
        f.receive(&q, 1).await.len(),
        1,
        "the per-call timeout (1 s) applies, not the queue's (30 s)"
    );
}

pub async fn delete_removes_the_message(f: Fixture) {
    let q = f.standard("delete", 1).await;
    f.port.send(&q, &SendRequest::new("m")).await.unwrap();
    let got = f.receive(&q, 1).await;
    f.port.delete(&q, &got[0].receipt_handle).await.unwrap();
    sleep_ms(1600).await;
    assert!(
        f.receive(&q, 10).await.is_empty(),
        "a deleted message never comes back"
    );
    let counts = f.port.counts(&q).await.unwrap();
    assert_eq!(
        (counts.visible, counts.in_flight, counts.delayed),
        (0, 0, 0)
    );
}

pub async fn delete_with_garbage_receipt_is_rejected(f: Fixture) {
    let q = f.standard("garbage", 30).await;
    let err = f.port.delete(&q, "not-a-receipt").await.unwrap_err();
    assert!(
        matches!(err, QueueError::ReceiptHandleIsInvalid(_)),
        "{err}"
    );
}

pub async fn delete_batch_reports_each_entry(f: Fixture) {
    let q = f.standard("delete-batch", 30).await;
    f.port.send(&q, &SendRequest::new("a")).await.unwrap();
    let got = f.receive(&q, 1).await;
    let results = f
        .port
        .delete_batch(
            &q,
            &[
                BatchEntry {
                    id: "good".into(),
                    entry: got[0].receipt_handle.clone(),
                },
                BatchEntry {
                    id: "bad".into(),
                    entry: "garbage".into(),
                },
            ],
        )
        .await
        .unwrap();
    let by_id = |id: &str| results.iter().find(|r| r.id == id).unwrap();
    assert!(by_id("good").result.is_ok());
    assert!(by_id("bad").result.is_err());
    assert_eq!(
        f.port.counts(&q).await.unwrap().in_flight,
        0,
        "the good entry was deleted"
    );
}

pub async fn change_visibility_to_zero_makes_it_visible(f: Fixture) {
    let q = f.standard("vis-zero", 30).await;
    f.port.send(&q, &SendRequest::new("m")).await.unwrap();
    let got = f.receive(&q, 1).await;
    f.port
        .change_visibility(&q, &got[0].receipt_handle, 0)
        .await
        .unwrap();
    let again = f.receive(&q, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

pub async fn change_visibility_extends_the_lease(f: Fixture) {
    let q = f.standard("vis-extend", 1).await;
    f.port.send(&q, &SendRequest::new("m")).await.unwrap();
    let got = f.receive(&q, 1).await;
    f.port
        .change_visibility(&q, &got[0].receipt_handle, 4)
        .await
        .unwrap();
    sleep_ms(1600).await;
    assert!(
        f.receive(&q, 1).await.is_empty(),
        "the extended lease still holds"
    );
}

pub async fn change_visibility_needs_a_message_in_flight(f: Fixture) {
    let q = f.standard("vis-not-inflight", 1).await;
    f.port.send(&q, &SendRequest::new("m")).await.unwrap();
    let got = f.receive(&q, 1).await;
    sleep_ms(1600).await;
    let err = f
        .port
        .change_visibility(&q, &got[0].receipt_handle, 10)
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::MessageNotInflight), "{err}");
}

pub async fn send_batch_reports_each_entry(f: Fixture) {
    let q = f.standard("send-batch", 30).await;
    let entries: Vec<_> = (0..10)
        .map(|i| BatchEntry {
            id: format!("e{i}"),
            entry: SendRequest::new(format!("m{i}")),
        })
        .collect();
    let results = f.port.send_batch(&q, &entries).await.unwrap();
    assert_eq!(results.len(), 10);
    let mut ids: Vec<String> = results
        .iter()
        .map(|r| r.result.as_ref().unwrap().message_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "every entry has its own message id");
    for e in &entries {
        assert!(
            results.iter().any(|r| r.id == e.id),
            "no result for entry {}",
            e.id
        );
    }
    assert_eq!(f.port.counts(&q).await.unwrap().visible, 10);
}

pub async fn send_batch_of_eleven_is_rejected(f: Fixture) {
    let q = f.standard("batch-11", 30).await;
    let entries: Vec<_> = (0..11)
        .map(|i| BatchEntry {
            id: format!("e{i}"),
            entry: SendRequest::new("m"),
        })
        .collect();
    let err = f.port.send_batch(&q, &entries).await.unwrap_err();
    assert!(
        matches!(err, QueueError::TooManyEntriesInBatchRequest(_)),
        "{err}"
    );
    assert_eq!(
        f.port.counts(&q).await.unwrap().visible,
        0,
        "nothing of a rejected batch is sent"
    );
}

pub async fn send_batch_with_repeated_ids_is_rejected(f: Fixture) {
    let q = f.standard("batch-dup-ids", 30).await;
    let entries: Vec<_> = (0..2)
        .map(|_| BatchEntry {
            id: "same".into(),
            entry: SendRequest::new("m"),
        })
        .collect();
    let err = f.port.send_batch(&q, &entries).await.unwrap_err();
    assert!(
        matches!(err, QueueError::BatchEntryIdsNotDistinct(_)),
        "{err}"
    );
}

pub async fn receive_returns_at_most_ten(f: Fixture) {
    let q = f.standard("max-ten", 30).await;
    for round in 0..2 {
        let entries: Vec<_> = (0..8)
            .map(|i| BatchEntry {
                id: format!("e{i}"),
                entry: SendRequest::new(format!("{round}-{i}")),
            })
            .collect();
        f.port.send_batch(&q, &entries).await.unwrap();
    }
    let mut total = 0;
    loop {
        let got = f.receive(&q, 10).await;
        assert!(got.len() <= 10);
        if got.is_empty() {
            break;
        }
        total += got.len();
    }
    assert_eq!(total, 16);
    let err = f
        .port
        .receive(&q, &ReceiveRequest::up_to(11))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameterValue(_)), "{err}");
}

pub async fn per_message_delay_hides_the_message(f: Fixture) {
    let q = f.standard("delay-msg", 30).await;
    f.port
        .send(&q, &SendRequest::new("later").delay(2))
        .await
        .unwrap();
    f.port.send(&q, &SendRequest::new("now")).await.unwrap();
    let got = f.receive(&q, 10).await;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["now"]
    );
    assert_eq!(f.port.counts(&q).await.unwrap().delayed, 1);
    sleep_ms(2500).await;
    let got = f.receive(&q, 10).await;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["later"]
    );
}

pub async fn queue_delay_applies_to_every_message(f: Fixture) {
    let q = f
        .queue(
            "delay-queue",
            QueueAttributes {
                delay_seconds: 1,
                ..QueueAttributes::default()
            },
        )
        .await;
    f.port.send(&q, &SendRequest::new("m")).await.unwrap();
    assert!(f.receive(&q, 10).await.is_empty(), "delayed by the queue");
    sleep_ms(1600).await;
    assert_eq!(f.receive(&q, 10).await.len(), 1);
}

pub async fn approximate_counts_track_visible_in_flight_and_delayed(f: Fixture) {
    let q = f.standard("counts", 30).await;
    f.port.send(&q, &SendRequest::new("a")).await.unwrap();
    f.port.send(&q, &SendRequest::new("b")).await.unwrap();
    f.port
        .send(&q, &SendRequest::new("c").delay(60))
        .await
        .unwrap();
    assert_eq!(f.receive(&q, 1).await.len(), 1);
    let c = f.port.counts(&q).await.unwrap();
    assert_eq!((c.visible, c.in_flight, c.delayed), (1, 1, 1));
}

pub async fn purge_removes_every_message(f: Fixture) {
    let q = f.standard("purge", 30).await;
    for i in 0..5 {
        f.port
            .send(&q, &SendRequest::new(format!("m{i}")))
            .await
            .unwrap();
    }
    f.port.purge(&q).await.unwrap();
    assert!(f.receive(&q, 10).await.is_empty());
    assert_eq!(f.port.counts(&q).await.unwrap().visible, 0);
}

pub async fn oversized_message_is_rejected_and_large_one_accepted(f: Fixture) {
    let q = f.standard("size", 30).await;
    let too_big = "x".repeat(evilent_broker::limits::MAX_MESSAGE_SIZE as usize + 1);
    let err = f
        .port
        .send(&q, &SendRequest::new(too_big))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            QueueError::MessageTooLong { .. } | QueueError::InvalidParameterValue(_)
        ),
        "{err}"
    );
    let large = "y".repeat(200 * 1024);
    f.port
        .send(&q, &SendRequest::new(large.clone()))
        .await
        .unwrap();
    assert_eq!(f.receive(&q, 1).await[0].body, large);
}

pub async fn message_attributes_roundtrip(f: Fixture) {
    let q = f.standard("attrs", 30).await;
    let req = SendRequest::new("m")
        .attribute("eventType", MessageAttribute::string("UserCreated"))
        .attribute(
            "traceparent",
            MessageAttribute::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        )
        .attribute("attempt", MessageAttribute::number(3));
    f.port.send(&q, &req).await.unwrap();
    let got = f.receive(&q, 1).await;
    assert_eq!(got[0].attributes, req.attributes);
}

pub async fn empty_message_is_rejected(f: Fixture) {
    let q = f.standard("empty-body", 30).await;
    assert!(f.port.send(&q, &SendRequest::new("")).await.is_err());
}

pub async fn out_of_range_visibility_is_rejected(f: Fixture) {
    let q = f.standard("vis-range", 30).await;
    let err = f
        .port
        .receive(&q, &ReceiveRequest::up_to(1).visibility(43_201))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameterValue(_)), "{err}");
}

pub async fn unknown_queue_is_an_error(f: Fixture) {
    let err = f
        .port
        .send(&f.name("never-created"), &SendRequest::new("m"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::QueueDoesNotExist(_)), "{err}");
}

pub async fn dead_lettered_on_the_receive_after_max_receive_count(f: Fixture) {
    let dlq = f.standard("poison-dlq", 30).await;
    let q = f
        .queue(
            "poison",
            QueueAttributes {
                redrive: Some(RedrivePolicy {
                    dead_letter_queue: dlq.clone(),
                    max_receive_count: 3,
                }),
                ..QueueAttributes::default()
            },
        )
        .await;
    let req =
        SendRequest::new("poison").attribute("eventType", MessageAttribute::string("UserCreated"));
    let sent = f.port.send(&q, &req).await.unwrap();
    for n in 1..=3 {
        let got = f.receive(&q, 1).await;
        assert_eq!(got.len(), 1, "receive {n} must deliver it");
        assert_eq!(got[0].receive_count, n);
        f.port
            .change_visibility(&q, &got[0].receipt_handle, 0)
            .await
            .unwrap();
    }
    assert!(
        f.receive(&q, 1).await.is_empty(),
        "the 4th receive moves it instead of delivering it"
    );
    let dead = f.receive(&dlq, 10).await;
    assert_eq!(dead.len(), 1, "it is in the dead-letter queue");
    assert_eq!(dead[0].message_id, sent.message_id);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].attributes, req.attributes);
}

pub async fn fifo_keeps_group_order(f: Fixture) {
    let q = f.fifo("order.fifo", 30).await;
    for i in 0..6 {
        let group = if i % 2 == 0 { "a" } else { "b" };
        f.port
            .send(
                &q,
                &fifo_msg(&format!("{group}{i}"), group, &format!("d{i}")),
            )
            .await
            .unwrap();
    }
    let mut seen: Vec<String> = Vec::new();
    loop {
        let got = f.receive(&q, 10).await;
        if got.is_empty() {
            break;
        }
        for m in got {
            f.port.delete(&q, &m.receipt_handle).await.unwrap();
            seen.push(m.body);
        }
    }
    let a: Vec<_> = seen
        .iter()
        .filter(|b| b.starts_with('a'))
        .cloned()
        .collect();
    let b: Vec<_> = seen
        .iter()
        .filter(|b| b.starts_with('b'))
        .cloned()
        .collect();
    assert_eq!(a, vec!["a0", "a2", "a4"]);
    assert_eq!(b, vec!["b1", "b3", "b5"]);
}

pub async fn fifo_group_is_locked_while_a_message_is_in_flight(f: Fixture) {
    let q = f.fifo("locked.fifo", 30).await;
    f.port.send(&q, &fifo_msg("a1", "a", "1")).await.unwrap();
    f.port.send(&q, &fifo_msg("a2", "a", "2")).await.unwrap();
    f.port.send(&q, &fifo_msg("b1", "b", "3")).await.unwrap();
    let first = f.receive(&q, 1).await;
    assert_eq!(first[0].body, "a1");
    let next = f.receive(&q, 10).await;
    assert_eq!(
        next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["b1"],
        "group a is locked"
    );
    f.port.delete(&q, &first[0].receipt_handle).await.unwrap();
    let after = f.receive(&q, 10).await;
    assert_eq!(
        after.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["a2"]
    );
}

pub async fn fifo_failed_head_holds_back_its_group(f: Fixture) {
    let q = f.fifo("head.fifo", 30).await;
    f.port.send(&q, &fifo_msg("a1", "a", "1")).await.unwrap();
    f.port.send(&q, &fifo_msg("a2", "a", "2")).await.unwrap();
    let first = f.receive(&q, 1).await;
    f.port
        .change_visibility(&q, &first[0].receipt_handle, 0)
        .await
        .unwrap();
    let again = f.receive(&q, 1).await;
    assert_eq!(
        again[0].body, "a1",
        "a failed head is delivered again before the rest of its group"
    );
    assert_eq!(again[0].receive_count, 2);
}

pub async fn fifo_deduplicates_within_the_window(f: Fixture) {
    let q = f.fifo("dedup.fifo", 30).await;
    f.port.send(&q, &fifo_msg("m", "g", "same")).await.unwrap();
    f.port
        .send(&q, &fifo_msg("m-again", "g", "same"))
        .await
        .unwrap();
    let got = f.receive(&q, 10).await;
    assert_eq!(got.len(), 1, "the second send was a duplicate");
    assert_eq!(got[0].body, "m");
}

pub async fn fifo_duplicate_send_answers_with_the_original_id(f: Fixture) {
    let q = f.fifo("dedup-id.fifo", 30).await;
    let first = f.port.send(&q, &fifo_msg("m", "g", "same")).await.unwrap();
    let second = f.port.send(&q, &fifo_msg("m", "g", "same")).await.unwrap();
    assert_eq!(
        first.message_id, second.message_id,
        "a duplicate send answers with the original's id"
    );
}

pub async fn fifo_content_based_deduplication(f: Fixture) {
    let q = f
        .queue(
            "content.fifo",
            QueueAttributes {
                content_based_deduplication: true,
                ..QueueAttributes::fifo()
            },
        )
        .await;
    f.port
        .send(&q, &SendRequest::new("same body").group("g"))
        .await
        .unwrap();
    f.port
        .send(&q, &SendRequest::new("same body").group("g"))
        .await
        .unwrap();
    f.port
        .send(&q, &SendRequest::new("other body").group("g"))
        .await
        .unwrap();
    let got = f.receive(&q, 10).await;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["same body", "other body"]
    );
}

pub async fn fifo_requires_a_group_id(f: Fixture) {
    let q = f.fifo("nogroup.fifo", 30).await;
    let err = f
        .port
        .send(&q, &SendRequest::new("m").dedup("d"))
        .await
        .unwrap_err();
    assert!(err.sender_fault(), "{err}");
}

pub async fn fifo_requires_a_dedup_id_or_content_based_dedup(f: Fixture) {
    let q = f.fifo("nodedup.fifo", 30).await;
    let err = f
        .port
        .send(&q, &SendRequest::new("m").group("g"))
        .await
        .unwrap_err();
    assert!(err.sender_fault(), "{err}");
}

pub async fn fifo_dead_letters_the_head_and_releases_the_group(f: Fixture) {
    let dlq = f.fifo("fifo-dlq.fifo", 30).await;
    let q = f
        .queue(
            "fifo-poison.fifo",
            QueueAttributes {
                redrive: Some(RedrivePolicy {
                    dead_letter_queue: dlq.clone(),
                    max_receive_count: 1,
                }),
                ..QueueAttributes::fifo()
            },
        )
        .await;
    f.port.send(&q, &fifo_msg("bad", "g", "1")).await.unwrap();
    f.port.send(&q, &fifo_msg("good", "g", "2")).await.unwrap();
    let first = f.receive(&q, 1).await;
    assert_eq!(first[0].body, "bad");
    f.port
        .change_visibility(&q, &first[0].receipt_handle, 0)
        .await
        .unwrap();
    let next = f.receive(&q, 1).await;
    assert_eq!(
        next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["good"],
        "the head moved away"
    );
    assert_eq!(f.receive(&dlq, 10).await[0].body, "bad");
}

pub async fn topic_fans_out_to_every_subscribed_queue(f: Fixture) {
    let topic = f.name("fanout-topic");
    f.port.create_topic(&topic, false).await.unwrap();
    let a = f.standard("fan-a", 30).await;
    let b = f.standard("fan-b", 30).await;
    f.port.subscribe(&topic, &a, None).await.unwrap();
    f.port.subscribe(&topic, &b, None).await.unwrap();
    let publisher = f.publisher.clone();
    let entry = BatchEntry {
        id: "1".into(),
        entry: SendRequest::new(r#"{"eventType":"UserCreated"}"#)
            .attribute("eventType", MessageAttribute::string("UserCreated")),
    };
    let results = publisher.publish_batch(&topic, &[entry]).await.unwrap();
    assert!(results[0].result.is_ok());
    for q in [&a, &b] {
        let got = f
            .port
            .receive(q, &ReceiveRequest::up_to(10).wait(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "queue {q} got the message");
        assert_eq!(
            got[0].body, r#"{"eventType":"UserCreated"}"#,
            "raw delivery: the body is the message"
        );
        assert_eq!(got[0].attributes["eventType"].value, "UserCreated");
    }
}

pub async fn subscription_filter_admits_listed_event_types(f: Fixture) {
    let topic = f.name("filter-topic");
    f.port.create_topic(&topic, false).await.unwrap();
    let q = f.standard("filtered", 30).await;
    f.port
        .subscribe(&topic, &q, Some(&["ProductCreated"]))
        .await
        .unwrap();
    let publisher = f.publisher.clone();
    let entries: Vec<_> = ["ProductCreated", "ProductUpdated", "ProductCreated"]
        .iter()
        .enumerate()
        .map(|(i, t)| BatchEntry {
            id: i.to_string(),
            entry: SendRequest::new(format!("{t}-{i}"))
                .attribute("eventType", MessageAttribute::string(*t)),
        })
        .collect();
    publisher.publish_batch(&topic, &entries).await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let got = f
            .port
            .receive(&q, &ReceiveRequest::up_to(10).wait(Duration::from_secs(1)))
            .await
            .unwrap();
        bodies.extend(got.into_iter().map(|m| m.body));
    }
    bodies.sort();
    assert_eq!(bodies, vec!["ProductCreated-0", "ProductCreated-2"]);
}

pub async fn fifo_topic_keeps_group_order(f: Fixture) {
    let topic = f.name("ordered-topic.fifo");
    f.port.create_topic(&topic, true).await.unwrap();
    let q = f.fifo("ordered-sub.fifo", 30).await;
    f.port.subscribe(&topic, &q, None).await.unwrap();
    let publisher = f.publisher.clone();
    let entries: Vec<_> = (0..5)
        .map(|i| BatchEntry {
            id: i.to_string(),
            entry: fifo_msg(&format!("v{i}"), "agg-1", &format!("e{i}")),
        })
        .collect();
    publisher.publish_batch(&topic, &entries).await.unwrap();
    // Publishing the same event id again is deduplicated by the topic.
    publisher
        .publish_batch(&topic, &entries[..1])
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let got = f
            .port
            .receive(&q, &ReceiveRequest::up_to(10).wait(Duration::from_secs(1)))
            .await
            .unwrap();
        if got.is_empty() && seen.len() == 5 {
            break;
        }
        for m in got {
            f.port.delete(&q, &m.receipt_handle).await.unwrap();
            seen.push(m.body);
        }
    }
    assert_eq!(seen, vec!["v0", "v1", "v2", "v3", "v4"]);
}

pub async fn publish_batches_answers_each_batch_on_its_own(f: Fixture) {
    let topic = f.name("batches-topic");
    f.port.create_topic(&topic, false).await.unwrap();
    let q = f.standard("batches", 30).await;
    f.port.subscribe(&topic, &q, None).await.unwrap();
    let missing = f.name("no-such-topic");
    let batch = |from: usize, n: usize| -> Vec<BatchEntry<SendRequest>> {
        (from..from + n)
            .map(|i| BatchEntry {
                id: i.to_string(),
                entry: SendRequest::new(format!("m{i}")),
            })
            .collect()
    };
    let (first, lost, last) = (batch(0, 10), batch(10, 1), batch(11, 3));
    let results = f
        .publisher
        .publish_batches(&[(&topic, &first), (&missing, &lost), (&topic, &last)])
        .await;
    assert_eq!(results.len(), 3, "one result per batch");
    let ok = |r: &Result<Vec<BatchResult<SendOutcome>>, QueueError>| {
        r.as_ref()
            .map(|entries| entries.iter().filter(|e| e.result.is_ok()).count())
            .ok()
    };
    assert_eq!(ok(&results[0]), Some(10));
    assert!(
        results[1].is_err(),
        "a batch to a topic that does not exist fails: {:?}",
        results[1].as_ref().map(Vec::len)
    );
    assert_eq!(ok(&results[2]), Some(3), "and takes no other batch with it");
    let mut bodies = Vec::new();
    for _ in 0..10 {
        for m in f.receive(&q, 10).await {
            f.port.delete(&q, &m.receipt_handle).await.unwrap();
            bodies.push(m.body);
        }
        if bodies.len() == 13 {
            break;
        }
    }
    bodies.sort_by_key(|b| b[1..].parse::<usize>().unwrap_or(usize::MAX));
    let expected: Vec<String> = (0..10).chain(11..14).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected);
}
