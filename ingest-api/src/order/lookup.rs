//! `GET /order/{id}`: an order's status record, read back from Redis, with the state of
//! its reservation.

use shared::DomainError;
use shared::keys::Keyspace;
use shared::status::OrderStatus;
use stores::records::{OrderStatusRecord, ReservationRecord, read_hash};
use stores::redis::Conn;
use stores::shards::Layout;
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

/// The status of `order_id`, if Redis has its record (written once Kafka acknowledged
/// the order, and kept `ORDER_STATUS_TTL_SECS`), with the state of its reservation
/// (more reads: the sale's layout, then the reservation in the product's slot or, on a
/// sharded sale, the shard holding it: [`Layout::holding`]).
pub async fn lookup(
    conn: &Conn,
    keys: &Keyspace,
    order_id: Uuid,
) -> Result<Option<OrderStatus>, LookupError> {
    let mut conn = conn.clone();
    let fields = read_hash(&mut conn, &keys.order_status(&order_id)).await?;
    let Some(record) = OrderStatusRecord::from_fields(order_id, &fields)? else {
        return Ok(None);
    };
    let layout = Layout::read(&mut conn, &keys.sale(&record.product_id)).await?;
    let id = order_id.to_string();
    let on = (keys, &record.product_id);
    let home = layout.holding(&mut conn, on, &record.user_id, &id).await?;
    let reservation = ReservationRecord::read(&mut conn, &home, &id).await?;
    Ok(Some(record.view(reservation.as_ref())))
}
