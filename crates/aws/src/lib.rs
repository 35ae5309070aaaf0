//! # evilent-aws — the queue and publisher ports on Amazon SQS and SNS
//!
//! [`SqsBroker`] implements `evilent-messaging`'s [`QueuePort`] with SQS and
//! its [`Publisher`] with SNS, so a service runs unchanged on AWS (or on
//! moto, which the tests use). It passes the same conformance suite as the
//! embedded broker; what moto cannot show is listed in `tests/conformance_moto.rs`.
//!
//! - Queues are named as everywhere in evilent; URLs and ARNs are looked up
//!   once and cached.
//! - Subscriptions use **raw message delivery** (the SQS body is exactly the
//!   event) and a filter policy on the `eventType` attribute, and grant the
//!   topic `sqs:SendMessage` in the queue's policy.
//! - Batch calls keep SQS's per-entry results.
//! - Every SQS and SNS request is counted ([`RequestCounts`]), for the cost
//!   figures of `evilent bench`.
//!
//! Endpoint, region and credentials come from the standard AWS chain;
//! [`SqsConfig::endpoint`] overrides the endpoint (moto: `http://127.0.0.1:4566`),
//! and a local endpoint without credentials in the environment gets static
//! test credentials.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName as Sys, QueueAttributeName as Qa};
use base64::Engine as _;
use evilent_broker::model::validate_message;
use evilent_broker::{
    Attributes, BatchEntry, BatchResult, Message, MessageAttribute, QueueAttributes, QueueCounts,
    ReceiveRequest, RedrivePolicy, SendOutcome, SendRequest, Subscription, limits,
};
use evilent_messaging::{Publisher, QueueError, QueuePort};

/// Where SQS and SNS are.
#[derive(Clone, Debug, Default)]
pub struct SqsConfig {
    /// Endpoint override (moto, LocalStack); `None` uses AWS's.
    pub endpoint: Option<String>,
    /// Region; `None` takes the standard chain's (or `us-east-1`).
    pub region: Option<String>,
}

impl SqsConfig {
    /// From `EVILENT_SQS_ENDPOINT` (or `AWS_ENDPOINT_URL`) and `AWS_REGION`.
    pub fn from_env() -> Self {
        SqsConfig {
            endpoint: std::env::var("EVILENT_SQS_ENDPOINT")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok(),
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok(),
        }
    }
}

/// Requests sent to SQS and SNS, by operation.
#[derive(Debug, Default)]
pub struct RequestCounts {
    pub send: AtomicU64,
    pub receive: AtomicU64,
    pub delete: AtomicU64,
    pub change_visibility: AtomicU64,
    pub publish: AtomicU64,
    pub other: AtomicU64,
}

