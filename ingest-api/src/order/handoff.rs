//! The hand-off from Redis to Kafka.
//!
//! The admission script writes every accepted order to the product's outbox stream in
//! the same atomic step that takes the stock (and `lua/transition.lua` every ended
//! reservation, likewise); the entry starts pending in the stream's consumer group. The API then publishes the event (idempotent producer, `acks=all`),
//! awaits Kafka's acknowledgement, and confirms the entry (`lua/handoff_done.lua`). If
//! the API dies in between, or Kafka fails, the entry stays pending; the relay in every
//! API instance claims entries idle for longer than `RELAY_IDLE_MS` with `XAUTOCLAIM`
//! (one claimant at a time, so no double work) and, once the claimed entries are on the
//! required Redis replicas (a `WAIT` pipelined with the claim, [`Replicas`]), republishes
//! them. A duplicate publish is
//! harmless: the worker's write is keyed by the order id.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use redis::Value;
use shared::keys::{Keyspace, OUTBOX_GROUP};
use shared::{OrderEvent, OrderPlaced, ProductId};
use stores::redis::Conn;
use tokio::sync::watch;
use uuid::Uuid;

use super::confirm::{Confirmation, Confirmer, StatusRecord};
use super::replicas::Replicas;
use crate::metrics::Metrics;

/// Why an order could not be confirmed by Kafka in time.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer refused or Kafka reported a failure.
    #[error("kafka delivery failed")]
    Delivery(#[source] KafkaError),
    /// No acknowledgement within the publish timeout; delivery may still succeed later.
    #[error("kafka delivery not confirmed within {0:?}")]
    Timeout(Duration),
}

/// Publishes accepted orders and confirms their outbox entries.
#[derive(Clone)]
pub struct Handoff {
    inner: Arc<Inner>,
}

struct Inner {
    producer: FutureProducer,
    topic: String,
    conn: Conn,
    confirmer: Confirmer,
    keys: Keyspace,
    publish_timeout: Duration,
    status_ttl_secs: u64,
    replicas: Replicas,
    metrics: Metrics,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("topic", &self.inner.topic)
            .finish()
    }
}

