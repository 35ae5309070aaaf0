//! Products and seller profiles as the product-service understands them.

use chrono::{DateTime, Utc};
use evilent_contracts::Money;

/// A product on sale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    /// The seller (the user who created it).
    pub user_id: String,
    pub name: String,
    pub description: Option<String>,
    pub price: Money,
    pub category_id: String,
    pub stock: u32,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increments with every change; the `aggregateVersion` of its events.
    pub version: i64,
}

/// A seller profile: the product-service's copy of a user, kept from user events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seller {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    /// The `aggregateVersion` of the last user event applied (0: none known).
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// Parses a product name: trimmed, 1..=200 characters.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    match s.chars().count() {
        0 => Err("must not be empty".into()),
        n if n > 200 => Err("must be at most 200 characters".into()),
        _ => Ok(s.to_owned()),
    }
}

/// Parses a description: at most 2,000 characters.
pub fn parse_description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > 2000 {
        Err("must be at most 2000 characters".into())
    } else {
        Ok(raw.trim().to_owned())
    }
}

/// Parses an id given by a client (category): 1..=100 characters of letters, digits, `-`, `_`.
pub fn parse_id(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("must be 1-100 letters, digits, '-' or '_'".into())
    }
}

/// A price must not be negative.
pub fn check_price(price: Money) -> Result<Money, String> {
    if price.minor() < 0 {
        Err("must not be negative".into())
    } else {
        Ok(price)
    }
}