impl RequestCounts {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Send, receive, delete, change-visibility and publish requests together.
    pub fn messaging_total(&self) -> u64 {
        [
            &self.send,
            &self.receive,
            &self.delete,
            &self.change_visibility,
            &self.publish,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// The ports on SQS + SNS.
pub struct SqsBroker {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    urls: RwLock<HashMap<String, String>>,
    topics: RwLock<HashMap<String, String>>,
    /// Requests made, by kind.
    pub requests: RequestCounts,
}

fn code_error(code: &str, message: &str, name: &str) -> QueueError {
    let m = || {
        if message.is_empty() {
            code.to_owned()
        } else {
            message.to_owned()
        }
    };
    match code {
        "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => {
            QueueError::QueueDoesNotExist(name.to_owned())
        }
        "NotFound" | "NotFoundException" => QueueError::TopicDoesNotExist(name.to_owned()),
        "QueueAlreadyExists" | "QueueNameExists" => QueueError::QueueAlreadyExists(name.to_owned()),
        "InvalidParameterValue"
        | "InvalidParameterValueException"
        | "InvalidParameter"
        | "InvalidParameterException"
        | "ValidationError" => QueueError::InvalidParameterValue(m()),
        "InvalidAttributeValue" => QueueError::InvalidAttributeValue(m()),
        "InvalidAttributeName" => QueueError::InvalidAttributeName(m()),
        "MissingParameter" => QueueError::MissingParameter(m()),
        "InvalidMessageContents" => QueueError::InvalidMessageContents(m()),
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest" | "TooManyEntriesInBatchRequest" => {
            QueueError::TooManyEntriesInBatchRequest(limits::MAX_BATCH + 1)
        }
        "AWS.SimpleQueueService.EmptyBatchRequest" | "EmptyBatchRequest" => {
            QueueError::EmptyBatchRequest
        }
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct" | "BatchEntryIdsNotDistinct" => {
            QueueError::BatchEntryIdsNotDistinct(m())
        }
        "AWS.SimpleQueueService.InvalidBatchEntryId" | "InvalidBatchEntryId" => {
            QueueError::InvalidBatchEntryId(m())
        }
        "AWS.SimpleQueueService.BatchRequestTooLong" | "BatchRequestTooLong" => {
            QueueError::BatchRequestTooLong(0)
        }
        "ReceiptHandleIsInvalid" | "InvalidReceiptHandle" => {
            QueueError::ReceiptHandleIsInvalid(m())
        }
        "AWS.SimpleQueueService.MessageNotInflight" | "MessageNotInflight" => {
            QueueError::MessageNotInflight
        }
        "MessageTooLong" => QueueError::MessageTooLong {
            size: 0,
            limit: limits::MAX_MESSAGE_SIZE,
        },
        other => QueueError::Internal(format!("{other}: {}", m())),
    }
}

fn sdk_error<E, R>(name: &str, e: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.as_service_error() {
        Some(se) => code_error(se.code().unwrap_or(""), se.message().unwrap_or(""), name),
        None => QueueError::Internal(DisplayErrorContext(&e).to_string()),
    }
}

/// Per-entry results of a batch call that returns nothing per success (delete, change-visibility).
fn acknowledged(
    succeeded: impl Iterator<Item = String>,
    failed: &[aws_sdk_sqs::types::BatchResultErrorEntry],
    queue: &str,
) -> Vec<BatchResult<()>> {
    succeeded
        .map(|id| BatchResult { id, result: Ok(()) })
        .chain(failed.iter().map(|f| BatchResult {
            id: f.id().to_owned(),
            result: Err(code_error(f.code(), f.message().unwrap_or(""), queue)),
        }))
        .collect()
}

fn build_error(e: impl std::fmt::Display) -> QueueError {
    QueueError::InvalidParameterValue(e.to_string())
}

fn secs(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn sqs_attribute(
    a: &MessageAttribute,
) -> Result<aws_sdk_sqs::types::MessageAttributeValue, QueueError> {
    let b = aws_sdk_sqs::types::MessageAttributeValue::builder().data_type(&a.data_type);
    let b = if a.data_type.starts_with("Binary") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&a.value)
            .map_err(build_error)?;
        b.binary_value(aws_sdk_sqs::primitives::Blob::new(bytes))
    } else {
        b.string_value(&a.value)
    };
    b.build().map_err(build_error)
}

fn sns_attribute(
    a: &MessageAttribute,
) -> Result<aws_sdk_sns::types::MessageAttributeValue, QueueError> {
    let b = aws_sdk_sns::types::MessageAttributeValue::builder().data_type(&a.data_type);
    let b = if a.data_type.starts_with("Binary") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&a.value)
            .map_err(build_error)?;
        b.binary_value(aws_sdk_sns::primitives::Blob::new(bytes))
    } else {
        b.string_value(&a.value)
    };
    b.build().map_err(build_error)
}

fn sqs_attributes(
    attrs: &Attributes,
) -> Result<Option<HashMap<String, aws_sdk_sqs::types::MessageAttributeValue>>, QueueError> {
    if attrs.is_empty() {
        return Ok(None);
    }
    attrs
        .iter()
        .map(|(k, v)| Ok((k.clone(), sqs_attribute(v)?)))
        .collect::<Result<_, _>>()
        .map(Some)
}

