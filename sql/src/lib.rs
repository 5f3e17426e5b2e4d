//! The stores' schema, in one place for every process that sets it up: the PostgreSQL
//! migrations (`sql/V{n}__{name}.sql`, embedded at build time) and the Kafka topics
//! (created, listed, deleted).
//!
//! The worker migrates at start-up, `flashctl migrate` and `flashctl topics create` do it
//! for operators, and the test kit for every test's database and topics — none of them
//! needs to link the others for it.
#![forbid(unsafe_code)]

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!(".");
}

/// Applies pending migrations. Concurrent callers (several workers starting at once,
/// `flashctl migrate`) serialize on an advisory lock. Returns how many were applied.
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let conn_task = tokio::spawn(connection);
    const LOCK: i64 = 0x666c_6173_6873_616c; // "flashsal"
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    drop(client);
    let _ = conn_task.await;
    let applied = report?.applied_migrations().len();
    Ok(applied)
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
