//! The vocabulary of SQS and SNS: requests, messages, attributes, limits and
//! the error codes SQS answers with.
//!
//! These types are the language of the queue port (`evilent-messaging`
//! re-exports them): the embedded broker speaks them natively and the
//! SNS/SQS adapter translates them to the AWS SDK. They live here because the
//! embedded broker is the reference implementation of their semantics.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// SQS's limits, as documented by AWS.
pub mod limits {
    /// Largest message: body plus attribute names, types and values (1 MiB since 2025).
    pub const MAX_MESSAGE_SIZE: u32 = 1_048_576;
    /// Entries per batch call and messages per receive.
    pub const MAX_BATCH: usize = 10;
    /// Longest long poll.
    pub const MAX_WAIT_SECONDS: u32 = 20;
    /// Longest visibility timeout (12 h).
    pub const MAX_VISIBILITY_TIMEOUT: u32 = 43_200;
    /// Longest delay (15 min).
    pub const MAX_DELAY_SECONDS: u32 = 900;
    /// Retention bounds (1 min .. 14 days).
    pub const MIN_RETENTION: u32 = 60;
    pub const MAX_RETENTION: u32 = 1_209_600;
    /// FIFO deduplication window.
    pub const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
    /// Message attributes per message.
    pub const MAX_ATTRIBUTES: usize = 10;
}

/// A queue's redrive policy: after `max_receive_count` receives without a
/// delete, the next receive moves the message to `dead_letter_queue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivePolicy {
    pub dead_letter_queue: String,
    pub max_receive_count: u32,
}

/// A queue's attributes; [`Default`] gives SQS's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAttributes {
    pub fifo: bool,
    pub visibility_timeout: u32,
    pub delay_seconds: u32,
    pub retention_seconds: u32,
    pub max_message_size: u32,
    pub receive_wait_seconds: u32,
    pub content_based_deduplication: bool,
    pub redrive: Option<RedrivePolicy>,
}

impl Default for QueueAttributes {
    fn default() -> Self {
        QueueAttributes {
            fifo: false,
            visibility_timeout: 30,
            delay_seconds: 0,
            retention_seconds: 345_600,
            max_message_size: limits::MAX_MESSAGE_SIZE,
            receive_wait_seconds: 0,
            content_based_deduplication: false,
            redrive: None,
        }
    }
}

impl QueueAttributes {
    /// A FIFO queue with SQS's defaults.
    pub fn fifo() -> Self {
        QueueAttributes {
            fifo: true,
            ..Self::default()
        }
    }

    /// Checks every attribute against SQS's bounds.
    pub fn validate(&self, name: &str) -> Result<(), BrokerError> {
        validate_queue_name(name, self.fifo)?;
        let range = |what: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(BrokerError::InvalidAttributeValue(format!(
                    "{what} must be {lo}..={hi}, got {v}"
                )))
            }
        };
        range(
            "VisibilityTimeout",
            self.visibility_timeout,
            0,
            limits::MAX_VISIBILITY_TIMEOUT,
        )?;
        range(
            "DelaySeconds",
            self.delay_seconds,
            0,
            limits::MAX_DELAY_SECONDS,
        )?;
        range(
            "MessageRetentionPeriod",
            self.retention_seconds,
            limits::MIN_RETENTION,
            limits::MAX_RETENTION,
        )?;
        range(
            "MaximumMessageSize",
            self.max_message_size,
            1024,
            limits::MAX_MESSAGE_SIZE,
        )?;
        range(
            "ReceiveMessageWaitTimeSeconds",
            self.receive_wait_seconds,
            0,
            limits::MAX_WAIT_SECONDS,
        )?;
        if let Some(r) = &self.redrive {
            range("maxReceiveCount", r.max_receive_count, 1, 1000)?;
        }
        if self.content_based_deduplication && !self.fifo {
            return Err(BrokerError::InvalidAttributeName(
                "ContentBasedDeduplication is only for FIFO queues".into(),
            ));
        }
        Ok(())
    }
}

