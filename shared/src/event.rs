//! The events on the order topic: [`OrderPlaced`], what the API hands to Kafka and the
//! worker writes to PostgreSQL, and [`OrderTransitioned`], the end of its reservation;
//! [`OrderEvent`] reads either.
//!
//! The event is versioned. A consumer that meets a version it does not know treats the
//! message as poison (dead-letter, never guess), so producers can be upgraded after
//! consumers. Within one version, fields are only ever added as optional.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{IdempotencyKey, ProductId, Quantity, UserId};
pub use crate::reservation::OrderTransitioned;

/// The version this build writes and the only one it reads.
pub const SCHEMA_VERSION: u16 = 1;

/// An order the admission script accepted and took stock for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u16,
    /// Primary key in PostgreSQL; a replayed event carries the same id and is a no-op.
    pub order_id: Uuid,
    /// What was bought.
    pub product_id: ProductId,
    /// Who bought it.
    pub user_id: UserId,
    /// How many units were taken from stock.
    pub quantity: Quantity,
    /// The client's key, kept for support queries ("what happened to my retry?").
    pub idempotency_key: IdempotencyKey,
    /// When the admission script accepted the order, milliseconds since the Unix epoch.
    pub accepted_at_ms: u64,
    /// Keyed hash of the client's network (IPv4 address or IPv6 /64); never the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_hash: Option<String>,
    /// Keyed hash of the device fingerprint, if the client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_hash: Option<String>,
}

/// Why bytes could not be read as an [`OrderPlaced`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or a field is missing or invalid.
    #[error("malformed OrderPlaced event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A version this build does not understand.
    #[error("unsupported OrderPlaced schema_version {0} (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion(u16),
    /// A time outside 2020..2100: not something our API or scripts wrote.
    #[error("implausible time {0} ms")]
    ImplausibleTime(u64),
    /// A `type` this build does not know.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
}

/// 2020-01-01 and 2100-01-01, in ms: the range of plausible event times.
pub(crate) const PLAUSIBLE_MS: std::ops::Range<u64> = 1_577_836_800_000..4_102_444_800_000;

impl OrderPlaced {
    /// Serializes to the JSON written to Kafka and the outbox.
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an event, refusing unknown versions. The payload is parsed once; only a
    /// payload that does not read as this version is probed for its version, to tell a
    /// newer event from a malformed one.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u16,
        }
        let event: Self = match serde_json::from_slice(bytes) {
            Ok(event) => event,
            Err(malformed) => {
                return Err(match serde_json::from_slice::<Version>(bytes) {
                    Ok(Version { schema_version }) if schema_version != SCHEMA_VERSION => {
                        DecodeError::UnsupportedVersion(schema_version)
                    }
                    _ => DecodeError::Malformed(malformed),
                });
            }
        };
        if event.schema_version != SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion(event.schema_version));
        }
        if !PLAUSIBLE_MS.contains(&event.accepted_at_ms) {
            return Err(DecodeError::ImplausibleTime(event.accepted_at_ms));
        }
        Ok(event)
    }

    /// `accepted_at_ms` as a timestamp.
    pub fn accepted_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.accepted_at_ms)
    }
}

/// Any event of the order topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEvent {
    /// An accepted order.
    Placed(OrderPlaced),
    /// The end of its reservation.
    Transitioned(OrderTransitioned),
}

impl OrderEvent {
    /// Reads either event. Placements, nearly every message, are tried first and parsed
    /// once; only what does not read as one is tried as a transition, and a payload
    /// that is neither reports why it is not a placement (the usual case).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match OrderPlaced::decode(bytes) {
            Ok(placed) => Ok(Self::Placed(placed)),
            Err(not_placed) => match OrderTransitioned::decode(bytes) {
                Ok(moved) => Ok(Self::Transitioned(moved)),
                Err(DecodeError::Malformed(_)) => Err(not_placed),
                Err(other) => Err(other),
            },
        }
    }

    /// The order the event is about (the Kafka key).
    pub fn order_id(&self) -> Uuid {
        match self {
            Self::Placed(e) => e.order_id,
            Self::Transitioned(e) => e.order_id,
        }
    }

    /// Its product.
    pub fn product_id(&self) -> &ProductId {
        match self {
            Self::Placed(e) => &e.product_id,
            Self::Transitioned(e) => &e.product_id,
        }
    }
}

/// Milliseconds since the Unix epoch by the local clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OrderPlaced {
        OrderPlaced {
            schema_version: SCHEMA_VERSION,
            order_id: Uuid::now_v7(),
            product_id: ProductId::parse("iphone-15").expect("valid"),
            user_id: UserId::parse("u-1").expect("valid"),
            quantity: Quantity::new(2).expect("valid"),
            idempotency_key: IdempotencyKey::parse("abcdefgh").expect("valid"),
            accepted_at_ms: 1_700_000_000_000,
            ip_hash: None,
            device_hash: Some("ab12".into()),
        }
    }

    #[test]
    fn round_trips() {
        let e = sample();
        assert_eq!(
            OrderPlaced::decode(e.to_json().as_bytes()).expect("decodes"),
            e
        );
    }

    #[test]
    fn refuses_other_versions_and_bad_fields() {
        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("json");
        v["schema_version"] = 2.into();
        assert!(matches!(
            OrderPlaced::decode(v.to_string().as_bytes()),
            Err(DecodeError::UnsupportedVersion(2))
        ));
        v["schema_version"] = 1.into();
        v["quantity"] = 0.into();
        assert!(matches!(
            OrderPlaced::decode(v.to_string().as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(OrderPlaced::decode(b"not json").is_err());
        v["quantity"] = 1.into();
        v["accepted_at_ms"] = u64::MAX.into();
        assert!(matches!(
            OrderPlaced::decode(v.to_string().as_bytes()),
            Err(DecodeError::ImplausibleTime(_))
        ));
    }
}
