//! Consumer lag, and a watchdog for partitions nobody consumes.
//!
//! Every few seconds the worker reads, for every partition of the topic, the group's
//! committed offset and the high watermark. Its own partitions give the lag metric. The
//! others feed the watchdog: a partition with unconsumed messages whose committed offset
//! has not moved for [`STALL`] while this worker is itself healthy is owned by nobody
//! alive — the broker kept a crashed member in the group. The worker then leaves and
//! rejoins the group, which starts a fresh assignment round without the dead member.
//! Apache Kafka reassigns such partitions by itself; tansu 0.6 does not always (seen in
//! the fault suite), and either way a stranded partition would mean orders accepted but
//! never persisted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::consumer::OrderConsumer;
use crate::metrics::Metrics;

/// How long a foreign partition may sit with unconsumed messages and no progress.
pub const STALL: Duration = Duration::from_secs(15);
/// Least time between two rejoins.
pub const COOLDOWN: Duration = Duration::from_secs(30);
const PERIOD: Duration = Duration::from_secs(5);

/// The group's view of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    /// Partition number.
    pub partition: i32,
    /// The group's committed offset (the low watermark if nothing was committed).
    pub committed: i64,
    /// The high watermark.
    pub high: i64,
}

/// One reading of the topic and this worker's assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Partitions assigned to this worker.
    pub assigned: HashSet<i32>,
    /// Every partition of the topic.
    pub partitions: Vec<PartitionState>,
}

impl Snapshot {
    /// Messages in this worker's partitions not yet committed.
    pub fn own_lag(&self) -> i64 {
        self.partitions
            .iter()
            .filter(|p| self.assigned.contains(&p.partition))
            .map(|p| (p.high - p.committed).max(0))
            .sum()
    }
}

/// Reads a snapshot (blocking calls).
pub fn snapshot(consumer: &OrderConsumer, topic: &str) -> Option<Snapshot> {
    let timeout = Duration::from_secs(2);
    let assigned: HashSet<i32> = consumer
        .assignment()
        .ok()?
        .elements()
        .iter()
        .filter(|e| e.topic() == topic)
        .map(|e| e.partition())
        .collect();
    let md = consumer.fetch_metadata(Some(topic), timeout).ok()?;
    let ids: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)?
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &ids {
        tpl.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(tpl, timeout).ok()?;
    let mut partitions = Vec::with_capacity(ids.len());
    for p in ids {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).ok()?;
        let c = committed
            .find_partition(topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(low);
        partitions.push(PartitionState {
            partition: p,
            committed: c,
            high,
        });
    }
    Some(Snapshot {
        assigned,
        partitions,
    })
}

/// Decides when stranded partitions call for a rejoin.
#[derive(Debug, Default)]
pub struct Watchdog {
    /// Per foreign partition with unconsumed messages: its committed offset and since
    /// when it has not moved.
    stalled: HashMap<i32, (i64, Instant)>,
    /// This worker's own committed offsets at the last reading.
    own: HashMap<i32, i64>,
    last_rejoin: Option<Instant>,
}

impl Watchdog {
    /// Feeds one snapshot; returns the stranded partitions when it is time to rejoin.
    pub fn observe(&mut self, s: &Snapshot, now: Instant) -> Option<Vec<i32>> {
        // Healthy: every own partition is either caught up or moved since last time.
        let healthy = s
            .partitions
            .iter()
            .filter(|p| s.assigned.contains(&p.partition))
            .all(|p| {
                p.committed >= p.high
                    || self
                        .own
                        .get(&p.partition)
                        .is_none_or(|prev| p.committed > *prev)
            });
        self.own = s
            .partitions
            .iter()
            .filter(|p| s.assigned.contains(&p.partition))
            .map(|p| (p.partition, p.committed))
            .collect();
        for p in &s.partitions {
            let foreign_backlog = !s.assigned.contains(&p.partition) && p.high > p.committed;
            if !foreign_backlog {
                self.stalled.remove(&p.partition);
                continue;
            }
            match self.stalled.get(&p.partition) {
                Some((committed, _)) if *committed == p.committed => {}
                _ => {
                    self.stalled.insert(p.partition, (p.committed, now));
                }
            }
        }
        let stranded: Vec<i32> = self
            .stalled
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) >= STALL)
            .map(|(p, _)| *p)
            .collect();
        let cooled = self
            .last_rejoin
            .is_none_or(|t| now.duration_since(t) >= COOLDOWN);
        if healthy && cooled && !stranded.is_empty() {
            self.last_rejoin = Some(now);
            self.stalled.clear();
            let mut stranded = stranded;
            stranded.sort_unstable();
            return Some(stranded);
        }
        None
    }
}

/// Updates the lag gauge and runs the watchdog every few seconds until `stop`.
pub async fn track(
    consumer: Arc<OrderConsumer>,
    topic: String,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut watchdog = Watchdog::default();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(PERIOD) => {}
        }
        let (c, t) = (consumer.clone(), topic.clone());
        let Ok(Some(s)) = tokio::task::spawn_blocking(move || snapshot(&c, &t)).await else {
            continue;
        };
        metrics.set_lag(s.own_lag());
        if let Some(stranded) = watchdog.observe(&s, Instant::now()) {
            tracing::warn!(
                ?stranded,
                "partitions with unconsumed orders and no progress for {STALL:?}, not assigned to \
                 this healthy worker: rejoining the consumer group to get them reassigned"
            );
            metrics.rejoined();
            consumer.unsubscribe();
            if let Err(e) = consumer.subscribe(&[&topic]) {
                tracing::error!(error = %e, "could not resubscribe after rejoin");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(assigned: &[i32], parts: &[(i32, i64, i64)]) -> Snapshot {
        Snapshot {
            assigned: assigned.iter().copied().collect(),
            partitions: parts
                .iter()
                .map(|&(partition, committed, high)| PartitionState {
                    partition,
                    committed,
                    high,
                })
                .collect(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rejoins_for_a_stranded_partition_once_per_cooldown() {
        let mut w = Watchdog::default();
        // Partition 1 is someone else's, has a backlog, and never moves.
        for step in 0..3u64 {
            let s = snap(&[0], &[(0, 10 + step as i64, 20), (1, 5, 9)]);
            assert_eq!(w.observe(&s, Instant::now()), None);
            tokio::time::advance(PERIOD).await;
        }
        let s = snap(&[0], &[(0, 14, 20), (1, 5, 9)]);
        assert_eq!(w.observe(&s, Instant::now()), Some(vec![1]));
        // Right after a rejoin: quiet for the cooldown.
        for _ in 0..5 {
            tokio::time::advance(PERIOD).await;
            let s = snap(&[0], &[(0, 20, 20), (1, 5, 9)]);
            assert_eq!(w.observe(&s, Instant::now()), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn progress_or_an_unhealthy_worker_means_no_rejoin() {
        let mut w = Watchdog::default();
        for step in 0..10 {
            // The foreign partition moves: someone consumes it.
            let s = snap(&[0], &[(0, 20, 20), (1, 5 + step, 100)]);
            assert_eq!(w.observe(&s, Instant::now()), None);
            tokio::time::advance(PERIOD).await;
        }
        let mut w = Watchdog::default();
        for _ in 0..10 {
            // Everything is stuck, this worker's own partition too (PostgreSQL is down):
            // rejoining would not help.
            let s = snap(&[0], &[(0, 3, 20), (1, 5, 100)]);
            assert_eq!(w.observe(&s, Instant::now()), None);
            tokio::time::advance(PERIOD).await;
        }
    }
}
