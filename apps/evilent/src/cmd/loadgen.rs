//! The load generator of `evilent bench`: clients that send one prepared
//! request over and over, each on its own keep-alive HTTP/1.1 connection.
//!
//! The system under test and the load generator share the machine's cores,
//! so every microsecond a client spends is taken from the system it
//! measures. A general-purpose client (reqwest: URL parsing, a connection
//! pool, a JSON body serialized per request) cost about 40 µs of CPU per
//! request here, a fifth of what the system spent on the event itself. These
//! clients do what wrk does instead: the body is serialized once, the
//! connection is owned by its client, and only the status line and the body
//! of each answer are looked at.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, ensure};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;

/// One request, prepared once and sent as often as asked.
#[derive(Clone)]
pub struct Prepared {
    pub addr: SocketAddr,
    pub method: Method,
    pub path: String,
    pub bearer: Option<String>,
    /// A JSON body, sent with `content-type: application/json`.
    pub json: Option<Bytes>,
    /// The status every answer must have.
    pub expect: StatusCode,
}

impl Prepared {
    fn request(
        &self,
        uri: &Uri,
        host: &HeaderValue,
        auth: Option<&HeaderValue>,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.json.clone().unwrap_or_default()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri.clone();
        let headers = req.headers_mut();
        headers.insert(header::HOST, host.clone());
        if let Some(auth) = auth {
            headers.insert(header::AUTHORIZATION, auth.clone());
        }
        if self.json.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        req
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends `req` `total` times from `concurrency` clients (each its own
/// connection) and returns the answers per second. Any other status than
/// `req.expect` stops the run with an error.
pub async fn hammer(req: &Prepared, total: u64, concurrency: usize) -> anyhow::Result<f64> {
    let uri: Uri = req
        .path
        .parse()
        .with_context(|| format!("path {:?}", req.path))?;
    let host = HeaderValue::from_str(&req.addr.to_string())?;
    let auth = req
        .bearer
        .as_ref()
        .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
        .transpose()?;
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        senders.push(connect(req.addr).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (req, uri, host, auth, next) = (
            req.clone(),
            uri.clone(),
            host.clone(),
            auth.clone(),
            next.clone(),
        );
        clients.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                sender.ready().await?;
                let answer = sender
                    .send_request(req.request(&uri, &host, auth.as_ref()))
                    .await?;
                let status = answer.status();
                // Read to the end: the connection serves the next request.
                let body = answer.into_body().collect().await?.to_bytes();
                ensure!(
                    status == req.expect,
                    "{} {}: {status} {}",
                    req.method,
                    req.path,
                    String::from_utf8_lossy(&body)
                );
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}
