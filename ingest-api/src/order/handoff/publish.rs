//! Publishing one outbox entry's event to Kafka and confirming the entry.
//!
//! The admission script writes every accepted order to the product's outbox stream in
//! the same atomic step that takes the stock (and `lua/transition.lua` every ended
//! reservation, likewise); the entry starts pending in the stream's consumer group. The
//! API then publishes the event (idempotent producer, `acks=all`), awaits Kafka's
//! acknowledgement, and confirms the entry (`lua/handoff_done.lua`, through the
//! [`Confirmer`]). If the API dies in between, or Kafka fails, the entry stays pending
//! for the relay ([`super::relay`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use shared::OrderPlaced;
use shared::keys::{Keyspace, SaleKeys};
use shared::status::OrderState;
use stores::Replicas;
use stores::records::OrderStatusRecord;
use stores::redis::Conn;
use uuid::Uuid;

use super::confirm::{Confirmation, Confirmer, StatusWrite};
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
    pub(super) inner: Arc<Inner>,
}

/// Where and how long: the topic, the wait for Kafka's acknowledgement
/// (`KAFKA_PUBLISH_TIMEOUT_MS`) and the status record's time to live
/// (`ORDER_STATUS_TTL_SECS`).
#[derive(Debug, Clone)]
pub struct Publishing {
    /// The order topic.
    pub topic: String,
    /// Longest wait for Kafka's acknowledgement.
    pub publish_timeout: Duration,
    /// Time to live of the order-status record.
    pub status_ttl_secs: u64,
}

pub(super) struct Inner {
    pub(super) producer: FutureProducer,
    pub(super) publishing: Publishing,
    pub(super) conn: Conn,
    confirmer: Confirmer,
    pub(super) keys: Keyspace,
    pub(super) replicas: Replicas,
    pub(super) metrics: Metrics,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("topic", &self.inner.publishing.topic)
            .finish()
    }
}

impl Handoff {
    /// A hand-off through `producer` as `publishing` says, confirming over `conn`.
    /// Starts its [`Confirmer`] on the current Tokio runtime. The relay republishes an
    /// entry once it is on `replicas`.
    pub fn new(
        producer: FutureProducer,
        publishing: Publishing,
        conn: Conn,
        keys: Keyspace,
        replicas: Replicas,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                producer,
                confirmer: Confirmer::spawn(conn.clone(), publishing.status_ttl_secs),
                publishing,
                conn,
                keys,
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
                publishing: inner.publishing.clone(),
                confirmer: Confirmer::spawn(conn.clone(), inner.publishing.status_ttl_secs),
                conn,
                keys: inner.keys.clone(),
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
        &self.inner.publishing.topic
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
        let record = FutureRecord::to(&inner.publishing.topic)
            .key(&key)
            .payload(payload);
        let started = std::time::Instant::now();
        let mut delivery = inner.producer.send_result(record).map_err(|(e, _)| {
            inner.metrics.kafka_failure();
            PublishError::Delivery(e)
        })?;
        let timeout = inner.publishing.publish_timeout;
        match tokio::time::timeout(timeout, &mut delivery).await {
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
                Err(PublishError::Timeout(timeout))
            }
        }
    }

    /// The deployment's keyspace.
    pub fn keys(&self) -> &Keyspace {
        &self.inner.keys
    }

    /// What confirms an accepted order's entry: the entry marked done, the stored answer
    /// replayable, the status record for `GET /order` written (batched with the other
    /// orders acknowledged meanwhile by the [`Confirmer`]). A failed confirmation is
    /// logged, not returned: Kafka already has the order, and an entry left pending is
    /// only republished, a no-op for the worker.
    /// `sale` holds the entry: the product's keys, or the shard's that accepted it.
    pub fn placed(&self, sale: &SaleKeys, event: &OrderPlaced, entry_id: &str) -> Confirmation {
        Confirmation {
            outbox: sale.outbox(),
            idem: sale.idempotency(event.user_id.as_str(), event.idempotency_key.as_str()),
            entry_id: entry_id.to_owned(),
            status: Some(StatusWrite {
                key: self.inner.keys.order_status(&event.order_id),
                record: OrderStatusRecord::of(event, OrderState::Accepted),
            }),
        }
    }

    /// What confirms an ended reservation's entry: the entry marked done (the
    /// reservation record stands in for the idempotency record; its placement entry
    /// never matches, so nothing else changes).
    /// `sale` holds the entry and the reservation (the product's keys, or a shard's).
    pub fn transitioned(&self, sale: &SaleKeys, order_id: Uuid, entry_id: &str) -> Confirmation {
        Confirmation {
            outbox: sale.outbox(),
            idem: sale.reservation(&order_id.to_string()),
            entry_id: entry_id.to_owned(),
            status: None,
        }
    }
}
