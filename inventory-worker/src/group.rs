//! The worker's side of the consumer group: what it logs and measures when partitions
//! move to or from it.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::metrics::Metrics;

/// Logs rebalances and commit failures, and keeps the assigned-partitions gauge.
///
/// The group uses the cooperative-sticky assignor (see [`crate::startup::kafka_consumer`]):
/// a rebalance hands over only the partitions that move, so `Assign` and `Revoke` carry
/// increments and the gauge is read back from the assignment after each one.
pub struct WorkerContext {
    /// Where the gauge lives.
    pub metrics: Metrics,
}

impl ClientContext for WorkerContext {}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = ?partitions(tpl), "partitions revoked")
            }
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = ?partitions(tpl), "partitions assigned")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        let owned = consumer.assignment().map_or(0, |tpl| tpl.count());
        self.metrics.set_assigned(owned as i64);
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Typically "no offset to commit"; anything stored will be committed next time.
            tracing::debug!(error = %e, "offset commit");
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}
