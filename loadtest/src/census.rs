//! A sharded sale's invariant, sampled while the load runs: every second the census
//! (`stores::shards::census`) must find pool + Σ shards + in transit + taken + returning
//! equal to the stock, each term counted on its own. A unit sold twice, lost, or doubled
//! by a transfer shows as a sample that does not balance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;
use stores::redis::Conn;
use stores::shards::Layout;
use stores::shards::census::census;

/// How often the census is taken.
pub const EVERY: Duration = Duration::from_secs(1);

/// What the samples found.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Samples {
    /// Censuses taken.
    pub taken: u64,
    /// Censuses that did not balance, with what they counted.
    pub unbalanced: Vec<String>,
    /// Censuses that failed (Redis errors).
    pub failed: u64,
}

impl Samples {
    /// Every census taken balanced, and none failed.
    pub fn passed(&self) -> bool {
        self.unbalanced.is_empty() && self.failed == 0
    }
}

/// Samples the invariant of `product`'s sale (if it is sharded) every [`EVERY`] until
/// `stop`; returns what the samples found (none taken for an unsharded sale).
pub async fn sample(
    mut conn: Conn,
    keys: Keyspace,
    product: ProductId,
    stop: Arc<AtomicBool>,
) -> Samples {
    let mut found = Samples::default();
    let sale = keys.sale(&product);
    let Ok(Layout::Sharded(shards)) = Layout::read(&mut conn, &sale).await else {
        return found;
    };
    let all = shards.keys(&keys, &product);
    while !stop.load(Ordering::Relaxed) {
        match census(&mut conn, &sale, &all).await {
            Ok(c) => {
                found.taken += 1;
                if !c.balanced() {
                    found.unbalanced.push(format!("{c:?}"));
                }
            }
            Err(_) => found.failed += 1,
        }
        tokio::time::sleep(EVERY).await;
    }
    found
}

/// Starts [`sample`] in a task of its own: the flag that stops it, and the task.
pub fn start(
    conn: &Conn,
    keys: &Keyspace,
    product: &ProductId,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Samples>) {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(sample(
        conn.clone(),
        keys.clone(),
        product.clone(),
        stop.clone(),
    ));
    (stop, task)
}

/// Stops the sampling [`start`]ed and returns what it found.
pub async fn stop(flag: &AtomicBool, task: tokio::task::JoinHandle<Samples>) -> Samples {
    flag.store(true, Ordering::Relaxed);
    task.await.unwrap_or_default()
}
