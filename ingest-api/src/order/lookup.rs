//! `GET /order/{id}`: an order's status record, read back from Redis.

use std::collections::HashMap;

use shared::keys::Keyspace;
use shared::status::OrderStatus;
use shared::{DomainError, ReservationState};
use stores::redis::Conn;
use uuid::Uuid;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Redis did not answer.
    #[error("redis unavailable")]
    Unavailable(#[from] redis::RedisError),
    /// The record holds something this build cannot read.
    #[error("unreadable order status record")]
    Corrupt(#[from] DomainError),
}

/// The status record of `order_id`, if there is one (it is written once Kafka
/// acknowledged the order, and kept `ORDER_STATUS_TTL_SECS`), with the state of its
/// reservation (a second read: the record lives in the product's slot).
pub async fn lookup(
    conn: &Conn,
    keys: &Keyspace,
    order_id: Uuid,
) -> Result<Option<OrderStatus>, LookupError> {
    let mut conn = conn.clone();
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.order_status(&order_id))
        .query_async(&mut conn)
        .await?;
    let Some(mut status) = OrderStatus::from_fields(order_id, &fields)? else {
        return Ok(None);
    };
    let (state, deadline): (Option<String>, Option<u64>) = redis::cmd("HMGET")
        .arg(
            keys.sale(&status.product_id)
                .reservation(&order_id.to_string()),
        )
        .arg("state")
        .arg("deadline")
        .query_async(&mut conn)
        .await?;
    status.state = state.as_deref().and_then(ReservationState::parse);
    if status.state == Some(ReservationState::Reserved) {
        status.payment_deadline = deadline.and_then(shared::status::deadline_text);
    }
    Ok(Some(status))
}
