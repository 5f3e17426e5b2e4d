//! The consume → write → commit loop.
//!
//! Messages are taken in bounded batches (`BATCH_MAX` messages or `BATCH_LINGER_MS`
//! after the first). A batch is decoded, poison is set aside, and the rest is written in
//! one atomic statement ([`crate::db::write_batch`]). Only after it commits are
//! the offsets stored (`enable.auto.offset.store=false`); librdkafka commits stored
//! offsets in the background and on rebalance. A crash anywhere before that means the
//! batch is redelivered, and the write is idempotent.
//!
//! Errors split two ways: *poison* (undecodable, unknown schema version, refused by a
//! constraint) goes to the dead-letter topic and the `rejected_orders` table and the
//! partition moves on; *transient* (PostgreSQL or Kafka unavailable) backs off and
//! retries the same batch, storing nothing, until it succeeds or shutdown abandons it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use shared::keys::Keyspace;
use shared::status::OrderState;
use shared::{OrderEvent, OrderPlaced};
use stores::records::OrderStatusRecord;
use stores::redis::{Batch, Conn};
use tokio::sync::watch;

use crate::db::{self, StoreError};
use crate::dead_letter::Poison;
use crate::group::WorkerContext;
use crate::metrics::Metrics;

/// The consumer type of the worker.
pub type OrderConsumer = StreamConsumer<WorkerContext>;

/// Why a batch could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Back off and retry the same batch; store no offset.
    #[error("transient: {0}")]
    Transient(String),
}

impl From<StoreError> for ProcessError {
    fn from(e: StoreError) -> Self {
        ProcessError::Transient(e.to_string())
    }
}

/// The batch loop and what it needs.
pub struct Worker {
    /// The subscribed consumer.
    pub consumer: Arc<OrderConsumer>,
    /// The order topic.
    pub topic: String,
    /// Producer for the dead-letter topic.
    pub dlq: FutureProducer,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// PostgreSQL.
    pub pool: Pool,
    /// Redis, for order status marks and to put returned units back on sale.
    pub redis: Option<Conn>,
    /// Key layout (for order status).
    pub keys: Keyspace,
    /// Status retention in Redis (`ORDER_STATUS_TTL_SECS`).
    pub status_ttl_secs: u64,
    /// Batch bounds.
    pub batch_max: usize,
    /// Batch linger.
    pub batch_linger: Duration,
    /// Grace period after the stop signal.
    pub shutdown_grace: Duration,
    /// Metrics.
    pub metrics: Metrics,
}

/// The outcome of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Written (or dead-lettered) and offsets stored.
    Done,
    /// Shutdown grace ran out while PostgreSQL or Kafka was unavailable; nothing stored,
    /// the batch will be redelivered.
    Abandoned,
}

