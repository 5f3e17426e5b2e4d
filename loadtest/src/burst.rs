//! A burst: many shoppers ordering one product at once, as fast as a fixed number of
//! connections allows. This is the demo's crowd and the end-to-end test's; the
//! open-model load generator with arrival rates lives in the `loadtest` binary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use flashsale_client::{Answer, Client};

/// What to send.
#[derive(Debug, Clone)]
pub struct Burst {
    /// The product.
    pub product: String,
    /// Distinct users (`u-0` … `u-{users-1}`); order `i` comes from user `i % users`.
    pub users: usize,
    /// Orders in total, each with a fresh idempotency key.
    pub orders: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Distinct source addresses (127.0.0.2, …); user `i` sends from address
    /// `i % source_ips`. 0 sends everything from the default address.
    pub source_ips: usize,
}

/// One order sent and its answer.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The user.
    pub user: String,
    /// The idempotency key used.
    pub key: String,
    /// The exact body sent.
    pub body: Vec<u8>,
    /// The answer; `Err` holds a transport error.
    pub answer: Result<Answer, String>,
}

/// Every order and answer of a burst.
#[derive(Debug, Clone, Default)]
pub struct BurstResult {
    /// In completion order.
    pub sent: Vec<Sent>,
    /// Wall time.
    pub elapsed: Duration,
}

impl BurstResult {
    /// Answers per code (`ACCEPTED`, `SOLD_OUT`, …; `TRANSPORT_ERROR`).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for s in &self.sent {
            let code = match &s.answer {
                Ok(a) => a.code(),
                Err(_) => "TRANSPORT_ERROR".into(),
            };
            *counts.entry(code).or_insert(0) += 1;
        }
        counts
    }

    /// The 202 answers.
    pub fn accepted(&self) -> impl Iterator<Item = (&Sent, &Answer)> {
        self.sent.iter().filter_map(|s| match &s.answer {
            Ok(a) if a.status == 202 => Some((s, a)),
            _ => None,
        })
    }
}

/// Sends the burst and collects every answer. Each user has its own device
/// fingerprint (`dev-<user>`) and, with `source_ips`, its own source address.
pub async fn run(client: &Client, burst: &Burst) -> BurstResult {
    let started = Instant::now();
    let clients: Vec<Client> = (0..burst.source_ips)
        .map(|i| client.bound_to(crate::clients::loopback_ip(i)))
        .collect();
    let clients = &clients;
    let sent = futures_util::stream::iter(0..burst.orders)
        .map(|i| {
            let u = i % burst.users.max(1);
            let user = format!("u-{u}");
            let key = uuid::Uuid::new_v4().to_string();
            let body = Client::body(&burst.product, &user, 1);
            let client = if clients.is_empty() {
                client
            } else {
                &clients[u % clients.len()]
            };
            async move {
                let device = format!("dev-{user}");
                let answer = client
                    .place_from(&body, &key, &device)
                    .await
                    .map_err(|e| e.to_string());
                Sent {
                    user,
                    key,
                    body,
                    answer,
                }
            }
        })
        .buffer_unordered(burst.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    BurstResult {
        sent,
        elapsed: started.elapsed(),
    }
}
