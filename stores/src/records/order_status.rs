//! An order's status record for `GET /order/{id}` (a hash, `Keyspace::order_status`):
//! written by the API once Kafka acknowledged the order (`accepted`, never overwriting a
//! later state) and by the worker once PostgreSQL has it (`persisted`), each time with
//! every field and the same time to live.

use shared::status::{OrderState, OrderStatus};
use shared::{DomainError, OrderPlaced, ProductId, Quantity, UserId};
use uuid::Uuid;

use super::{Fields, ReservationRecord};

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
    /// An [`shared::status::OrderState`].
    pub const STATUS: &str = "status";
}

/// An order's status record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStatusRecord {
    /// The order.
    pub order_id: Uuid,
    /// `accepted` or `persisted`.
    pub status: OrderState,
    /// What was bought.
    pub product_id: ProductId,
    /// Who bought it.
    pub user_id: UserId,
    /// How many units.
    pub quantity: Quantity,
}

impl OrderStatusRecord {
    /// The record of `event` in `status`.
    pub fn of(event: &OrderPlaced, status: OrderState) -> Self {
        Self {
            order_id: event.order_id,
            status,
            product_id: event.product_id.clone(),
            user_id: event.user_id.clone(),
            quantity: event.quantity,
        }
    }

    /// Adds the write of this record under `key` to `pipe`: every field, the status only
    /// if none is there yet when it is `accepted` (the worker's `persisted` may have come
    /// first), and the time to live.
    pub fn write(&self, pipe: &mut redis::Pipeline, key: &str, ttl_secs: u64) {
        let fields = [
            (field::ORDER_ID, self.order_id.to_string()),
            (field::PRODUCT_ID, self.product_id.to_string()),
            (field::USER_ID, self.user_id.to_string()),
            (field::QUANTITY, self.quantity.to_string()),
        ];
        pipe.cmd("HSET").arg(key).arg(&fields).ignore();
        match self.status {
            OrderState::Accepted => pipe.hset_nx(key, field::STATUS, self.status.as_str()),
            OrderState::Persisted => pipe.hset(key, field::STATUS, self.status.as_str()),
        }
        .ignore()
        .expire(key, i64::try_from(ttl_secs).unwrap_or(i64::MAX))
        .ignore();
    }

    /// The record of `order_id` from its hash's fields; `Ok(None)` when there is none (or
    /// it is incomplete: every write carries every field, so a partial hash is one that
    /// expired between two writes).
    pub fn from_fields(order_id: Uuid, fields: &Fields) -> Result<Option<Self>, DomainError> {
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
        }))
    }

    /// What `GET /order/{id}` shows of it, with the state of its reservation (and, while
    /// reserved, its payment deadline).
    pub fn view(&self, reservation: Option<&ReservationRecord>) -> OrderStatus {
        let state = reservation.map(|r| r.state);
        let deadline_ms = reservation
            .filter(|r| r.state == shared::ReservationState::Reserved)
            .map_or(0, |r| r.deadline_ms);
        OrderStatus {
            order_id: self.order_id,
            status: self.status,
            product_id: self.product_id.clone(),
            user_id: self.user_id.clone(),
            quantity: self.quantity,
            state,
            payment_deadline: None,
        }
        .with_deadline(deadline_ms)
    }
}
