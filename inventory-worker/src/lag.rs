//! Consumer lag: how many orders of this worker's partitions are not yet committed.
//!
//! Every few seconds the worker reads, for every partition of the topic, the group's
//! committed offset and the high watermark, and sets `worker_consumer_lag_messages` from
//! the partitions assigned to it. `flashctl` reads the same offsets to tell whether the
//! pipeline has drained.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::consumer::OrderConsumer;
use crate::metrics::Metrics;

const PERIOD: Duration = Duration::from_secs(5);

/// The group's committed offset and the watermarks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Partition number.
    pub partition: i32,
    /// The group's committed offset, if it ever committed one.
    pub committed: Option<i64>,
    /// The low watermark (where an uncommitted group starts).
    pub low: i64,
    /// The high watermark.
    pub high: i64,
}

impl PartitionOffsets {
    /// Where the group stands: its committed offset, or the low watermark.
    pub fn position(&self) -> i64 {
        self.committed.unwrap_or(self.low)
    }

    /// Messages not yet committed.
    pub fn lag(&self) -> i64 {
        (self.high - self.position()).max(0)
    }
}

/// Reads, for every partition of `topic`, the committed offset of `consumer`'s group and
/// the watermarks (blocking calls). `Ok(None)`: the topic does not exist.
pub fn partition_offsets<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    timeout: Duration,
) -> KafkaResult<Option<Vec<PartitionOffsets>>> {
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(ids) = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<i32>>())
    else {
        return Ok(None);
    };
    let mut tpl = TopicPartitionList::new();
    for p in &ids {
        tpl.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    let mut out = Vec::with_capacity(ids.len());
    for partition in ids {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let committed = committed
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        out.push(PartitionOffsets {
            partition,
            committed,
            low,
            high,
        });
    }
    Ok(Some(out))
}

/// Messages not yet committed in the partitions of `topic` assigned to `consumer`
/// (blocking calls).
pub fn own_lag(consumer: &OrderConsumer, topic: &str) -> Option<i64> {
    let assigned: HashSet<i32> = consumer
        .assignment()
        .ok()?
        .elements()
        .iter()
        .filter(|e| e.topic() == topic)
        .map(|e| e.partition())
        .collect();
    let offsets = partition_offsets(consumer, topic, Duration::from_secs(2)).ok()??;
    Some(
        offsets
            .iter()
            .filter(|o| assigned.contains(&o.partition))
            .map(PartitionOffsets::lag)
            .sum(),
    )
}

/// Updates the lag gauge every few seconds until `stop`.
pub async fn track(
    consumer: Arc<OrderConsumer>,
    topic: String,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(PERIOD) => {}
        }
        let (c, t) = (consumer.clone(), topic.clone());
        if let Ok(Some(lag)) = tokio::task::spawn_blocking(move || own_lag(&c, &t)).await {
            metrics.set_lag(lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_offset_or_the_low_watermark() {
        let p = |committed, low, high| PartitionOffsets {
            partition: 0,
            committed,
            low,
            high,
        };
        assert_eq!(p(Some(7), 0, 10).lag(), 3);
        assert_eq!(p(None, 4, 10).lag(), 6);
        // A committed offset past the high watermark (a truncated log) is no lag.
        assert_eq!(p(Some(12), 0, 10).lag(), 0);
    }
}
