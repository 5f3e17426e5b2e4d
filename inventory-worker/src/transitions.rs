//! Ended reservations in a batch: applied to PostgreSQL once (a repeat changes nothing,
//! a contradiction or a transition of an unknown order is dead-lettered), then the units
//! of the returns put back on sale in Redis (`lua/release.lua`).

use std::collections::{HashMap, HashSet};
use stores::shards::Layout;

use rdkafka::message::OwnedMessage;
use shared::OrderTransitioned;

use crate::consumer::{ProcessError, Worker};
use crate::db;
use crate::dead_letter::Poison;

impl Worker {
    /// Applies ended reservations; a transition of an order that has no row (its
    /// placement was dead-lettered) is dead-lettered too.
    pub(crate) async fn write_transitions(
        &self,
        moved: &[(&OwnedMessage, &OrderTransitioned)],
        dead: &mut HashSet<(i32, i64)>,
    ) -> Result<(), ProcessError> {
        let (events, contradicting) = first_of_each(moved);
        let applied = db::write_transitions(&self.pool, &events).await?;
        for state in applied.moved {
            self.metrics.transitions(state, 1);
        }
        for (message, event) in &contradicting {
            let reason = format!(
                "{} of an order that already ended otherwise",
                event.state.as_str()
            );
            self.dead_letter_once(&Poison::transition(message, reason, event), dead)
                .await?;
        }
        for (message, event) in moved {
            if contradicting
                .iter()
                .any(|(m, _)| std::ptr::eq(*m, *message))
            {
                continue;
            }
            let reason = if applied.unknown.contains(&event.order_id) {
                format!("{} of an order with no row", event.state.as_str())
            } else if applied.contradicted.contains(&event.order_id) {
                format!(
                    "{} of an order that already ended otherwise",
                    event.state.as_str()
                )
            } else {
                continue;
            };
            let poison = Poison::transition(message, reason, event);
            self.dead_letter_once(&poison, dead).await?;
        }
        let refused: Vec<uuid::Uuid> = applied
            .unknown
            .iter()
            .chain(&applied.contradicted)
            .copied()
            .collect();
        self.release(&events, &refused).await
    }

    /// Puts the units of the returns just applied back on sale in Redis
    /// (`lua/release.lua`, once per order: a redelivered return releases nothing). Only
    /// now, with `sales.sold` already lower, may the units be sold again: a resale
    /// reaching PostgreSQL before its return would trip `CHECK (sold <= stock)`. A
    /// failure fails the batch (no offset stored), so the release is retried.
    async fn release(
        &self,
        events: &[&OrderTransitioned],
        refused: &[uuid::Uuid],
    ) -> Result<(), ProcessError> {
        let returns = events
            .iter()
            .filter(|e| e.state.returns_units() && !refused.contains(&e.order_id));
        let Some(conn) = &self.redis else {
            if returns.count() > 0 {
                tracing::error!(
                    "returned units cannot go back on sale: this worker has no Redis (REDIS_URL or REDIS_CLUSTER_NODES)"
                );
            }
            return Ok(());
        };
        let mut conn = conn.clone();
        let transient = |e: redis::RedisError| {
            ProcessError::Transient(format!("releasing returned units: {e}"))
        };
        for e in returns {
            // A sharded sale's units go back to the shard holding the order's reservation:
            // the one that sold them (or, after `sale recover`, the buyer's new home).
            let id = e.order_id.to_string();
            let layout = Layout::read(&mut conn, &self.keys.sale(&e.product_id))
                .await
                .map_err(transient)?;
            let on = (&self.keys, &e.product_id);
            let seller = layout
                .holding(&mut conn, on, &e.user_id, &id)
                .await
                .map_err(transient)?;
            stores::reservations::release(&mut conn, &seller, &id)
                .await
                .map_err(transient)?;
        }
        Ok(())
    }
}

/// An order's first transition in the batch is the one Redis decided first (one
/// partition, offset order); a later one is a redelivery if it names the same state and
/// a contradiction otherwise. Returns the first ones and the contradicting ones.
#[allow(clippy::type_complexity)]
fn first_of_each<'a>(
    moved: &[(&'a OwnedMessage, &'a OrderTransitioned)],
) -> (
    Vec<&'a OrderTransitioned>,
    Vec<(&'a OwnedMessage, &'a OrderTransitioned)>,
) {
    let mut first: HashMap<uuid::Uuid, shared::ReservationState> = HashMap::new();
    let mut events = Vec::with_capacity(moved.len());
    let mut contradicting = Vec::new();
    for (message, event) in moved {
        match first.get(&event.order_id) {
            None => {
                first.insert(event.order_id, event.state);
                events.push(*event);
            }
            Some(state) if *state == event.state => {}
            Some(_) => contradicting.push((*message, *event)),
        }
    }
    (events, contradicting)
}
