//! The product-service's HTTP API: `router(state)`, used by every entrypoint.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router, middleware};
use chrono::Utc;
use evilent_contracts::{Envelope, Metadata, Money, ProductDeleted, ProductStockUpdated, Topic};
use evilent_platform::auth::{JwtValidator, require_auth};
use evilent_platform::{ApiError, FieldError, JsonBody, Principal};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{Product, Seller, check_price, parse_description, parse_id, parse_name};
use crate::handlers::{product_created, product_updated};
use crate::store::{ProductFilter, ProductStore, StoreError};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn ProductStore>,
    pub validator: Arc<JwtValidator>,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Concurrent => {
                ApiError::Conflict("the product changed meanwhile; retry".into())
            }
            StoreError::Backend(m) => ApiError::Internal(m),
        }
    }
}

/// The service's routes; `/health`, `/ready`, `/openapi.json` and `/docs` need no token.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/product", get(list_products).post(create_product))
        .route(
            "/product/{id}",
            get(get_product)
                .patch(update_product)
                .delete(delete_product),
        )
        .route("/product/{id}/stock", axum::routing::patch(update_stock))
        .route("/product/{id}/seller", get(product_seller))
        .route("/seller/{user_id}", get(get_seller))
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
struct ProductBody {
    id: String,
    user_id: String,
    name: String,
    description: Option<String>,
    price: Money,
    category_id: String,
    stock: u32,
    is_active: bool,
    created_at: String,
    updated_at: String,
}

