//! Rebuilding a sale that Redis lost, from PostgreSQL, once nothing is on its way.

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use serde::Serialize;
use shared::keys::{Keyspace, SaleKeys};
use shared::sale::SaleState;
use shared::{ProductId, ReservationState};
use stores::records::ReservationRecord;
use stores::redis::Conn;
use tokio_postgres::Client;

use crate::OpsError;
use crate::guard::Limits;
use crate::sale::{NewSale, exists_in_redis, open_in_redis, shards};

/// Where the worker's progress is read from, for `recover`.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The order topic.
    pub topic: String,
    /// The worker's consumer group.
    pub group: String,
}

/// What `recover` rebuilt.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Recovered {
    /// The product.
    pub product: String,
    /// Units on sale.
    pub stock: i64,
    /// Units persisted (`sales.sold`).
    pub sold: i64,
    /// Remaining stock written to Redis (`stock - sold`).
    pub remaining: i64,
    /// Users whose purchases were restored (for the per-user cap).
    pub buyers: usize,
    /// Shards the sale was rebuilt on (1: unsharded), placed again on the cluster as it
    /// is now.
    pub shards: u32,
    /// The state the sale was restored in.
    pub state: SaleState,
}

/// A buyer to restore: their live units (reserved or paid; 0 for one whose orders all
/// ended) and their reservations' records.
#[derive(Debug, Clone)]
pub(crate) struct Buyer {
    /// The buyer id PostgreSQL records (an erasure's pseudonym after `user erase`).
    pub user: String,
    /// Live units.
    pub units: i64,
    /// Reservations to rebuild.
    pub records: Vec<Rebuilt>,
}

/// Rebuilds a product's Redis state from PostgreSQL after Redis lost it (restart without
/// persistence, failover). Refuses unless the pipeline has drained — the sale is absent
/// from Redis, no outbox entry is pending, and the worker's consumer group has no lag —
/// because an order still on its way would otherwise be sold twice. Remaining stock is
/// `stock - sold`; each buyer's live units (reserved or paid; 0 for one whose orders all
/// ended) are restored so the per-user cap still holds, and so is every reservation's
/// record: a reserved one with its deadline, so it can still be paid, cancelled or
/// expire; an ended one (paid, cancelled, expired within the last
/// `ENDED_RETENTION_SECS`) for what is left of its retention, so a late payment is still
/// told the state it lost to.
/// A sharded sale is rebuilt on shards placed again (see [`shards::build`]), refused while
/// a shard of its last placement is still in Redis, and checked afterwards: its census
/// must balance.
/// Idempotency answers are not recoverable: an old key retried afterwards is a new request
/// (the per-user cap still applies to it).
pub async fn recover(
    pg: &Client,
    redis: &mut Conn,
    keys: &Keyspace,
    product: &ProductId,
    pipeline: &Pipeline,
    limits: &Limits,
    state: SaleState,
) -> Result<Recovered, OpsError> {
    drained(redis, keys, product, pipeline).await?;
    let (sale, sold, old_salts) = sale_of(pg, product, limits).await?;
    let remaining = sale.stock.checked_sub(sold).ok_or_else(|| {
        OpsError::Conflict(format!(
            "{product}: sold {sold} exceeds stock {}",
            sale.stock
        ))
    })?;
    let buyers = buyers(pg, product, &sale).await?;
    // Buyers first, so the cap holds from the first admitted request.
    let created = if sale.shards > 1 {
        if old_salts.is_empty() {
            return Err(OpsError::Conflict(format!(
                "{product} is a sharded sale whose placement PostgreSQL never recorded (sales.shard_salts): \
                 `sale recover` cannot tell whether its shards are gone"
            )));
        }
        shards::refuse_held_shards(redis, keys, product, &old_salts, false).await?;
        let units = (remaining, state.as_str());
        shards::build(pg, redis, keys, &sale, units, Some(&buyers)).await?
    } else {
        restore(
            redis,
            &keys.sale(product),
            &buyers.iter().collect::<Vec<_>>(),
        )
        .await?;
        open_in_redis(redis, keys, &sale, remaining, state.as_str()).await?
    };
    if !created {
        return Err(OpsError::Conflict(format!(
            "{product} reappeared in Redis while recovering; check `flashctl sale status`"
        )));
    }
    let rebuilt = crate::sale::status(pg, redis, keys, product).await?;
    if let Some(census) = rebuilt.sharded.filter(|c| !c.balanced) {
        return Err(OpsError::Conflict(format!(
            "{product} rebuilt, but its census does not balance ({census:?}); halt it and check `flashctl sale status`"
        )));
    }
    Ok(Recovered {
        product: product.to_string(),
        stock: sale.stock.into(),
        sold: sold.into(),
        remaining: remaining.into(),
        buyers: buyers.len(),
        shards: sale.shards,
        state,
    })
}

