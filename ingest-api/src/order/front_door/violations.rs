//! Violations: limit, block, signature and replay refusals.
//!
//! Each one is logged as a single structured event (type, client IP, user, fingerprint,
//! product, path; the log line carries the time) and counted in Prometheus. Per-hour
//! counters in Redis (kept 25 h, read by `flashctl violations`) are written by the
//! admission script itself for the refusals it decides; refusals decided before it (bad
//! signatures, stale requests, the in-process limiter) are summed in memory and flushed
//! once a second, so a flood of forged requests cannot turn into a flood of Redis writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use shared::event::now_ms;
use shared::keys::Keyspace;
use shared::{ProductId, ViolationKind};
use stores::redis::Conn;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Where a violation happened, for its log event.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// Client address.
    pub client_ip: String,
    /// User id, when the body was read.
    pub user: Option<&'a str>,
    /// Fingerprint as sent.
    pub fingerprint: Option<&'a str>,
    /// Product, when the body was read.
    pub product: Option<&'a ProductId>,
    /// Request path.
    pub path: &'a str,
}

/// A queued counter: (product if known, Unix hour, violation type).
type Bucket = (Option<ProductId>, u64, ViolationKind);

/// Logs, counts, and (for refusals decided outside Redis) queues hourly counters.
#[derive(Debug)]
pub struct Violations {
    metrics: Metrics,
    pending: Mutex<HashMap<Bucket, u64>>,
}

impl Violations {
    /// A recorder reporting to `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Records one violation. `counted_in_redis` is true when the admission script
    /// already incremented the hourly counter.
    pub fn record(&self, kind: ViolationKind, ctx: &Context<'_>, counted_in_redis: bool) {
        tracing::warn!(
            target: "violation",
            kind = kind.as_str(),
            client_ip = %ctx.client_ip,
            user = ctx.user,
            fingerprint = ctx.fingerprint,
            product = ctx.product.map(ProductId::as_str),
            path = ctx.path,
            "violation"
        );
        self.metrics.violation(kind);
        if !counted_in_redis {
            let hour = now_ms() / 3_600_000;
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            *pending
                .entry((ctx.product.cloned(), hour, kind))
                .or_insert(0) += 1;
        }
    }

    /// Writes the queued counters (one pipeline).
    pub async fn flush(&self, conn: &mut Conn, keys: &Keyspace) -> redis::RedisResult<()> {
        let batch: Vec<_> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        // Counters of several products (several slots on a cluster).
        let mut counts = stores::redis::Batch::new(conn);
        for ((product, hour, kind), n) in &batch {
            let key = match product {
                Some(p) => keys.sale(p).violations(*hour),
                None => keys.global_violations(*hour),
            };
            counts
                .group()
                .hincr(&key, kind.as_str(), *n)
                .ignore()
                .expire(&key, 90_000)
                .ignore();
        }
        let result = counts.exec(conn).await;
        if result.is_err() {
            // Put them back: the next flush retries.
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (k, n) in batch {
                *pending.entry(k).or_insert(0) += n;
            }
        }
        result
    }

    /// Flushes every second until `stop`, then once more.
    pub async fn run(&self, mut conn: Conn, keys: Keyspace, mut stop: watch::Receiver<bool>) {
        while shared::service::shutdown::next_round(&mut stop, Duration::from_secs(1)).await {
            if let Err(e) = self.flush(&mut conn, &keys).await {
                tracing::debug!(error = %e, "violation counters not flushed; will retry");
            }
        }
        let _ = self.flush(&mut conn, &keys).await;
    }
}
