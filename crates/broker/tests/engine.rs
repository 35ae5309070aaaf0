//! Broker behaviours that need a clock a test can move (windows measured in
//! minutes) or that only the embedded engine has (its own validation).

#![allow(clippy::unwrap_used)] // tests fail loudly

use std::sync::Arc;
use std::time::Duration;

use evilent_broker::{
    Broker, BrokerError, ManualClock, QueueAttributes, ReceiveRequest, RedrivePolicy, SendRequest,
};

const START: i64 = 1_760_000_000_000;

fn broker() -> (Broker, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START));
    (Broker::in_memory(clock.clone()).unwrap(), clock)
}

fn receive(b: &Broker, q: &str) -> Vec<evilent_broker::Message> {
    b.receive_now(q, &ReceiveRequest::up_to(10)).unwrap().0
}

#[test]
fn messages_past_retention_are_dropped() {
    let (b, clock) = broker();
    b.create_queue(
        "q",
        &QueueAttributes {
            retention_seconds: 60,
            ..QueueAttributes::default()
        },
    )
    .unwrap();
    b.send("q", &SendRequest::new("old")).unwrap();
    clock.advance(Duration::from_secs(30));
    b.send("q", &SendRequest::new("young")).unwrap();
    clock.advance(Duration::from_secs(31));
    assert_eq!(b.counts("q").unwrap().visible, 1);
    let got = receive(&b, "q");
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["young"]
    );
}

#[test]
fn deduplication_window_is_five_minutes() {
    let (b, clock) = broker();
    b.create_queue("q.fifo", &QueueAttributes::fifo()).unwrap();
    let msg = SendRequest::new("m").group("g").dedup("d1");
    let first = b.send("q.fifo", &msg).unwrap();
    clock.advance(Duration::from_secs(299));
    assert_eq!(
        b.send("q.fifo", &msg).unwrap().message_id,
        first.message_id,
        "inside the window"
    );
    clock.advance(Duration::from_secs(2));
    let later = b.send("q.fifo", &msg).unwrap();
    assert_ne!(
        later.message_id, first.message_id,
        "after 5 minutes the id is new again"
    );
    assert_eq!(b.counts("q.fifo").unwrap().visible, 2);
}

#[test]
fn visibility_and_delay_follow_the_clock_exactly() {
    let (b, clock) = broker();
    b.create_queue(
        "q",
        &QueueAttributes {
            visibility_timeout: 10,
            ..QueueAttributes::default()
        },
    )
    .unwrap();
    b.send("q", &SendRequest::new("m").delay(5)).unwrap();
    clock.advance(Duration::from_millis(4999));
    assert!(receive(&b, "q").is_empty());
    clock.advance(Duration::from_millis(1));
    assert_eq!(receive(&b, "q").len(), 1);
    clock.advance(Duration::from_millis(9999));
    assert!(receive(&b, "q").is_empty(), "still in flight");
    clock.advance(Duration::from_millis(1));
    let again = receive(&b, "q");
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].first_receive_timestamp, START + 5000);
}

#[test]
fn dead_letters_keep_their_id_and_a_stale_receipt_cannot_delete_them() {
    let (b, _clock) = broker();
    b.create_queue("dlq", &QueueAttributes::default()).unwrap();
    let redrive = RedrivePolicy {
        dead_letter_queue: "dlq".into(),
        max_receive_count: 1,
    };
    b.create_queue(
        "q",
        &QueueAttributes {
            redrive: Some(redrive),
            ..QueueAttributes::default()
        },
    )
    .unwrap();
    let sent = b.send("q", &SendRequest::new("m")).unwrap();
    let first = receive(&b, "q");
    b.change_visibility("q", &first[0].receipt_handle, 0)
        .unwrap();
    assert!(receive(&b, "q").is_empty());
    // The receipt from before the move belongs to the source queue.
    b.delete("q", &first[0].receipt_handle).unwrap();
    let dead = receive(&b, "dlq");
    assert_eq!(dead[0].message_id, sent.message_id);
    assert_eq!(
        dead[0].receive_count, 1,
        "the count starts again in the dead-letter queue"
    );
}