fn validate_queue_name(name: &str, fifo: bool) -> Result<(), BrokerError> {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let ok = !base.is_empty()
        && name.len() <= 80
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(BrokerError::InvalidParameterValue(format!(
            "queue and topic names are 1-80 characters of letters, digits, '-' and '_' (plus '.fifo'): {name:?}"
        )));
    }
    if fifo != name.ends_with(".fifo") {
        return Err(BrokerError::InvalidParameterValue(format!(
            "a FIFO queue's or topic's name ends with \".fifo\", and only a FIFO one's: {name:?}"
        )));
    }
    Ok(())
}

/// Checks a topic name (same rules as queue names).
pub fn validate_topic_name(name: &str, fifo: bool) -> Result<(), BrokerError> {
    validate_queue_name(name, fifo)
}

/// A message attribute: `DataType` is `String`, `Number` or `Binary`
/// (optionally with a custom suffix, `Number.int`); binary values travel base64-encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttribute {
    pub data_type: String,
    pub value: String,
}

impl MessageAttribute {
    /// A `String` attribute.
    pub fn string(value: impl Into<String>) -> Self {
        MessageAttribute {
            data_type: "String".into(),
            value: value.into(),
        }
    }

    /// A `Number` attribute.
    pub fn number(value: impl ToString) -> Self {
        MessageAttribute {
            data_type: "Number".into(),
            value: value.to_string(),
        }
    }
}

/// Attributes by name.
pub type Attributes = BTreeMap<String, MessageAttribute>;

/// One message to send (or publish).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendRequest {
    pub body: String,
    pub attributes: Attributes,
    /// Per-message delay (standard queues only); `None` takes the queue's.
    pub delay_seconds: Option<u32>,
    /// FIFO message group (required on FIFO queues).
    pub group_id: Option<String>,
    /// FIFO deduplication id (required unless content-based deduplication is on).
    pub deduplication_id: Option<String>,
}

impl SendRequest {
    /// A message with just a body.
    pub fn new(body: impl Into<String>) -> Self {
        SendRequest {
            body: body.into(),
            ..Self::default()
        }
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attribute(mut self, name: &str, value: MessageAttribute) -> Self {
        self.attributes.insert(name.to_owned(), value);
        self
    }

    /// Sets the FIFO group.
    #[must_use]
    pub fn group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets the deduplication id.
    #[must_use]
    pub fn dedup(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }

    /// Sets a per-message delay.
    #[must_use]
    pub fn delay(mut self, seconds: u32) -> Self {
        self.delay_seconds = Some(seconds);
        self
    }

    /// Body plus attribute names, types and values: what SQS's size limit counts.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.data_type.len() + v.value.len())
                .sum::<usize>()
    }
}

/// One entry of a batch call; `id` is the caller's, unique within the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEntry<T> {
    pub id: String,
    pub entry: T,
}

/// What a successful send returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    pub message_id: String,
    /// FIFO only.
    pub sequence_number: Option<String>,
}

/// Per-entry result of a batch call.
#[derive(Debug)]
pub struct BatchResult<T> {
    pub id: String,
    pub result: Result<T, BrokerError>,
}

/// How to receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// 1..=10.
    pub max_messages: u32,
    /// Overrides the queue's visibility timeout for these messages.
    pub visibility_timeout: Option<u32>,
    /// Long poll up to this long (0..=20 s); `None` takes the queue's setting.
    pub wait: Option<Duration>,
}

impl Default for ReceiveRequest {
    fn default() -> Self {
        ReceiveRequest {
            max_messages: 10,
            visibility_timeout: None,
            wait: Some(Duration::ZERO),
        }
    }
}

impl ReceiveRequest {
    /// Up to `n` messages, no waiting.
    pub fn up_to(n: u32) -> Self {
        ReceiveRequest {
            max_messages: n,
            ..Self::default()
        }
    }

    /// Long poll for up to `wait`.
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Per-call visibility timeout.
    #[must_use]
    pub fn visibility(mut self, seconds: u32) -> Self {
        self.visibility_timeout = Some(seconds);
        self
    }

