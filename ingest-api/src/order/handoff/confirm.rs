//! Confirming hand-offs in batches.
//!
//! Once Kafka acknowledged an order, its outbox entry is marked delivered
//! (`lua/handoff_done.lua`) and its status record for `GET /order/{id}` is written. Done
//! one order at a time, that is a second Redis round trip per accepted order, the largest
//! cost of the accept path after the admission itself (`docs/load-and-bench.md`). The
//! [`Confirmer`] instead sends, in one round trip, everything acknowledged while the
//! previous round trip was on its way: one script call per product and three status
//! commands per order. Under a trickle each batch holds one order and sets off at once;
//! under a flash sale's crowd the batches grow by themselves, and an order acknowledged
//! while a batch is on its way waits for that round trip and its own.
//!
//! A confirmation is best effort, as before: if a batch fails (all of it, up to
//! [`MAX_BATCH`] orders), its entries stay pending and the relay republishes them (a no-op
//! for the worker), and the status records appear once the relay confirms or the worker
//! marks the orders persisted.

use stores::records::OrderStatusRecord;
use stores::redis::{Batch, Conn};
use stores::script::{Script, is_noscript};
use tokio::sync::{mpsc, oneshot};

/// At most this many orders per round trip (`lua/handoff_done.lua` unpacks a product's
/// entry ids into one command, which Lua allows up to about 8,000).
pub const MAX_BATCH: usize = 512;

static DONE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../../../lua/handoff_done.lua")));

/// One entry to confirm: the outbox entry and the record `handoff_done.lua` marks done
/// when it still belongs to this entry, and the status record to write, if any.
#[derive(Debug)]
pub struct Confirmation {
    /// The product's outbox stream.
    pub outbox: String,
    /// The order's idempotency record.
    pub idem: String,
    /// Its entry in the outbox.
    pub entry_id: String,
    /// The order's status record (accepted orders only).
    pub status: Option<StatusWrite>,
}

/// An order's status record for `GET /order/{id}`, and where it goes.
#[derive(Debug)]
pub struct StatusWrite {
    /// Its key.
    pub key: String,
    /// The record.
    pub record: OrderStatusRecord,
}

struct Queued {
    confirmation: Confirmation,
    done: oneshot::Sender<()>,
}

/// Hands confirmations to a task that writes them in batches over one connection.
#[derive(Debug, Clone)]
pub struct Confirmer {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Confirmer {
    /// Starts the batching task on the current Tokio runtime; it ends when the last
    /// clone of the returned handle is dropped.
    pub fn spawn(conn: Conn, status_ttl_secs: u64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, conn, status_ttl_secs));
        Self { tx }
    }

    /// Confirms one order; returns once its batch was written (or failed, which is
    /// logged).
    pub async fn confirm(&self, confirmation: Confirmation) {
        let (done, written) = oneshot::channel();
        if self.tx.send(Queued { confirmation, done }).is_ok() {
            let _ = written.await;
        } else {
            tracing::warn!("the confirmation task is gone; the relay will hand this order off");
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Queued>, mut conn: Conn, ttl: u64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let confirmations: Vec<&Confirmation> = batch.iter().map(|q| &q.confirmation).collect();
        if let Err(e) = write(&mut conn, &confirmations, ttl).await {
            tracing::warn!(
                error = %e, orders = batch.len(),
                "could not confirm hand-offs; the relay will republish those orders"
            );
        }
        for q in batch.drain(..) {
            let _ = q.done.send(());
        }
    }
}

/// Writes one batch: on a single server in one round trip; on a cluster one pipeline per
/// product and one per status record, all sent at once ([`Batch`]). If Redis lost the
/// script, it is loaded and the write repeated.
pub async fn write(conn: &mut Conn, batch: &[&Confirmation], ttl: u64) -> redis::RedisResult<()> {
    let mut out = Batch::new(conn);
    for status in batch.iter().filter_map(|c| c.status.as_ref()) {
        status.record.write(out.group(), &status.key, ttl);
    }
    // One script call per product, its orders in batch order.
    let mut outboxes: Vec<&str> = batch.iter().map(|c| c.outbox.as_str()).collect();
    outboxes.sort_unstable();
    outboxes.dedup();
    for outbox in outboxes {
        let orders: Vec<&&Confirmation> = batch.iter().filter(|c| c.outbox == outbox).collect();
        let keys: Vec<&str> = std::iter::once(outbox)
            .chain(orders.iter().map(|c| c.idem.as_str()))
            .collect();
        let entries: Vec<&str> = orders.iter().map(|c| c.entry_id.as_str()).collect();
        out.group()
            .add_command(DONE.call(&keys, &entries).cmd(false))
            .ignore();
    }
    match out.exec(conn).await {
        Err(e) if is_noscript(&e) => {
            DONE.load(conn).await?;
            out.exec(conn).await
        }
        other => other,
    }
}