fn from_sqs_message(m: &aws_sdk_sqs::types::Message) -> Message {
    let sys = |k: Sys| m.attributes().and_then(|a| a.get(&k)).cloned();
    let num = |k: Sys| sys(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let attributes = m
        .message_attributes()
        .map(|attrs| {
            attrs
                .iter()
                .map(|(k, v)| {
                    let value = match (v.string_value(), v.binary_value()) {
                        (Some(s), _) => s.to_owned(),
                        (None, Some(b)) => {
                            base64::engine::general_purpose::STANDARD.encode(b.as_ref())
                        }
                        (None, None) => String::new(),
                    };
                    (
                        k.clone(),
                        MessageAttribute {
                            data_type: v.data_type().to_owned(),
                            value,
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Message {
        message_id: m.message_id().unwrap_or_default().to_owned(),
        receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        attributes,
        group_id: sys(Sys::MessageGroupId),
        deduplication_id: sys(Sys::MessageDeduplicationId),
        sequence_number: sys(Sys::SequenceNumber),
        receive_count: u32::try_from(num(Sys::ApproximateReceiveCount)).unwrap_or(0),
        sent_timestamp: num(Sys::SentTimestamp),
        first_receive_timestamp: num(Sys::ApproximateFirstReceiveTimestamp),
    }
}

fn is_local(endpoint: &str) -> bool {
    ["://127.0.0.1", "://localhost", "://[::1]", "://0.0.0.0"]
        .iter()
        .any(|h| endpoint.contains(h))
}

impl SqsBroker {
    /// Connects with the standard AWS chain and `config`'s overrides.
    pub async fn connect(config: &SqsConfig) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
            if is_local(endpoint) && std::env::var("AWS_ACCESS_KEY_ID").is_err() {
                loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "evilent-local",
                ));
            }
        }
        let region = config
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_owned());
        let loader = loader.region(aws_config::Region::new(region));
        let shared = loader.load().await;
        SqsBroker {
            sqs: aws_sdk_sqs::Client::new(&shared),
            sns: aws_sdk_sns::Client::new(&shared),
            urls: RwLock::new(HashMap::new()),
            topics: RwLock::new(HashMap::new()),
            requests: RequestCounts::default(),
        }
    }

    /// The queue's URL (looked up once).
    pub async fn queue_url(&self, name: &str) -> Result<String, QueueError> {
        if let Some(u) = self
            .urls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(u.clone());
        }
        RequestCounts::add(&self.requests.other);
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(name, e))?;
        let url = out.queue_url().unwrap_or_default().to_owned();
        self.urls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), url.clone());
        Ok(url)
    }

    async fn queue_arn(&self, name: &str) -> Result<String, QueueError> {
        let url = self.queue_url(name).await?;
        RequestCounts::add(&self.requests.other);
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Qa::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error(name, e))?;
        out.attributes()
            .and_then(|a| a.get(&Qa::QueueArn))
            .cloned()
            .ok_or_else(|| QueueError::Internal(format!("no ARN for queue {name}")))
    }

    /// The topic's ARN (created topics are cached; others looked up).
    pub async fn topic_arn(&self, name: &str) -> Result<String, QueueError> {
        if let Some(a) = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(a.clone());
        }
        let mut token = None;
        loop {
            RequestCounts::add(&self.requests.other);
            let out = self
                .sns
                .list_topics()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(name, e))?;
            for t in out.topics() {
                if let Some(arn) = t.topic_arn()
                    && arn.rsplit(':').next() == Some(name)
                {
                    self.topics
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(name.to_owned(), arn.to_owned());
                    return Ok(arn.to_owned());
                }
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Err(QueueError::TopicDoesNotExist(name.to_owned())),
            }
        }
    }

    /// Every queue's name.
    pub async fn list_queues(&self) -> Result<Vec<String>, QueueError> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            RequestCounts::add(&self.requests.other);
            let out = self
                .sqs
                .list_queues()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("", e))?;
            names.extend(
                out.queue_urls()
                    .iter()
                    .filter_map(|u| u.rsplit('/').next().map(str::to_owned)),
            );
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every topic's name.
    pub async fn list_topics(&self) -> Result<Vec<String>, QueueError> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            RequestCounts::add(&self.requests.other);
            let out = self
                .sns
                .list_topics()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("", e))?;
            names.extend(
                out.topics()
                    .iter()
                    .filter_map(|t| t.topic_arn()?.rsplit(':').next().map(str::to_owned)),
            );
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every subscription of a topic to a queue, with its `eventType` filter.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, QueueError> {
        let mut subs = Vec::new();
        let mut token = None;
        loop {
            RequestCounts::add(&self.requests.other);
            let out = self
                .sns
                .list_subscriptions()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("", e))?;
            for s in out.subscriptions() {
                if s.protocol() != Some("sqs") {
                    continue;
                }
                let topic = s
                    .topic_arn()
                    .and_then(|a| a.rsplit(':').next())
                    .unwrap_or_default()
                    .to_owned();
                let queue = s
                    .endpoint()
                    .and_then(|a| a.rsplit(':').next())
                    .unwrap_or_default()
                    .to_owned();
                let mut event_types = None;
                if let Some(arn) = s.subscription_arn().filter(|a| a.starts_with("arn:")) {
                    RequestCounts::add(&self.requests.other);
                    if let Ok(attrs) = self
                        .sns
                        .get_subscription_attributes()
                        .subscription_arn(arn)
                        .send()
                        .await
                        && let Some(policy) = attrs.attributes().and_then(|a| a.get("FilterPolicy"))
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(policy)
                    {
                        event_types = v["eventType"].as_array().map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        });
                    }
                }
                subs.push(Subscription {
                    topic,
                    queue,
                    event_types,
                });
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        Ok(subs)
    }

    /// Lets `topic_arn` send to the queue (SNS needs it on AWS; moto ignores it).
    async fn allow_topic(
        &self,
        queue: &str,
        queue_arn: &str,
        topic_arn: &str,
    ) -> Result<(), QueueError> {
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.other);
        let current = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Qa::Policy)
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        let mut sources: Vec<String> = current
            .attributes()
            .and_then(|a| a.get(&Qa::Policy))
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| {
                p["Statement"]
                    .as_array()?
                    .iter()
                    .find(|s| s["Sid"] == "evilent-sns")
                    .map(|s| match &s["Condition"]["ArnEquals"]["aws:SourceArn"] {
                        serde_json::Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect(),
                        serde_json::Value::String(one) => vec![one.clone()],
                        _ => Vec::new(),
                    })
            })
            .unwrap_or_default();
        if sources.iter().any(|s| s == topic_arn) {
            return Ok(());
        }
        sources.push(topic_arn.to_owned());
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "evilent-sns", "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": sources}}
            }]
        });
        RequestCounts::add(&self.requests.other);
        self.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(Qa::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        Ok(())
    }
}