    /// Checks the request against SQS's bounds.
    pub fn validate(&self) -> Result<(), BrokerError> {
        if !(1..=limits::MAX_BATCH as u32).contains(&self.max_messages) {
            return Err(BrokerError::InvalidParameterValue(format!(
                "MaxNumberOfMessages must be 1..=10, got {}",
                self.max_messages
            )));
        }
        if let Some(v) = self.visibility_timeout {
            check_visibility(v)?;
        }
        if let Some(w) = self.wait
            && w > Duration::from_secs(u64::from(limits::MAX_WAIT_SECONDS))
        {
            return Err(BrokerError::InvalidParameterValue(format!(
                "WaitTimeSeconds must be 0..=20, got {}",
                w.as_secs_f64()
            )));
        }
        Ok(())
    }
}

/// Checks a visibility timeout.
pub fn check_visibility(seconds: u32) -> Result<(), BrokerError> {
    if seconds > limits::MAX_VISIBILITY_TIMEOUT {
        return Err(BrokerError::InvalidParameterValue(format!(
            "VisibilityTimeout must be 0..=43200, got {seconds}"
        )));
    }
    Ok(())
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    /// Proof of this receive: needed to delete the message or change its visibility.
    pub receipt_handle: String,
    pub body: String,
    pub attributes: Attributes,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sequence_number: Option<String>,
    /// `ApproximateReceiveCount`, this receive included.
    pub receive_count: u32,
    /// `SentTimestamp`, ms since the epoch.
    pub sent_timestamp: i64,
    /// `ApproximateFirstReceiveTimestamp`, ms since the epoch.
    pub first_receive_timestamp: i64,
}

/// `ApproximateNumberOfMessages*` of a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// Ready to be received.
    pub visible: u64,
    /// Received and neither deleted nor back to visible.
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet.
    pub delayed: u64,
}

/// A subscription of a queue to a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub topic: String,
    pub queue: String,
    /// Only messages whose `eventType` attribute is one of these; `None` takes all.
    pub event_types: Option<Vec<String>>,
}

/// SQS's (and SNS's) errors, with their codes.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("AWS.SimpleQueueService.NonExistentQueue: queue {0:?} does not exist")]
    QueueDoesNotExist(String),
    #[error("NotFound: topic {0:?} does not exist")]
    TopicDoesNotExist(String),
    #[error("QueueAlreadyExists: queue {0:?} exists with different attributes")]
    QueueAlreadyExists(String),
    #[error("InvalidParameterValue: {0}")]
    InvalidParameterValue(String),
    #[error("InvalidAttributeValue: {0}")]
    InvalidAttributeValue(String),
    #[error("InvalidAttributeName: {0}")]
    InvalidAttributeName(String),
    #[error("MissingParameter: {0}")]
    MissingParameter(String),
    #[error("InvalidMessageContents: {0}")]
    InvalidMessageContents(String),
    #[error("MessageTooLong: message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLong { size: usize, limit: u32 },
    #[error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest: at most 10 entries, got {0}")]
    TooManyEntriesInBatchRequest(usize),
    #[error("AWS.SimpleQueueService.EmptyBatchRequest: a batch needs at least one entry")]
    EmptyBatchRequest,
    #[error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct: entry id {0:?} repeats")]
    BatchEntryIdsNotDistinct(String),
    #[error("AWS.SimpleQueueService.InvalidBatchEntryId: {0:?}")]
    InvalidBatchEntryId(String),
    #[error("AWS.SimpleQueueService.BatchRequestTooLong: the batch's messages sum to {0} bytes")]
    BatchRequestTooLong(usize),
    #[error("ReceiptHandleIsInvalid: {0:?}")]
    ReceiptHandleIsInvalid(String),
    #[error("AWS.SimpleQueueService.MessageNotInflight: the message is not in flight")]
    MessageNotInflight,
    /// A failure of the storage under the broker (or of the remote service).
    #[error("InternalError: {0}")]
    Internal(String),
}

