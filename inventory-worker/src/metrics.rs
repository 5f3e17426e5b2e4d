//! Prometheus metrics of the worker, served on the admin port. No label carries a user,
//! order or IP value.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// The `state` label of `worker_transitions_applied`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

struct Inner {
    registry: Registry,
    batch_size: Histogram,
    batch_seconds: Histogram,
    rows_inserted: Counter,
    duplicates: Counter,
    dead_lettered: Counter,
    transient_errors: Counter,
    transitions: Family<StateLabel, Counter>,
    lag: Gauge,
    assigned: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Inner {
    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "assigned_partitions",
            "Partitions of the order topic this worker owns now",
            self.assigned.clone(),
        );
        r.register("batch_size", "Messages per batch", self.batch_size.clone());
        r.register(
            "batch_duration_seconds",
            "Time to write and commit one batch",
            self.batch_seconds.clone(),
        );
        r.register(
            "rows_inserted",
            "Orders newly written to PostgreSQL (rate() gives rows/s)",
            self.rows_inserted.clone(),
        );
        r.register(
            "duplicates_skipped",
            "Redelivered orders that were already persisted",
            self.duplicates.clone(),
        );
        r.register(
            "dead_lettered",
            "Poison messages sent to the dead-letter topic",
            self.dead_lettered.clone(),
        );
        r.register(
            "transient_errors",
            "Batch attempts that failed and were retried",
            self.transient_errors.clone(),
        );
        r.register(
            "transitions_applied",
            "Reservations ended in PostgreSQL, by the state reached (redeliveries not counted)",
            self.transitions.clone(),
        );
        r.register(
            "consumer_lag_messages",
            "Messages in assigned partitions not yet consumed",
            self.lag.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `worker` prefix.
    pub fn new() -> Self {
        let mut inner = Inner {
            registry: Registry::with_prefix("worker"),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            batch_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            rows_inserted: Counter::default(),
            duplicates: Counter::default(),
            dead_lettered: Counter::default(),
            transient_errors: Counter::default(),
            transitions: Family::default(),
            lag: Gauge::default(),
            assigned: Gauge::default(),
        };
        inner.register();
        Self {
            inner: Arc::new(inner),
        }
    }

    /// One finished batch.
    pub fn batch(&self, size: usize, took: Duration) {
        self.inner.batch_size.observe(size as f64);
        self.inner.batch_seconds.observe(took.as_secs_f64());
    }

    /// One write of `attempted` orders, `inserted` of them new (the rest duplicates).
    pub fn written(&self, inserted: u64, attempted: u64) {
        self.inner.rows_inserted.inc_by(inserted);
        self.inner
            .duplicates
            .inc_by(attempted.saturating_sub(inserted));
    }

    /// Reservations newly ended in PostgreSQL, `n` of them reaching `state`.
    pub fn transitions(&self, state: shared::ReservationState, n: u64) {
        self.inner
            .transitions
            .get_or_create(&StateLabel {
                state: state.as_str(),
            })
            .inc_by(n);
    }

    /// One dead-lettered message.
    pub fn dead_lettered(&self) {
        self.inner.dead_lettered.inc();
    }

    /// One failed batch attempt.
    pub fn transient_error(&self) {
        self.inner.transient_errors.inc();
    }

    /// Partitions of the order topic owned after a rebalance.
    pub fn set_assigned(&self, partitions: i64) {
        self.inner.assigned.set(partitions);
    }

    /// Current consumer lag.
    pub fn set_lag(&self, messages: i64) {
        self.inner.lag.set(messages);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            out.clear();
        }
        out
    }
}