impl Handoff {
    /// A hand-off to `topic`. Starts its [`Confirmer`] on the current Tokio runtime. The
    /// relay republishes an entry once it is on `replicas`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        producer: FutureProducer,
        topic: String,
        conn: Conn,
        keys: Keyspace,
        publish_timeout: Duration,
        status_ttl_secs: u64,
        replicas: Replicas,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                producer,
                topic,
                confirmer: Confirmer::spawn(conn.clone(), status_ttl_secs),
                conn,
                keys,
                publish_timeout,
                status_ttl_secs,
                replicas,
                metrics,
            }),
        }
    }

    /// The same hand-off confirming over another connection, with a [`Confirmer`] of its
    /// own on the current runtime. Each HTTP worker thread gets one (created on that
    /// thread), so confirmations do not hop to another thread and back.
    pub fn with_connection(&self, conn: Conn) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                producer: inner.producer.clone(),
                topic: inner.topic.clone(),
                confirmer: Confirmer::spawn(conn.clone(), inner.status_ttl_secs),
                conn,
                keys: inner.keys.clone(),
                publish_timeout: inner.publish_timeout,
                status_ttl_secs: inner.status_ttl_secs,
                replicas: inner.replicas.clone(),
                metrics: inner.metrics.clone(),
            }),
        }
    }

    /// The producer, for readiness checks and the final flush.
    pub fn producer(&self) -> &FutureProducer {
        &self.inner.producer
    }

    /// The topic orders go to.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Publishes one outbox entry's event (`payload`, as the outbox holds it, keyed by
    /// `order_id` so an order's events stay in order) and, once Kafka acknowledged it,
    /// writes `confirmation`. On timeout the delivery keeps running in the background
    /// and confirms the entry if it succeeds; otherwise the relay republishes it.
    #[tracing::instrument(name = "publish", skip_all, fields(%order_id))]
    pub async fn publish(
        &self,
        order_id: Uuid,
        payload: &str,
        confirmation: Confirmation,
    ) -> Result<(), PublishError> {
        let inner = &self.inner;
        let key = order_id.to_string();
        let record = FutureRecord::to(&inner.topic).key(&key).payload(payload);
        let started = std::time::Instant::now();
        let mut delivery = inner.producer.send_result(record).map_err(|(e, _)| {
            inner.metrics.kafka_failure();
            PublishError::Delivery(e)
        })?;
        match tokio::time::timeout(inner.publish_timeout, &mut delivery).await {
            Ok(Ok(Ok(_))) => {
                inner.metrics.kafka_delivered(started.elapsed());
                inner.confirmer.confirm(confirmation).await;
                Ok(())
            }
            Ok(Ok(Err((e, _)))) => {
                inner.metrics.kafka_failure();
                Err(PublishError::Delivery(e))
            }
            Ok(Err(_canceled)) => {
                inner.metrics.kafka_failure();
                Err(PublishError::Delivery(KafkaError::Canceled))
            }
            Err(_elapsed) => {
                inner.metrics.kafka_failure();
                let confirmer = inner.confirmer.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(_)) = delivery.await {
                        confirmer.confirm(confirmation).await;
                    }
                });
                Err(PublishError::Timeout(inner.publish_timeout))
            }
        }
    }

    /// What confirms an accepted order's entry: the entry marked done, the stored answer
    /// replayable, the status record for `GET /order` written (batched with the other
    /// orders acknowledged meanwhile by the [`Confirmer`]). A failed confirmation is
    /// logged, not returned: Kafka already has the order, and an entry left pending is
    /// only republished, a no-op for the worker.
    pub fn placed(&self, event: &OrderPlaced, entry_id: &str) -> Confirmation {
        let sale = self.inner.keys.sale(&event.product_id);
        Confirmation {
            outbox: sale.outbox(),
            idem: sale.idempotency(event.user_id.as_str(), event.idempotency_key.as_str()),
            entry_id: entry_id.to_owned(),
            status: Some(StatusRecord {
                key: self.inner.keys.order_status(&event.order_id),
                fields: shared::status::order_fields(event),
            }),
        }
    }

    /// What confirms an ended reservation's entry: the entry marked done (the
    /// reservation record stands in for the idempotency record; its placement entry
    /// never matches, so nothing else changes).
    pub fn transitioned(
        &self,
        product: &ProductId,
        order_id: Uuid,
        entry_id: &str,
    ) -> Confirmation {
        let sale = self.inner.keys.sale(product);
        Confirmation {
            outbox: sale.outbox(),
            idem: sale.reservation(&order_id.to_string()),
            entry_id: entry_id.to_owned(),
            status: None,
        }
    }

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
        while shared::shutdown::next_round(&mut stop, period).await {
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
            match self
                .relay_product(&mut conn, &product, consumer, min_idle)
                .await
            {
                Ok(n) => relayed += n,
                Err(e) => tracing::warn!(error = %e, %product, "relay pass failed for one product"),
            }
            backlog += pending(&mut conn, &inner.keys.sale(&product).outbox()).await?;
        }
        inner.metrics.set_handoff_backlog(backlog);
        Ok(relayed)
    }

    /// Claims and republishes one product's stale entries, page by page.
    async fn relay_product(
        &self,
        conn: &mut Conn,
        product: &ProductId,
        consumer: &str,
        min_idle: Duration,
    ) -> redis::RedisResult<usize> {
        const PAGES: usize = 16;
        let outbox = self.inner.keys.sale(product).outbox();
        let mut cursor = "0-0".to_owned();
        let mut relayed = 0;
        for _ in 0..PAGES {
            let claim = redis::cmd("XAUTOCLAIM")
                .arg(&outbox)
                .arg(OUTBOX_GROUP)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg(&cursor)
                .arg("COUNT")
                .arg(256)
                .to_owned();
            // The claim is a write after the admissions that wrote these entries: the
            // WAIT pipelined with it covers them.
            let (reply, replicated) = match self.inner.replicas.write_then_wait(conn, claim).await {
                Ok(v) => v,
                // No outbox yet (nothing accepted): nothing to relay.
                Err(e) if e.code() == Some("NOGROUP") => return Ok(relayed),
                Err(e) => return Err(e),
            };
            let (next, entries) = claimed_entries(&reply);
            if !entries.is_empty()
                && let Err(e) = replicated
            {
                self.inner.metrics.replica_shortfall();
                tracing::warn!(error = %e, outbox, "claimed entries not on enough replicas; will retry");
                return Ok(relayed);
            }
            for (entry_id, event) in entries {
                let decoded = event
                    .as_deref()
                    .map(|e| (e, OrderEvent::decode(e.as_bytes())));
                match decoded {
                    Some((payload, Ok(event))) => {
                        let confirmation = match &event {
                            OrderEvent::Placed(e) => self.placed(e, &entry_id),
                            OrderEvent::Transitioned(e) => {
                                self.transitioned(&e.product_id, e.order_id, &entry_id)
                            }
                        };
                        let order_id = event.order_id();
                        match self.publish(order_id, payload, confirmation).await {
                            Ok(()) => {
                                relayed += 1;
                                self.inner.metrics.relayed();
                                tracing::info!(%order_id, entry_id, "relayed a stranded entry");
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, entry_id, "relay could not publish; will retry");
                            }
                        }
                    }
                    _ => {
                        // Written by our own script, so this is a bug; keep it pending and
                        // visible (pending handoff > 0) instead of dropping an order.
                        tracing::error!(entry_id, outbox, "undecodable outbox entry left pending");
                    }
                }
            }
            match next {
                Some(c) if c != "0-0" => cursor = c,
                _ => break,
            }
        }
        Ok(relayed)
    }
}

