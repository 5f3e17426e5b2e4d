//! `flashctl topics create`: the order topic and its dead-letter topic in Kafka.

use clap::{Args, Subcommand};
use flashctl::{OpsError, topics};
use serde_json::{Value, json};

use super::{Ctx, Output, Run};

/// `topics …`.
#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Create the order topic and its dead-letter topic (existing ones are kept).
    Create(Create),
}

/// `topics create`.
#[derive(Args)]
pub struct Create {
    /// Partitions per topic.
    #[arg(long, default_value_t = shared::defaults::ORDER_PARTITIONS)]
    pub partitions: i32,
    /// Replication factor.
    #[arg(long, default_value_t = 1)]
    pub replication: i32,
    /// Order topic.
    #[arg(long, env = "KAFKA_TOPIC", default_value = shared::defaults::KAFKA_TOPIC)]
    pub topic: String,
    /// Dead-letter topic.
    #[arg(long, env = "KAFKA_DLQ_TOPIC", default_value = shared::defaults::KAFKA_DLQ_TOPIC)]
    pub dlq_topic: String,
}

impl Run for Create {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "topics create",
            json!({"partitions": self.partitions, "topic": self.topic, "dlq_topic": self.dlq_topic}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let results = topics::create(
            &ctx.kafka_brokers,
            &[&self.topic, &self.dlq_topic],
            self.partitions,
            self.replication,
        )
        .await?;
        let human = results
            .iter()
            .map(|r| format!("{:<20} {}", r.topic, r.outcome))
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Output::new(&results, human))
    }
}