#[async_trait]
impl QueuePort for SqsBroker {
    fn backend(&self) -> &'static str {
        "sqs"
    }

    async fn create_queue(&self, name: &str, a: &QueueAttributes) -> Result<(), QueueError> {
        a.validate(name)?;
        let defaults = QueueAttributes {
            fifo: a.fifo,
            ..QueueAttributes::default()
        };
        let mut attrs: HashMap<Qa, String> = HashMap::new();
        if a.fifo {
            attrs.insert(Qa::FifoQueue, "true".into());
            if a.content_based_deduplication {
                attrs.insert(Qa::ContentBasedDeduplication, "true".into());
            }
        }
        // Only what differs from SQS's defaults: creating again with the same
        // attributes is then a no-op on every server.
        if a.visibility_timeout != defaults.visibility_timeout {
            attrs.insert(Qa::VisibilityTimeout, a.visibility_timeout.to_string());
        }
        if a.delay_seconds != defaults.delay_seconds {
            attrs.insert(Qa::DelaySeconds, a.delay_seconds.to_string());
        }
        if a.retention_seconds != defaults.retention_seconds {
            attrs.insert(Qa::MessageRetentionPeriod, a.retention_seconds.to_string());
        }
        if a.max_message_size != defaults.max_message_size {
            attrs.insert(Qa::MaximumMessageSize, a.max_message_size.to_string());
        }
        if a.receive_wait_seconds != defaults.receive_wait_seconds {
            attrs.insert(
                Qa::ReceiveMessageWaitTimeSeconds,
                a.receive_wait_seconds.to_string(),
            );
        }
        if let Some(r) = &a.redrive {
            let dlq_arn = self.queue_arn(&r.dead_letter_queue).await.map_err(|_| {
                QueueError::InvalidParameterValue(format!(
                    "dead-letter queue {:?} does not exist",
                    r.dead_letter_queue
                ))
            })?;
            let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": r.max_receive_count});
            attrs.insert(Qa::RedrivePolicy, policy.to_string());
        }
        RequestCounts::add(&self.requests.other);
        let out = self
            .sqs
            .create_queue()
            .queue_name(name)
            .set_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| sdk_error(name, e))?;
        if let Some(url) = out.queue_url() {
            self.urls
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_owned(), url.to_owned());
        }
        Ok(())
    }

    async fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes, QueueError> {
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.other);
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Qa::All)
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        let empty = HashMap::new();
        let attrs = out.attributes().unwrap_or(&empty);
        let d = QueueAttributes::default();
        let num = |k: Qa, default: u32| {
            attrs
                .get(&k)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let redrive = attrs
            .get(&Qa::RedrivePolicy)
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| {
                Some(RedrivePolicy {
                    dead_letter_queue: p["deadLetterTargetArn"]
                        .as_str()?
                        .rsplit(':')
                        .next()?
                        .to_owned(),
                    max_receive_count: match &p["maxReceiveCount"] {
                        serde_json::Value::String(s) => s.parse().ok()?,
                        v => u32::try_from(v.as_u64()?).ok()?,
                    },
                })
            });
        Ok(QueueAttributes {
            fifo: attrs.get(&Qa::FifoQueue).is_some_and(|v| v == "true"),
            visibility_timeout: num(Qa::VisibilityTimeout, d.visibility_timeout),
            delay_seconds: num(Qa::DelaySeconds, d.delay_seconds),
            retention_seconds: num(Qa::MessageRetentionPeriod, d.retention_seconds),
            max_message_size: num(Qa::MaximumMessageSize, d.max_message_size),
            receive_wait_seconds: num(Qa::ReceiveMessageWaitTimeSeconds, d.receive_wait_seconds),
            content_based_deduplication: attrs
                .get(&Qa::ContentBasedDeduplication)
                .is_some_and(|v| v == "true"),
            redrive,
        })
    }

    async fn create_topic(&self, name: &str, fifo: bool) -> Result<(), QueueError> {
        evilent_broker::model::validate_topic_name(name, fifo)?;
        let mut req = self.sns.create_topic().name(name);
        if fifo {
            req = req
                .attributes("FifoTopic", "true")
                .attributes("ContentBasedDeduplication", "true");
        }
        RequestCounts::add(&self.requests.other);
        let out = req.send().await.map_err(|e| sdk_error(name, e))?;
        if let Some(arn) = out.topic_arn() {
            self.topics
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_owned(), arn.to_owned());
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        queue: &str,
        event_types: Option<&[&str]>,
    ) -> Result<(), QueueError> {
        let topic_arn = self.topic_arn(topic).await?;
        let queue_arn = self.queue_arn(queue).await?;
        if topic.ends_with(".fifo") != queue.ends_with(".fifo") {
            return Err(QueueError::InvalidParameterValue(format!(
                "topic {topic:?} and queue {queue:?} must both be FIFO or both standard"
            )));
        }
        self.allow_topic(queue, &queue_arn, &topic_arn).await?;
        let mut req = self
            .sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .attributes("RawMessageDelivery", "true")
            .return_subscription_arn(true);
        if let Some(types) = event_types {
            req = req.attributes(
                "FilterPolicy",
                serde_json::json!({ "eventType": types }).to_string(),
            );
        }
        RequestCounts::add(&self.requests.other);
        req.send().await.map_err(|e| sdk_error(topic, e))?;
        Ok(())
    }

    async fn send(&self, queue: &str, r: &SendRequest) -> Result<SendOutcome, QueueError> {
        // Refuse locally what SQS refuses (moto is laxer): no request, same answer.
        validate_message(r, limits::MAX_MESSAGE_SIZE)?;
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.send);
        let out = self
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(&r.body)
            .set_message_attributes(sqs_attributes(&r.attributes)?)
            .set_delay_seconds(r.delay_seconds.map(secs))
            .set_message_group_id(r.group_id.clone())
            .set_message_deduplication_id(r.deduplication_id.clone())
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        Ok(SendOutcome {
            message_id: out.message_id().unwrap_or_default().to_owned(),
            sequence_number: out.sequence_number().map(str::to_owned),
        })
    }

    async fn send_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError> {
        evilent_broker::model::validate_batch(entries)?;
        let url = self.queue_url(queue).await?;
        let mut refused = Vec::new();
        let valid: Vec<&BatchEntry<SendRequest>> = entries
            .iter()
            .filter(
                |e| match validate_message(&e.entry, limits::MAX_MESSAGE_SIZE) {
                    Ok(()) => true,
                    Err(err) => {
                        refused.push(BatchResult {
                            id: e.id.clone(),
                            result: Err(err),
                        });
                        false
                    }
                },
            )
            .collect();
        if valid.is_empty() {
            return Ok(refused);
        }
        let batch = valid
            .iter()
            .map(|e| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(&e.id)
                    .message_body(&e.entry.body)
                    .set_message_attributes(sqs_attributes(&e.entry.attributes)?)
                    .set_delay_seconds(e.entry.delay_seconds.map(secs))
                    .set_message_group_id(e.entry.group_id.clone())
                    .set_message_deduplication_id(e.entry.deduplication_id.clone())
                    .build()
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        RequestCounts::add(&self.requests.send);
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(batch))
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        let mut results: Vec<BatchResult<SendOutcome>> = out
            .successful()
            .iter()
            .map(|s| BatchResult {
                id: s.id().to_owned(),
                result: Ok(SendOutcome {
                    message_id: s.message_id().to_owned(),
                    sequence_number: s.sequence_number().map(str::to_owned),
                }),
            })
            .collect();
        results.extend(out.failed().iter().map(|f| BatchResult {
            id: f.id().to_owned(),
            result: Err(code_error(f.code(), f.message().unwrap_or(""), queue)),
        }));
        results.extend(refused);
        Ok(results)
    }

    async fn receive(&self, queue: &str, r: &ReceiveRequest) -> Result<Vec<Message>, QueueError> {
        r.validate()?;
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.receive);
        let out = self
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(secs(r.max_messages))
            .set_visibility_timeout(r.visibility_timeout.map(secs))
            .set_wait_time_seconds(r.wait.map(|w| i32::try_from(w.as_secs()).unwrap_or(20)))
            .message_attribute_names("All")
            .message_system_attribute_names(Sys::All)
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        Ok(out.messages().iter().map(from_sqs_message).collect())
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.delete);
        self.sqs
            .delete_message()
            .queue_url(&url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        Ok(())
    }

    async fn delete_batch(
        &self,
        queue: &str,
        receipts: &[BatchEntry<String>],
    ) -> Result<Vec<BatchResult<()>>, QueueError> {
        evilent_broker::model::validate_batch(receipts)?;
        let url = self.queue_url(queue).await?;
        let batch = receipts
            .iter()
            .map(|e| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(&e.id)
                    .receipt_handle(&e.entry)
                    .build()
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        RequestCounts::add(&self.requests.delete);
        let out = self
            .sqs
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(batch))
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        let succeeded = out.successful().iter().map(|e| e.id().to_owned());
        Ok(acknowledged(succeeded, out.failed(), queue))
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError> {
        evilent_broker::model::check_visibility(seconds)?;
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.change_visibility);
        self.sqs
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs(seconds))
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        Ok(())
    }

    async fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[BatchEntry<(String, u32)>],
    ) -> Result<Vec<BatchResult<()>>, QueueError> {
        evilent_broker::model::validate_batch(entries)?;
        let url = self.queue_url(queue).await?;
        let batch = entries
            .iter()
            .map(|e| {
                aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(&e.id)
                    .receipt_handle(&e.entry.0)
                    .visibility_timeout(secs(e.entry.1))
                    .build()
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        RequestCounts::add(&self.requests.change_visibility);
        let out = self
            .sqs
            .change_message_visibility_batch()
            .queue_url(&url)
            .set_entries(Some(batch))
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        let succeeded = out.successful().iter().map(|e| e.id().to_owned());
        Ok(acknowledged(succeeded, out.failed(), queue))
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.other);
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(Qa::ApproximateNumberOfMessages)
            .attribute_names(Qa::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(Qa::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        let get = |k: Qa| {
            out.attributes()
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueCounts {
            visible: get(Qa::ApproximateNumberOfMessages),
            in_flight: get(Qa::ApproximateNumberOfMessagesNotVisible),
            delayed: get(Qa::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn purge(&self, queue: &str) -> Result<(), QueueError> {
        let url = self.queue_url(queue).await?;
        RequestCounts::add(&self.requests.other);
        self.sqs
            .purge_queue()
            .queue_url(&url)
            .send()
            .await
            .map_err(|e| sdk_error(queue, e))?;
        Ok(())
    }
}

#[async_trait]
impl Publisher for SqsBroker {
    async fn publish_batch(
        &self,
        topic: &str,
        entries: &[BatchEntry<SendRequest>],
    ) -> Result<Vec<BatchResult<SendOutcome>>, QueueError> {
        evilent_broker::model::validate_batch(entries)?;
        let arn = self.topic_arn(topic).await?;
        let batch = entries
            .iter()
            .map(|e| {
                let attrs = e
                    .entry
                    .attributes
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), sns_attribute(v)?)))
                    .collect::<Result<HashMap<_, _>, QueueError>>()?;
                aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                    .id(&e.id)
                    .message(&e.entry.body)
                    .set_message_attributes(if attrs.is_empty() { None } else { Some(attrs) })
                    .set_message_group_id(e.entry.group_id.clone())
                    .set_message_deduplication_id(e.entry.deduplication_id.clone())
                    .build()
                    .map_err(build_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        RequestCounts::add(&self.requests.publish);
        let out = self
            .sns
            .publish_batch()
            .topic_arn(&arn)
            .set_publish_batch_request_entries(Some(batch))
            .send()
            .await
            .map_err(|e| sdk_error(topic, e))?;
        let mut results: Vec<BatchResult<SendOutcome>> = out
            .successful()
            .iter()
            .map(|s| BatchResult {
                id: s.id().unwrap_or_default().to_owned(),
                result: Ok(SendOutcome {
                    message_id: s.message_id().unwrap_or_default().to_owned(),
                    sequence_number: s.sequence_number().map(str::to_owned),
                }),
            })
            .collect();
        results.extend(out.failed().iter().map(|f| BatchResult {
            id: f.id().to_owned(),
            result: Err(code_error(f.code(), f.message().unwrap_or(""), topic)),
        }));
        Ok(results)
    }
}
