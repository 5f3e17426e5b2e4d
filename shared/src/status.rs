//! The order-status record: what `GET /order/{id}` answers.
//!
//! A Redis hash under [`crate::keys::Keyspace::order_status`], written by the API once
//! Kafka acknowledged the order (`accepted`, never overwriting a later state) and by the
//! worker once PostgreSQL has it (`persisted`), each time with the same time to live. The
//! field names, the states and the default retention are defined here once for both.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, OrderPlaced, ProductId, Quantity, UserId};

/// How long a record is kept when `ORDER_STATUS_TTL_SECS` is not set: a day.
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;

/// The hash's fields.
pub mod field {
    /// The order id.
    pub const ORDER_ID: &str = "order_id";
    /// The product.
    pub const PRODUCT_ID: &str = "product_id";
    /// The buyer.
    pub const USER_ID: &str = "user_id";
    /// Units.
    pub const QUANTITY: &str = "quantity";
    /// An [`super::OrderState`].
    pub const STATUS: &str = "status";
}

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

/// The fields of `event`'s record besides [`field::STATUS`].
pub fn order_fields(event: &OrderPlaced) -> [(&'static str, String); 4] {
    [
        (field::ORDER_ID, event.order_id.to_string()),
        (field::PRODUCT_ID, event.product_id.to_string()),
        (field::USER_ID, event.user_id.to_string()),
        (field::QUANTITY, event.quantity.to_string()),
    ]
}

/// One record as read back.
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

/// `body`, the JSON of an order's `202` (an [`OrderStatus`] without a deadline), with the
/// payment deadline the admission script set (`deadline_ms`; 0: none, `body` unchanged).
/// `paymentDeadline` is the record's last member, so it is joined at the end of the text
/// as serializing the whole record would write it, without parsing the body on the accept
/// path. The same inputs always give the same bytes, so a replay repeats the first answer
/// exactly.
pub fn with_payment_deadline(body: String, deadline_ms: u64) -> String {
    let Some(deadline) = deadline_text(deadline_ms) else {
        return body;
    };
    match body.strip_suffix('}') {
        Some(head) if head.starts_with('{') && head.len() > 1 => {
            format!("{head},\"paymentDeadline\":\"{deadline}\"}}")
        }
        _ => body,
    }
}

impl OrderStatus {
    /// The record of `order_id` from its hash's fields; `Ok(None)` when there is none (or
    /// it is incomplete: the worker's and the API's writes each carry every field, so a
    /// partial hash is one that expired between them).
    pub fn from_fields(
        order_id: Uuid,
        fields: &HashMap<String, String>,
    ) -> Result<Option<Self>, DomainError> {
        let get = |name: &str| fields.get(name);
        let (Some(status), Some(product), Some(user), Some(quantity)) = (
            get(field::STATUS),
            get(field::PRODUCT_ID),
            get(field::USER_ID),
            get(field::QUANTITY),
        ) else {
            return Ok(None);
        };
        let status =
            OrderState::parse(status).ok_or(DomainError::UnknownState { what: "order" })?;
        let quantity = quantity
            .parse::<u32>()
            .map_err(|_| DomainError::InvalidQuantity { max: Quantity::MAX })?;
        Ok(Some(Self {
            order_id,
            status,
            product_id: ProductId::parse(product.clone())?,
            user_id: UserId::parse(user.clone())?,
            quantity: Quantity::new(quantity)?,
            state: None,
            payment_deadline: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let id = Uuid::now_v7();
        let mut fields: HashMap<String, String> = [
            (field::ORDER_ID, id.to_string()),
            (field::PRODUCT_ID, "p-1".to_owned()),
            (field::USER_ID, "u-1".to_owned()),
            (field::QUANTITY, "2".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(
            OrderStatus::from_fields(id, &fields),
            Ok(None),
            "no status yet"
        );
        fields.insert(field::STATUS.into(), OrderState::Persisted.as_str().into());
        let record = OrderStatus::from_fields(id, &fields)
            .expect("valid")
            .expect("complete");
        assert_eq!(record.status, OrderState::Persisted);
        assert_eq!(record.quantity.get(), 2);
        fields.insert(field::STATUS.into(), "lost".into());
        assert!(OrderStatus::from_fields(id, &fields).is_err());
    }

    #[test]
    fn a_deadline_joins_the_body_the_same_way_every_time() {
        let status = OrderStatus {
            order_id: Uuid::now_v7(),
            status: OrderState::Accepted,
            product_id: ProductId::parse("p-1".to_owned()).expect("valid"),
            user_id: UserId::parse("u-1".to_owned()).expect("valid"),
            quantity: Quantity::new(1).expect("valid"),
            state: Some(crate::ReservationState::Reserved),
            payment_deadline: None,
        };
        let body = serde_json::to_string(&status).expect("serializes");
        assert_eq!(with_payment_deadline(body.clone(), 0), body);
        let with = with_payment_deadline(body.clone(), 1_796_048_397_123);
        assert_eq!(with, with_payment_deadline(body.clone(), 1_796_048_397_123));
        let json: serde_json::Value = serde_json::from_str(&with).expect("json");
        assert_eq!(json["paymentDeadline"], "2026-11-30T14:19:57.123Z");
        assert_eq!(json["state"], "reserved");
        assert_eq!(with_payment_deadline("not json".into(), 5), "not json");
        // Exactly what serializing the record with its deadline writes.
        let whole = OrderStatus {
            payment_deadline: deadline_text(1_796_048_397_123),
            ..status.clone()
        };
        assert_eq!(with, serde_json::to_string(&whole).expect("serializes"));
        // Past what RFC 3339 can write: no deadline shown, and no panic.
        assert_eq!(deadline_text(u64::MAX), None);
        assert_eq!(with_payment_deadline(body.clone(), u64::MAX), body);
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
