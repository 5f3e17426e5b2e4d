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

/// Every topic on the cluster (internal ones excluded).
pub async fn list(brokers: &str) -> Result<Vec<String>, OpsError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    tokio::task::spawn_blocking(move || {
        let md = consumer.fetch_metadata(None, Duration::from_secs(10))?;
        Ok(md
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|n| !n.starts_with("__"))
            .collect())
    })
    .await
    .map_err(|e| OpsError::Other(anyhow::anyhow!(e)))?
}

/// Deletes topics (a topic already gone is not an error).
pub async fn delete(brokers: &str, names: &[&str]) -> Result<(), OpsError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    for r in admin.delete_topics(names, &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(OpsError::Other(anyhow::anyhow!(
                    "deleting topic {topic}: {code}"
                )));
            }
        }
    }
    Ok(())
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

/// Reads the lag of one consumer group on one topic, as often as asked, over one Kafka
/// client (polling loops reuse it instead of connecting again every time).
pub struct LagProbe {
    consumer: std::sync::Arc<rdkafka::consumer::BaseConsumer>,
    topic: String,
    group: String,
}

impl LagProbe {
    /// A probe of `group` on `topic`.
    pub fn new(brokers: &str, topic: &str, group: &str) -> Result<Self, OpsError> {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
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
            inventory_worker::lag::partition_offsets(&*consumer, &topic, Duration::from_secs(10))
        })
        .await
        .map_err(|e| OpsError::Other(anyhow::anyhow!(e)))??
        .ok_or_else(|| OpsError::NotFound(format!("topic {} does not exist", self.topic)))?;
        Ok(Lag {
            topic: self.topic.clone(),
            group: self.group.clone(),
            partitions: offsets
                .iter()
                .map(|o| (o.partition, o.high, o.committed, o.lag()))
                .collect(),
        })
    }
}

/// Reads the lag of `group` on `topic` once.
pub async fn lag(brokers: &str, topic: &str, group: &str) -> Result<Lag, OpsError> {
    LagProbe::new(brokers, topic, group)?.read().await
}