impl BrokerError {
    /// The SQS error code.
    pub fn code(&self) -> &'static str {
        match self {
            BrokerError::QueueDoesNotExist(_) => "AWS.SimpleQueueService.NonExistentQueue",
            BrokerError::TopicDoesNotExist(_) => "NotFound",
            BrokerError::QueueAlreadyExists(_) => "QueueAlreadyExists",
            BrokerError::InvalidParameterValue(_) => "InvalidParameterValue",
            BrokerError::InvalidAttributeValue(_) => "InvalidAttributeValue",
            BrokerError::InvalidAttributeName(_) => "InvalidAttributeName",
            BrokerError::MissingParameter(_) => "MissingParameter",
            BrokerError::InvalidMessageContents(_) => "InvalidMessageContents",
            BrokerError::MessageTooLong { .. } => "MessageTooLong",
            BrokerError::TooManyEntriesInBatchRequest(_) => {
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
            }
            BrokerError::EmptyBatchRequest => "AWS.SimpleQueueService.EmptyBatchRequest",
            BrokerError::BatchEntryIdsNotDistinct(_) => {
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
            }
            BrokerError::InvalidBatchEntryId(_) => "AWS.SimpleQueueService.InvalidBatchEntryId",
            BrokerError::BatchRequestTooLong(_) => "AWS.SimpleQueueService.BatchRequestTooLong",
            BrokerError::ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            BrokerError::MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            BrokerError::Internal(_) => "InternalError",
        }
    }

    /// Whether the caller caused it (SQS's `SenderFault`); transient otherwise.
    pub fn sender_fault(&self) -> bool {
        !matches!(self, BrokerError::Internal(_))
    }
}

impl From<rusqlite::Error> for BrokerError {
    fn from(e: rusqlite::Error) -> Self {
        BrokerError::Internal(format!("storage: {e}"))
    }
}

/// Checks a batch's shape: 1..=10 entries, distinct well-formed ids.
pub fn validate_batch<T>(entries: &[BatchEntry<T>]) -> Result<(), BrokerError> {
    if entries.is_empty() {
        return Err(BrokerError::EmptyBatchRequest);
    }
    if entries.len() > limits::MAX_BATCH {
        return Err(BrokerError::TooManyEntriesInBatchRequest(entries.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        let ok = !e.id.is_empty()
            && e.id.len() <= 80
            && e.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(BrokerError::InvalidBatchEntryId(e.id.clone()));
        }
        if !seen.insert(e.id.as_str()) {
            return Err(BrokerError::BatchEntryIdsNotDistinct(e.id.clone()));
        }
    }
    Ok(())
}

/// Checks one message's body, attributes and size.
pub fn validate_message(req: &SendRequest, max_size: u32) -> Result<(), BrokerError> {
    if req.body.is_empty() {
        return Err(BrokerError::MissingParameter(
            "MessageBody must not be empty".into(),
        ));
    }
    // Only control characters and U+FFFE/U+FFFF (which start with 0xEF)
    // can be refused in valid UTF-8: a byte scan clears most bodies.
    let suspect = |b: &u8| (*b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || *b == 0xEF;
    if req.body.as_bytes().iter().any(suspect)
        && let Some(c) = req.body.chars().find(|c| !allowed_char(*c))
    {
        return Err(BrokerError::InvalidMessageContents(format!(
            "character U+{:04X} is not allowed in a message body",
            u32::from(c)
        )));
    }
    if req.attributes.len() > limits::MAX_ATTRIBUTES {
        return Err(BrokerError::InvalidParameterValue(format!(
            "at most 10 message attributes, got {}",
            req.attributes.len()
        )));
    }
    for (name, attr) in &req.attributes {
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(BrokerError::InvalidParameterValue(format!(
                "invalid attribute name {name:?}"
            )));
        }
        let base = attr.data_type.split('.').next().unwrap_or("");
        match base {
            "String" | "Binary" => {}
            "Number" => {
                if attr.value.trim().parse::<f64>().is_err() {
                    return Err(BrokerError::InvalidParameterValue(format!(
                        "attribute {name:?} is a Number but {:?} is not a number",
                        attr.value
                    )));
                }
            }
            _ => {
                return Err(BrokerError::InvalidParameterValue(format!(
                    "attribute {name:?} has data type {:?}; use String, Number or Binary",
                    attr.data_type
                )));
            }
        }
        if attr.value.is_empty() {
            return Err(BrokerError::InvalidParameterValue(format!(
                "attribute {name:?} has no value"
            )));
        }
    }
    let size = req.size();
    if size > max_size as usize {
        return Err(BrokerError::MessageTooLong {
            size,
            limit: max_size,
        });
    }
    Ok(())
}

/// SQS's allowed characters: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
fn allowed_char(c: char) -> bool {
    matches!(u32::from(c), 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10_FFFF)
}
