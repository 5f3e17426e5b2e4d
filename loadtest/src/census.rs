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

use crate::outcome::Outcome;

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
    /// From the last 202 to the first `SOLD_OUT` told to a shopper whose order was sent
    /// after every accepted one, ms ([`sold_out_after_ms`]); `None` before it is known.
    pub sold_out_after_ms: Option<u64>,
}

/// The most [`Samples::sold_out_after_ms`] may be: the sale sold out within a second of
/// its last unit.
pub const SOLD_OUT_WITHIN_MS: u64 = 1_000;

/// How soon the sale was sold out to the next shoppers after its last unit went: from the
/// last 202's answer to the first `SOLD_OUT` answered to an order sent after every
/// accepted one was (0 when that came first); `None` when nothing was accepted or no
/// order came after.
pub fn sold_out_after_ms(outcomes: &[Outcome]) -> Option<u64> {
    let answered = |o: &Outcome| o.scheduled_ms * 1_000 + o.final_us;
    let accepted = outcomes.iter().filter(|o| o.code == "ACCEPTED");
    let last_sent = accepted.clone().map(|o| o.scheduled_ms).max()?;
    let last_answer = accepted.map(answered).max()?;
    let first_sold_out = outcomes
        .iter()
        .filter(|o| o.code == "SOLD_OUT" && o.scheduled_ms > last_sent)
        .map(answered)
        .min()?;
    Some(first_sold_out.saturating_sub(last_answer) / 1_000)
}

impl std::fmt::Display for Samples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "census (sharded sale, every 1 s): {} taken, {} unbalanced, {} failed; sold out {:?} ms after the last 202",
            self.taken,
            self.unbalanced.len(),
            self.failed,
            self.sold_out_after_ms
        )
    }
}

impl Samples {
    /// Every census taken balanced, and none failed.
    pub fn passed(&self) -> bool {
        self.unbalanced.is_empty()
            && self.failed == 0
            && self
                .sold_out_after_ms
                .is_none_or(|ms| ms <= SOLD_OUT_WITHIN_MS)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: &str, scheduled_ms: u64, final_ms: u64) -> Outcome {
        Outcome {
            actor: "shopper".into(),
            user: "u".into(),
            key: "k".into(),
            quantity: 1,
            code: code.into(),
            status: 0,
            order_id: None,
            attempts: 1,
            saw_unknown: false,
            scheduled_ms,
            first_us: final_ms * 1_000,
            final_us: final_ms * 1_000,
            lag_us: 0,
            settled: None,
        }
    }

    #[test]
    fn sold_out_is_timed_from_the_last_202_to_the_next_shoppers_sold_out() {
        let run = [
            answer("ACCEPTED", 100, 5),
            answer("SOLD_OUT", 90, 1), // sent before the last accepted one: not counted
            answer("ACCEPTED", 200, 30), // the last 202, answered at 230 ms
            answer("SOLD_OUT", 210, 1400), // the first one sent after it, answered at 1,610
            answer("SOLD_OUT", 300, 2000),
        ];
        assert_eq!(sold_out_after_ms(&run), Some(1_380));
        assert_eq!(sold_out_after_ms(&run[..3]), None, "nobody came after");
        let quick = [answer("ACCEPTED", 200, 30), answer("SOLD_OUT", 201, 1)];
        assert_eq!(
            sold_out_after_ms(&quick),
            Some(0),
            "told before the last 202 came back"
        );
        let mut samples = Samples {
            sold_out_after_ms: Some(1_380),
            ..Samples::default()
        };
        assert!(!samples.passed());
        samples.sold_out_after_ms = Some(900);
        assert!(samples.passed());
    }
}
