//! Kafka topics: creation, and the consumer lag that tells whether the pipeline drained.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::OpsError;

/// What happened to one topic.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicResult {
    /// Topic name.
    pub topic: String,
    /// `created` or `exists`.
    pub outcome: &'static str,
    /// Partition count asked for.
    pub partitions: i32,
}

/// Creates each topic with `partitions` partitions and `replication` replicas
/// ([`stores::create_topics`]); an existing topic is left alone.
pub async fn create(
    brokers: &str,
    names: &[&str],
    partitions: i32,
    replication: i32,
) -> Result<Vec<TopicResult>, OpsError> {
    let created = stores::create_topics(brokers, names, partitions, replication)
        .await
        .map_err(|e| match e {
            stores::TopicError::NoPartitions => {
                OpsError::Invalid("--partitions must be at least 1".into())
            }
            other @ (stores::TopicError::Kafka(_) | stores::TopicError::Refused { .. }) => {
                OpsError::Other(other.into())
            }
        })?;
    Ok(created
        .into_iter()
        .map(|(topic, outcome)| TopicResult {
            topic,
            outcome: match outcome {
                stores::TopicOutcome::Created => "created",
                stores::TopicOutcome::Exists => "exists",
            },
            partitions,
        })
        .collect())
}

/// Messages of `topic` not yet committed by consumer group `group`, per partition.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Lag {
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// `(partition, high watermark, committed offset or None, lag)`.
    pub partitions: Vec<(i32, i64, Option<i64>, i64)>,
}

impl Lag {
    /// Messages not yet committed, over all partitions.
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(|p| p.3).sum()
    }
}

/// The group's committed offset and the watermarks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionOffsets {
    partition: i32,
    /// The group's committed offset, if it ever committed one.
    committed: Option<i64>,
    high: i64,
    /// Messages not yet committed (counted from the low watermark when nothing was).
    lag: i64,
}

/// Reads, for every partition of `topic`, the committed offset of `consumer`'s group and
/// the watermarks (blocking calls). `Ok(None)`: the topic does not exist.
fn partition_offsets(
    consumer: &BaseConsumer,
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
                Offset::Beginning
                | Offset::End
                | Offset::Stored
                | Offset::Invalid
                | Offset::OffsetTail(_) => None,
            });
        out.push(PartitionOffsets {
            partition,
            committed,
            high,
            lag: (high - committed.unwrap_or(low)).max(0),
        });
    }
    Ok(Some(out))
}

/// Reads the lag of one consumer group on one topic, as often as asked, over one Kafka
/// client (polling loops reuse it instead of connecting again every time).
pub struct LagProbe {
    consumer: std::sync::Arc<BaseConsumer>,
    topic: String,
    group: String,
}

impl LagProbe {
    /// A probe of `group` on `topic`.
    pub fn new(brokers: &str, topic: &str, group: &str) -> Result<Self, OpsError> {
        let consumer = stores::client_config(brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            consumer: std::sync::Arc::new(consumer),
            topic: topic.to_owned(),
            group: group.to_owned(),
        })
    }

    /// Reads the committed offsets and the watermarks (blocking calls, run on a blocking
    /// thread). A partition the group never committed counts from its low watermark.
    pub async fn read(&self) -> Result<Lag, OpsError> {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        let offsets = tokio::task::spawn_blocking(move || {
            partition_offsets(&consumer, &topic, Duration::from_secs(10))
        })
        .await
        .map_err(|e| OpsError::Other(anyhow::anyhow!(e)))??
        .ok_or_else(|| OpsError::NotFound(format!("topic {} does not exist", self.topic)))?;
        Ok(Lag {
            topic: self.topic.clone(),
            group: self.group.clone(),
            partitions: offsets
                .iter()
                .map(|o| (o.partition, o.high, o.committed, o.lag))
                .collect(),
        })
    }
}

/// Reads the lag of `group` on `topic` once.
pub async fn lag(brokers: &str, topic: &str, group: &str) -> Result<Lag, OpsError> {
    LagProbe::new(brokers, topic, group)?.read().await
}
