//! The sold-out fast path.
//!
//! Once the admission script says a product has nothing left, this instance answers
//! `SOLD_OUT` for it from memory, without Redis: the sold-out stampede is the largest
//! part of a flash sale's traffic. Two things keep it honest:
//!
//! - It never answers for a user who bought the product (even one whose reservation ended
//!   since: the field stays; on a sharded sale, a buyer on any shard). Their request may be a retry of an accepted order, which
//!   must replay the `202`, so it goes to Redis. The buyers are read (`HKEYS bought`) when
//!   the product sells out, and read again whenever units were put back on sale since
//!   (the sale's `released` count moved: they may have been resold to new buyers); until
//!   they are loaded nothing is answered from memory.
//! - A refresher reads the sale every 250 ms and forgets the mark as soon as stock is
//!   back or the sale changed state, so re-added stock and returned units (a cancel or
//!   an expiry, once released) are seen within a second. A sharded sale is sold out only
//!   while its census finds no unit in the pool, on a shard or in transit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shared::keys::{Keyspace, SaleKeys};
use shared::sale::SaleState;
use shared::{ProductId, UserId};
use stores::records::SaleRecord;
use stores::redis::Conn;
use stores::shards::Layout;
use stores::shards::census::census;
use stores::shards::ledger::LedgerError;
use tokio::sync::watch;

/// How often marked products are re-read.
pub const REFRESH: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
struct Mark {
    /// `None` until the buyers are loaded.
    buyers: Option<Arc<HashSet<String>>>,
    /// The sale's `released` count when they were.
    released: i64,
}

/// Whether a sharded sale has no unit anywhere: pool, shards, transfers (the census;
/// each shard's state and units are then read like an unsharded sale's).
async fn sharded_sold_out(
    conn: &mut Conn,
    sale: &SaleKeys,
    shards: &[SaleKeys],
) -> redis::RedisResult<bool> {
    match census(conn, sale, shards).await {
        Ok(count) => Ok(count.total() <= 0),
        Err(LedgerError::Redis(e)) => Err(e),
        Err(_) => Ok(false),
    }
}

/// Products this instance knows are sold out.
#[derive(Debug, Default)]
pub struct SoldOut {
    marks: RwLock<HashMap<ProductId, Mark>>,
}

impl SoldOut {
    /// Whether `user`'s order for `product` can be answered `SOLD_OUT` from memory.
    pub fn answers_for(&self, product: &ProductId, user: &UserId) -> bool {
        let marks = self.marks.read().unwrap_or_else(|p| p.into_inner());
        marks
            .get(product)
            .and_then(|m| m.buyers.as_ref())
            .is_some_and(|buyers| !buyers.contains(user.as_str()))
    }

    /// Records that the script found no stock left.
    pub fn mark(&self, product: &ProductId) {
        let mut marks = self.marks.write().unwrap_or_else(|p| p.into_inner());
        marks.entry(product.clone()).or_default();
    }

    /// Marked products, with the `released` count of their loaded buyers (`None`: not
    /// loaded yet).
    fn marked(&self) -> Vec<(ProductId, Option<i64>)> {
        let marks = self.marks.read().unwrap_or_else(|p| p.into_inner());
        marks
            .iter()
            .map(|(p, m)| (p.clone(), m.buyers.as_ref().map(|_| m.released)))
            .collect()
    }

    fn is_marked(&self, product: &ProductId) -> bool {
        let marks = self.marks.read().unwrap_or_else(|p| p.into_inner());
        marks.contains_key(product)
    }

    fn forget(&self, product: &ProductId) {
        let mut marks = self.marks.write().unwrap_or_else(|p| p.into_inner());
        marks.remove(product);
    }

    fn set_buyers(&self, product: &ProductId, buyers: HashSet<String>, released: i64) {
        let mut marks = self.marks.write().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = marks.get_mut(product) {
            m.buyers = Some(Arc::new(buyers));
            m.released = released;
        }
    }

    /// One refresh pass: forget products with stock again (or no longer open), load the
    /// buyers of newly marked ones.
    pub async fn refresh(&self, conn: &mut Conn, keys: &Keyspace) -> redis::RedisResult<()> {
        for (product, loaded) in self.marked() {
            let sale = keys.sale(&product);
            let groups = match Layout::read(conn, &sale).await? {
                Layout::Single => vec![sale],
                Layout::Sharded(shards) => {
                    if !sharded_sold_out(conn, &sale, &shards.keys(keys, &product)).await? {
                        self.forget(&product);
                        continue;
                    }
                    shards.keys(keys, &product)
                }
            };
            let mut released = 0;
            for group in &groups {
                let record = SaleRecord::read(conn, group).await?;
                match record.filter(|r| r.state == SaleState::Open && r.remaining <= 0) {
                    Some(r) => released += r.released,
                    None => {
                        self.forget(&product);
                        break;
                    }
                }
            }
            if !self.is_marked(&product) || loaded == Some(released) {
                continue;
            }
            let mut buyers = HashSet::new();
            for group in &groups {
                let some: Vec<String> = redis::cmd("HKEYS")
                    .arg(group.bought())
                    .query_async(conn)
                    .await?;
                buyers.extend(some);
            }
            self.set_buyers(&product, buyers, released);
        }
        Ok(())
    }

    /// Refreshes every [`REFRESH`] until `stop`.
    pub async fn run(
        self: Arc<Self>,
        mut conn: Conn,
        keys: Keyspace,
        mut stop: watch::Receiver<bool>,
    ) {
        while shared::service::shutdown::next_round(&mut stop, REFRESH).await {
            if let Err(e) = self.refresh(&mut conn, &keys).await {
                // Without fresh information, stop answering from memory.
                tracing::debug!(error = %e, "sold-out refresh failed; forgetting marks");
                let mut marks = self.marks.write().unwrap_or_else(|p| p.into_inner());
                marks.clear();
            }
        }
    }
}
