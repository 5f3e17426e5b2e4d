//! An order as `GET /order/{id}` and the `202` show it ([`OrderStatus`]), and where it
//! stands on its way to PostgreSQL ([`OrderState`]). The Redis record behind it is
//! `stores::records::OrderStatusRecord`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ProductId, Quantity, UserId};

/// How long a record is kept when `ORDER_STATUS_TTL_SECS` is not set: a day.
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;

/// Where an order stands, as `GET /order/{id}` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Accepted and acknowledged by Kafka; not yet in PostgreSQL.
    Accepted,
    /// Written to PostgreSQL by the worker.
    Persisted,
}

impl OrderState {
    /// The stored and answered text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Persisted => "persisted",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "accepted" => Some(Self::Accepted),
            "persisted" => Some(Self::Persisted),
            _ => None,
        }
    }
}

/// An order as the API answers it: the `202` body and `GET /order/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    /// The order id.
    pub order_id: Uuid,
    /// `accepted` or `persisted`.
    pub status: OrderState,
    /// What was bought.
    pub product_id: ProductId,
    /// Who bought it.
    pub user_id: UserId,
    /// How many units.
    pub quantity: Quantity,
    /// Where its reservation stands, from its reservation record (absent when Redis no
    /// longer holds one: a sale rebuilt by `flashctl sale recover` keeps only live ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::ReservationState>,
    /// While `reserved` on a sale with a payment window: when the reservation expires
    /// unless paid, by Redis server time (RFC 3339, UTC, milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_deadline: Option<String>,
}

/// `deadline_ms` (Unix milliseconds) as the answers show it; `None` for 0 (no deadline)
/// and for a time RFC 3339 cannot write (past the year 9999).
pub fn deadline_text(deadline_ms: u64) -> Option<String> {
    use std::fmt::Write as _;
    if deadline_ms == 0 {
        return None;
    }
    let at = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(deadline_ms))?;
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_millis(at)).ok()?;
    Some(text)
}

impl OrderStatus {
    /// The same order with the payment deadline the admission script set (`deadline_ms`,
    /// Unix ms; 0: none, nothing shown).
    pub fn with_deadline(self, deadline_ms: u64) -> Self {
        Self {
            payment_deadline: deadline_text(deadline_ms),
            ..self
        }
    }

    /// As JSON: the `202` body, the same bytes for the same order every time (so a replay
    /// repeats the first answer exactly).
    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_shown_in_rfc_3339_or_not_at_all() {
        let status = OrderStatus {
            order_id: Uuid::now_v7(),
            status: OrderState::Accepted,
            product_id: ProductId::parse("p-1".to_owned()).expect("valid"),
            user_id: UserId::parse("u-1".to_owned()).expect("valid"),
            quantity: Quantity::new(1).expect("valid"),
            state: Some(crate::ReservationState::Reserved),
            payment_deadline: None,
        };
        assert_eq!(status.clone().with_deadline(0), status);
        let with = status.clone().with_deadline(1_796_048_397_123);
        let json: serde_json::Value = serde_json::from_str(&with.to_json()).expect("json");
        assert_eq!(json["paymentDeadline"], "2026-11-30T14:19:57.123Z");
        assert_eq!(json["state"], "reserved");
        assert_eq!(
            with.to_json(),
            status.clone().with_deadline(1_796_048_397_123).to_json()
        );
        // Past what RFC 3339 can write: no deadline shown, and no panic.
        assert_eq!(deadline_text(u64::MAX), None);
        assert_eq!(status.clone().with_deadline(u64::MAX), status);
        let read: OrderStatus = serde_json::from_str(&status.to_json()).expect("reads back");
        assert_eq!(read, status);
    }

    #[test]
    fn states_round_trip() {
        for s in [OrderState::Accepted, OrderState::Persisted] {
            assert_eq!(OrderState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).expect("serializes"),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
