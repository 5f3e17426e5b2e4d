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
