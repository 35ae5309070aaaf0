//! The user-service's HTTP API: `router(state)`, used by every entrypoint.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router, middleware};
use chrono::Utc;
use evilent_contracts::{
    Envelope, Metadata, Topic, UserCreated, UserDeleted, UserProfileCreated, UserUpdated,
};
use evilent_platform::auth::{BearerToken, JwtValidator, require_auth};
use evilent_platform::{ApiError, ClientError, JsonBody, Principal, ServiceClient};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{Email, Fields, PersonName, User};
use crate::store::{StoreError, UserStore};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn UserStore>,
    pub products: Arc<ServiceClient>,
    pub validator: Arc<JwtValidator>,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Concurrent => {
                ApiError::Conflict("the user changed meanwhile; retry".into())
            }
            StoreError::Backend(m) => ApiError::Internal(m),
        }
    }
}

/// The service's routes; `/health`, `/ready`, `/openapi.json` and `/docs` need no token.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/user", axum::routing::post(create_user))
        .route(
            "/user/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/user/{id}/stats", get(user_stats))
        .route("/user/{id}/products", get(user_products))
        .route_layer(middleware::from_fn_with_state(
            state.validator.clone(),
            require_auth,
        ));
    Router::new()
        .merge(protected)
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .merge(evilent_platform::docs::router(crate::openapi::spec()))
        .with_state(state)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    id: String,
    email: String,
    first_name: String,
    last_name: String,
    product_count: i64,
    created_at: String,
    updated_at: String,
}

fn body(user: &User, product_count: i64) -> UserBody {
    UserBody {
        id: user.id.clone(),
        email: user.email.as_str().to_owned(),
        first_name: user.first_name.as_str().to_owned(),
        last_name: user.last_name.as_str().to_owned(),
        product_count,
        created_at: user
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        updated_at: user
            .updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserInput {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

/// Correlation for the events of one request: its request id when it has one.
fn metadata(headers: &HeaderMap, version: i64) -> Metadata {
    evilent_platform::correlation::event_metadata(headers, Topic::UserEvents, version)
}

async fn live_user(store: &dyn UserStore, id: &str) -> Result<User, ApiError> {
    match store.get(id).await? {
        Some(u) if u.deleted_at.is_none() => Ok(u),
        _ => Err(ApiError::NotFound(format!("no user {id}"))),
    }
}

async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    JsonBody(input): JsonBody<UserInput>,
) -> Result<impl IntoResponse, ApiError> {
    let mut f = Fields::default();
    let email = f.required("email", input.email.as_deref(), Email::parse);
    let first = f.required("firstName", input.first_name.as_deref(), PersonName::parse);
    let last = f.required("lastName", input.last_name.as_deref(), PersonName::parse);
    f.finish().map_err(ApiError::Validation)?;
    let (Some(email), Some(first_name), Some(last_name)) = (email, first, last) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let now = Utc::now();
    let user = User {
        id: principal.sub.clone(),
        email,
        first_name,
        last_name,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        version: 1,
    };
    let meta = metadata(&headers, 1);
    let created = Envelope {
        meta: meta.clone(),
        event: UserCreated {
            user_id: user.id.clone(),
            email: user.email.as_str().into(),
            first_name: user.first_name.as_str().into(),
            last_name: user.last_name.as_str().into(),
        }
        .into(),
    };
    let profile = Envelope {
        meta: Metadata {
            event_id: uuid::Uuid::now_v7(),
            ..meta
        },
        event: UserProfileCreated {
            user_id: user.id.clone(),
            email: user.email.as_str().into(),
            first_name: user.first_name.as_str().into(),
            last_name: user.last_name.as_str().into(),
        }
        .into(),
    };
    state.store.create(&user, &[created, profile]).await?;
    let count = state.store.stats(&user.id).await?.product_count;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/user/{}", user.id))],
        Json(body(&user, count)),
    ))
}

async fn get_user(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserBody>, ApiError> {
    let user = live_user(&*state.store, &id).await?;
    let count = state.store.stats(&id).await?.product_count;
    Ok(Json(body(&user, count)))
}

async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<UserInput>,
) -> Result<Json<UserBody>, ApiError> {
    let mut user = live_user(&*state.store, &id).await?;
    principal.may_write(&user.id)?;
    let mut f = Fields::default();
    let email = f.optional("email", input.email.as_deref(), Email::parse);
    let first = f.optional("firstName", input.first_name.as_deref(), PersonName::parse);
    let last = f.optional("lastName", input.last_name.as_deref(), PersonName::parse);
    if input.email.is_none() && input.first_name.is_none() && input.last_name.is_none() {
        return Err(ApiError::invalid(
            "",
            "send at least one of email, firstName, lastName",
        ));
    }
    f.finish().map_err(ApiError::Validation)?;
    if let Some(v) = email {
        user.email = v;
    }
    if let Some(v) = first {
        user.first_name = v;
    }
    if let Some(v) = last {
        user.last_name = v;
    }
    user.version += 1;
    user.updated_at = Utc::now();
    let event = Envelope {
        meta: metadata(&headers, user.version),
        event: UserUpdated {
            user_id: user.id.clone(),
            email: user.email.as_str().into(),
            first_name: user.first_name.as_str().into(),
            last_name: user.last_name.as_str().into(),
        }
        .into(),
    };
    state.store.update(&user, &[event]).await?;
    let count = state.store.stats(&id).await?.product_count;
    Ok(Json(body(&user, count)))
}

async fn delete_user(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut user = live_user(&*state.store, &id).await?;
    principal.may_write(&user.id)?;
    user.version += 1;
    let now = Utc::now();
    user.updated_at = now;
    user.deleted_at = Some(now);
    let event = Envelope {
        meta: metadata(&headers, user.version),
        event: UserDeleted {
            user_id: user.id.clone(),
        }
        .into(),
    };
    state.store.update(&user, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_stats(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    live_user(&*state.store, &id).await?;
    let s = state.store.stats(&id).await?;
    Ok(Json(json!({
        "userId": id,
        "productCount": s.product_count,
        "productsCreated": s.products_created,
        "productsDeleted": s.products_deleted,
        "lastEventAt": s.last_event_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        "lastAppliedAt": s.last_applied_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    })))
}

async fn user_products(
    State(state): State<AppState>,
    _: Principal,
    BearerToken(token): BearerToken,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    live_user(&*state.store, &id).await?;
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let mut products = Vec::new();
    let mut cursor: Option<String> = None;
    // Follow the product-service's pages (at most 10 × 100 products).
    for _ in 0..10 {
        let mut path = format!("/product?userId={}&limit=100", urlencode(&id));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page = state
            .products
            .get_json(&path, Some(&token), traceparent)
            .await
            .map_err(|e| match e {
                ClientError::Status {
                    status: 401 | 403, ..
                } => ApiError::Forbidden("product-service refused the token".into()),
                ClientError::Status { status, .. } => {
                    ApiError::Internal(format!("product-service answered {status}"))
                }
                other => ApiError::Unavailable(format!("{other}; try again shortly")),
            })?;
        products.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    Ok(Json(json!({ "userId": id, "products": products })))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}
