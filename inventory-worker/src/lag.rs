//! Consumer lag: how many orders of this worker's partitions are not yet committed.
//!
//! Every few seconds the worker reads, for each partition assigned to it, the group's
//! committed offset and the high watermark, and sets `worker_consumer_lag_messages` to the
//! difference. (`flashctl` reads the whole group's offsets to tell whether the pipeline has
//! drained.)

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::topic_partition_list::Offset;
use tokio::sync::watch;

use crate::consumer::OrderConsumer;
use crate::metrics::Metrics;

const PERIOD: Duration = Duration::from_secs(5);

/// Messages not yet committed in the partitions of `topic` assigned to `consumer`
/// (blocking calls). A partition the group never committed counts from its low watermark.
pub fn own_lag(consumer: &OrderConsumer, topic: &str) -> Option<i64> {
    let timeout = Duration::from_secs(2);
    let committed = consumer.committed(timeout).ok()?;
    let mut lag = 0;
    for e in committed.elements().iter().filter(|e| e.topic() == topic) {
        let (low, high) = consumer
            .fetch_watermarks(topic, e.partition(), timeout)
            .ok()?;
        let position = match e.offset() {
            Offset::Offset(o) => o,
            Offset::Beginning
            | Offset::End
            | Offset::Stored
            | Offset::Invalid
            | Offset::OffsetTail(_) => low,
        };
        lag += (high - position).max(0);
    }
    Some(lag)
}

/// Updates the lag gauge every few seconds until `stop`.
pub async fn track(
    consumer: Arc<OrderConsumer>,
    topic: String,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    while shared::service::shutdown::next_round(&mut stop, PERIOD).await {
        let (c, t) = (consumer.clone(), topic.clone());
        if let Ok(Some(lag)) = tokio::task::spawn_blocking(move || own_lag(&c, &t)).await {
            metrics.set_lag(lag);
        }
    }
}
