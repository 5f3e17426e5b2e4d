//! Consumer lag: messages in the assigned partitions that are not consumed yet.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::topic_partition_list::Offset;
use tokio::sync::watch;

use crate::consumer::OrderConsumer;
use crate::metrics::Metrics;

/// Sum over assigned partitions of `high watermark - position` (blocking calls).
pub fn current(consumer: &OrderConsumer) -> Option<i64> {
    let positions = consumer.position().ok()?;
    let mut lag = 0;
    for e in positions.elements() {
        let (_, high) = consumer
            .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2))
            .ok()?;
        let pos = match e.offset() {
            Offset::Offset(o) => o,
            // Nothing consumed yet on this partition: everything is lag.
            _ => {
                let (low, _) = consumer
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2))
                    .ok()?;
                low
            }
        };
        lag += (high - pos).max(0);
    }
    Some(lag)
}

/// Updates the lag gauge every few seconds until `stop`.
pub async fn track(
    consumer: Arc<OrderConsumer>,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let c = consumer.clone();
        if let Ok(Some(lag)) = tokio::task::spawn_blocking(move || current(&c)).await {
            metrics.set_lag(lag);
        }
    }
}
