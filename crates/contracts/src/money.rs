//! Money: integer minor units (cents) inside, a JSON decimal number outside.
//!
//! The seed writes prices as JSON numbers (`"price": 99.99`). Floating point
//! must never carry money through business rules, so [`Money`] parses that
//! number once, refuses anything with more than two decimal places, and keeps
//! an `i64` of cents from then on. On the way out it writes the number back
//! (`9999` cents → `99.99`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// An amount of money in minor units (cents). Currency is not modelled: the
/// marketplace has one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why a decimal could not become [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("an amount of money has at most 2 decimal places")]
    TooPrecise,
    #[error("not a finite amount of money")]
    NotFinite,
    #[error("amount out of range")]
    OutOfRange,
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
}

/// Largest amount whose cents an `f64` still holds exactly (2^53).
const MAX_EXACT_MINOR: f64 = 9_007_199_254_740_992.0;

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From minor units (cents).
    pub const fn from_minor(minor: i64) -> Self {
        Money(minor)
    }

    /// Minor units (cents).
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// From a JSON-style decimal number; more than two decimal places is an error.
    pub fn from_f64(value: f64) -> Result<Self, MoneyError> {
        if !value.is_finite() {
            return Err(MoneyError::NotFinite);
        }
        let scaled = value * 100.0;
        let rounded = scaled.round();
        if rounded.abs() > MAX_EXACT_MINOR {
            return Err(MoneyError::OutOfRange);
        }
        // 0.29 * 100 is 28.999999999999996: allow the binary representation
        // error, refuse a real third decimal (99.999 * 100 = 9999.9).
        if (scaled - rounded).abs() > 1e-6 {
            return Err(MoneyError::TooPrecise);
        }
        #[allow(clippy::cast_possible_truncation)]
        Ok(Money(rounded as i64))
    }

    /// Parses `"99.99"`, `"100"`, `"-3.5"`.
    pub fn parse_decimal(text: &str) -> Result<Self, MoneyError> {
        let t = text.trim();
        let (neg, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let ok = !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && !(digits.contains('.') && frac.is_empty());
        if !ok {
            return Err(MoneyError::NotANumber(text.to_owned()));
        }
        if frac.len() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyError::OutOfRange)?;
        let cents: i64 = format!("{frac:0<2}")
            .parse()
            .map_err(|_| MoneyError::OutOfRange)?;
        let minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Money(if neg { -minor } else { minor }))
    }

    /// The amount as the decimal number written on the wire.
    #[allow(clippy::cast_precision_loss)]
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.to_f64())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number with at most 2 decimal places")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                Money::from_f64(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                v.checked_mul(100)
                    .map(Money)
                    .ok_or_else(|| E::custom(MoneyError::OutOfRange))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(100))
                    .map(Money)
                    .ok_or_else(|| E::custom(MoneyError::OutOfRange))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse_decimal(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "number",
            "multipleOf": 0.01,
            "description": "A decimal amount with at most two decimal places (integer cents inside evilent)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_decimals_become_cents_and_back() {
        let m: Money = serde_json::from_str("99.99").unwrap();
        assert_eq!(m.minor(), 9999);
        assert_eq!(serde_json::to_string(&m).unwrap(), "99.99");
        assert_eq!(serde_json::from_str::<Money>("0.29").unwrap().minor(), 29);
        assert_eq!(serde_json::from_str::<Money>("100").unwrap().minor(), 10000);
        assert_eq!(Money::from_minor(10000).to_string(), "100.00");
        assert_eq!(Money::from_minor(-5).to_string(), "-0.05");
    }

    #[test]
    fn three_decimals_are_refused() {
        let err = serde_json::from_str::<Money>("99.999").unwrap_err();
        assert!(
            err.to_string().contains("at most 2 decimal places"),
            "{err}"
        );
        assert_eq!(Money::parse_decimal("1.234"), Err(MoneyError::TooPrecise));
        assert!(matches!(
            Money::parse_decimal("1."),
            Err(MoneyError::NotANumber(_))
        ));
        assert_eq!(Money::parse_decimal("12.5"), Ok(Money::from_minor(1250)));
    }
}
