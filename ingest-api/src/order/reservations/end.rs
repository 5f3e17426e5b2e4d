//! Ending a reservation from outside: the shopper's cancel and the payment service's
//! webhook (the expiry sweeper, [`super::expiry`], is the third way).
//!
//! The order's status record (written once Kafka has the order) names its product and
//! buyer; `lua/transition.lua` decides, atomically, on the product's keys, with a `WAIT`
//! for the required Redis replicas pipelined on the same connection ([`Replicas`], as
//! for an acceptance). An answer is given only once the replicas hold it, so a failover
//! cannot undo a payment the payment service was told about; a move's event is then
//! handed to Kafka, and if that fails the relay republishes it from the outbox. Every answer is a state, so a repeat — the same cancel, a redelivered
//! webhook — gets the same answer.

use shared::keys::{Keyspace, SaleKeys};
use shared::reservation::ENDED_RETENTION_SECS;
use shared::{ProductId, ReservationState, UserId};
use stores::records::order_status::field;
use stores::redis::Conn;
use stores::reservations::{self, Move, Transition};
use stores::shards::Layout;
use stores::{NotReplicated, Replicas};
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::order::handoff::Handoff;

/// Why an order did not end as asked.
#[derive(Debug, thiserror::Error)]
pub enum EndRefusal {
    /// No such order (or, for a cancel, not this user's).
    #[error("order not found")]
    NotFound,
    /// It already ended otherwise (or its deadline passed, and it expired now).
    #[error("order is {}", .0.as_str())]
    NotReserved(ReservationState),
    /// Its placement is not yet acknowledged by Kafka: retry shortly.
    #[error("order still being handed off")]
    InFlight,
    /// Redis failed, or the move is not yet on enough replicas: the outcome is unknown
    /// and a repeat tells it.
    #[error("redis: {0}")]
    Unavailable(String),
}

/// Moves orders on request.
#[derive(Clone)]
pub struct Reservations {
    conn: Conn,
    keys: Keyspace,
    handoff: Handoff,
    replicas: Replicas,
    metrics: Metrics,
}

impl std::fmt::Debug for Reservations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservations").finish_non_exhaustive()
    }
}

impl Reservations {
    /// Moves orders through `conn`, handing events off through `handoff`.
    pub fn new(
        conn: Conn,
        keys: Keyspace,
        handoff: Handoff,
        replicas: Replicas,
        metrics: Metrics,
    ) -> Self {
        Self {
            conn,
            keys,
            handoff,
            replicas,
            metrics,
        }
    }

    /// Ends `order_id` as `to` (`reason` goes with the event). With `buyer`, the order
    /// must be that user's (a shopper's cancel). Returns the state the order is in: `to`,
    /// now or from an earlier identical request.
    pub async fn end(
        &self,
        order_id: Uuid,
        buyer: Option<&UserId>,
        to: ReservationState,
        reason: &str,
    ) -> Result<ReservationState, EndRefusal> {
        let mut conn = self.conn.clone();
        let (product, user): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.order_status(&order_id))
            .arg(field::PRODUCT_ID)
            .arg(field::USER_ID)
            .query_async(&mut conn)
            .await
            .map_err(|e| EndRefusal::Unavailable(e.to_string()))?;
        let product = product
            .and_then(|p| ProductId::parse(p).ok())
            .ok_or(EndRefusal::NotFound)?;
        if buyer.is_some_and(|b| user.as_deref() != Some(b.as_str())) {
            return Err(EndRefusal::NotFound);
        }
        let keys = self.home(&mut conn, &product, user, order_id).await?;
        let (moved, replicated) = self
            .decide(&mut conn, (&product, &keys), order_id, to, reason)
            .await?;
        tracing::debug!(%order_id, ?moved, "transition.lua answered");
        // Every answer below is a state a failover must not undo: the move itself, or a
        // repeat of one that may have been answered 503 (its WAIT fell short).
        if !matches!(moved, Transition::InFlight | Transition::NotFound) {
            replicated.map_err(|e| {
                self.metrics.replica_shortfall();
                tracing::warn!(error = %e, %order_id, "move not on enough replicas; the relay will publish it");
                EndRefusal::Unavailable(e.to_string())
            })?;
        }
        match moved {
            Transition::Moved {
                state,
                entry_id,
                event,
                ..
            } => {
                self.metrics.transition(state);
                self.publish(&keys, order_id, &entry_id, &event).await;
                if state == to {
                    Ok(state)
                } else {
                    Err(EndRefusal::NotReserved(state))
                }
            }
            Transition::Same(state) => Ok(state),
            Transition::NotReserved(state) => Err(EndRefusal::NotReserved(state)),
            Transition::InFlight => Err(EndRefusal::InFlight),
            Transition::NotFound => Err(EndRefusal::NotFound),
            Transition::NotDue { .. } => Err(EndRefusal::Unavailable(
                "transition.lua answered NOT_DUE to a payment or cancel".into(),
            )),
        }
    }

    /// The keys holding `user`'s reservation `order_id` of `product`: the product's, or
    /// on a sharded sale the shard's holding it ([`Layout::holding`]).
    async fn home(
        &self,
        conn: &mut Conn,
        product: &ProductId,
        user: Option<String>,
        order_id: Uuid,
    ) -> Result<SaleKeys, EndRefusal> {
        let unavailable = |e: redis::RedisError| EndRefusal::Unavailable(e.to_string());
        let layout = Layout::read(conn, &self.keys.sale(product))
            .await
            .map_err(unavailable)?;
        match user.map(UserId::parse) {
            Some(Ok(user)) => layout
                .holding(conn, (&self.keys, product), &user, &order_id.to_string())
                .await
                .map_err(unavailable),
            _ if layout.shards().is_none() => Ok(self.keys.sale(product)),
            _ => Err(EndRefusal::NotFound),
        }
    }

    /// One call of `lua/transition.lua` and, pipelined with it on the same connection, a
    /// `WAIT` for the required replicas: what the script decided, and whether the
    /// replicas hold it.
    /// `keys` hold the reservation: the product's, or the buyer's home shard's.
    pub async fn decide(
        &self,
        conn: &mut Conn,
        (product, keys): (&ProductId, &SaleKeys),
        order_id: Uuid,
        to: ReservationState,
        reason: &str,
    ) -> Result<(Transition, Result<(), NotReplicated>), EndRefusal> {
        let unavailable = |e: &dyn std::fmt::Display| EndRefusal::Unavailable(e.to_string());
        let id = order_id.to_string();
        let wanted = Move {
            keys,
            product: product.as_str(),
            order_id: &id,
            to,
            reason,
            retention_secs: ENDED_RETENTION_SECS,
        };
        let (reply, replicated) = wanted
            .call()
            .query_then_wait(conn, &self.replicas)
            .await
            .map_err(|e| unavailable(&e))?;
        let moved = reservations::read_reply(&reply).map_err(|e| unavailable(&e))?;
        Ok((moved, replicated))
    }

    /// Hands a move the replicas hold to Kafka; a failed publish is left to the relay,
    /// which republishes the entry from the outbox.
    pub async fn publish(&self, keys: &SaleKeys, order_id: Uuid, entry_id: &str, event: &str) {
        let confirmation = self.handoff.transitioned(keys, order_id, entry_id);
        if let Err(e) = self.handoff.publish(order_id, event, confirmation).await {
            tracing::warn!(error = %e, %order_id, "move not published; the relay will publish it");
        }
    }
}
