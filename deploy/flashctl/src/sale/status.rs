//! A sale's state as Redis and PostgreSQL see it (`flashctl sale status`), with a
//! sharded sale's census: the pool, each shard and the units in transit between them.

use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;
use stores::records::SaleRecord;
use stores::redis::Conn;
use stores::shards::census::census;
use stores::shards::{Layout, Shards};
use tokio_postgres::Client;

use crate::OpsError;

/// A sale as Redis and PostgreSQL see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SaleStatus {
    /// The product.
    pub product: String,
    /// Redis state (`open`, `halted`, `closed`), or `missing` when Redis lost it.
    pub state: String,
    /// Units on sale (PostgreSQL).
    pub stock: i64,
    /// Per-user cap (0 = none).
    pub per_user: i64,
    /// Units not yet taken, per Redis (a sharded sale's: pool + shards + in transit).
    pub redis_remaining: Option<i64>,
    /// Units of cancelled or expired orders on their way back on sale (returned in
    /// Redis, released once PostgreSQL has the return).
    pub returning: i64,
    /// Units held by live orders in Redis (`stock - remaining - returning`).
    pub taken: Option<i64>,
    /// Units persisted (`sales.sold`).
    pub persisted: i64,
    /// Rows in `orders`.
    pub orders: i64,
    /// Persisted units of orders still reserved (accepted, not yet paid).
    pub reserved: i64,
    /// Persisted units of paid orders.
    pub paid: i64,
    /// Persisted units of cancelled or expired orders, back on sale (not in `persisted`).
    pub returned: i64,
    /// Outbox entries not yet confirmed by Kafka (accepted orders and ended reservations).
    pub pending_handoff: i64,
    /// Taken but not yet persisted: in the outbox, in Kafka, or in the worker's hands.
    pub in_transit: Option<i64>,
    /// A sharded sale's census (absent for an unsharded one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharded: Option<ShardedStatus>,
}

/// Where a sharded sale's unsold units are.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ShardedStatus {
    /// Units in the pool (the product's slot).
    pub pool: i64,
    /// Units in transfers between the pool and a shard, not yet applied.
    pub moving: i64,
    /// Each shard, by index.
    pub shards: Vec<ShardStatus>,
    /// Units its buyers hold (Σ of the shards' per-user counts).
    pub taken: i64,
    /// pool + Σ shards + moving + taken + returning = stock, each counted on its own.
    pub balanced: bool,
}

/// One shard of a sharded sale.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ShardStatus {
    /// Its index.
    pub index: u32,
    /// Its hash tag's key (`…:{p:P/k.s}:sale`).
    pub key: String,
    /// The Redis Cluster slot it is in.
    pub slot: u16,
    /// Units on sale there.
    pub remaining: i64,
    /// Users who bought there.
    pub buyers: i64,
}

impl SaleStatus {
    /// A few lines for a terminal.
    pub fn human(&self) -> String {
        let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
        format!(
            "product          {}\nstate            {}\nstock            {}\nper-user cap     {}\n\
             redis remaining  {}\ntaken            {}\npersisted        {} ({} orders)\n\
             reserved / paid  {} / {} (returned {}, {} on their way back)\n\
             pending handoff  {}\nin transit       {}",
            self.product,
            self.state,
            self.stock,
            if self.per_user == 0 {
                "none".to_owned()
            } else {
                self.per_user.to_string()
            },
            opt(self.redis_remaining),
            opt(self.taken),
            self.persisted,
            self.orders,
            self.reserved,
            self.paid,
            self.returned,
            self.returning,
            self.pending_handoff,
            opt(self.in_transit),
        ) + &self
            .sharded
            .as_ref()
            .map_or(String::new(), ShardedStatus::human)
    }
}

impl ShardedStatus {
    fn human(&self) -> String {
        let mut out = format!(
            "\nshards           {} (pool {}, moving {}, held by buyers {}; {})",
            self.shards.len(),
            self.pool,
            self.moving,
            self.taken,
            if self.balanced {
                "balanced"
            } else {
                "NOT BALANCED: pool + shards + moving + held + returning != stock"
            }
        );
        for s in &self.shards {
            out += &format!(
                "\n  shard {:<3} slot {:<5} remaining {:<6} buyers {}",
                s.index, s.slot, s.remaining, s.buyers
            );
        }
        out
    }
}

