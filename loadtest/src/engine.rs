//! The open-model load engine.
//!
//! Requests are *scheduled* by an arrival-rate schedule, not sent when the previous one
//! returns: a slow server does not slow the crowd down (no coordinated omission), and
//! every latency is measured from the scheduled time. Each arrival is one shopper with
//! one order and one idempotency key, who retries with the same key — after
//! `Retry-After`, possibly on another API instance — when the outcome is unknown: a 503, a
//! 409 in flight, a timeout or a dropped connection. What each order finally got is
//! recorded ([`Outcome`]) for the audit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::client::{Answer, OrderClient, loopback_ip};

/// How the arrival rate changes over the run (requests per second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate throughout.
    Constant {
        /// Requests per second.
        rate: f64,
    },
    /// From `from` to `to`, linearly over the run.
    Ramp {
        /// Starting rate.
        from: f64,
        /// Final rate.
        to: f64,
    },
    /// `base`, with `peak` for `hold_s` seconds from `at_s` (the sale opening).
    Spike {
        /// Rate outside the spike.
        base: f64,
        /// Rate during the spike.
        peak: f64,
        /// When the spike starts, seconds into the run.
        at_s: f64,
        /// How long it lasts.
        hold_s: f64,
    },
}

impl Schedule {
    /// The rate at `t` seconds into a run of `duration` seconds.
    pub fn rate_at(&self, t: f64, duration: f64) -> f64 {
        match *self {
            Self::Constant { rate } => rate,
            Self::Ramp { from, to } => {
                from + (to - from) * (t / duration.max(1e-9)).clamp(0.0, 1.0)
            }
            Self::Spike {
                base,
                peak,
                at_s,
                hold_s,
            } => {
                if t >= at_s && t < at_s + hold_s {
                    peak
                } else {
                    base
                }
            }
        }
    }

    /// Scheduled send offsets over `duration`: the `i`-th arrival is where the integral of
    /// the rate reaches `i` (evenly spaced while the rate is constant).
    pub fn arrivals(&self, duration: Duration) -> Vec<Duration> {
        const STEP: f64 = 0.001;
        let total = duration.as_secs_f64();
        let mut out = Vec::new();
        // Work still to be done (in arrivals) before the next one; 0 = one is due now.
        let mut due = 0.0f64;
        let mut t = 0.0f64;
        while t < total {
            let end = (t + STEP).min(total);
            let rate = self.rate_at((t + end) / 2.0, total);
            let mut cur = t;
            if rate > 0.0 {
                while due <= rate * (end - cur) + 1e-12 {
                    cur += due / rate;
                    if cur >= total - 1e-9 {
                        break;
                    }
                    out.push(Duration::from_secs_f64(cur));
                    due = 1.0;
                }
                due -= rate * (end - cur);
            }
            t = end;
        }
        out
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The product every order is for.
    pub product: String,
    /// Arrival rates.
    pub schedule: Schedule,
    /// Length of the arrival phase.
    pub duration: Duration,
    /// Distinct users; arrival `i` is user `i % users`.
    pub users: usize,
    /// Distinct loopback source addresses (one per user, modulo); 0 = default address.
    pub source_ips: usize,
    /// Attempts per order before giving up on an unknown outcome.
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Most orders in flight at once (a safety valve, counted when hit).
    pub max_in_flight: usize,
}

/// The final state of one order, as the shopper knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Outcome {
    /// The user.
    pub user: String,
    /// The idempotency key (kept across retries).
    pub key: String,
    /// Units ordered.
    pub quantity: u32,
    /// Final code: `ACCEPTED`, a problem code, or `TRANSPORT_ERROR`.
    pub code: String,
    /// Final HTTP status (0 for transport errors).
    pub status: u16,
    /// The order id of a 202.
    pub order_id: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Some attempt ended with an unknown outcome (503, 409 in flight, timeout, reset).
    pub saw_unknown: bool,
    /// Scheduled send, ms from the start of the run.
    pub scheduled_ms: u64,
    /// Scheduled send to first answer, µs (coordinated-omission corrected).
    pub first_us: u64,
    /// Scheduled send to final answer, µs.
    pub final_us: u64,
}

impl Outcome {
    /// Whether the order may stand without a 202 in hand (the audit checks the database).
    pub fn unresolved(&self) -> bool {
        self.status != 202
            && matches!(
                self.code.as_str(),
                "UNAVAILABLE" | "IDEMPOTENCY_IN_FLIGHT" | "TRANSPORT_ERROR"
            )
    }
}

/// Progress callback data, once a second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Seconds into the run.
    pub elapsed_s: f64,
    /// Orders scheduled so far.
    pub scheduled: usize,
    /// Orders finished.
    pub finished: usize,
    /// Orders in flight.
    pub in_flight: usize,
}

fn is_unknown(a: &Answer) -> bool {
    a.status == 503 || (a.status == 409 && a.code() == "IDEMPOTENCY_IN_FLIGHT")
}

