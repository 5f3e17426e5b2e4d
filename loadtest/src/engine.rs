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

use crate::client::{Answer, OrderClient, loopback_ip, replace_header, send};
use crate::scenario::BotKind;

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

/// Who sends an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// A shopper of the crowd.
    Shopper,
    /// The `n`-th bot of the scenario.
    Bot(usize, BotKind),
}

impl Actor {
    /// `shopper`, or `bot:<kind>`.
    pub fn label(self) -> String {
        match self {
            Self::Shopper => "shopper".into(),
            Self::Bot(_, kind) => format!("bot:{}", kind.as_str()),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The product every order is for.
    pub product: String,
    /// The crowd's arrival rates.
    pub schedule: Schedule,
    /// Length of the arrival phase.
    pub duration: Duration,
    /// Distinct users; arrival `i` is user `i % users`.
    pub users: usize,
    /// Distinct loopback source addresses (one per user, modulo); 0 = default address.
    pub source_ips: usize,
    /// Name clients in `X-Forwarded-For` instead of binding addresses.
    pub forwarded_for: bool,
    /// Attempts per order before giving up on an unknown outcome.
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Most orders in flight at once (a safety valve, counted when hit).
    pub max_in_flight: usize,
    /// Bots and their constant rates.
    pub bots: Vec<(BotKind, f64)>,
}

impl Plan {
    /// A crowd-only plan at a constant rate (the fault suite's stream).
    pub fn steady(
        product: &str,
        rate: f64,
        duration: Duration,
        users: usize,
        source_ips: usize,
    ) -> Self {
        Self {
            product: product.to_owned(),
            schedule: Schedule::Constant { rate },
            duration,
            users,
            source_ips,
            forwarded_for: false,
            max_attempts: 30,
            attempt_timeout: Duration::from_secs(5),
            max_in_flight: 10_000,
            bots: Vec::new(),
        }
    }
}

/// The final state of one order, as the client knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Outcome {
    /// `shopper` or `bot:<kind>`.
    #[serde(default = "shopper")]
    pub actor: String,
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
    /// How late the generator itself sent the first attempt, µs (part of `first_us`;
    /// large values mean the generator, not the server, was the bottleneck).
    #[serde(default)]
    pub lag_us: u64,
}

fn shopper() -> String {
    "shopper".into()
}

impl Outcome {
    /// Whether the order may stand without a 202 in hand (the audit checks the database):
    /// the last answer did not tell. A decisive refusal (say `SOLD_OUT`) after an unknown
    /// attempt is not unresolved: idempotency makes that retry answer for the first
    /// attempt, so a row for it would be an order the shopper was told had failed.
    pub fn unresolved(&self) -> bool {
        self.status != 202
            && matches!(
                self.code.as_str(),
                "UNAVAILABLE"
                    | "IDEMPOTENCY_IN_FLIGHT"
                    | "TRANSPORT_ERROR"
                    | "REQUEST_TIMEOUT"
                    | "HTTP_408"
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

/// An answer that does not tell the outcome: the order may or may not have been taken
/// (503, 409 in flight), or this attempt was not processed at all (408: the server gave
/// up waiting for the request), so only a retry with the same key tells.
pub(crate) fn is_unknown(a: &Answer) -> bool {
    matches!(a.status, 503 | 408) || (a.status == 409 && a.code() == "IDEMPOTENCY_IN_FLIGHT")
}

/// The address a client stands for in `X-Forwarded-For` mode: 10.x.y.z.
fn forwarded_ip(i: usize) -> String {
    let n = i as u32 + 1;
    format!("10.{}.{}.{}", (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

/// Everything one arrival needs.
struct Arrival {
    actor: Actor,
    seq: usize,
    scheduled: Duration,
}

/// Shared by all arrivals of a run.
struct Ctx {
    plan: Plan,
    /// Per source address, one client per target: the crowd's first, then one per bot.
    per_ip: Vec<Vec<OrderClient>>,
    /// Index in `per_ip` of bot 0's address.
    bot_base: usize,
    started: Instant,
    /// The replayers' captured requests: (key, time, signature, body).
    captured: Vec<(String, String, String, Vec<u8>)>,
}

impl Ctx {
    fn clients(&self, ip_index: usize) -> &[OrderClient] {
        &self.per_ip[ip_index % self.per_ip.len()]
    }
}

fn outcome_from(actor: Actor, user: String, key: String, scheduled: Duration) -> Outcome {
    Outcome {
        actor: actor.label(),
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
        lag_us: 0,
    }
}

/// A shopper: one order, retried with the same key while the outcome is unknown.
async fn shopper_order(ctx: Arc<Ctx>, a: Arrival) -> Outcome {
    let plan = &ctx.plan;
    let u = a.seq % plan.users.max(1);
    let user = format!("u-{u}");
    let key = uuid::Uuid::new_v4().to_string();
    let body = OrderClient::body(&plan.product, &user, 1);
    let device = format!("dev-{user}");
    let at = ctx.started + a.scheduled;
    let mut outcome = outcome_from(a.actor, user, key, a.scheduled);
    let (clients, xff) = if plan.forwarded_for {
        (
            ctx.clients(0),
            Some(forwarded_ip(u % plan.source_ips.max(1))),
        )
    } else {
        // The crowd's addresses are the first `source_ips` entries; the bots' follow.
        (ctx.clients(u % plan.source_ips.max(1)), None)
    };
    outcome.lag_us = at.elapsed().as_micros() as u64;
    loop {
        let client = &clients[(a.seq + outcome.attempts as usize) % clients.len()];
        outcome.attempts += 1;
        let mut req = client
            .order_request(&body, &outcome.key)
            .header("x-device-fingerprint", &device);
        if let Some(ip) = &xff {
            req = req.header("x-forwarded-for", ip);
        }
        let sent = tokio::time::timeout(plan.attempt_timeout, send(req)).await;
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

/// A bot: one request, never retried.
async fn bot_request(ctx: Arc<Ctx>, a: Arrival) -> Outcome {
    let Actor::Bot(b, kind) = a.actor else {
        unreachable!("bots only")
    };
    let plan = &ctx.plan;
    let clients = ctx.clients(ctx.bot_base + b);
    let client = &clients[a.seq % clients.len()];
    let device = format!("bot-dev-{b}");
    let (user, key, req) = match kind {
        BotKind::DeviceBurst => {
            let user = format!("bot-{b}-{}", a.seq);
            let key = uuid::Uuid::new_v4().to_string();
            let req = client.order_request(&OrderClient::body(&plan.product, &user, 1), &key);
            (user, key, req)
        }
        BotKind::KeyRotator => {
            let user = format!("bot-{b}");
            let key = uuid::Uuid::new_v4().to_string();
            let req = client.order_request(&OrderClient::body(&plan.product, &user, 1), &key);
            (user, key, req)
        }
        BotKind::Replayer => {
            let (key, time, signature, body) = &ctx.captured[b];
            let req = client
                .http()
                .post(format!("{}/order", client.base_url()))
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .header("x-request-time", time)
                .header("x-signature", signature)
                .header("x-key-id", client.key_id().unwrap_or_default())
                .body(body.clone());
            (format!("bot-{b}"), key.clone(), req)
        }
        BotKind::Forger => {
            let user = format!("bot-{b}-{}", a.seq);
            let key = uuid::Uuid::new_v4().to_string();
            let forged = format!(
                "v1={}",
                hex::encode(uuid::Uuid::new_v4().as_bytes()).repeat(2)
            );
            let req = replace_header(
                client.order_request(&OrderClient::body(&plan.product, &user, 1), &key),
                "x-signature",
                &forged,
            );
            (user, key, req)
        }
        BotKind::Stale => {
            let user = format!("bot-{b}-{}", a.seq);
            let key = uuid::Uuid::new_v4().to_string();
            let body = OrderClient::body(&plan.product, &user, 1);
            let old = client.sign(&body, &key, shared::event::now_ms() - 600_000);
            let req = replace_header(
                replace_header(
                    client.order_request(&body, &key),
                    "x-request-time",
                    &old.request_time,
                ),
                "x-signature",
                &old.signature,
            );
            (user, key, req)
        }
        BotKind::Malformed => {
            let user = format!("bot-{b}-{}", a.seq);
            let key = uuid::Uuid::new_v4().to_string();
            let bodies = [
                format!(r#"{{"productId":"{}","quantity":1}}"#, plan.product),
                format!(
                    r#"{{"productId":"{}","userId":"{user}","quantity":99}}"#,
                    plan.product
                ),
                format!(
                    r#"{{"productId":"{}","userId":"{user}","price":0}}"#,
                    plan.product
                ),
                r#"{"productId": "#.to_owned(),
            ];
            let body = bodies[a.seq % bodies.len()].clone().into_bytes();
            (user, key.clone(), client.order_request(&body, &key))
        }
    };
    let mut outcome = outcome_from(a.actor, user, key, a.scheduled);
    outcome.attempts = 1;
    let at = ctx.started + a.scheduled;
    outcome.lag_us = at.elapsed().as_micros() as u64;
    let req = req.header("x-device-fingerprint", device);
    match tokio::time::timeout(plan.attempt_timeout, send(req)).await {
        Ok(Ok(answer)) => {
            outcome.status = answer.status;
            outcome.code = answer.code();
            outcome.order_id = answer.order_id();
        }
        Ok(Err(_)) | Err(_) => {
            outcome.code = "TRANSPORT_ERROR".into();
        }
    }
    outcome.first_us = (at.elapsed().as_micros() as u64).max(1);
    outcome.final_us = outcome.first_us;
    outcome
}

/// Runs the plan against `targets` (one client per API instance); returns every
/// arrival's outcome and how often the in-flight cap was hit.
pub async fn run(
    targets: &[OrderClient],
    plan: Plan,
    mut progress: impl FnMut(Progress),
) -> (Vec<Outcome>, usize) {
    let bound = |i: usize| -> Vec<OrderClient> {
        targets.iter().map(|t| t.bound_to(loopback_ip(i))).collect()
    };
    let crowd_ips = if plan.forwarded_for {
        0
    } else {
        plan.source_ips
    };
    let mut per_ip: Vec<Vec<OrderClient>> = if crowd_ips == 0 {
        vec![targets.to_vec()]
    } else {
        (0..crowd_ips).map(bound).collect()
    };
    // Each bot gets an address of its own, after the crowd's.
    let bot_base = per_ip.len();
    for b in 0..plan.bots.len() {
        per_ip.push(bound(crowd_ips + b + if crowd_ips == 0 { 1 } else { 0 }));
    }
    let captured = plan
        .bots
        .iter()
        .enumerate()
        .map(|(b, _)| {
            let client = &targets[0];
            let key = uuid::Uuid::new_v4().to_string();
            let body = OrderClient::body(&plan.product, &format!("bot-{b}"), 1);
            let signed = client.sign(&body, &key, shared::event::now_ms());
            (key, signed.request_time, signed.signature, body)
        })
        .collect();

    let mut arrivals: Vec<Arrival> = plan
        .schedule
        .arrivals(plan.duration)
        .into_iter()
        .enumerate()
        .map(|(seq, scheduled)| Arrival {
            actor: Actor::Shopper,
            seq,
            scheduled,
        })
        .collect();
    for (b, (kind, rate)) in plan.bots.iter().enumerate() {
        let stream = Schedule::Constant { rate: *rate }.arrivals(plan.duration);
        arrivals.extend(
            stream
                .into_iter()
                .enumerate()
                .map(|(seq, scheduled)| Arrival {
                    actor: Actor::Bot(b, *kind),
                    seq,
                    scheduled,
                }),
        );
    }
    arrivals.sort_by_key(|a| a.scheduled);
    let total = arrivals.len();

    let slots = Arc::new(Semaphore::new(plan.max_in_flight.max(1)));
    let mut saturated = 0usize;
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        plan,
        per_ip,
        bot_base,
        started,
        captured,
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcomes = Vec::with_capacity(total);
    let mut next_report = Duration::from_secs(1);
    // Reports once a second, whichever loop is running.
    let mut report = |scheduled: usize, finished: usize, in_flight: usize| {
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(1);
            progress(Progress {
                elapsed_s: started.elapsed().as_secs_f64(),
                scheduled,
                finished,
                in_flight,
            });
        }
    };
    for (i, a) in arrivals.into_iter().enumerate() {
        tokio::time::sleep_until((started + a.scheduled).into()).await;
        while let Some(done) = tasks.try_join_next() {
            if let Ok(o) = done {
                outcomes.push(o);
            }
        }
        report(i, outcomes.len(), tasks.len());
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
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let o = match a.actor {
                Actor::Shopper => shopper_order(ctx, a).await,
                Actor::Bot(..) => bot_request(ctx, a).await,
            };
            drop(permit);
            o
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(o) = done {
            outcomes.push(o);
        }
        report(total, outcomes.len(), tasks.len());
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
            actor: "shopper".into(),
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
            lag_us: 0,
        };
        assert!(o.unresolved());
        o.code = "HTTP_408".into();
        o.status = 408;
        assert!(
            o.unresolved(),
            "the server gave up on the request: still unknown"
        );
        o.code = "SOLD_OUT".into();
        o.status = 409;
        assert!(!o.unresolved());
    }
}