#[test]
fn queue_creation_is_idempotent_and_checked() {
    let (b, _clock) = broker();
    b.create_queue("q", &QueueAttributes::default()).unwrap();
    b.create_queue("q", &QueueAttributes::default()).unwrap();
    let other = QueueAttributes {
        visibility_timeout: 5,
        ..QueueAttributes::default()
    };
    assert!(matches!(
        b.create_queue("q", &other),
        Err(BrokerError::QueueAlreadyExists(_))
    ));
    assert!(
        b.create_queue("no.fifo", &QueueAttributes::default())
            .is_err(),
        ".fifo name needs a FIFO queue"
    );
    assert!(
        b.create_queue("fifo-without-suffix", &QueueAttributes::fifo())
            .is_err()
    );
    assert!(
        b.create_queue("bad name!", &QueueAttributes::default())
            .is_err()
    );
    let bad_redrive = RedrivePolicy {
        dead_letter_queue: "missing".into(),
        max_receive_count: 3,
    };
    assert!(
        b.create_queue(
            "r",
            &QueueAttributes {
                redrive: Some(bad_redrive),
                ..QueueAttributes::default()
            }
        )
        .is_err()
    );
    assert_eq!(b.list_queues().unwrap(), vec!["q".to_string()]);
}

#[test]
fn fifo_refuses_per_message_delay_and_standard_topic_refuses_fifo_queue() {
    let (b, _clock) = broker();
    b.create_queue("q.fifo", &QueueAttributes::fifo()).unwrap();
    let err = b
        .send(
            "q.fifo",
            &SendRequest::new("m").group("g").dedup("d").delay(1),
        )
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::InvalidParameterValue(_)),
        "{err}"
    );
    b.create_topic("t", false).unwrap();
    assert!(b.subscribe("t", "q.fifo", None).is_err());
    assert!(matches!(
        b.publish("missing", &SendRequest::new("m")),
        Err(BrokerError::TopicDoesNotExist(_))
    ));
}

#[test]
fn invalid_characters_and_attributes_are_refused_with_their_reason() {
    let (b, _clock) = broker();
    b.create_queue("q", &QueueAttributes::default()).unwrap();
    let err = b
        .send("q", &SendRequest::new("bad \u{1} char"))
        .unwrap_err();
    assert!(err.to_string().contains("U+0001"), "{err}");
    for (body, refused) in [
        ("\u{FFFE}", "U+FFFE"),
        ("x \u{FFFF}", "U+FFFF"),
        ("\u{1F}", "U+001F"),
    ] {
        let err = b.send("q", &SendRequest::new(body)).unwrap_err();
        assert!(err.to_string().contains(refused), "{err}");
    }
    // Tab, newlines and any other Unicode scalar value are allowed.
    b.send(
        "q",
        &SendRequest::new("a\tb\nc\rd é ☃ \u{FFFD} \u{EFFF} 😀"),
    )
    .unwrap();
    let err = b
        .send(
            "q",
            &SendRequest::new("m").attribute("n", evilent_broker::MessageAttribute::number("x")),
        )
        .unwrap_err();
    assert!(err.to_string().contains("not a number"), "{err}");
    let mut many = SendRequest::new("m");
    for i in 0..11 {
        many = many.attribute(
            &format!("a{i}"),
            evilent_broker::MessageAttribute::string("v"),
        );
    }
    assert!(b.send("q", &many).is_err());
}

#[test]
fn batch_entries_fail_alone() {
    let (b, _clock) = broker();
    b.create_queue("q", &QueueAttributes::default()).unwrap();
    let entries = vec![
        evilent_broker::BatchEntry {
            id: "ok".into(),
            entry: SendRequest::new("fine"),
        },
        evilent_broker::BatchEntry {
            id: "bad".into(),
            entry: SendRequest::new("bad \u{2}"),
        },
    ];
    let results = b.send_batch("q", &entries).unwrap();
    assert!(results[0].result.is_ok());
    assert!(matches!(
        results[1].result,
        Err(BrokerError::InvalidMessageContents(_))
    ));
    assert_eq!(b.counts("q").unwrap().visible, 1);
}
