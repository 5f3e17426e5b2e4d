//! Validated domain newtypes.
//!
//! Each type can only be built through its parser, so a value that reaches Redis key
//! names, SQL parameters or log fields has already been checked. The rules are the ones of
//! the public contract (`ingest-api/API.md`); the JSON Schema of `POST /order` states the same
//! rules for the body, these types also guard every other way in (events, CLI, tests).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a raw value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A product or user id is empty, too long or has a character outside `[a-z0-9-]`.
    #[error("{what} must match ^[a-z0-9-]{{1,50}}$")]
    InvalidId {
        /// Which id was refused.
        what: &'static str,
    },
    /// The quantity is outside `1..=10`.
    #[error("quantity must be an integer from 1 to {max}")]
    InvalidQuantity {
        /// The largest quantity allowed per order.
        max: u32,
    },
    /// The idempotency key breaks the 8–128 `[A-Za-z0-9_-]` rule.
    #[error("idempotency key must be 8 to 128 characters of [A-Za-z0-9_-]")]
    InvalidIdempotencyKey,
    /// The device fingerprint is empty, too long or not printable ASCII.
    #[error("device fingerprint must be 1 to 128 printable ASCII characters")]
    InvalidFingerprint,
    /// A stored state (of an order or a sale) that this build does not know.
    #[error("unknown {what} state")]
    UnknownState {
        /// Whose state.
        what: &'static str,
    },
}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates (`^[a-z0-9-]{1,50}$`).
            pub fn parse(raw: impl Into<String>) -> Result<Self, DomainError> {
                let raw = raw.into();
                if (1..=50).contains(&raw.len()) && raw.bytes().all(is_id_char) {
                    Ok(Self(raw))
                } else {
                    Err(DomainError::InvalidId { what: $what })
                }
            }

            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }
    };
}

id_type!(
    /// A product on sale; also the unit of sharding (`{p:<productId>}` hash tag).
    ProductId,
    "productId"
);
id_type!(
    /// The shopper, as the client app identifies them.
    UserId,
    "userId"
);

/// Units in one order, `1..=10`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// The largest quantity one order may ask for.
    pub const MAX: u32 = 10;

    /// Validates `1..=10`.
    pub fn new(units: u32) -> Result<Self, DomainError> {
        if (1..=Self::MAX).contains(&units) {
            Ok(Self(units))
        } else {
            Err(DomainError::InvalidQuantity { max: Self::MAX })
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Self(1)
    }
}

impl TryFrom<u32> for Quantity {
    type Error = DomainError;
    fn try_from(units: u32) -> Result<Self, Self::Error> {
        Self::new(units)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({})", self.0)
    }
}

/// The client's `Idempotency-Key`: 8–128 characters of `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a header value. The IETF draft sends the key as a structured-field string
    /// (`"abc…"`), so one pair of surrounding double quotes is removed first.
    pub fn parse_header(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        let unquoted = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or(raw);
        Self::parse(unquoted)
    }

    /// Parses an unquoted key.
    pub fn parse(raw: impl Into<String>) -> Result<Self, DomainError> {
        let raw = raw.into();
        let ok = (8..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
        if ok {
            Ok(Self(raw))
        } else {
            Err(DomainError::InvalidIdempotencyKey)
        }
    }

    /// The key without quotes, as it enters the canonical signing string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", self.0)
    }
}

/// The opaque device fingerprint a client app sends in `X-Device-Fingerprint`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// 1–128 printable ASCII characters (space to `~`).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (1..=128).contains(&raw.len()) && raw.bytes().all(|c| (0x20..=0x7e).contains(&c));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::InvalidFingerprint)
        }
    }

    /// The fingerprint as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_contract_pattern() {
        assert!(ProductId::parse("iphone-15").is_ok());
        assert!(ProductId::parse("a".repeat(50)).is_ok());
        assert!(ProductId::parse("a".repeat(51)).is_err());
        assert!(ProductId::parse("").is_err());
        assert!(UserId::parse("U-1").is_err());
        assert!(UserId::parse("u_1").is_err());
        assert!(UserId::parse("u 1").is_err());
    }

    #[test]
    fn quantity_is_one_to_ten() {
        assert!(Quantity::new(0).is_err());
        assert_eq!(Quantity::new(10).map(Quantity::get), Ok(10));
        assert!(Quantity::new(11).is_err());
        assert_eq!(Quantity::default().get(), 1);
    }

    #[test]
    fn idempotency_key_accepts_quoted_form() {
        let k = IdempotencyKey::parse_header("\"abcdefgh\"").expect("quoted key");
        assert_eq!(k.as_str(), "abcdefgh");
        assert!(IdempotencyKey::parse_header("abcdefg").is_err());
        assert!(IdempotencyKey::parse_header(&"a".repeat(129)).is_err());
        assert!(IdempotencyKey::parse_header("abc.defgh").is_err());
        assert!(IdempotencyKey::parse_header("\"abcdefgh").is_err());
    }

    #[test]
    fn ids_refuse_bad_values_when_deserialized() {
        let bad: Result<ProductId, _> = serde_json::from_str("\"Bad Id\"");
        assert!(bad.is_err());
        let bad: Result<Quantity, _> = serde_json::from_str("11");
        assert!(bad.is_err());
    }
}
