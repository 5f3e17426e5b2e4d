//! Prometheus metrics of the API, served on the admin port.
//!
//! Label values are fixed vocabularies (outcome, code, scope); never a user, order or
//! IP value, so cardinality stays bounded whatever the traffic.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use shared::ViolationKind;

mod room;

pub use room::RoomMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: &'static str,
    code: &'static str,
}

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    request_seconds: Histogram,
    redis_seconds: Histogram,
    kafka_delivery_seconds: Histogram,
    kafka_failures: Counter,
    relayed: Counter,
    reservations_ended: Family<StateLabels, Counter>,
    sold_out_fast_path: Counter,
    violations: Family<KindLabels, Counter>,
    redis_failures: Counter,
    replica_shortfalls: Counter,
    handoff_backlog: Gauge,
    room: RoomMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency() -> Histogram {
    // 50 µs … ~3.3 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

impl Inner {
    /// The answers, their latency and what refused them.
    fn register_admission(&mut self) {
        let r = &mut self.registry;
        r.register(
            "order_decisions",
            "POST /order answers by outcome and stable code",
            self.decisions.clone(),
        );
        r.register(
            "order_request_duration_seconds",
            "Time to answer POST /order",
            self.request_seconds.clone(),
        );
        r.register(
            "violations",
            "Limit, block, signature and replay refusals by type",
            self.violations.clone(),
        );
        r.register(
            "redis_admission_duration_seconds",
            "Round trip of the admission script",
            self.redis_seconds.clone(),
        );
        r.register(
            "redis_admission_failures",
            "Admission calls that failed or were refused by the open circuit breaker",
            self.redis_failures.clone(),
        );
        r.register(
            "redis_replica_shortfalls",
            "Accepted admissions (or relay passes) held back because too few replicas acknowledged them in time",
            self.replica_shortfalls.clone(),
        );
        r.register(
            "sold_out_fast_path",
            "SOLD_OUT answers given from memory without Redis",
            self.sold_out_fast_path.clone(),
        );
    }

    /// The way to Kafka and the ends of reservations.
    fn register_handoff(&mut self) {
        let r = &mut self.registry;
        r.register(
            "kafka_delivery_duration_seconds",
            "Time from publish to Kafka acknowledgement",
            self.kafka_delivery_seconds.clone(),
        );
        r.register(
            "kafka_delivery_failures",
            "Publishes that failed or timed out",
            self.kafka_failures.clone(),
        );
        r.register(
            "handoff_relayed",
            "Outbox entries republished by the relay",
            self.relayed.clone(),
        );
        r.register(
            "handoff_backlog",
            "Accepted orders not yet confirmed by Kafka (outbox entries, all products)",
            self.handoff_backlog.clone(),
        );
        r.register(
            "reservations_ended",
            "Reservations this instance ended in Redis, by the state reached",
            self.reservations_ended.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `ingest` prefix.
    pub fn new() -> Self {
        let mut inner = Inner {
            registry: Registry::with_prefix("ingest"),
            decisions: Family::default(),
            request_seconds: latency(),
            redis_seconds: latency(),
            kafka_delivery_seconds: latency(),
            kafka_failures: Counter::default(),
            relayed: Counter::default(),
            reservations_ended: Family::default(),
            sold_out_fast_path: Counter::default(),
            violations: Family::default(),
            redis_failures: Counter::default(),
            replica_shortfalls: Counter::default(),
            handoff_backlog: Gauge::default(),
            room: RoomMetrics::default(),
        };
        inner.register_admission();
        inner.register_handoff();
        inner.room.register(&mut inner.registry);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Counts one answer of `POST /order`.
    pub fn decision(&self, code: &'static str, took: Duration) {
        let outcome = match code {
            "ACCEPTED" => "accepted",
            "REPLAYED" => "replayed",
            _ => "rejected",
        };
        self.inner
            .decisions
            .get_or_create(&DecisionLabels { outcome, code })
            .inc();
        self.inner.request_seconds.observe(took.as_secs_f64());
    }

    /// One admission round trip.
    pub fn redis_call(&self, took: Duration) {
        self.inner.redis_seconds.observe(took.as_secs_f64());
    }

    /// One acknowledged publish.
    pub fn kafka_delivered(&self, took: Duration) {
        self.inner
            .kafka_delivery_seconds
            .observe(took.as_secs_f64());
    }

    /// One failed or timed-out publish.
    pub fn kafka_failure(&self) {
        self.inner.kafka_failures.inc();
    }

    /// One entry republished by the relay.
    pub fn relayed(&self) {
        self.inner.relayed.inc();
    }

    /// One reservation this instance ended, reaching `state`.
    pub fn transition(&self, state: shared::ReservationState) {
        self.inner
            .reservations_ended
            .get_or_create(&StateLabels {
                state: state.as_str(),
            })
            .inc();
    }

    /// One `SOLD_OUT` answered from memory.
    pub fn sold_out_fast_path(&self) {
        self.inner.sold_out_fast_path.inc();
    }

    /// One violation.
    pub fn violation(&self, kind: ViolationKind) {
        self.inner
            .violations
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// One acceptance (or relay page) held back: too few replicas acknowledged it.
    pub fn replica_shortfall(&self) {
        self.inner.replica_shortfalls.inc();
    }

    /// One admission that could not reach Redis.
    pub fn redis_failure(&self) {
        self.inner.redis_failures.inc();
    }

    /// Outbox entries waiting for Kafka, as the last relay pass counted them.
    pub fn set_handoff_backlog(&self, entries: i64) {
        self.inner.handoff_backlog.set(entries);
    }

    /// The waiting room's series.
    pub fn room(&self) -> &RoomMetrics {
        &self.inner.room
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
