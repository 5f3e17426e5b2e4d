//! Reservations that end: an accepted order is `reserved` until exactly one of `paid`,
//! `cancelled` or `expired`, decided in Redis by `lua/transition.lua`, and the
//! [`OrderTransitioned`] event that carries the decision to the worker.
//!
//! The event is written by the script itself into the product's outbox, in the same
//! atomic step as the transition, and published keyed by the order id, so it reaches the
//! worker after the order's [`crate::OrderPlaced`] (the script refuses to move an order
//! whose placement Kafka has not acknowledged yet). Its version is the same
//! [`crate::event::SCHEMA_VERSION`], under the same rules.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{ProductId, Quantity, UserId};
use crate::event::{DecodeError, PLAUSIBLE_MS, SCHEMA_VERSION};

/// How long an ended reservation's record stays in Redis, so a late payment or a repeated
/// cancel learns how the order ended: a week.
pub const ENDED_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// The `type` of an [`OrderTransitioned`] event.
pub const TRANSITION_TYPE: &str = "OrderTransitioned";

/// Where a reservation stands. Only `Reserved` can move, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationState {
    /// Accepted (the 202); the units are held for the shopper.
    Reserved,
    /// Paid: the units are sold for good.
    Paid,
    /// Cancelled by the shopper or an operator: the units went back on sale.
    Cancelled,
    /// Not paid within the sale's payment window: the units went back on sale.
    Expired,
}

impl ReservationState {
    /// Every state, `Reserved` first.
    pub const ALL: [Self; 4] = [Self::Reserved, Self::Paid, Self::Cancelled, Self::Expired];

    /// The name stored in Redis and PostgreSQL and answered by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether reaching this state gives the units back to the sale.
    pub fn returns_units(self) -> bool {
        matches!(self, Self::Cancelled | Self::Expired)
    }
}

/// A reservation that ended: written by `lua/transition.lua`, applied by the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTransitioned {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u16,
    /// Always [`TRANSITION_TYPE`]; tells this event from an `OrderPlaced`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The order that moved.
    pub order_id: Uuid,
    /// Its product.
    pub product_id: ProductId,
    /// Its buyer.
    pub user_id: UserId,
    /// Its units (returned to stock unless `state` is `paid`).
    pub quantity: Quantity,
    /// The state it moved to from `reserved`.
    pub state: ReservationState,
    /// When Redis decided it, milliseconds since the Unix epoch (Redis server time).
    pub at_ms: u64,
    /// Who or what moved it: `shopper`, `payment`, `expiry`, or an operator's reason.
    #[serde(default)]
    pub reason: String,
}

impl OrderTransitioned {
    /// Reads an event, refusing other versions, other types and a move back to
    /// `reserved`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let event: Self = serde_json::from_slice(bytes)?;
        if event.schema_version != SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion(event.schema_version));
        }
        if event.kind != TRANSITION_TYPE {
            return Err(DecodeError::UnknownType(event.kind));
        }
        if event.state == ReservationState::Reserved {
            return Err(DecodeError::UnknownType(format!(
                "{TRANSITION_TYPE} to reserved"
            )));
        }
        if !PLAUSIBLE_MS.contains(&event.at_ms) {
            return Err(DecodeError::ImplausibleTime(event.at_ms));
        }
        Ok(event)
    }

    /// Serializes as the script writes it (used by tests and tools).
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly the text `lua/transition.lua` builds.
    const FROM_LUA: &str = r#"{"schema_version":1,"type":"OrderTransitioned","order_id":"01a22c40-7a28-7397-9553-eba6b73baf14","product_id":"bike","user_id":"u-1","quantity":2,"state":"expired","at_ms":1764500000000,"reason":"expiry"}"#;

    #[test]
    fn reads_what_the_script_writes_and_round_trips() {
        let e = OrderTransitioned::decode(FROM_LUA.as_bytes()).expect("decodes");
        assert_eq!(e.state, ReservationState::Expired);
        assert_eq!(e.quantity.get(), 2);
        assert!(e.state.returns_units());
        assert_eq!(
            OrderTransitioned::decode(e.to_json().as_bytes()).expect("again"),
            e
        );
    }

    #[test]
    fn refuses_other_types_versions_and_states() {
        let mut v: serde_json::Value = serde_json::from_str(FROM_LUA).expect("json");
        v["type"] = "Other".into();
        assert!(matches!(
            OrderTransitioned::decode(v.to_string().as_bytes()),
            Err(DecodeError::UnknownType(_))
        ));
        v["type"] = TRANSITION_TYPE.into();
        v["state"] = "reserved".into();
        assert!(OrderTransitioned::decode(v.to_string().as_bytes()).is_err());
        v["state"] = "paid".into();
        v["schema_version"] = 2.into();
        assert!(matches!(
            OrderTransitioned::decode(v.to_string().as_bytes()),
            Err(DecodeError::UnsupportedVersion(2))
        ));
    }
}