/// Refuses while anything is on its way: the sale live in Redis, an outbox entry pending,
/// or the worker behind on the topic.
async fn drained(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
    pipeline: &Pipeline,
) -> Result<(), OpsError> {
    if exists_in_redis(redis, keys, product).await? {
        return Err(OpsError::Conflict(format!(
            "{product} is live in Redis; nothing to recover (see `flashctl sale status`)"
        )));
    }
    let pending: i64 = redis::cmd("XLEN")
        .arg(keys.sale(product).outbox())
        .query_async(redis)
        .await?;
    if pending > 0 {
        return Err(OpsError::Conflict(format!(
            "{pending} accepted order(s) of {product} are still waiting in the outbox; let the API relay hand them off, then retry"
        )));
    }
    let lag = crate::topics::lag(&pipeline.brokers, &pipeline.topic, &pipeline.group).await?;
    if lag.total() > 0 {
        return Err(OpsError::Conflict(format!(
            "the worker group {} has {} message(s) of {} not yet persisted; wait for the pipeline to drain (worker lag 0), then retry",
            pipeline.group,
            lag.total(),
            pipeline.topic
        )));
    }
    Ok(())
}

/// The sale as PostgreSQL records it (with today's `limits`), its units sold, and where
/// its shards were (none: unsharded).
async fn sale_of(
    pg: &Client,
    product: &ProductId,
    limits: &Limits,
) -> Result<(NewSale, u32, Vec<u32>), OpsError> {
    let row = pg
        .query_opt(
            "SELECT stock, sold, per_user_limit, starts_at, ends_at, payment_window_ms, shards, \
                    coalesce(shard_salts, '{}') \
             FROM sales WHERE product_id = $1",
            &[&product.as_str()],
        )
        .await?
        .ok_or_else(|| {
            OpsError::NotFound(format!("no sale for product {product} in PostgreSQL"))
        })?;
    let units = |i: usize| u32::try_from(row.get::<_, i32>(i)).unwrap_or(0);
    let salts = row.get::<_, Vec<i32>>(7).into_iter();
    let salts = salts.map(|s| u32::try_from(s).unwrap_or(0)).collect();
    let sale = NewSale {
        product: product.clone(),
        stock: units(0),
        per_user: units(2),
        starts_at: row.get(3),
        ends_at: row.get(4),
        limits: limits.clone(),
        payment_window: u64::try_from(row.get::<_, i64>(5))
            .ok()
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis),
        shards: units(6).max(1),
    };
    Ok((sale, units(1), salts))
}

