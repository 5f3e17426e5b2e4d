//! The expiry sweeper: reservations not paid within their sale's payment window end as
//! `expired` and their units go back on sale.
//!
//! Every API instance runs one. Each pass, for every product with a sale, one instance
//! at a time (a short lease in Redis, as the relay's `XAUTOCLAIM` hands each entry to one
//! claimant) asks `lua/transition.lua` to expire the reservations with the earliest
//! deadlines, until one is not yet due: the script decides by Redis server time, so no
//! instance's clock matters. Each expired order's event is handed to Kafka at once if the
//! required Redis replicas hold it (a `WAIT` pipelined with the script); otherwise, or
//! if the publish fails, the relay republishes it. A pass
//! runs every [`PERIOD`], so a reservation expires within about that long after its
//! deadline.

use std::time::Duration;

use shared::keys::{Keyspace, SaleKeys};
use shared::{ProductId, ReservationState};
use stores::redis::Conn;
use stores::reservations::Transition;
use stores::shards::Layout;
use tokio::sync::watch;
use uuid::Uuid;

use super::end::Reservations;
use crate::metrics::Metrics;

/// Time between passes.
pub const PERIOD: Duration = Duration::from_millis(500);
/// Reservations examined per product and pass, earliest deadline first.
const PAGE: isize = 256;

/// Expires due reservations on every sale.
#[derive(Clone)]
pub struct Sweeper {
    conn: Conn,
    keys: Keyspace,
    reservations: Reservations,
    metrics: Metrics,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper").finish_non_exhaustive()
    }
}

impl Sweeper {
    /// A sweeper writing through `conn` and handing events off as `reservations` does.
    pub fn new(conn: Conn, keys: Keyspace, reservations: Reservations, metrics: Metrics) -> Self {
        Self {
            conn,
            keys,
            reservations,
            metrics,
        }
    }

    /// Sweeps every [`PERIOD`] until `stop` turns true; `holder` names this instance's
    /// lease.
    pub async fn run(self, holder: String, mut stop: watch::Receiver<bool>) {
        while shared::service::shutdown::next_round(&mut stop, PERIOD).await {
            if let Err(e) = self.sweep_once(&holder).await {
                tracing::warn!(error = %e, "expiry pass failed; retrying");
            }
        }
    }

    /// One pass over every sale; returns how many reservations expired.
    pub async fn sweep_once(&self, holder: &str) -> redis::RedisResult<usize> {
        let mut conn = self.conn.clone();
        let products: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.sales_registry())
            .query_async(&mut conn)
            .await?;
        let mut expired = 0;
        for product in products {
            let Ok(product) = ProductId::parse(product) else {
                continue;
            };
            let groups = match Layout::read(&mut conn, &self.keys.sale(&product)).await {
                Ok(layout) => layout.groups(&self.keys, &product),
                Err(e) => {
                    tracing::warn!(error = %e, %product, "expiry failed for one product");
                    continue;
                }
            };
            for group in groups {
                match self.sweep_group(&mut conn, &product, &group, holder).await {
                    Ok(n) => expired += n,
                    Err(e) => tracing::warn!(error = %e, %product, "expiry failed for one product"),
                }
            }
        }
        Ok(expired)
    }

    /// Expires the due reservations of one group of a product's keys (the product's, or
    /// one shard's), earliest first, if this instance holds the group's lease.
    async fn sweep_group(
        &self,
        conn: &mut Conn,
        product: &ProductId,
        keys: &SaleKeys,
        holder: &str,
    ) -> redis::RedisResult<usize> {
        // The lease outlives a pass a little, so instances take turns rather than race.
        let ttl = PERIOD.as_millis() as u64 * 2;
        if !stores::lease::hold(conn, &keys.sweeper_lease(), holder, ttl).await? {
            return Ok(0);
        }
        let earliest: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys.deadlines())
            .arg(0)
            .arg(PAGE - 1)
            .query_async(conn)
            .await?;
        let mut expired = 0;
        for order in earliest {
            let Ok(order_id) = Uuid::parse_str(&order) else {
                continue;
            };
            match self.expire(conn, (product, keys), order_id).await {
                Swept::Expired => expired += 1,
                Swept::Skipped => {}
                Swept::Stop => break,
            }
        }
        Ok(expired)
    }

    /// Asks `lua/transition.lua` to expire one reservation and hands the move off.
    async fn expire(
        &self,
        conn: &mut Conn,
        (product, keys): (&ProductId, &SaleKeys),
        order_id: Uuid,
    ) -> Swept {
        let decided = self
            .reservations
            .decide(
                conn,
                (product, keys),
                order_id,
                ReservationState::Expired,
                "expiry",
            )
            .await;
        match decided {
            Ok((
                Transition::Moved {
                    entry_id, event, ..
                },
                replicated,
            )) => {
                self.metrics.transition(ReservationState::Expired);
                // Short of replicas, the relay publishes it once they have it.
                if replicated.is_ok() {
                    self.reservations
                        .publish(keys, order_id, &entry_id, &event)
                        .await;
                }
                Swept::Expired
            }
            // The earliest not yet due: neither is any later one.
            Ok((Transition::NotDue { .. }, _)) => Swept::Stop,
            // Kafka has not acknowledged the placement yet: next pass.
            Ok((Transition::InFlight, _)) => Swept::Skipped,
            // Ended otherwise meanwhile, or its record is gone: not ours to expire.
            Ok((Transition::Same(_) | Transition::NotReserved(_) | Transition::NotFound, _)) => {
                let _: redis::RedisResult<i64> = redis::cmd("ZREM")
                    .arg(keys.deadlines())
                    .arg(order_id.to_string())
                    .query_async(conn)
                    .await;
                Swept::Skipped
            }
            Err(e) => {
                tracing::warn!(error = %e, %order_id, "could not expire a reservation");
                Swept::Stop
            }
        }
    }
}

/// What became of one reservation in a pass.
enum Swept {
    /// It expired now.
    Expired,
    /// Not this pass's to expire.
    Skipped,
    /// The pass ends here (the rest are not due, or Redis failed).
    Stop,
}
