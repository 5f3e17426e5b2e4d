//! From outcomes to numbers: latency percentiles (HdrHistogram, from the *scheduled*
//! send time, so queueing in the server is counted and coordinated omission is not),
//! counts per status and code, and per-second throughput and latency over the run.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::outcome::Outcome;

/// Percentiles of one set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// An empty latency histogram in µs.
pub(crate) fn histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

impl Latency {
    /// The percentiles of a histogram in µs.
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// How outcomes are grouped in the throughput chart.
pub fn category(o: &Outcome) -> &'static str {
    match o.status {
        202 => "accepted",
        409 if o.code == "SOLD_OUT" => "sold out",
        429 => "rate limited",
        400..=499 => "refused",
        _ => "failed",
    }
}

/// The categories, in chart order.
pub const CATEGORIES: [&str; 5] = ["accepted", "sold out", "rate limited", "refused", "failed"];

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Second {
    /// Seconds into the run.
    pub t: u64,
    /// Answers per category that completed in this second.
    pub answers: BTreeMap<String, u64>,
    /// Latency of requests scheduled in this second.
    pub latency: Latency,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Arrivals (orders and bot requests).
    pub arrivals: usize,
    /// Arrival phase, seconds.
    pub duration_s: f64,
    /// Arrivals per second offered.
    pub offered_per_s: f64,
    /// First-attempt latency of all arrivals.
    pub latency: Latency,
    /// How late the generator sent (included in `latency`).
    pub generator_lag: Latency,
    /// First-attempt latency per final code.
    pub latency_by_code: BTreeMap<String, Latency>,
    /// Count per final HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Count per actor and final code.
    pub by_actor: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per second.
    pub timeline: Vec<Second>,
    /// Times the in-flight cap delayed an arrival (0 for a valid open-model run).
    pub generator_saturated: usize,
}

/// Measures a run.
pub fn summarize(outcomes: &[Outcome], duration_s: f64, saturated: usize) -> Summary {
    let mut all = histogram();
    let mut lag = histogram();
    let mut by_code: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut by_status = BTreeMap::new();
    let mut by_actor: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut seconds: BTreeMap<u64, (BTreeMap<String, u64>, Histogram<u64>)> = BTreeMap::new();
    for o in outcomes {
        let v = o.first_us.clamp(1, 600_000_000);
        let _ = all.record(v);
        let _ = lag.record(o.lag_us.clamp(1, 600_000_000));
        let _ = by_code
            .entry(o.code.clone())
            .or_insert_with(histogram)
            .record(v);
        *by_status.entry(o.status).or_insert(0) += 1;
        *by_actor
            .entry(o.actor.clone())
            .or_default()
            .entry(o.code.clone())
            .or_insert(0) += 1;
        let scheduled_s = o.scheduled_ms / 1000;
        let _ = seconds
            .entry(scheduled_s)
            .or_insert_with(|| (BTreeMap::new(), histogram()))
            .1
            .record(v);
        let done_s = (o.scheduled_ms + o.final_us / 1000) / 1000;
        *seconds
            .entry(done_s)
            .or_insert_with(|| (BTreeMap::new(), histogram()))
            .0
            .entry(category(o).to_owned())
            .or_insert(0) += 1;
    }
    Summary {
        arrivals: outcomes.len(),
        duration_s,
        offered_per_s: outcomes.len() as f64 / duration_s.max(1e-9),
        latency: Latency::of(&all),
        generator_lag: Latency::of(&lag),
        latency_by_code: by_code
            .iter()
            .map(|(k, h)| (k.clone(), Latency::of(h)))
            .collect(),
        by_status,
        by_actor,
        timeline: seconds
            .into_iter()
            .map(|(t, (answers, h))| Second {
                t,
                answers,
                latency: Latency::of(&h),
            })
            .collect(),
        generator_saturated: saturated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(code: &str, status: u16, at_ms: u64, first_us: u64) -> Outcome {
        Outcome {
            actor: "shopper".into(),
            user: "u".into(),
            key: "k".into(),
            quantity: 1,
            code: code.into(),
            status,
            order_id: None,
            attempts: 1,
            saw_unknown: false,
            scheduled_ms: at_ms,
            first_us,
            final_us: first_us,
            lag_us: 0,
            settled: None,
        }
    }

    #[test]
    fn percentiles_and_timeline() {
        let mut outs: Vec<Outcome> = (0..99).map(|i| o("SOLD_OUT", 409, i * 10, 1_000)).collect();
        outs.push(o("ACCEPTED", 202, 1_500, 250_000));
        let s = summarize(&outs, 2.0, 0);
        assert_eq!(s.arrivals, 100);
        assert!((s.latency.p50_ms - 1.0).abs() < 0.01);
        assert!(s.latency.max_ms >= 249.0);
        assert_eq!(s.by_status[&409], 99);
        assert_eq!(s.latency_by_code["ACCEPTED"].count, 1);
        let second_1 = s.timeline.iter().find(|x| x.t == 1).expect("second 1");
        assert_eq!(second_1.answers.get("accepted"), Some(&1));
        assert_eq!(s.timeline[0].answers.get("sold out"), Some(&99));
    }
}