/// Every buyer, with their live units and their reservations to rebuild.
async fn buyers(pg: &Client, product: &ProductId, sale: &NewSale) -> Result<Vec<Buyer>, OpsError> {
    let rows = pg
        .query(
            "SELECT user_id, \
                    coalesce(sum(quantity) FILTER (WHERE state IN ('reserved', 'paid')), 0)::int8 \
             FROM orders WHERE product_id = $1 GROUP BY user_id",
            &[&product.as_str()],
        )
        .await?;
    let mut records: HashMap<String, Vec<Rebuilt>> = HashMap::new();
    for rebuilt in reservations(pg, product, sale).await? {
        records
            .entry(rebuilt.1.user.clone())
            .or_default()
            .push(rebuilt);
    }
    Ok(rows
        .iter()
        .map(|r| {
            let user: String = r.get(0);
            let records = records.remove(&user).unwrap_or_default();
            Buyer {
                user,
                units: r.get(1),
                records,
            }
        })
        .collect())
}

/// A reservation to rebuild: its order id, its record, and the seconds of retention it
/// has left once ended.
pub(crate) type Rebuilt = (String, ReservationRecord, Option<i64>);

/// Reserved orders, so they can still be paid, cancelled or expire (acceptance plus the
/// window: the API's clock at acceptance, read just before Redis set the deadline the
/// shopper was told, so earlier by that call's latency and the clocks' skew), and the
/// ends still retained, with the retention they have left.
async fn reservations(
    pg: &Client,
    product: &ProductId,
    sale: &NewSale,
) -> Result<Vec<Rebuilt>, OpsError> {
    let retention = i64::try_from(shared::reservation::ENDED_RETENTION_SECS).unwrap_or(i64::MAX);
    let window = i64::try_from(sale.payment_window.map_or(0, |w| w.as_millis())).unwrap_or(0);
    let rows = pg
        .query(
            "SELECT order_id::text, user_id, quantity, state, \
                    CASE WHEN $2::int8 > 0 AND state = 'reserved' \
                         THEN (extract(epoch FROM accepted_at) * 1000)::int8 + $2 ELSE 0 END, \
                    coalesce((extract(epoch FROM state_at) * 1000)::int8, 0), \
                    coalesce(state_reason, ''), \
                    CASE WHEN state = 'reserved' THEN 0 \
                         ELSE $3::int8 - extract(epoch FROM now() - state_at)::int8 END \
             FROM orders WHERE product_id = $1 \
               AND (state = 'reserved' \
                    OR state_at > now() - make_interval(secs => $3::int8::float8))",
            &[&product.as_str(), &window, &retention],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let state = ReservationState::parse(&r.get::<_, String>(3))
                .ok_or_else(|| OpsError::Other(anyhow::anyhow!("unknown order state")))?;
            let ended = state != ReservationState::Reserved;
            let record = ReservationRecord {
                user: r.get(1),
                quantity: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                state,
                deadline_ms: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
                entry: None,
                ended: ended.then(|| (u64::try_from(r.get::<_, i64>(5)).unwrap_or(0), r.get(6))),
                released: false,
            };
            Ok((r.get(0), record, ended.then(|| r.get::<_, i64>(7))))
        })
        .collect()
}

/// Writes the buyers' counts and their reservations' records (the types the scripts
/// read: [`ReservationRecord`]) on the keys `sk` in one pipeline.
pub(crate) async fn restore(
    redis: &mut impl ConnectionLike,
    sk: &SaleKeys,
    buyers: &[&Buyer],
) -> Result<(), OpsError> {
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(sk.bought()).ignore();
    for buyer in buyers {
        pipe.hset(sk.bought(), &buyer.user, buyer.units).ignore();
    }
    pipe.cmd("DEL").arg(sk.deadlines()).ignore();
    for (order, record, retention) in buyers.iter().flat_map(|b| &b.records) {
        let key = sk.reservation(order);
        pipe.cmd("DEL").arg(&key).ignore();
        pipe.cmd("HSET").arg(&key).arg(record.fields()).ignore();
        if let Some(ttl) = retention {
            pipe.cmd("EXPIRE").arg(&key).arg((*ttl).max(1)).ignore();
        }
        if record.deadline_ms > 0 {
            pipe.zadd(sk.deadlines(), order, record.deadline_ms)
                .ignore();
        }
    }
    pipe.exec_async(redis).await?;
    Ok(())
}
