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

use tokio::sync::Semaphore;

use crate::outcome::{Outcome, Progress, is_unknown};
use crate::traffic::{Actor, BotKind, Plan, Schedule};
use flashsale_client::{Client, send};

use crate::clients::{loopback_ip, replace_header};

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
    per_ip: Vec<Vec<Client>>,
    /// Index in `per_ip` of bot 0's address.
    bot_base: usize,
    started: Instant,
    /// The replayers' captured requests: (key, time, signature, body).
    captured: Vec<(String, String, String, Vec<u8>)>,
}

impl Ctx {
    fn clients(&self, ip_index: usize) -> &[Client] {
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
        settled: None,
    }
}

/// A shopper: one order, retried with the same key while the outcome is unknown.
async fn shopper_order(ctx: Arc<Ctx>, a: Arrival) -> Outcome {
    let plan = &ctx.plan;
    let u = a.seq % plan.users.max(1);
    let user = format!("u-{u}");
    let key = uuid::Uuid::new_v4().to_string();
    let body = Client::body(&plan.product, &user, 1);
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
            let req = client.order_request(&Client::body(&plan.product, &user, 1), &key);
            (user, key, req)
        }
        BotKind::KeyRotator => {
            let user = format!("bot-{b}");
            let key = uuid::Uuid::new_v4().to_string();
            let req = client.order_request(&Client::body(&plan.product, &user, 1), &key);
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
                client.order_request(&Client::body(&plan.product, &user, 1), &key),
                "x-signature",
                &forged,
            );
            (user, key, req)
        }
        BotKind::Stale => {
            let user = format!("bot-{b}-{}", a.seq);
            let key = uuid::Uuid::new_v4().to_string();
            let body = Client::body(&plan.product, &user, 1);
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
    targets: &[Client],
    plan: Plan,
    mut progress: impl FnMut(Progress),
) -> (Vec<Outcome>, usize) {
    let bound =
        |i: usize| -> Vec<Client> { targets.iter().map(|t| t.bound_to(loopback_ip(i))).collect() };
    let crowd_ips = if plan.forwarded_for {
        0
    } else {
        plan.source_ips
    };
    let mut per_ip: Vec<Vec<Client>> = if crowd_ips == 0 {
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
            let body = Client::body(&plan.product, &format!("bot-{b}"), 1);
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
            let seq = a.seq;
            let mut o = match a.actor {
                Actor::Shopper => shopper_order(ctx.clone(), a).await,
                Actor::Bot(..) => bot_request(ctx.clone(), a).await,
            };
            drop(permit);
            if let (Some(settle), "shopper") = (&ctx.plan.settle, o.actor.as_str()) {
                settle.act(ctx.clients(0), seq, &mut o).await;
            }
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