/// Entries of an outbox not yet confirmed (pending in its consumer group; 0 when there is
/// no outbox yet).
async fn pending(conn: &mut Conn, outbox: &str) -> redis::RedisResult<i64> {
    let summary: redis::RedisResult<Value> = redis::cmd("XPENDING")
        .arg(outbox)
        .arg(OUTBOX_GROUP)
        .query_async(conn)
        .await;
    match summary {
        Ok(Value::Array(parts)) => Ok(match parts.first() {
            Some(Value::Int(n)) => *n,
            _ => 0,
        }),
        Ok(_) => Ok(0),
        Err(e) if e.code() == Some("NOGROUP") => Ok(0),
        Err(e) => Err(e),
    }
}

/// The next cursor and the `(entry id, event JSON)` pairs of an `XAUTOCLAIM` reply
/// (`[cursor, [[id, [f, v…]]…], …]`).
fn claimed_entries(reply: &Value) -> (Option<String>, Vec<(String, Option<String>)>) {
    let as_text = |v: &Value| super::admit_reply::text(Some(v));
    let Value::Array(parts) = reply else {
        return (None, vec![]);
    };
    let cursor = parts.first().and_then(as_text);
    let Some(Value::Array(entries)) = parts.get(1) else {
        return (cursor, vec![]);
    };
    let entries = entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(pair) = entry else {
                return None;
            };
            let id = as_text(pair.first()?)?;
            let event = match pair.get(1) {
                Some(Value::Array(fields)) => fields
                    .chunks(2)
                    .find(|kv| as_text(&kv[0]).as_deref() == Some("event"))
                    .and_then(|kv| kv.get(1).and_then(as_text)),
                _ => None,
            };
            Some((id, event))
        })
        .collect();
    (cursor, entries)
}
