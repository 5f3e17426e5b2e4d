//! Rebuilding a sale that Redis lost, from PostgreSQL, once nothing is on its way.

use redis::aio::ConnectionLike;
use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;
use shared::sale::SaleState;
use tokio_postgres::Client;

use crate::OpsError;
use crate::guard::Limits;
use crate::sale::{NewSale, exists_in_redis, open_in_redis};

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
    /// The state the sale was restored in.
    pub state: SaleState,
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
/// Idempotency answers are not recoverable: an old key retried afterwards is a new request
/// (the per-user cap still applies to it).
pub async fn recover(
    pg: &Client,
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
    pipeline: &Pipeline,
    limits: &Limits,
    state: SaleState,
) -> Result<Recovered, OpsError> {
    let sk = keys.sale(product);
    if exists_in_redis(redis, keys, product).await? {
        return Err(OpsError::Conflict(format!(
            "{product} is live in Redis; nothing to recover (see `flashctl sale status`)"
        )));
    }
    let pending: i64 = redis::cmd("XLEN")
        .arg(sk.outbox())
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
    let row = pg
        .query_opt(
            "SELECT stock, sold, per_user_limit, starts_at, ends_at, payment_window_ms \
             FROM sales WHERE product_id = $1",
            &[&product.as_str()],
        )
        .await?
        .ok_or_else(|| {
            OpsError::NotFound(format!("no sale for product {product} in PostgreSQL"))
        })?;
    let (stock, sold, per_user): (i32, i32, i32) = (row.get(0), row.get(1), row.get(2));
    let buyers = pg
        .query(
            "SELECT user_id, \
                    coalesce(sum(quantity) FILTER (WHERE state IN ('reserved', 'paid')), 0)::int8 \
             FROM orders WHERE product_id = $1 GROUP BY user_id",
            &[&product.as_str()],
        )
        .await?;
    let remaining = u32::try_from(stock - sold)
        .map_err(|_| OpsError::Conflict(format!("{product}: sold {sold} exceeds stock {stock}")))?;
    let sale = NewSale {
        product: product.clone(),
        stock: u32::try_from(stock).unwrap_or(0),
        per_user: u32::try_from(per_user).unwrap_or(0),
        starts_at: row.get(3),
        ends_at: row.get(4),
        limits: limits.clone(),
        payment_window: u64::try_from(row.get::<_, i64>(5))
            .ok()
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis),
    };
    // Reserved orders, so they can still be paid, cancelled or expire (acceptance plus
    // the window: the API's clock at acceptance, read just before Redis set the deadline
    // the shopper was told, so earlier by that call's latency and the clocks' skew), and
    // the ends still retained, with the seconds of retention they have left.
    let retention = i64::try_from(shared::reservation::ENDED_RETENTION_SECS).unwrap_or(i64::MAX);
    let records = pg
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
            &[&product.as_str(), &row.get::<_, i64>(5), &retention],
        )
        .await?;
    // Buyers first, so the cap holds from the first admitted request.
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(sk.bought()).ignore();
    for r in &buyers {
        let (user, units): (String, i64) = (r.get(0), r.get(1));
        pipe.cmd("HSET")
            .arg(sk.bought())
            .arg(user)
            .arg(units)
            .ignore();
    }
    pipe.cmd("DEL").arg(sk.deadlines()).ignore();
    for r in &records {
        let (order, user, quantity, state, deadline): (String, String, i32, String, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let (at, reason, ttl): (i64, String, i64) = (r.get(5), r.get(6), r.get(7));
        let record = sk.reservation(&order);
        let ended = state != "reserved";
        pipe.cmd("DEL").arg(&record).ignore();
        pipe.cmd("HSET")
            .arg(&record)
            .arg(&[
                ("user", user),
                ("qty", quantity.to_string()),
                ("state", state),
            ])
            .arg("deadline")
            .arg(deadline)
            .ignore();
        if ended {
            pipe.cmd("HSET")
                .arg(&record)
                .arg("at")
                .arg(at)
                .arg("reason")
                .arg(reason)
                .ignore();
            pipe.cmd("EXPIRE").arg(&record).arg(ttl.max(1)).ignore();
        }
        if deadline > 0 {
            pipe.zadd(sk.deadlines(), &order, deadline).ignore();
        }
    }
    pipe.exec_async(redis).await?;
    if !open_in_redis(redis, keys, &sale, remaining, state.as_str()).await? {
        return Err(OpsError::Conflict(format!(
            "{product} reappeared in Redis while recovering; check `flashctl sale status`"
        )));
    }
    Ok(Recovered {
        product: product.to_string(),
        stock: stock.into(),
        sold: sold.into(),
        remaining: remaining.into(),
        buyers: buyers.len(),
        state,
    })
}
