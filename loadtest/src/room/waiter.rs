//! One waiter's life: join (at its time), poll as `refreshAfterMs` says, perhaps leave
//! the line or not show up, claim when the turn comes (waiting out `ROOM_THROTTLED`),
//! order with the admission; every answer logged for the checks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flashsale_client::{Answer, Client};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One poll: when (s into the run), what it said.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Poll {
    /// Seconds into the run.
    pub t: f64,
    /// `prequeue`, `queued`, `admitted`, `sold_out`, `closed`.
    pub state: String,
    /// The position told, once drawn.
    pub position: Option<u64>,
    /// The estimate told, seconds.
    pub eta: Option<f64>,
    /// When to ask again, ms.
    pub refresh_ms: u64,
}

/// What became of one waiter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WaiterLog {
    /// The user.
    pub user: String,
    /// Joined before the opening.
    pub prequeue: bool,
    /// The ticket's arrival number (0: no ticket).
    pub arrival: u64,
    /// The join's answer code (`TICKET` or a problem code).
    pub join: String,
    /// When it joined, s into the run.
    pub joined_s: f64,
    /// Every poll.
    pub polls: Vec<Poll>,
    /// When it left the line (abandoned).
    pub left_s: Option<f64>,
    /// The claim's code and when.
    pub claim: Option<(f64, String)>,
    /// The order's code and when.
    pub order: Option<(f64, String)>,
    /// The order as the audit needs it, once placed.
    #[serde(default)]
    pub placed: Option<Placed>,
    /// Why the waiter's ticket stopped working (a poll's refusal, or `GAVE_UP` after
    /// retries), when it did before the waiter was done with it.
    #[serde(default)]
    pub dropped: Option<String>,
}

/// One waiter's order: its key, and its last answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Placed {
    /// The idempotency key (kept across retries).
    pub key: String,
    /// The last answer's status (0: no answer).
    pub status: u16,
    /// The order id of a 202.
    pub order_id: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Some attempt ended with an unknown outcome.
    pub saw_unknown: bool,
}

impl WaiterLog {
    /// The order as `loadtest audit` reads it (`loadtest stream`'s answers).
    pub fn outcome(&self) -> Option<crate::outcome::Outcome> {
        let (placed, (_, code)) = (self.placed.as_ref()?, self.order.as_ref()?);
        Some(crate::outcome::Outcome {
            actor: "shopper".into(),
            user: self.user.clone(),
            key: placed.key.clone(),
            quantity: 1,
            code: code.clone(),
            status: placed.status,
            order_id: placed.order_id.clone(),
            attempts: placed.attempts,
            saw_unknown: placed.saw_unknown,
            scheduled_ms: 0,
            first_us: 0,
            final_us: 0,
            lag_us: 0,
            settled: None,
        })
    }
}

/// The tokens waiters got, for the bots to misuse: (user, device, ticket, admission,
/// whether the admission bought).
pub type Tokens = Arc<Mutex<Vec<(String, String, String, Option<String>, bool)>>>;

/// One waiter's plan.
#[derive(Debug, Clone)]
pub struct Waiter {
    /// Its number (user `w-<i>`, device `wd-<i>`).
    pub i: usize,
    /// When it joins, from the start.
    pub join_at: Duration,
    /// Before the opening.
    pub prequeue: bool,
    /// Leaves the line after this share of the first ETA it is told (None: stays).
    pub abandon: Option<f64>,
    /// Does not claim when its turn comes.
    pub no_show: bool,
}

/// What every waiter shares.
pub struct Shared {
    /// A client per API instance; waiter `i` uses the `i % n`-th.
    pub clients: Vec<Client>,
    /// The product.
    pub product: String,
    /// The run's start.
    pub started: Instant,
    /// Tokens for the bots.
    pub tokens: Tokens,
}

