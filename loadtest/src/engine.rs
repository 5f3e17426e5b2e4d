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

use crate::outcome::{Outcome, Progress};
use crate::traffic::{Actor, BotKind, Plan, Schedule};
use flashsale_client::{Answer, Client, RetryPolicy, headers, send};

use crate::clients::{loopback_ip, replace_header};

/// The address a client stands for in `X-Forwarded-For` mode: 10.x.y.z.
fn forwarded_ip(i: usize) -> String {
    let n = i as u32 + 1;
    format!("10.{}.{}.{}", (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

/// A signed request captured for a replayer: (key, time, signature, body).
type Captured = (String, String, String, Vec<u8>);

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
    /// The replayers' captured requests.
    captured: Vec<Captured>,
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

/// A shopper: one order, retried with the same key while the outcome is unknown, as the
/// shoppers' client does ([`RetryPolicy`]), each attempt on the next API instance.
async fn shopper_order(ctx: Arc<Ctx>, a: Arrival) -> Outcome {
    let plan = &ctx.plan;
    let u = a.seq % plan.users.max(1);
    let user = format!("u-{u}");
    let body = Client::body(&plan.product, &user, 1);
    let device = format!("dev-{user}");
    let (clients, xff) = if plan.forwarded_for {
        let ip = forwarded_ip(u % plan.source_ips.max(1));
        (ctx.clients(0), Some(ip))
    } else {
        // The crowd's addresses are the first `source_ips` entries; the bots' follow.
        (ctx.clients(u % plan.source_ips.max(1)), None)
    };
    let policy = RetryPolicy {
        max_attempts: plan.max_attempts,
        attempt_timeout: plan.attempt_timeout,
        ..RetryPolicy::default()
    };
    let at = ctx.started + a.scheduled;
    let mut outcome = outcome_from(a.actor, user, uuid::Uuid::new_v4().to_string(), a.scheduled);
    outcome.lag_us = at.elapsed().as_micros() as u64;
    loop {
        let client = &clients[(a.seq + outcome.attempts as usize) % clients.len()];
        outcome.attempts += 1;
        let mut req = client
            .order_request(&body, &outcome.key)
            .header(headers::DEVICE_FINGERPRINT, &device);
        if let Some(ip) = &xff {
            req = req.header(headers::FORWARDED_FOR, ip);
        }
        let answer = match tokio::time::timeout(policy.attempt_timeout, send(req)).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(_)) | Err(_) => None,
        };
        let since = at.elapsed().as_micros() as u64;
        if outcome.first_us == 0 {
            outcome.first_us = since.max(1);
        }
        record(&mut outcome, answer.as_ref());
        match policy.wait_after(answer.as_ref()) {
            Some(wait) if outcome.attempts < policy.max_attempts => {
                outcome.saw_unknown = true;
                tokio::time::sleep(wait).await;
            }
            unknown => {
                outcome.saw_unknown |= unknown.is_some();
                outcome.final_us = since;
                return outcome;
            }
        }
    }
}

/// What one attempt got (`None`: a dropped connection or a timeout).
fn record(outcome: &mut Outcome, answer: Option<&Answer>) {
    match answer {
        Some(answer) => {
            outcome.status = answer.status;
            outcome.code = answer.code();
            outcome.order_id = answer.order_id();
        }
        None => {
            outcome.status = 0;
            outcome.code = "TRANSPORT_ERROR".into();
            outcome.order_id = None;
        }
    }
}

/// A bot's request: its user, key and the request itself.
type BotRequest = (String, String, reqwest::RequestBuilder);

/// A bot: one request, never retried.
async fn bot_request(ctx: Arc<Ctx>, a: Arrival) -> Outcome {
    let Actor::Bot(b, kind) = a.actor else {
        unreachable!("bots only")
    };
    let plan = &ctx.plan;
    let clients = ctx.clients(ctx.bot_base + b);
    let client = &clients[a.seq % clients.len()];
    let (user, key, req) = match kind {
        BotKind::DeviceBurst => fresh(client, &plan.product, format!("bot-{b}-{}", a.seq)),
        BotKind::KeyRotator => fresh(client, &plan.product, format!("bot-{b}")),
        BotKind::Replayer => replayed(client, b, &ctx.captured[b]),
        BotKind::Forger => forged(client, &plan.product, format!("bot-{b}-{}", a.seq)),
        BotKind::Stale => stale(client, &plan.product, format!("bot-{b}-{}", a.seq)),
        BotKind::Malformed => malformed(client, &plan.product, format!("bot-{b}-{}", a.seq), a.seq),
    };
    let mut outcome = outcome_from(a.actor, user, key, a.scheduled);
    outcome.attempts = 1;
    let at = ctx.started + a.scheduled;
    outcome.lag_us = at.elapsed().as_micros() as u64;
    let req = req.header(headers::DEVICE_FINGERPRINT, format!("bot-dev-{b}"));
    let answer = match tokio::time::timeout(plan.attempt_timeout, send(req)).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(_)) | Err(_) => None,
    };
    record(&mut outcome, answer.as_ref());
    outcome.first_us = (at.elapsed().as_micros() as u64).max(1);
    outcome.final_us = outcome.first_us;
    outcome
}

/// A correctly signed order of `user` under a fresh key.
fn fresh(client: &Client, product: &str, user: String) -> BotRequest {
    let key = uuid::Uuid::new_v4().to_string();
    let req = client.order_request(&Client::body(product, &user, 1), &key);
    (user, key, req)
}