/// What Redis holds of a sale: its record's state, units not yet taken and returning,
/// outbox entries pending, and a sharded sale's census.
struct InRedis {
    state: Option<String>,
    remaining: Option<i64>,
    returning: i64,
    pending: i64,
    sharded: Option<ShardedStatus>,
}

async fn pending(redis: &mut Conn, outbox: String) -> Result<i64, OpsError> {
    Ok(redis::cmd("XLEN").arg(outbox).query_async(redis).await?)
}

async fn in_redis(
    redis: &mut Conn,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<InRedis, OpsError> {
    let sk = keys.sale(product);
    let record = SaleRecord::read(redis, &sk).await?;
    match Layout::read(redis, &sk).await? {
        Layout::Single => Ok(InRedis {
            state: record.as_ref().map(|r| r.state.as_str().to_owned()),
            remaining: record.as_ref().map(|r| r.remaining),
            returning: record.as_ref().map_or(0, |r| r.returning),
            pending: pending(redis, sk.outbox()).await?,
            sharded: None,
        }),
        Layout::Sharded(shards) => sharded(redis, keys, product, &shards).await,
    }
}

async fn sharded(
    redis: &mut Conn,
    keys: &Keyspace,
    product: &ProductId,
    shards: &Shards,
) -> Result<InRedis, OpsError> {
    let sale = keys.sale(product);
    let all = shards.keys(keys, product);
    let count = census(redis, &sale, &all)
        .await
        .map_err(|e| OpsError::Other(e.into()))?;
    let (mut listed, mut pending_all) = (Vec::new(), 0);
    for ((index, shard), remaining) in (0u32..).zip(&all).zip(&count.shards) {
        let buyers: i64 = redis::cmd("HLEN")
            .arg(shard.bought())
            .query_async(redis)
            .await?;
        pending_all += pending(redis, shard.outbox()).await?;
        listed.push(ShardStatus {
            index,
            key: shard.sale(),
            slot: stores::shards::key_slot(&shard.sale()),
            remaining: *remaining,
            buyers,
        });
    }
    let state: Option<String> = redis::cmd("HGET")
        .arg(sale.sale())
        .arg("state")
        .query_async(redis)
        .await?;
    Ok(InRedis {
        state,
        remaining: Some(count.total()),
        returning: count.returning,
        pending: pending_all,
        sharded: Some(ShardedStatus {
            pool: count.pool,
            moving: count.in_transit,
            shards: listed,
            taken: count.taken,
            balanced: count.balanced(),
        }),
    })
}

/// Reads a sale from both stores.
pub async fn status(
    pg: &Client,
    redis: &mut Conn,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<SaleStatus, OpsError> {
    let row = pg
        .query_opt(
            "SELECT s.stock, s.sold, s.per_user_limit, count(o.order_id), \
                    coalesce(sum(o.quantity) FILTER (WHERE o.state = 'reserved'), 0)::int8, \
                    coalesce(sum(o.quantity) FILTER (WHERE o.state = 'paid'), 0)::int8, \
                    coalesce(sum(o.quantity) FILTER (WHERE o.state IN ('cancelled', 'expired')), 0)::int8 \
             FROM sales s LEFT JOIN orders o ON o.product_id = s.product_id \
             WHERE s.product_id = $1 GROUP BY s.product_id",
            &[&product.as_str()],
        )
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("no sale for product {product}")))?;
    let (stock, sold, per_user, orders): (i32, i32, i32, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let InRedis {
        state,
        remaining,
        returning,
        pending,
        sharded,
    } = in_redis(redis, keys, product).await?;
    let state = state.unwrap_or_else(|| "missing".to_owned());
    let taken = remaining.map(|r| i64::from(stock) - r - returning);
    Ok(SaleStatus {
        product: product.to_string(),
        state,
        stock: stock.into(),
        per_user: per_user.into(),
        redis_remaining: remaining,
        returning,
        taken,
        persisted: sold.into(),
        orders,
        reserved: row.get(4),
        paid: row.get(5),
        returned: row.get(6),
        pending_handoff: pending,
        in_transit: taken.map(|t| t - i64::from(sold)),
        sharded,
    })
}
