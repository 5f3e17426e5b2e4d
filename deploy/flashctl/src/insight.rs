//! Looking into a sale: violations per hour, suspicious orders, and reconciliation of
//! Redis with PostgreSQL.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stores::shards::Layout;

use redis::aio::ConnectionLike;
use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;
use stores::records::OutboxEntry;
use tokio_postgres::Client;

use crate::{OpsError, Verdict};

/// Violation counts of one hour, by type.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hour {
    /// Start of the hour, RFC 3339.
    pub hour: String,
    /// Count per violation type.
    pub counts: BTreeMap<String, u64>,
}

fn unix_hour_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 3600)
        .unwrap_or(0)
}

fn hour_label(h: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(h * 3600)).to_string()
}

/// The last `hours` hours of violation counters, oldest first: the product's (decided by
/// the admission script; a sharded sale's summed over its keys and its shards') or, without a product,
/// the ones recorded before a product was known (bad signatures, stale requests).
pub async fn violations(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: Option<&ProductId>,
    hours: u64,
) -> Result<Vec<Hour>, OpsError> {
    if !(1..=25).contains(&hours) {
        return Err(OpsError::Invalid(
            "--hours must be 1..=25 (counters are kept 25 h)".into(),
        ));
    }
    let now = unix_hour_now();
    // The API counts some violations on the product's keys; the script on a shard's.
    let mut groups = Vec::new();
    if let Some(p) = product {
        groups.push(keys.sale(p));
        if let Some(shards) = Layout::read(redis, &keys.sale(p)).await?.shards() {
            groups.extend(shards.keys(keys, p));
        }
    }
    let mut out = Vec::new();
    for h in (now + 1 - hours)..=now {
        let hour_keys = match product {
            Some(_) => groups.iter().map(|g| g.violations(h)).collect(),
            None => vec![keys.global_violations(h)],
        };
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for key in hour_keys {
            let some: BTreeMap<String, u64> =
                redis::cmd("HGETALL").arg(key).query_async(redis).await?;
            for (kind, n) in some {
                *counts.entry(kind).or_default() += n;
            }
        }
        out.push(Hour {
            hour: hour_label(h),
            counts,
        });
    }
    Ok(out)
}

/// Orders worth a look.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Suspicious {
    /// Users holding more units than the per-user cap (should be none).
    pub over_cap: Vec<(String, i64)>,
    /// Device pseudonyms used by several users: (device hash, users, orders).
    pub shared_devices: Vec<(String, i64, i64)>,
    /// Network pseudonyms (IPv4 or IPv6 /64) used by several users.
    pub shared_networks: Vec<(String, i64, i64)>,
    /// Devices with many orders within one minute: (device hash, minute, orders).
    pub device_bursts: Vec<(String, String, i64)>,
}

