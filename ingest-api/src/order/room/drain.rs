//! The drain: one API instance at a time per room (a short lease) releases the next
//! positions every [`PERIOD`] (`lua/room_drain.lua`).

use std::time::Duration;

use shared::ProductId;
use shared::keys::Keyspace;
use stores::redis::Conn;
use stores::shards::Layout;
use tokio::sync::watch;

use super::calls::RoomCalls;
use crate::metrics::Metrics;

/// Time between passes.
pub const PERIOD: Duration = Duration::from_millis(200);

/// Drains every room.
#[derive(Clone, Debug)]
pub struct Drain {
    conn: Conn,
    keys: Keyspace,
    calls: RoomCalls,
    metrics: Metrics,
}

impl Drain {
    /// A drain over `conn`.
    pub fn new(conn: Conn, keys: Keyspace, calls: RoomCalls, metrics: Metrics) -> Self {
        Self {
            conn,
            keys,
            calls,
            metrics,
        }
    }

    /// Drains every [`PERIOD`] until `stop`; `holder` names this instance's lease.
    pub async fn run(self, holder: String, mut stop: watch::Receiver<bool>) {
        while shared::service::shutdown::next_round(&mut stop, PERIOD).await {
            if let Err(e) = self.drain_once(&holder).await {
                tracing::warn!(error = %e, "room drain pass failed; retrying");
            }
        }
    }

    /// One pass over every room; returns the positions released.
    pub async fn drain_once(&self, holder: &str) -> redis::RedisResult<u64> {
        let mut conn = self.conn.clone();
        let products: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.rooms_registry())
            .query_async(&mut conn)
            .await?;
        let mut released = 0;
        for product in products {
            let Ok(product) = ProductId::parse(product) else {
                continue;
            };
            let keys = self.keys.sale(&product);
            let ttl = PERIOD.as_millis() as u64 * 3;
            match stores::lease::hold(&mut conn, &keys.room_part("lease"), holder, ttl).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, %product, "room lease failed");
                    continue;
                }
            }
            let units = match sharded_units(&mut conn, &self.keys, &product).await {
                Ok(units) => units,
                Err(e) => {
                    tracing::warn!(error = %e, %product, "sharded sale's census failed; room not drained");
                    continue;
                }
            };
            match self.calls.drain(&mut conn, &keys, units).await {
                Ok(d) => {
                    released += d.released;
                    self.metrics
                        .room()
                        .drained(d.joined, d.served, d.released, d.noshows);
                }
                Err(e) => tracing::warn!(error = %e, %product, "room drain failed"),
            }
        }
        Ok(released)
    }
}

/// A sharded sale's units left and on their way back, by its census; `None` for an
/// unsharded sale, whose hash holds them.
async fn sharded_units(
    conn: &mut Conn,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<Option<i64>, stores::shards::ledger::LedgerError> {
    let sale = keys.sale(product);
    let Layout::Sharded(shards) = Layout::read(conn, &sale).await? else {
        return Ok(None);
    };
    let c = stores::shards::census::census(conn, &sale, &shards.keys(keys, product)).await?;
    Ok(Some(c.total() + c.returning))
}
