//! Kafka: the topics (created, listed, deleted) and the producer every writer of orders
//! uses.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// The producer settings of everything that writes orders or dead letters: idempotent
/// (the broker drops a retried duplicate) and `acks=all` (acknowledged only once every
/// in-sync replica has it). Callers add their own `client.id`, linger and timeouts.
pub fn idempotent_producer(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all");
    config
}

/// What happened to one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOutcome {
    /// It was created.
    Created,
    /// It existed already and was left alone.
    Exists,
}

/// Why topics could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// `partitions` was below 1.
    #[error("a topic needs at least one partition")]
    NoPartitions,
    /// The client could not be made or the request failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The broker refused one topic.
    #[error("topic {topic}: {code}")]
    Refused {
        /// Which.
        topic: String,
        /// Why.
        code: RDKafkaErrorCode,
    },
}

/// Creates each topic with `partitions` partitions and `replication` replicas; an
/// existing topic is left alone.
pub async fn create_topics(
    brokers: &str,
    names: &[&str],
    partitions: i32,
    replication: i32,
) -> Result<Vec<(String, TopicOutcome)>, TopicError> {
    if partitions < 1 {
        return Err(TopicError::NoPartitions);
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
    let mut out = Vec::with_capacity(names.len());
    for r in admin.create_topics(&new, &opts).await? {
        match r {
            Ok(topic) => out.push((topic, TopicOutcome::Created)),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                out.push((topic, TopicOutcome::Exists));
            }
            Err((topic, code)) => return Err(TopicError::Refused { topic, code }),
        }
    }
    Ok(out)
}

/// Every topic on the cluster (internal ones excluded).
pub async fn list_topics(brokers: &str) -> Result<Vec<String>, KafkaError> {
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
    .unwrap_or(Err(KafkaError::Canceled))
}

/// Deletes topics (a topic already gone is not an error).
pub async fn delete_topics(brokers: &str, names: &[&str]) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    for r in admin.delete_topics(names, &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(TopicError::Refused { topic, code }),
        }
    }
    Ok(())
}
