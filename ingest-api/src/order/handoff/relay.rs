//! The relay: republishes outbox entries a crashed instance (or a Kafka failure) left
//! pending.
//!
//! Every API instance runs one. It claims entries idle for longer than `RELAY_IDLE_MS`
//! with `XAUTOCLAIM` (one claimant at a time, so no double work) and, once the claimed
//! entries are on the required Redis replicas (a `WAIT` pipelined with the claim,
//! [`stores::Replicas`]), republishes them through the same [`Handoff::publish`] an
//! acceptance takes. A duplicate publish is harmless: the worker's write is keyed by the
//! order id. A sharded sale has an outbox per shard; the relay walks each.

use std::time::Duration;

use redis::Value;
use shared::keys::SaleKeys;
use shared::{OrderEvent, ProductId};
use stores::records::{OutboxEntry, outbox};
use stores::redis::Conn;
use stores::reply::{items, text};
use stores::shards::Layout;
use tokio::sync::watch;

use super::publish::Handoff;

/// Pages of [`PAGE`] entries claimed per product and pass.
const PAGES: usize = 16;
/// Entries per claim.
const PAGE: usize = 256;

impl Handoff {
    /// Republishes outbox entries that stayed pending longer than `min_idle`, until
    /// `stop` turns true. Every API instance runs one; `XAUTOCLAIM` hands each stale
    /// entry to one of them at a time.
    pub async fn run_relay(
        self,
        consumer: String,
        min_idle: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let period = (min_idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        tracing::info!(consumer, ?min_idle, "outbox relay started");
        while shared::service::shutdown::next_round(&mut stop, period).await {
            if let Err(e) = self.relay_once(&consumer, min_idle).await {
                tracing::warn!(error = %e, "outbox relay pass failed; retrying");
            }
        }
        tracing::info!(consumer, "outbox relay stopped");
    }

    /// One pass over every product's outbox; returns how many entries were republished.
    /// A failing product is logged and skipped, so it cannot starve the others. After the
    /// pass, `ingest_handoff_backlog` is set to the entries still unconfirmed over all
    /// products (every instance sees, and reports, the same outboxes).
    pub async fn relay_once(
        &self,
        consumer: &str,
        min_idle: Duration,
    ) -> redis::RedisResult<usize> {
        let inner = &self.inner;
        let mut conn = inner.conn.clone();
        let products: Vec<String> = redis::cmd("SMEMBERS")
            .arg(inner.keys.sales_registry())
            .query_async(&mut conn)
            .await?;
        let (mut relayed, mut backlog) = (0, 0);
        for product in products {
            let Ok(product) = ProductId::parse(product) else {
                continue;
            };
            let layout = match Layout::read(&mut conn, &inner.keys.sale(&product)).await {
                Ok(layout) => layout,
                Err(e) => {
                    tracing::warn!(error = %e, %product, "relay pass failed for one product");
                    continue;
                }
            };
            for group in layout.groups(&inner.keys, &product) {
                match self
                    .relay_group(&mut conn, &group, consumer, min_idle)
                    .await
                {
                    Ok(n) => relayed += n,
                    Err(e) => {
                        tracing::warn!(error = %e, %product, "relay pass failed for one product");
                    }
                }
                backlog += pending(&mut conn, &group.outbox()).await?;
            }
        }
        inner.metrics.set_handoff_backlog(backlog);
        Ok(relayed)
    }

    /// Claims and republishes the stale entries of one outbox (a product's, or a
    /// shard's), page by page.
    async fn relay_group(
        &self,
        conn: &mut Conn,
        group: &SaleKeys,
        consumer: &str,
        min_idle: Duration,
    ) -> redis::RedisResult<usize> {
        let outbox = group.outbox();
        let mut cursor = "0-0".to_owned();
        let mut relayed = 0;
        for _ in 0..PAGES {
            let Some((next, entries)) = self
                .claim(conn, &outbox, consumer, min_idle, &cursor)
                .await?
            else {
                break;
            };
            for entry in entries {
                relayed += usize::from(self.republish(group, entry).await);
            }
            match next {
                Some(c) if c != "0-0" => cursor = c,
                _ => break,
            }
        }
        Ok(relayed)
    }

    /// Claims one page of `outbox`'s entries idle past `min_idle`, from `cursor`: the
    /// next cursor and the entries, once the replicas hold the claim (and with it the
    /// admissions that wrote the entries); `None` when there is nothing to relay now.
    async fn claim(
        &self,
        conn: &mut Conn,
        outbox: &str,
        consumer: &str,
        min_idle: Duration,
        cursor: &str,
    ) -> redis::RedisResult<Option<(Option<String>, Vec<OutboxEntry>)>> {
        let claim = redis::cmd("XAUTOCLAIM")
            .arg(outbox)
            .arg(outbox::GROUP)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(PAGE)
            .to_owned();
        let (reply, replicated) = match self.inner.replicas.write_then_wait(conn, claim).await {
            Ok(v) => v,
            // No outbox yet (nothing accepted): nothing to relay.
            Err(e) if e.code() == Some("NOGROUP") => return Ok(None),
            Err(e) => return Err(e),
        };
        let parts = items(Some(&reply)).unwrap_or_default();
        let entries = OutboxEntry::list(parts.get(1));
        if !entries.is_empty()
            && let Err(e) = replicated
        {
            self.inner.metrics.replica_shortfall();
            tracing::warn!(error = %e, outbox, "claimed entries not on enough replicas; will retry");
            return Ok(None);
        }
        Ok(Some((text(parts.first()), entries)))
    }

    /// Publishes one claimed entry of `group`'s outbox again; whether it reached Kafka.
    async fn republish(&self, group: &SaleKeys, entry: OutboxEntry) -> bool {
        let outbox = group.outbox();
        let entry_id = entry.id;
        let Some((payload, Ok(event))) = entry
            .event
            .as_deref()
            .map(|e| (e, OrderEvent::decode(e.as_bytes())))
        else {
            // Written by our own script, so this is a bug; keep it pending and visible
            // (pending handoff > 0) instead of dropping an order.
            tracing::error!(entry_id, outbox, "undecodable outbox entry left pending");
            return false;
        };
        let confirmation = match &event {
            OrderEvent::Placed(e) => self.placed(group, e, &entry_id),
            OrderEvent::Transitioned(e) => self.transitioned(group, e.order_id, &entry_id),
        };
        let order_id = event.order_id();
        match self.publish(order_id, payload, confirmation).await {
            Ok(()) => {
                self.inner.metrics.relayed();
                tracing::info!(%order_id, entry_id, "relayed a stranded entry");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, entry_id, "relay could not publish; will retry");
                false
            }
        }
    }
}

/// Entries of an outbox not yet confirmed (pending in its consumer group; 0 when there is
/// no outbox yet).
async fn pending(conn: &mut Conn, outbox: &str) -> redis::RedisResult<i64> {
    let summary: redis::RedisResult<Value> = redis::cmd("XPENDING")
        .arg(outbox)
        .arg(outbox::GROUP)
        .query_async(conn)
        .await;
    match summary {
        Ok(reply) => Ok(items(Some(&reply))
            .and_then(|parts| stores::reply::int(parts.first()))
            .unwrap_or(0)),
        Err(e) if e.code() == Some("NOGROUP") => Ok(0),
        Err(e) => Err(e),
    }
}
