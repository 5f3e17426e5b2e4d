//! `flashctl order cancel`: an operator ends a reservation (fraud, a customer's call).
//! The buyer's cap is freed at once; the units go back on sale once the worker has
//! applied the cancel to PostgreSQL.

use redis::aio::ConnectionLike;
use serde::Serialize;
use shared::keys::Keyspace;
use shared::reservation::ENDED_RETENTION_SECS;
use shared::{ProductId, ReservationState, UserId};
use stores::records::order_status::field;
use stores::redis::Conn;
use stores::reservations::{self, Move, Transition};
use stores::shards::Layout;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::OpsError;

/// What `cancel` did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cancelled {
    /// The order.
    pub order_id: Uuid,
    /// Its product.
    pub product: String,
    /// `cancelled` now, or already before (`repeated`).
    pub state: ReservationState,
    /// Whether it had been cancelled before this call.
    pub repeated: bool,
}

/// Cancels a reserved order, returning its units to the sale. The product is found in
/// the order's status record in Redis, or else in PostgreSQL (with its buyer, whose home
/// shard holds the reservation on a sharded sale).
pub async fn cancel(
    pg: &Client,
    redis: &mut Conn,
    keys: &Keyspace,
    order_id: Uuid,
    reason: &str,
) -> Result<Cancelled, OpsError> {
    let (product, user) = product_of(pg, redis, keys, order_id).await?;
    let id = order_id.to_string();
    // The shard holding the reservation on a sharded sale, else the product's keys.
    let home = Layout::read(redis, &keys.sale(&product))
        .await?
        .holding(redis, (keys, &product), &user, &id)
        .await?;
    let wanted = Move {
        keys: &home,
        product: product.as_str(),
        order_id: &id,
        to: ReservationState::Cancelled,
        reason,
        retention_secs: ENDED_RETENTION_SECS,
    };
    let moved = reservations::transition(redis, &wanted)
        .await
        .map_err(|e| OpsError::Other(e.into()))?;
    let done = |repeated| Cancelled {
        order_id,
        product: product.to_string(),
        state: ReservationState::Cancelled,
        repeated,
    };
    match moved {
        Transition::Moved {
            state: ReservationState::Cancelled,
            ..
        } => Ok(done(false)),
        Transition::Same(_) => Ok(done(true)),
        Transition::Moved { state, .. } | Transition::NotReserved(state) => {
            Err(OpsError::Conflict(format!(
                "order {order_id} is {}; nothing to cancel{}",
                state.as_str(),
                if state == ReservationState::Expired {
                    " (its units are on their way back on sale)"
                } else {
                    ""
                }
            )))
        }
        Transition::InFlight => Err(OpsError::Conflict(format!(
            "order {order_id} is still being handed to Kafka; retry in a few seconds"
        ))),
        Transition::NotFound => Err(OpsError::NotFound(format!(
            "order {order_id} has no reservation in Redis (unknown order, or a sale recovered without it)"
        ))),
        Transition::NotDue { .. } => Err(OpsError::Other(anyhow::anyhow!(
            "transition.lua answered NOT_DUE to a cancel"
        ))),
    }
}

/// The product of an order: its status record (written once Kafka has it), else its row.
async fn product_of(
    pg: &Client,
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    order_id: Uuid,
) -> Result<(ProductId, UserId), OpsError> {
    let (product, user): (Option<String>, Option<String>) = redis::cmd("HMGET")
        .arg(keys.order_status(&order_id))
        .arg(field::PRODUCT_ID)
        .arg(field::USER_ID)
        .query_async(redis)
        .await?;
    let (product, user) = match product.zip(user) {
        Some(both) => both,
        None => pg
            .query_opt(
                "SELECT product_id, user_id FROM orders WHERE order_id = $1",
                &[&order_id],
            )
            .await?
            .map(|r| (r.get(0), r.get(1)))
            .ok_or_else(|| OpsError::NotFound(format!("no order {order_id}")))?,
    };
    let bad = |e: &dyn std::fmt::Display| OpsError::Other(anyhow::anyhow!("order {order_id}: {e}"));
    Ok((
        ProductId::parse(product).map_err(|e| bad(&e))?,
        UserId::parse(user).map_err(|e| bad(&e))?,
    ))
}
