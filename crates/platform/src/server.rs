//! Serving a router: `serve(listener, router, shutdown)`.
//!
//! Takes a bound listener (tests bind port 0) and a shutdown future (tests
//! and Ctrl-C stop it), and wraps the router in the layers every service
//! wants: a request id (`x-request-id`, generated when absent, echoed back),
//! a tracing span per request, a timeout, panics turned into a 500 problem,
//! and logging of internal errors with their cause (the client never sees it).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::problem::{ApiError, InternalCause};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn log_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(req).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, %request_id, %cause, "request failed");
    }
    response
}

fn panic_to_problem(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("handler panicked".into()).into_response()
}

/// Adds the common layers to a service's router.
pub fn with_layers(router: Router) -> Router {
    router
        .layer(axum::middleware::from_fn(log_errors))
        .layer(CatchPanicLayer::custom(panic_to_problem))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes
/// the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, with_layers(router))
        .with_graceful_shutdown(shutdown)
        .await
}