impl Shared {
    fn t(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The client of waiter `i`.
    fn client(&self, i: usize) -> &Client {
        &self.clients[i % self.clients.len()]
    }
}

/// Seconds to wait after an answer that asks to retry (429, 503, or the room's pace).
fn retry_after(a: &Answer) -> Duration {
    Duration::from_millis(a.retry_after_secs().unwrap_or(1).clamp(1, 5) * 1000)
}

fn poll_of(t: f64, wait: &Value) -> Poll {
    Poll {
        t,
        state: wait["state"].as_str().unwrap_or("?").to_owned(),
        position: wait["position"].as_u64(),
        eta: wait["etaSeconds"].as_f64(),
        refresh_ms: wait["refreshAfterMs"].as_u64().unwrap_or(1_000),
    }
}

impl Waiter {
    /// Lives this waiter's life.
    pub async fn run(self, s: Arc<Shared>) -> WaiterLog {
        tokio::time::sleep_until((s.started + self.join_at).into()).await;
        let (user, device) = (format!("w-{}", self.i), format!("wd-{}", self.i));
        let mut log = WaiterLog {
            user: user.clone(),
            prequeue: self.prequeue,
            joined_s: s.t(),
            ..WaiterLog::default()
        };
        let Some((ticket, first)) = self.join(&s, &user, &device, &mut log).await else {
            return log;
        };
        log.arrival = shared::room::Claims::peek(&ticket).map_or(0, |c| c.arrival);
        if let Ok(mut tokens) = s.tokens.lock() {
            tokens.push((user.clone(), device.clone(), ticket.clone(), None, false));
        }
        let mut wait = first;
        let mut leave_at: Option<f64> = None;
        loop {
            let poll = poll_of(s.t(), &wait);
            let (state, refresh) = (poll.state.clone(), poll.refresh_ms);
            if leave_at.is_none()
                && let (Some(share), Some(eta)) = (self.abandon, poll.eta)
            {
                leave_at = Some(poll.t + share * eta);
            }
            log.polls.push(poll);
            match state.as_str() {
                "admitted" => break,
                "sold_out" | "closed" => return log,
                _ => {}
            }
            let next = s.t() + refresh as f64 / 1000.0;
            if leave_at.is_some_and(|l| l < next) {
                log.left_s = leave_at;
                return log;
            }
            tokio::time::sleep(Duration::from_millis(refresh)).await;
            wait = match self.status(&s, &ticket, &device).await {
                Ok(w) => w,
                Err(code) => {
                    log.dropped = Some(code);
                    return log;
                }
            };
        }
        if !self.no_show {
            self.claim_and_order(&s, &user, &device, &ticket, &mut log)
                .await;
        }
        log
    }

