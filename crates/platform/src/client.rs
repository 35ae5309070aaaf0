//! Calls from one service to another, for answers a client waits for.
//!
//! A slow or dead dependency must turn into a quick, clear 503, never a hang
//! and never a 500. [`ServiceClient`] gets there with:
//! - one pooled `reqwest` client per dependency (connections are reused);
//! - a timeout per attempt and a deadline for the whole call;
//! - retries with jittered exponential backoff — only for GETs, which are idempotent;
//! - a circuit breaker: after `breaker_threshold` consecutive failures the
//!   dependency is not called for `breaker_cooldown`; then one trial call
//!   decides whether it closes again.
//!
//! The caller's bearer token and `traceparent` are forwarded.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Client settings; the defaults answer within 2 s when the dependency is down.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub attempt_timeout: Duration,
    pub deadline: Duration,
    pub retries: u32,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            attempt_timeout: Duration::from_millis(600),
            deadline: Duration::from_millis(1500),
            retries: 2,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Recent calls failed; this one was not attempted.
    #[error("circuit open: recent calls to {0} failed")]
    CircuitOpen(String),
    /// Down, unreachable, timing out or answering 5xx.
    #[error("{0} unavailable: {1}")]
    Unavailable(String, String),
    /// It answered, with a client error.
    #[error("{service} answered {status}")]
    Status {
        service: String,
        status: u16,
        body: Value,
    },
}

#[derive(Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

/// A client of one other service.
pub struct ServiceClient {
    name: String,
    base: String,
    http: reqwest::Client,
    config: ClientConfig,
    breaker: Mutex<Breaker>,
}

impl ServiceClient {
    /// A client of `name` at `base` (e.g. `http://127.0.0.1:8082`).
    pub fn new(name: &str, base: &str, config: ClientConfig) -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(config.attempt_timeout)
            .build()
            .unwrap_or_default();
        ServiceClient {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            http,
            config,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn allow(&self) -> bool {
        let mut b = self.breaker();
        match b.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                // Half-open: let this call through as the trial.
                b.open_until = None;
                true
            }
            None => true,
        }
    }

    fn record(&self, ok: bool) {
        let mut b = self.breaker();
        if ok {
            b.consecutive_failures = 0;
            b.open_until = None;
        } else {
            b.consecutive_failures += 1;
            if b.consecutive_failures >= self.config.breaker_threshold {
                b.open_until = Some(Instant::now() + self.config.breaker_cooldown);
            }
        }
    }

    /// `GET {base}{path}`, JSON in, JSON out.
    pub async fn get_json(
        &self,
        path: &str,
        bearer: Option<&str>,
        traceparent: Option<&str>,
    ) -> Result<Value, ClientError> {
        if !self.allow() {
            return Err(ClientError::CircuitOpen(self.name.clone()));
        }
        let started = Instant::now();
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            let remaining = self.config.deadline.saturating_sub(started.elapsed());
            let mut req = self
                .http
                .get(&url)
                .timeout(self.config.attempt_timeout.min(remaining));
            if let Some(token) = bearer {
                req = req.bearer_auth(token);
            }
            if let Some(tp) = traceparent {
                req = req.header("traceparent", tp);
            }
            let failure = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    self.record(true);
                    return resp.json().await.map_err(|e| {
                        ClientError::Unavailable(
                            self.name.clone(),
                            format!("unreadable answer: {e}"),
                        )
                    });
                }
                Ok(resp) if resp.status().is_client_error() => {
                    self.record(true);
                    let status = resp.status().as_u16();
                    let body = resp.json().await.unwrap_or(Value::Null);
                    return Err(ClientError::Status {
                        service: self.name.clone(),
                        status,
                        body,
                    });
                }
                Ok(resp) => format!("answered {}", resp.status()),
                Err(e) if e.is_timeout() => "timed out".to_owned(),
                Err(e) if e.is_connect() => "connection refused".to_owned(),
                Err(e) => e.to_string(),
            };
            self.record(false);
            attempt += 1;
            let backoff =
                Duration::from_millis(50 * (1 << attempt.min(5))).mul_f64(0.5 + fastrand::f64());
            if attempt > self.config.retries
                || started.elapsed() + backoff >= self.config.deadline
                || !self.allow()
            {
                return Err(ClientError::Unavailable(self.name.clone(), failure));
            }
            tokio::time::sleep(backoff).await;
        }
    }
}
