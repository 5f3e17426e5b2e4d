//! Kafka topics: creation, and the consumer lag that tells whether the pipeline drained.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
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

/// Creates each topic with `partitions` partitions; an existing topic is left alone.
pub async fn create(
    brokers: &str,
    names: &[&str],
    partitions: i32,
    replication: i32,
) -> Result<Vec<TopicResult>, OpsError> {
    if partitions < 1 {
        return Err(OpsError::Invalid("--partitions must be at least 1".into()));
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&new, &opts).await?;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(topic) => out.push(TopicResult {
                topic,
                outcome: "created",
                partitions,
            }),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => out.push(TopicResult {
                topic,
                outcome: "exists",
                partitions,
            }),
            Err((topic, code)) => {
                return Err(OpsError::Other(anyhow::anyhow!(
                    "creating topic {topic}: {code}"
                )));
            }
        }
    }
    Ok(out)
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

/// Reads the committed offsets of `group` and the high watermarks of `topic` (blocking
/// calls, run on a blocking thread). A partition the group never committed counts from
/// its low watermark.
pub async fn lag(brokers: &str, topic: &str, group: &str) -> Result<Lag, OpsError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let (topic, group) = (topic.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let md = consumer.fetch_metadata(Some(&topic), timeout)?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .ok_or_else(|| OpsError::NotFound(format!("topic {topic} does not exist")))?;
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&topic, *p);
        }
        let committed = consumer.committed_offsets(tpl, timeout)?;
        let mut out = Vec::new();
        for p in partitions {
            let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
            let c = committed
                .find_partition(&topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            out.push((p, high, c, (high - c.unwrap_or(low)).max(0)));
        }
        Ok(Lag {
            topic,
            group,
            partitions: out,
        })
    })
    .await
    .map_err(|e| OpsError::Other(anyhow::anyhow!(e)))?
}
