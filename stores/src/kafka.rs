//! Kafka: the topics (created, listed, deleted) and the producer every writer of orders
//! uses.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// The prefix of the environment variables passed through to librdkafka.
pub const PROPERTY_PREFIX: &str = "KAFKA_PROPERTY_";

/// The librdkafka properties `vars` pass through: `KAFKA_PROPERTY_<NAME>=value` gives the
/// property `<name>` in lower case with `_` read as `.` (`__` as `_`), so
/// `KAFKA_PROPERTY_SECURITY_PROTOCOL=SASL_SSL` sets `security.protocol`, as kcat's `-X`
/// would. Sorted by name.
pub fn properties(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = vars
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(PROPERTY_PREFIX).filter(|n| !n.is_empty())?;
            let name = name.to_lowercase().replace("__", "\0").replace('_', ".");
            Some((name.replace('\0', "_"), v))
        })
        .collect();
    found.sort();
    found
}

/// The client settings every Kafka client of this project starts from: `bootstrap.servers`
/// and every property of the environment ([`properties`]: TLS, SASL, anything a managed
/// Kafka asks for). What a caller then sets itself wins over the environment's.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (name, value) in properties(std::env::vars_os()) {
        config.set(name, value);
    }
    config.set("bootstrap.servers", brokers);
    config
}

/// The producer settings of everything that writes orders or dead letters: idempotent
/// (the broker drops a retried duplicate) and `acks=all` (acknowledged only once every
/// in-sync replica has it), on [`client_config`]. Callers add their own `client.id`,
/// linger and timeouts.
pub fn idempotent_producer(brokers: &str) -> ClientConfig {
    let mut config = client_config(brokers);
    config.set("enable.idempotence", "true").set("acks", "all");
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
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
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
    let consumer: BaseConsumer = client_config(brokers).create()?;
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
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_is_idempotent_and_waits_for_every_replica() {
        let config = idempotent_producer("127.0.0.1:9092");
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }

    #[test]
    fn properties_come_from_the_prefixed_variables() {
        let vars = [
            ("KAFKA_PROPERTY_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_PROPERTY_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_PROPERTY_SSL_CA_LOCATION", "/run/ca.pem"),
            ("KAFKA_PROPERTY_SOME__ODD_NAME", "x"),
            ("KAFKA_PROPERTY_", "ignored"),
            ("KAFKA_BROKERS", "ignored"),
        ]
        .map(|(k, v)| (k.into(), v.into()));
        assert_eq!(
            properties(vars.into_iter()),
            [
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("security.protocol", "SASL_SSL"),
                ("some_odd.name", "x"),
                ("ssl.ca.location", "/run/ca.pem"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }
}