async fn shopper(
    clients: Arc<Vec<OrderClient>>,
    first: usize,
    user: String,
    product: String,
    started: Instant,
    scheduled: Duration,
    plan: Arc<Plan>,
) -> Outcome {
    let key = uuid::Uuid::new_v4().to_string();
    let body = OrderClient::body(&product, &user, 1);
    let device = format!("dev-{user}");
    let at = started + scheduled;
    let mut outcome = Outcome {
        user,
        key,
        quantity: 1,
        code: String::new(),
        status: 0,
        order_id: None,
        attempts: 0,
        saw_unknown: false,
        scheduled_ms: scheduled.as_millis() as u64,
        first_us: 0,
        final_us: 0,
    };
    loop {
        let client = &clients[(first + outcome.attempts as usize) % clients.len()];
        outcome.attempts += 1;
        let sent = tokio::time::timeout(
            plan.attempt_timeout,
            client.place_from(&body, &outcome.key, &device),
        )
        .await;
        let since = at.elapsed().as_micros() as u64;
        if outcome.first_us == 0 {
            outcome.first_us = since.max(1);
        }
        let retry_in = match sent {
            Ok(Ok(answer)) => {
                outcome.status = answer.status;
                outcome.code = answer.code();
                outcome.order_id = answer.order_id();
                if !is_unknown(&answer) {
                    outcome.final_us = since;
                    return outcome;
                }
                let secs = answer
                    .header("retry-after")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                Duration::from_secs(secs.clamp(1, 5))
            }
            Ok(Err(_)) | Err(_) => {
                outcome.status = 0;
                outcome.code = "TRANSPORT_ERROR".into();
                outcome.order_id = None;
                Duration::from_millis(500)
            }
        };
        outcome.saw_unknown = true;
        if outcome.attempts >= plan.max_attempts {
            outcome.final_us = since;
            return outcome;
        }
        tokio::time::sleep(retry_in).await;
    }
}

/// Runs the plan against `targets` (one client per API instance); returns every order's
/// outcome and how often the in-flight cap was hit.
pub async fn run(
    targets: &[OrderClient],
    plan: Plan,
    mut progress: impl FnMut(Progress),
) -> (Vec<Outcome>, usize) {
    let plan = Arc::new(plan);
    // Per source address, one client per target; shopper `u` uses address `u % n`.
    let per_ip: Vec<Arc<Vec<OrderClient>>> = if plan.source_ips == 0 {
        vec![Arc::new(targets.to_vec())]
    } else {
        (0..plan.source_ips)
            .map(|i| Arc::new(targets.iter().map(|t| t.bound_to(loopback_ip(i))).collect()))
            .collect()
    };
    let arrivals = plan.schedule.arrivals(plan.duration);
    let slots = Arc::new(Semaphore::new(plan.max_in_flight.max(1)));
    let mut saturated = 0usize;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcomes = Vec::with_capacity(arrivals.len());
    let mut next_report = Duration::from_secs(1);
    for (i, at) in arrivals.iter().enumerate() {
        tokio::time::sleep_until((started + *at).into()).await;
        while let Some(done) = tasks.try_join_next() {
            if let Ok(o) = done {
                outcomes.push(o);
            }
        }
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(1);
            progress(Progress {
                elapsed_s: started.elapsed().as_secs_f64(),
                scheduled: i,
                finished: outcomes.len(),
                in_flight: tasks.len(),
            });
        }
        let u = i % plan.users.max(1);
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                saturated += 1;
                match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                }
            }
        };
        let clients = per_ip[u % per_ip.len()].clone();
        let fut = shopper(
            clients,
            i,
            format!("u-{u}"),
            plan.product.clone(),
            started,
            *at,
            plan.clone(),
        );
        tasks.spawn(async move {
            let o = fut.await;
            drop(permit);
            o
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(o) = done {
            outcomes.push(o);
        }
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(1);
            progress(Progress {
                elapsed_s: started.elapsed().as_secs_f64(),
                scheduled: arrivals.len(),
                finished: outcomes.len(),
                in_flight: tasks.len(),
            });
        }
    }
    outcomes.sort_by_key(|o| o.scheduled_ms);
    (outcomes, saturated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_place_the_right_number_of_arrivals() {
        let ten_s = Duration::from_secs(10);
        assert_eq!(
            Schedule::Constant { rate: 100.0 }.arrivals(ten_s).len(),
            1_000
        );
        let ramp = Schedule::Ramp {
            from: 0.0,
            to: 200.0,
        }
        .arrivals(ten_s)
        .len();
        assert!((990..=1_010).contains(&ramp), "{ramp}");
        let spike = Schedule::Spike {
            base: 10.0,
            peak: 1_000.0,
            at_s: 2.0,
            hold_s: 1.0,
        };
        let n = spike.arrivals(ten_s).len();
        assert!((1_085..=1_095).contains(&n), "{n}");
        assert_eq!(spike.rate_at(2.5, 10.0), 1_000.0);
        assert_eq!(spike.rate_at(3.0, 10.0), 10.0);
    }

    #[test]
    fn only_unknown_outcomes_are_unresolved() {
        let mut o = Outcome {
            user: "u".into(),
            key: "k".into(),
            quantity: 1,
            code: "UNAVAILABLE".into(),
            status: 503,
            order_id: None,
            attempts: 5,
            saw_unknown: true,
            scheduled_ms: 0,
            first_us: 1,
            final_us: 1,
        };
        assert!(o.unresolved());
        o.code = "SOLD_OUT".into();
        o.status = 409;
        assert!(!o.unresolved());
    }
}