/// Bot `b`'s captured request, sent again byte for byte.
fn replayed(client: &Client, b: usize, captured: &Captured) -> BotRequest {
    let (key, time, signature, body) = captured;
    let req = client
        .http()
        .post(format!("{}/order", client.base_url()))
        .header("content-type", "application/json")
        .header(headers::IDEMPOTENCY_KEY, key)
        .header(headers::REQUEST_TIME, time)
        .header(headers::SIGNATURE, signature)
        .header(headers::KEY_ID, client.key_id().unwrap_or_default())
        .body(body.clone());
    (format!("bot-{b}"), key.clone(), req)
}

/// An order with a made-up signature.
fn forged(client: &Client, product: &str, user: String) -> BotRequest {
    let (user, key, req) = fresh(client, product, user);
    let forged = format!(
        "v1={}",
        hex::encode(uuid::Uuid::new_v4().as_bytes()).repeat(2)
    );
    (user, key, replace_header(req, headers::SIGNATURE, &forged))
}

/// An order signed ten minutes ago.
fn stale(client: &Client, product: &str, user: String) -> BotRequest {
    let key = uuid::Uuid::new_v4().to_string();
    let body = Client::body(product, &user, 1);
    let old = client.sign(&body, &key, shared::event::now_ms() - 600_000);
    let req = client.order_request(&body, &key);
    let req = replace_header(req, headers::REQUEST_TIME, &old.request_time);
    (
        user,
        key,
        replace_header(req, headers::SIGNATURE, &old.signature),
    )
}

/// A signed body the schema refuses (no user, too many units, an unknown member, cut
/// short), in turn.
fn malformed(client: &Client, product: &str, user: String, seq: usize) -> BotRequest {
    let key = uuid::Uuid::new_v4().to_string();
    let bodies = [
        format!(r#"{{"productId":"{product}","quantity":1}}"#),
        format!(r#"{{"productId":"{product}","userId":"{user}","quantity":99}}"#),
        format!(r#"{{"productId":"{product}","userId":"{user}","price":0}}"#),
        r#"{"productId": "#.to_owned(),
    ];
    let body = bodies[seq % bodies.len()].clone().into_bytes();
    let req = client.order_request(&body, &key);
    (user, key, req)
}

/// Runs the plan against `targets` (one client per API instance); returns every
/// arrival's outcome and how often the in-flight cap was hit.
pub async fn run(
    targets: &[Client],
    plan: Plan,
    progress: impl FnMut(Progress),
) -> (Vec<Outcome>, usize) {
    let (per_ip, bot_base) = clients_per_ip(targets, &plan);
    let captured = captured(&targets[0], &plan);
    let arrivals = arrivals(&plan);
    let ctx = Arc::new(Ctx {
        plan,
        per_ip,
        bot_base,
        started: Instant::now(),
        captured,
    });
    drive(ctx, arrivals, progress).await
}

/// One client per target for each source address: the crowd's first (one address for
/// them all when they come through `X-Forwarded-For`), then one address per bot.
fn clients_per_ip(targets: &[Client], plan: &Plan) -> (Vec<Vec<Client>>, usize) {
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
    let bot_base = per_ip.len();
    for b in 0..plan.bots.len() {
        per_ip.push(bound(crowd_ips + b + usize::from(crowd_ips == 0)));
    }
    (per_ip, bot_base)
}

/// One signed request per bot, captured before the run for the replayers.
fn captured(client: &Client, plan: &Plan) -> Vec<Captured> {
    (0..plan.bots.len())
        .map(|b| {
            let key = uuid::Uuid::new_v4().to_string();
            let body = Client::body(&plan.product, &format!("bot-{b}"), 1);
            let signed = client.sign(&body, &key, shared::event::now_ms());
            (key, signed.request_time, signed.signature, body)
        })
        .collect()
}

/// Every arrival of the run, the crowd's and the bots', in time order.
fn arrivals(plan: &Plan) -> Vec<Arrival> {
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
    arrivals
}

/// Sends each arrival at its time (waiting only when `max_in_flight` are out, which is
/// counted), reporting progress once a second, and collects the outcomes.
async fn drive(
    ctx: Arc<Ctx>,
    arrivals: Vec<Arrival>,
    mut progress: impl FnMut(Progress),
) -> (Vec<Outcome>, usize) {
    let total = arrivals.len();
    let started = ctx.started;
    let slots = Arc::new(Semaphore::new(ctx.plan.max_in_flight.max(1)));
    let (mut saturated, mut tasks) = (0usize, tokio::task::JoinSet::new());
    let mut outcomes = Vec::with_capacity(total);
    let mut next_report = Duration::from_secs(1);
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
            outcomes.extend(done.ok());
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
        tasks.spawn(arrive(ctx.clone(), a, permit));
    }
    while let Some(done) = tasks.join_next().await {
        outcomes.extend(done.ok());
        report(total, outcomes.len(), tasks.len());
    }
    outcomes.sort_by_key(|o| o.scheduled_ms);
    (outcomes, saturated)
}

/// One arrival: its order (holding an in-flight slot), then, for a shopper's 202, what
/// the shopper does with the reservation.
async fn arrive(ctx: Arc<Ctx>, a: Arrival, permit: tokio::sync::OwnedSemaphorePermit) -> Outcome {
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
}