    async fn join(
        &self,
        s: &Shared,
        user: &str,
        device: &str,
        log: &mut WaiterLog,
    ) -> Option<(String, Value)> {
        for _ in 0..20 {
            let a = match s.client(self.i).join(&s.product, user, device).await {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            match a.status {
                200 => {
                    log.join = "TICKET".into();
                    let json = a.json();
                    let ticket = json["ticket"].as_str()?.to_owned();
                    return Some((ticket, json["wait"].clone()));
                }
                429 | 503 => tokio::time::sleep(retry_after(&a)).await,
                _ => {
                    log.join = a.code();
                    return None;
                }
            }
        }
        log.join = "GAVE_UP".into();
        None
    }

    /// The ticket's wait, retrying what asks to be retried; else the refusal's code.
    async fn status(&self, s: &Shared, ticket: &str, device: &str) -> Result<Value, String> {
        for _ in 0..20 {
            match s
                .client(self.i)
                .queue_status(&s.product, ticket, device)
                .await
            {
                Ok(a) if a.status == 200 => return Ok(a.json()["wait"].clone()),
                Ok(a) if a.status == 429 || a.status == 503 => {
                    tokio::time::sleep(retry_after(&a)).await;
                }
                Ok(a) => return Err(a.code()),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        Err("GAVE_UP".into())
    }

    async fn claim_and_order(
        &self,
        s: &Shared,
        user: &str,
        device: &str,
        ticket: &str,
        log: &mut WaiterLog,
    ) {
        let Some(admission) = self.claim(s, user, device, ticket, log).await else {
            return;
        };
        let (placed, code) = self.order(s, user, device, &admission).await;
        let bought = code == "ACCEPTED";
        log.order = Some((s.t(), code));
        log.placed = Some(placed);
        if let Ok(mut tokens) = s.tokens.lock() {
            tokens.push((
                user.to_owned(),
                device.to_owned(),
                ticket.to_owned(),
                Some(admission),
                bought,
            ));
        }
    }

    /// Claims the turn, waiting out what asks to be retried: the admission token, or
    /// `None` (the refusal logged).
    async fn claim(
        &self,
        s: &Shared,
        user: &str,
        device: &str,
        ticket: &str,
        log: &mut WaiterLog,
    ) -> Option<String> {
        loop {
            let Ok(a) = s
                .client(self.i)
                .claim(&s.product, user, ticket, device)
                .await
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            if a.status == 200 {
                log.claim = Some((s.t(), "ADMITTED".into()));
                return Some(
                    a.json()["admissionToken"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            if matches!(a.status, 429 | 503) {
                tokio::time::sleep(retry_after(&a) / 4).await;
                continue;
            }
            log.claim = Some((s.t(), a.code()));
            return None;
        }
    }

    /// Orders one unit with `admission`, under one key: the order and its last code.
    async fn order(
        &self,
        s: &Shared,
        user: &str,
        device: &str,
        admission: &str,
    ) -> (Placed, String) {
        let body = Client::body(&s.product, user, 1);
        let mut placed = Placed {
            key: flashsale_client::new_key(),
            ..Placed::default()
        };
        let key = placed.key.clone();
        let mut code = "TRANSPORT_ERROR".to_owned();
        // Until an answer tells (a failover can take several seconds and the outcome of
        // an order in flight stays unknown until it ends), as a shopper's app would.
        for _ in 0..30 {
            placed.attempts += 1;
            match s
                .client(self.i)
                .place_admitted(&body, &key, device, admission)
                .await
            {
                Ok(a) if flashsale_client::outcome_unknown(&a) => {
                    placed.saw_unknown = true;
                    (placed.status, code) = (a.status, a.code());
                    tokio::time::sleep(retry_after(&a)).await
                }
                Ok(a) => {
                    (placed.status, code) = (a.status, a.code());
                    placed.order_id = a.order_id();
                    break;
                }
                Err(_) => {
                    placed.saw_unknown = true;
                    (placed.status, code) = (0, "TRANSPORT_ERROR".to_owned());
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
            }
        }
        (placed, code)
    }
}

/// Every waiter's plan: the pre-queue spread over its length, the live ones over theirs;
/// who leaves and who does not show follows from the waiter's number.
pub fn plan(sc: &super::RoomScenario) -> Vec<Waiter> {
    let w = &sc.waiters;
    let share = |i: usize, salt: u64| {
        ((i as u64 ^ salt).wrapping_mul(2_654_435_761) % 10_000) as f64 / 10_000.0
    };
    let total = (w.prequeue + w.live) as usize;
    (0..total)
        .map(|i| {
            let prequeue = i < w.prequeue as usize;
            let join_at = if prequeue {
                sc.room
                    .prequeue
                    .mul_f64(i as f64 / f64::from(w.prequeue.max(1)) * 0.95)
            } else {
                let j = (i - w.prequeue as usize) as f64 / f64::from(w.live.max(1));
                sc.room.prequeue + Duration::from_millis(500) + w.live_over.mul_f64(j)
            };
            Waiter {
                i,
                join_at,
                prequeue,
                abandon: (share(i, 0x5eed) < w.abandon).then(|| share(i, 0xabcd)),
                no_show: share(i, 0x0b5e) < w.no_show,
            }
        })
        .collect()
}
