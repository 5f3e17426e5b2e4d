//! The waiting room's metrics: the line (depth, served), what it released, joins, polls
//! and claims by outcome, the no-show ratio, and how far the ETA told at a join was from
//! the wait that followed.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The room's series.
#[derive(Debug)]
pub struct RoomMetrics {
    depth: Gauge,
    served: Gauge,
    released: Counter,
    noshow_ratio: Gauge<f64, AtomicU64>,
    joins: Family<OutcomeLabels, Counter>,
    claims: Family<OutcomeLabels, Counter>,
    polls: Counter,
    eta_error: Histogram,
}

impl Default for RoomMetrics {
    fn default() -> Self {
        Self {
            depth: Gauge::default(),
            served: Gauge::default(),
            released: Counter::default(),
            noshow_ratio: Gauge::default(),
            joins: Family::default(),
            claims: Family::default(),
            polls: Counter::default(),
            // 0 … 2 (a relative error), in steps of 0.05 up to 1, then coarser.
            eta_error: Histogram::new([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0]),
        }
    }
}

impl RoomMetrics {
    /// Registers the series under `room_…`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "room_queue_depth",
            "Tickets in line not yet released (the rooms this instance drained last)",
            self.depth.clone(),
        );
        r.register(
            "room_served",
            "Positions released so far (the rooms this instance drained last)",
            self.served.clone(),
        );
        r.register(
            "room_released",
            "Positions this instance's drain released",
            self.released.clone(),
        );
        r.register(
            "room_noshow_ratio",
            "Released positions not claimed within the claim window, of all released",
            self.noshow_ratio.clone(),
        );
        r.register(
            "room_joins",
            "POST /queue/{p}/join answers by outcome",
            self.joins.clone(),
        );
        r.register(
            "room_claims",
            "POST /queue/{p}/claim answers by outcome",
            self.claims.clone(),
        );
        r.register(
            "room_polls",
            "GET /queue/{p}/status answers",
            self.polls.clone(),
        );
        r.register(
            "room_eta_error_ratio",
            "|wait - ETA told at the join| / ETA, at the claim",
            self.eta_error.clone(),
        );
    }

    /// One drain of a room with these counts.
    pub fn drained(&self, joined: u64, served: u64, released: u64, noshows: u64) {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.depth.set(as_i64(joined.saturating_sub(served)));
        self.served.set(as_i64(served));
        self.released.inc_by(released);
        if served > 0 {
            self.noshow_ratio.set(noshows as f64 / served as f64);
        }
    }

    /// One join answered with `outcome` (`ticket` or a code).
    pub fn join(&self, outcome: &'static str) {
        self.joins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// One claim answered with `outcome` (`admitted` or a code).
    pub fn claim(&self, outcome: &'static str) {
        self.claims.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// One poll.
    pub fn poll(&self) {
        self.polls.inc();
    }

    /// A claim after a wait of `waited_s` that the join estimated at `told_s`.
    pub fn eta(&self, told_s: f64, waited_s: f64) {
        if told_s >= 1.0 {
            self.eta_error.observe((waited_s - told_s).abs() / told_s);
        }
    }
}