fn body(p: &Product) -> ProductBody {
    ProductBody {
        id: p.id.clone(),
        user_id: p.user_id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        price: p.price,
        category_id: p.category_id.clone(),
        stock: p.stock,
        is_active: p.is_active,
        created_at: p
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        updated_at: p
            .updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

fn seller_body(s: &Seller) -> Value {
    json!({"userId": s.user_id, "email": s.email, "firstName": s.first_name, "lastName": s.last_name, "isActive": s.is_active})
}

fn metadata(headers: &HeaderMap, version: i64) -> Metadata {
    evilent_platform::correlation::event_metadata(headers, Topic::ProductEvents, version)
}

async fn existing(store: &dyn ProductStore, id: &str) -> Result<Product, ApiError> {
    store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no product {id}")))
}

/// Collects field errors.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn check<T>(
        &mut self,
        field: &str,
        v: Option<T>,
        rule: impl Fn(T) -> Result<T, String>,
    ) -> Option<T> {
        match rule(v?) {
            Ok(v) => Some(v),
            Err(m) => {
                self.0.push(FieldError::new(field, m));
                None
            }
        }
    }

    fn require<T>(&mut self, field: &str, v: Option<T>) -> Option<T> {
        if v.is_none() {
            self.0.push(FieldError::new(field, "is required"));
        }
        v
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductInput {
    name: Option<String>,
    description: Option<String>,
    price: Option<Money>,
    category_id: Option<String>,
    stock: Option<u32>,
    is_active: Option<bool>,
}

async fn create_product(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ProductInput>,
) -> Result<impl IntoResponse, ApiError> {
    let mut f = Fields::default();
    let name = f
        .require("name", input.name.clone())
        .and_then(|v| f.check("name", Some(v), |v| parse_name(&v)));
    let description = f.check("description", input.description, |v| parse_description(&v));
    let price = f
        .require("price", input.price)
        .and_then(|v| f.check("price", Some(v), check_price));
    let category = f
        .require("categoryId", input.category_id)
        .and_then(|v| f.check("categoryId", Some(v), |v| parse_id(&v)));
    f.finish()?;
    let (Some(name), Some(price), Some(category_id)) = (name, price, category) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    if let Some(s) = state.store.seller(&principal.sub).await?
        && !s.is_active
    {
        return Err(ApiError::Conflict(
            "the seller's user was deleted; no new products".into(),
        ));
    }
    let now = Utc::now();
    let product = Product {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: principal.sub.clone(),
        name,
        description,
        price,
        category_id,
        stock: input.stock.unwrap_or(0),
        is_active: input.is_active.unwrap_or(true),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let event = product_created(&product, metadata(&headers, 1));
    state.store.create(&product, &[event]).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/product/{}", product.id))],
        Json(body(&product)),
    ))
}

async fn get_product(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<Json<ProductBody>, ApiError> {
    Ok(Json(body(&existing(&*state.store, &id).await?)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    user_id: Option<String>,
    category_id: Option<String>,
    is_active: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list_products(
    State(state): State<AppState>,
    _: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut errors = Vec::new();
    let is_active = match q.is_active.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push(FieldError::new("isActive", "must be true or false"));
            None
        }
    };
    let limit = match q.limit.as_deref().map(str::parse::<u32>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            ));
            20
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = ProductFilter {
        user_id: q.user_id,
        category_id: q.category_id,
        is_active,
        limit,
        after: q.cursor,
    };
    let (items, more) = state.store.list(&filter).await?;
    let next = if more {
        items.last().map(|p| p.id.clone())
    } else {
        None
    };
    Ok(Json(
        json!({"items": items.iter().map(body).collect::<Vec<_>>(), "nextCursor": next}),
    ))
}

async fn update_product(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ProductInput>,
) -> Result<Json<ProductBody>, ApiError> {
    let mut p = existing(&*state.store, &id).await?;
    principal.may_write(&p.user_id)?;
    let mut f = Fields::default();
    let name = f.check("name", input.name, |v| parse_name(&v));
    let description = f.check("description", input.description, |v| parse_description(&v));
    let price = f.check("price", input.price, check_price);
    let category = f.check("categoryId", input.category_id, |v| parse_id(&v));
    if input.stock.is_some() {
        f.0.push(FieldError::new(
            "stock",
            "change stock with PATCH /product/{id}/stock",
        ));
    }
    f.finish()?;
    if let Some(v) = name {
        p.name = v;
    }
    if description.is_some() {
        p.description = description;
    }
    if let Some(v) = price {
        p.price = v;
    }
    if let Some(v) = category {
        p.category_id = v;
    }
    if let Some(v) = input.is_active {
        p.is_active = v;
    }
    p.version += 1;
    p.updated_at = Utc::now();
    let event = product_updated(&p, metadata(&headers, p.version));
    state.store.update(&p, &[event]).await?;
    Ok(Json(body(&p)))
}

#[derive(Deserialize)]
struct StockInput {
    delta: Option<i64>,
    stock: Option<i64>,
}

async fn update_stock(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<StockInput>,
) -> Result<Json<ProductBody>, ApiError> {
    // Concurrent stock changes retry on a fresh read: no update is lost.
    for _ in 0..5 {
        let mut p = existing(&*state.store, &id).await?;
        principal.may_write(&p.user_id)?;
        let current = i64::from(p.stock);
        let target = match (input.delta, input.stock) {
            (Some(d), None) => current.saturating_add(d),
            (None, Some(s)) => s,
            _ => return Err(ApiError::invalid("", "send exactly one of delta or stock")),
        };
        if target < 0 {
            return Err(ApiError::Conflict(format!(
                "stock would fall to {target}; it is {current}"
            )));
        }
        let Ok(stock) = u32::try_from(target) else {
            return Err(ApiError::invalid("stock", "is too large"));
        };
        p.stock = stock;
        p.version += 1;
        p.updated_at = Utc::now();
        let event = Envelope {
            meta: metadata(&headers, p.version),
            event: ProductStockUpdated {
                product_id: p.id.clone(),
                user_id: p.user_id.clone(),
                stock,
                delta: target - current,
            }
            .into(),
        };
        match state.store.update(&p, &[event]).await {
            Ok(()) => return Ok(Json(body(&p))),
            Err(StoreError::Concurrent) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict(
        "the stock changed too often meanwhile; retry".into(),
    ))
}

async fn delete_product(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let p = existing(&*state.store, &id).await?;
    principal.may_write(&p.user_id)?;
    let event = Envelope {
        meta: metadata(&headers, p.version + 1),
        event: ProductDeleted {
            product_id: p.id.clone(),
            user_id: p.user_id.clone(),
        }
        .into(),
    };
    state.store.delete(&p, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_seller(
    State(state): State<AppState>,
    _: Principal,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.store.seller(&user_id).await? {
        Some(s) if !s.email.is_empty() => Ok(Json(seller_body(&s))),
        _ => Err(ApiError::NotFound(format!(
            "no seller profile for {user_id} (yet)"
        ))),
    }
}

async fn product_seller(
    State(state): State<AppState>,
    _: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = existing(&*state.store, &id).await?;
    match state.store.seller(&p.user_id).await? {
        Some(s) if !s.email.is_empty() => Ok(Json(seller_body(&s))),
        _ => Err(ApiError::NotFound(format!(
            "no seller profile for {} (yet)",
            p.user_id
        ))),
    }
}

async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}
