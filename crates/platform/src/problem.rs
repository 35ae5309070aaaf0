//! One error type per HTTP boundary, mapped to `application/problem+json` here and nowhere else.
//!
//! Client errors say what was wrong and where (`errors[].field` is a JSON
//! path such as `price` or `items[0].quantity`). Internal errors say nothing
//! to the client; their cause travels in a response extension to the
//! logging middleware in [`crate::server`], which logs it with the request id.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One failing field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field (`email`, `items[0].quantity`), `""` for the whole body.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything an HTTP handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not well-formed JSON of the right shape (400).
    #[error("malformed request")]
    Malformed(Vec<FieldError>),
    /// Well-formed, but values break the rules (422).
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A dependency (another service) is down (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The cause of an internal error, carried to the logging middleware.
#[derive(Clone, Debug)]
pub struct InternalCause(pub String);

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl ApiError {
    /// Shorthand for an internal error from any displayable cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// A 422 about one field.
    pub fn invalid(field: &str, message: &str) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Malformed(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
            ),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
            ),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "dependency-unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal-error",
                "Internal server error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let (detail, errors) = match &self {
            ApiError::Malformed(e) => ("the request body could not be read".to_owned(), e.clone()),
            ApiError::Validation(e) => ("one or more fields are invalid".to_owned(), e.clone()),
            ApiError::Internal(_) => ("something went wrong on our side".to_owned(), Vec::new()),
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Unavailable(m) => (m.clone(), Vec::new()),
        };
        let problem = Problem {
            kind: format!("https://evilent.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Internal(cause) = self {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

/// A JSON body. A wrong content type, bad JSON or a field of the wrong type
/// is a 400 problem naming the field (`price: invalid type: string, expected f64`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !json_type {
            return Err(ApiError::Malformed(vec![FieldError::new(
                "",
                "send the body as JSON with Content-Type: application/json",
            )]));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::Malformed(vec![FieldError::new("", e.to_string())]))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Ok(JsonBody(v)),
            Err(e) => {
                let path = e.path().to_string();
                let field = if path == "." { String::new() } else { path };
                Err(ApiError::Malformed(vec![FieldError::new(
                    field,
                    e.inner().to_string(),
                )]))
            }
        }
    }
}
