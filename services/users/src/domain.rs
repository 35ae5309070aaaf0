//! Users as the user-service understands them, and the rules their fields obey.
//!
//! Values are parsed once, at the HTTP boundary, into types that cannot hold
//! an invalid value ([`Email`], [`PersonName`]); every failing field is
//! reported at once, with its path.

use chrono::{DateTime, Utc};
use evilent_platform::FieldError;

/// An email address: trimmed, lowercased, `local@domain.tld`, ≤ 254 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_lowercase();
        if s.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("must be an email address like name@example.com".into());
        };
        let ok = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(char::is_whitespace);
        if ok {
            Ok(Email(s))
        } else {
            Err("must be an email address like name@example.com".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A first or last name: trimmed, 1..=100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > 100 {
            return Err("must be at most 100 characters".into());
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(PersonName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The Cognito `sub` of the user.
    pub id: String,
    pub email: Email,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Increments with every change; the `aggregateVersion` of its events.
    pub version: i64,
}

/// Collects field errors while parsing a request.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Parses a required field.
    pub fn required<T>(
        &mut self,
        name: &str,
        raw: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match raw {
            None => {
                self.0.push(FieldError::new(name, "is required"));
                None
            }
            Some(v) => self.optional(name, Some(v), parse),
        }
    }

    /// Parses an optional field.
    pub fn optional<T>(
        &mut self,
        name: &str,
        raw: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(raw?) {
            Ok(v) => Some(v),
            Err(message) => {
                self.0.push(FieldError::new(name, message));
                None
            }
        }
    }

    /// The errors, if any.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  John@Example.COM ").unwrap().as_str(),
            "john@example.com"
        );
        for bad in [
            "",
            "john",
            "john@",
            "@example.com",
            "john@example",
            "jo hn@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse(" John ").unwrap().as_str(), "John");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
    }
}