impl Worker {
    /// Consumes until `stop` turns true, then commits what was stored.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        tracing::info!(batch_max = self.batch_max, linger = ?self.batch_linger, "worker consuming");
        loop {
            let batch = tokio::select! {
                biased;
                _ = stop.changed() => break,
                batch = self.next_batch() => batch,
            };
            if batch.is_empty() {
                continue;
            }
            if self.handle(&batch, &stop).await == BatchOutcome::Abandoned {
                break;
            }
            if *stop.borrow() {
                break;
            }
        }
        tracing::info!("worker stopping: committing stored offsets");
        let consumer = self.consumer.clone();
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync))
                .await;
        if let Ok(Err(e)) = committed {
            tracing::debug!(error = %e, "final commit");
        }
        self.consumer.unsubscribe();
        Ok(())
    }

    /// Waits for one message, then gathers more until the batch is full or the linger
    /// time has passed.
    async fn next_batch(&self) -> Vec<OwnedMessage> {
        let mut batch = Vec::with_capacity(self.batch_max);
        match self.consumer.recv().await {
            Ok(m) => batch.push(m.detach()),
            Err(e) => {
                tracing::warn!(error = %e, "kafka receive error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return batch;
            }
        }
        let deadline = tokio::time::Instant::now() + self.batch_linger;
        while batch.len() < self.batch_max {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka receive error");
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    /// Writes a batch, retrying transient failures with back-off.
    #[tracing::instrument(name = "batch", skip_all, fields(size = batch.len()))]
    pub async fn handle(
        &self,
        batch: &[OwnedMessage],
        stop: &watch::Receiver<bool>,
    ) -> BatchOutcome {
        let started = Instant::now();
        let decoded: Vec<Result<OrderEvent, String>> = batch
            .iter()
            .map(|m| match m.payload() {
                None => Err("empty payload".to_owned()),
                Some(p) => OrderEvent::decode(p).map_err(|e| e.to_string()),
            })
            .collect();
        let mut backoff = Duration::from_millis(100);
        let mut stopping_since: Option<Instant> = None;
        // Messages already dead-lettered survive a retry of the batch: sent once only.
        let mut dead: HashSet<(i32, i64)> = HashSet::new();
        let written = loop {
            match self.persist(batch, &decoded, &mut dead).await {
                Ok(written) => break written,
                Err(ProcessError::Transient(reason)) => {
                    self.metrics.transient_error();
                    tracing::warn!(reason, retry_in = ?backoff, "batch not written; retrying");
                    if *stop.borrow() {
                        let since = *stopping_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= self.shutdown_grace {
                            tracing::warn!(
                                "shutdown grace exceeded: abandoning the batch (it will be redelivered)"
                            );
                            return BatchOutcome::Abandoned;
                        }
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        self.store_offsets(batch);
        self.mark_persisted(&written).await;
        self.metrics.batch(batch.len(), started.elapsed());
        BatchOutcome::Done
    }

    /// Dead-letters the poison, writes the placements, then the transitions. Returns the
    /// orders that are now in PostgreSQL (written now or before).
    async fn persist<'a>(
        &self,
        batch: &'a [OwnedMessage],
        decoded: &'a [Result<OrderEvent, String>],
        dead: &mut HashSet<(i32, i64)>,
    ) -> Result<Vec<&'a OrderPlaced>, ProcessError> {
        let mut placed = Vec::with_capacity(batch.len());
        let mut moved = Vec::new();
        for (message, d) in batch.iter().zip(decoded) {
            match d {
                Ok(OrderEvent::Placed(order)) => placed.push((message, order)),
                Ok(OrderEvent::Transitioned(event)) => moved.push((message, event)),
                Err(reason) => {
                    let poison = Poison::unread(message, reason.clone());
                    self.dead_letter_once(&poison, dead).await?
                }
            }
        }
        let written = self.write_placements(placed, dead).await?;
        self.write_transitions(&moved, dead).await?;
        Ok(written)
    }

    /// Writes placements in one statement; isolates a batch a constraint refused.
    async fn write_placements<'a>(
        &self,
        good: Vec<(&'a OwnedMessage, &'a OrderPlaced)>,
        dead: &mut HashSet<(i32, i64)>,
    ) -> Result<Vec<&'a OrderPlaced>, ProcessError> {
        let orders: Vec<&OrderPlaced> = good.iter().map(|(_, o)| *o).collect();
        match db::write_batch(&self.pool, &orders).await {
            Ok(inserted) => {
                self.metrics.written(inserted, orders.len() as u64);
                Ok(orders)
            }
            Err(StoreError::Rejected(e)) => {
                tracing::warn!(error = %e, "batch refused by a constraint: isolating the offending orders");
                let mut written = Vec::with_capacity(good.len());
                for (message, order) in good {
                    match db::write_batch(&self.pool, &[order]).await {
                        Ok(inserted) => {
                            self.metrics.written(inserted, 1);
                            written.push(order);
                        }
                        Err(StoreError::Rejected(e)) => {
                            let reason = e
                                .as_db_error()
                                .map(|d| format!("{}: {}", d.code().code(), d.message()))
                                .unwrap_or_else(|| e.to_string());
                            let poison = Poison::placement(message, reason, order);
                            self.dead_letter_once(&poison, dead).await?;
                        }
                        Err(e @ StoreError::Transient(_)) => return Err(e.into()),
                    }
                }
                Ok(written)
            }
            Err(e @ StoreError::Transient(_)) => Err(e.into()),
        }
    }

    /// Stores the next offset of every partition in the batch (committed in the
    /// background). A partition revoked meanwhile refuses the store; its new owner
    /// re-reads the batch, which the idempotent write turns into a no-op.
    fn store_offsets(&self, batch: &[OwnedMessage]) {
        let mut last: HashMap<(&str, i32), i64> = HashMap::new();
        for m in batch {
            let e = last.entry((m.topic(), m.partition())).or_insert(m.offset());
            *e = (*e).max(m.offset());
        }
        for ((topic, partition), offset) in last {
            // librdkafka stores offset + 1, the next message to read.
            if let Err(e) = self.consumer.store_offset(topic, partition, offset) {
                tracing::info!(error = %e, partition, "offset not stored (partition revoked?)");
            }
        }
    }

    /// Marks orders `persisted` for `GET /order/{id}`; best effort.
    async fn mark_persisted(&self, orders: &[&OrderPlaced]) {
        let Some(conn) = &self.redis else {
            return;
        };
        if orders.is_empty() {
            return;
        }
        let mut marks = Batch::new(conn);
        for o in orders {
            let key = self.keys.order_status(&o.order_id);
            OrderStatusRecord::of(o, OrderState::Persisted).write(
                marks.group(),
                &key,
                self.status_ttl_secs,
            );
        }
        if let Err(e) = marks.exec(conn).await {
            tracing::debug!(error = %e, "could not mark orders persisted in Redis");
        }
    }
}
