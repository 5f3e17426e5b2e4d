//! Ending a reservation from outside: the shopper's cancel and the payment service's
//! webhook (the expiry sweeper, [`super::expiry`], is the third way).
//!
//! The order's status record (written once Kafka has the order) names its product and
//! buyer; `lua/transition.lua` decides, atomically, on the product's keys. A move is
//! answered only once the required Redis replicas hold it ([`Replicas`], as an
//! acceptance is), so a failover cannot undo a payment the payment service was told
//! about; its event is then handed to Kafka, and if that fails the relay republishes it
//! from the outbox. Every answer is a state, so a repeat — the same cancel, a redelivered
//! webhook — gets the same answer.

use shared::keys::Keyspace;
use shared::reservation::ENDED_RETENTION_SECS;
use shared::status::field;
use shared::{ProductId, ReservationState, UserId};
use stores::redis::Conn;
use stores::reservations::{self, Transition};
use uuid::Uuid;

use super::handoff::Handoff;
use super::replicas::Replicas;
use crate::metrics::Metrics;

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
        let unavailable = |e: &dyn std::fmt::Display| EndRefusal::Unavailable(e.to_string());
        let (product, user): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.order_status(&order_id))
            .arg(field::PRODUCT_ID)
            .arg(field::USER_ID)
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        let product = product
            .and_then(|p| ProductId::parse(p).ok())
            .ok_or(EndRefusal::NotFound)?;
        if buyer.is_some_and(|b| user.as_deref() != Some(b.as_str())) {
            return Err(EndRefusal::NotFound);
        }
        let order = order_id.to_string();
        let moved = reservations::transition(
            &mut conn,
            &self.keys.sale(&product),
            product.as_str(),
            &order,
            to,
            reason,
            ENDED_RETENTION_SECS,
        )
        .await
        .map_err(|e| unavailable(&e))?;
        match moved {
            Transition::Moved {
                state,
                entry_id,
                event,
                ..
            } => {
                self.metrics.transition(state);
                self.hand_off(&mut conn, &product, order_id, &entry_id, &event)
                    .await
                    .map_err(|e| unavailable(&e))?;
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

    /// Hands a move just written through `conn` to Kafka: first waits until the
    /// required replicas hold it (an error: the outcome is unknown, and the relay will
    /// publish it once they do); a failed publish is left to the relay.
    pub async fn hand_off(
        &self,
        conn: &mut Conn,
        product: &ProductId,
        order_id: Uuid,
        entry_id: &str,
        event: &str,
    ) -> Result<(), super::replicas::NotReplicated> {
        let outbox = self.keys.sale(product).outbox();
        if let Err(e) = self.replicas.confirm(conn, &outbox).await {
            self.metrics.replica_shortfall();
            tracing::warn!(error = %e, %order_id, "move not on enough replicas; the relay will publish it");
            return Err(e);
        }
        let confirmation = self.handoff.transitioned(product, order_id, entry_id);
        if let Err(e) = self.handoff.publish(order_id, event, confirmation).await {
            tracing::warn!(error = %e, %order_id, "move not published; the relay will publish it");
        }
        Ok(())
    }
}