/// Looks for abuse among a product's orders since `since`: users over the cap, devices
/// and networks shared by at least `min_users` users, and devices with at least
/// `burst` orders in one minute. Works on pseudonyms only; no raw address is stored.
pub async fn suspicious(
    pg: &Client,
    product: &ProductId,
    since: Duration,
    min_users: i64,
    burst: i64,
) -> Result<Suspicious, OpsError> {
    let p = product.as_str();
    let since_s = since.as_secs_f64();
    let over_cap = pg
        .query(
            &format!(
                "SELECT o.user_id, sum(o.quantity)::int8 FROM orders o JOIN sales s USING (product_id) \
                 WHERE o.product_id = $1 AND {WINDOW} AND s.per_user_limit > 0 \
                   AND o.state IN ('reserved', 'paid') \
                 GROUP BY o.user_id, s.per_user_limit HAVING sum(o.quantity) > s.per_user_limit \
                 ORDER BY 2 DESC LIMIT 50"
            ),
            &[&p, &since_s],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(Suspicious {
        over_cap,
        shared_devices: shared_by_users(pg, "device_hash", p, since_s, min_users).await?,
        shared_networks: shared_by_users(pg, "ip_hash", p, since_s, min_users).await?,
        device_bursts: device_bursts(pg, p, since_s, burst).await?,
    })
}

/// Orders of the last `$2` seconds.
const WINDOW: &str = "accepted_at >= now() - make_interval(secs => $2)";

/// Values of a pseudonym `column` (`device_hash`, `ip_hash`, never input) shared by at
/// least `min_users` users: (value, users, orders).
async fn shared_by_users(
    pg: &Client,
    column: &'static str,
    product: &str,
    since_s: f64,
    min_users: i64,
) -> Result<Vec<(String, i64, i64)>, OpsError> {
    let sql = format!(
        "SELECT {column}, count(DISTINCT user_id)::int8, count(*)::int8 FROM orders \
         WHERE product_id = $1 AND {WINDOW} AND {column} IS NOT NULL \
         GROUP BY {column} HAVING count(DISTINCT user_id) >= $3 ORDER BY 2 DESC LIMIT 50"
    );
    Ok(pg
        .query(&sql, &[&product, &since_s, &min_users])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Devices with at least `burst` orders within one minute: (device, minute, orders).
async fn device_bursts(
    pg: &Client,
    product: &str,
    since_s: f64,
    burst: i64,
) -> Result<Vec<(String, String, i64)>, OpsError> {
    let sql = format!(
        "SELECT device_hash, to_char(date_trunc('minute', accepted_at) AT TIME ZONE 'UTC', \
                'YYYY-MM-DD\"T\"HH24:MI\"Z\"'), count(*)::int8 \
         FROM orders WHERE product_id = $1 AND {WINDOW} AND device_hash IS NOT NULL \
         GROUP BY 1, 2 HAVING count(*) >= $3 ORDER BY 3 DESC LIMIT 50"
    );
    Ok(pg
        .query(&sql, &[&product, &since_s, &burst])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Redis and PostgreSQL side by side.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reconciliation {
    /// The product.
    pub product: String,
    /// Units on sale.
    pub stock: i64,
    /// Units taken in Redis (`stock - remaining`), if Redis has the sale.
    pub redis_taken: Option<i64>,
    /// Units persisted (`sales.sold`).
    pub persisted: i64,
    /// Units in live (reserved or paid) `orders` rows (must equal `persisted`).
    pub row_units: i64,
    /// Units of accepted orders still in the outbox, less the units of cancelled and
    /// expired orders still there.
    pub pending_handoff_units: i64,
    /// Messages in Kafka not yet written by the worker group.
    pub worker_lag: i64,
    /// Orders of this product that were dead-lettered.
    pub dead_lettered: i64,
    /// `redis_taken - persisted - pending_handoff_units` once nothing is in transit.
    pub drift: Option<i64>,
    /// What the comparison concludes.
    pub verdict: Verdict,
}

/// Compares a sale across Redis and PostgreSQL. `lag` is the worker group's lag on the
/// order topic (messages of every product, so a busy topic shows as `settling`). A
/// sharded sale whose census does not balance is drift too.
pub async fn reconcile(
    pg: &Client,
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    product: &ProductId,
    lag: i64,
) -> Result<Reconciliation, OpsError> {
    let status = crate::sale::status(pg, redis, keys, product).await?;
    // The rows' units and `sales.sold` come from one statement (one snapshot): read
    // apart, a batch the worker commits in between would look like drift.
    let row_units = status.reserved + status.paid;
    let dead_lettered: i64 = pg
        .query_one(
            "SELECT count(*) FROM rejected_orders WHERE product_id = $1",
            &[&product.as_str()],
        )
        .await?
        .get(0);
    let pending_units = pending_units(redis, keys, product).await?;
    let settled = lag == 0 && status.pending_handoff == 0;
    let drift = status.taken.map(|t| t - status.persisted - pending_units);
    let verdict = match (status.taken, drift) {
        (None, _) => Verdict::RedisMissing,
        _ if row_units != status.persisted => Verdict::Drift,
        // A sharded sale's census: pool + shards + in transit + taken + returning = stock.
        _ if status.sharded.as_ref().is_some_and(|c| !c.balanced) => Verdict::Drift,
        (_, Some(0)) => Verdict::Consistent,
        _ if !settled => Verdict::Settling,
        _ => Verdict::Drift,
    };
    Ok(Reconciliation {
        product: product.to_string(),
        stock: status.stock,
        redis_taken: status.taken,
        persisted: status.persisted,
        row_units,
        pending_handoff_units: pending_units,
        worker_lag: lag,
        dead_lettered,
        drift,
        verdict,
    })
}

/// The units of the outbox entries not yet handed off: accepted orders (taken in Redis,
/// not yet persisted) less returns (given back in Redis, not yet taken off `sold`).
async fn pending_units(
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<i64, OpsError> {
    // A sharded sale's entries are in its shards' outboxes.
    let mut entries = Vec::new();
    let layout = Layout::read(redis, &keys.sale(product)).await?;
    for group in layout.groups(keys, product) {
        entries.extend(OutboxEntry::read_all(redis, &group.outbox()).await?);
    }
    // Accepted orders in the outbox are taken in Redis and not yet persisted; returns in
    // the outbox are given back in Redis and not yet taken off `sold`.
    Ok(entries
        .iter()
        .filter_map(|entry| entry.event.as_deref())
        .filter_map(|e| shared::OrderEvent::decode(e.as_bytes()).ok())
        .map(|e| match e {
            shared::OrderEvent::Placed(p) => i64::from(p.quantity.get()),
            shared::OrderEvent::Transitioned(t) if t.state.returns_units() => {
                -i64::from(t.quantity.get())
            }
            shared::OrderEvent::Transitioned(_) => 0,
        })
        .sum())
}
