//! Benchmark building blocks (`loadtest/bench` runs them in one go).
//!
//! - [`saturate`]: closed loop, `concurrency` connections sending back to back for a
//!   while: the most a server answers per second, for comparing ceilings. It sends with
//!   the lean [`crate::wire`] client, so the generator takes as little CPU as it can
//!   from the server it shares the machine with.
//! - [`saturate_polls`]: the same for waiting-room polls (`GET /queue/{p}/status`).
//! - [`bare_server`]: actix-web handlers that answer `POST /order` with a fixed problem
//!   body and a poll with a fixed view, and do nothing else: the HTTP ceilings of this
//!   machine.
//! - [`fill_topic`]: writes orders to a topic, for measuring the worker on a backlog.
//! - [`kafka_ceiling`]: the broker's own ceiling for the accept path's publish: the API's
//!   producer settings, real order events, many in flight.
//!
//! The latency of the real service is measured with the open-model engine instead
//! ([`crate::engine`]), at rates derived from the saturation point.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::measure::Latency;
use crate::wire::Wire;
use flashsale_client::Client;

/// What a closed-loop run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Saturation {
    /// Answers per second over the run.
    pub per_s: f64,
    /// Answers.
    pub answers: u64,
    /// Per code.
    pub codes: BTreeMap<String, u64>,
    /// Service time (closed loop: from send to answer).
    pub latency: Latency,
}

/// How each request of a closed-loop run is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Users {
    /// Always user `u-0` (the benchmark pre-fills its purchase, so every decision runs
    /// the script to the per-user cap and refuses there).
    Fixed,
    /// A new user every time.
    Fresh,
}

/// Sends back to back on `concurrency` connections for `duration`; connection `c` orders
/// `products[c % products.len()]`.
pub async fn saturate(
    client: &Client,
    products: &[String],
    users: Users,
    concurrency: usize,
    duration: Duration,
) -> Saturation {
    let asks = (0..concurrency).map(|c| Ask::Order {
        client: client.clone(),
        product: products[c % products.len().max(1)].clone(),
        users,
    });
    closed_loop(client.base_url(), asks, duration).await
}

/// Polls `GET /queue/{product}/status` at `base_url` back to back on `concurrency`
/// connections for `duration`; connection `c` polls with `tickets[c % tickets.len()]`
/// (ticket, device).
pub async fn saturate_polls(
    base_url: &str,
    product: &str,
    tickets: &[(String, String)],
    concurrency: usize,
    duration: Duration,
) -> Saturation {
    let asks = (0..concurrency).map(|c| {
        let (ticket, device) = tickets[c % tickets.len().max(1)].clone();
        Ask::Poll {
            product: product.to_owned(),
            ticket,
            device,
        }
    });
    closed_loop(base_url, asks, duration).await
}

/// What one connection of a closed-loop run sends, request after request.
enum Ask {
    /// A signed `POST /order` of `product` by the connection's user(s).
    Order {
        client: Client,
        product: String,
        users: Users,
    },
    /// A waiting-room poll of `ticket` from `device`.
    Poll {
        product: String,
        ticket: String,
        device: String,
    },
}

impl Ask {
    /// Request `i` of connection `c`: the status and the code.
    async fn send(&self, wire: &mut Wire, c: usize, i: u64) -> std::io::Result<(u16, String)> {
        match self {
            Self::Order {
                client,
                product,
                users,
            } => {
                let user = match users {
                    Users::Fixed => "u-0".to_owned(),
                    Users::Fresh => format!("u-{c}-{i}"),
                };
                let key = uuid::Uuid::new_v4().simple().to_string();
                let body = Client::body(product, &user, 1);
                wire.place(client, &body, &key).await
            }
            Self::Poll {
                product,
                ticket,
                device,
            } => wire.poll(product, ticket, device).await,
        }
    }
}

/// One connection per ask, each sending back to back until `duration` is over.
async fn closed_loop(
    base_url: &str,
    asks: impl Iterator<Item = Ask>,
    duration: Duration,
) -> Saturation {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (c, ask) in asks.enumerate() {
        let base = base_url.to_owned();
        tasks.spawn(async move { one_connection(&base, &ask, c, deadline).await });
    }
    let mut all = crate::measure::histogram();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(Ok((h, c))) = tasks.join_next().await {
        let _ = all.add(&h);
        for (k, v) in c {
            *codes.entry(k).or_insert(0) += v;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Saturation {
        per_s: all.len() as f64 / elapsed,
        answers: all.len(),
        codes,
        latency: Latency::of(&all),
    }
}

/// One connection of a closed-loop run (number `c`): sends `ask` back to back until
/// `deadline`; the latencies and the codes it got.
async fn one_connection(
    base_url: &str,
    ask: &Ask,
    c: usize,
    deadline: Instant,
) -> (hdrhistogram::Histogram<u64>, BTreeMap<String, u64>) {
    let mut h = crate::measure::histogram();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut wire = None;
    let mut i = 0u64;
    while Instant::now() < deadline {
        i += 1;
        let t = Instant::now();
        if wire.is_none() {
            wire = Wire::connect(base_url).await.ok();
        }
        let answer = match wire.as_mut() {
            Some(w) => ask.send(w, c, i).await,
            None => Err(std::io::ErrorKind::NotConnected.into()),
        };
        let code = match answer {
            Ok((_, code)) => code,
            Err(_) => {
                // Closed or refused: count it, and open a new connection next time.
                wire = None;
                "TRANSPORT_ERROR".to_owned()
            }
        };
        let _ = h.record((t.elapsed().as_micros() as u64).max(1));
        *codes.entry(code).or_insert(0) += 1;
    }
    (h, codes)
}

/// The bare handler: reads the body, answers a fixed `409` problem. Nothing else.
async fn bare(_body: actix_web::web::Bytes) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Conflict()
        .content_type("application/problem+json")
        .body(r#"{"type":"about:blank","title":"Sold out","status":409,"detail":"bare handler","code":"SOLD_OUT"}"#)
}

/// The bare poll handler: answers a fixed waiting-room view. Nothing else.
async fn bare_poll() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"wait":{"state":"queued","position":2,"ahead":1,"etaSeconds":1.0,"etaRange":[1.0,1.0],"refreshAfterMs":1000}}"#)
}

/// Serves the bare handlers on `listen` until the process ends.
pub async fn bare_server(
    listen: std::net::SocketAddr,
    workers: Option<usize>,
) -> anyhow::Result<()> {
    let mut server = actix_web::HttpServer::new(|| {
        actix_web::App::new()
            .route("/order", actix_web::web::post().to(bare))
            .route(
                "/queue/{product}/status",
                actix_web::web::get().to(bare_poll),
            )
    })
    .backlog(4096);
    if let Some(w) = workers {
        server = server.workers(w);
    }
    server.bind(listen)?.run().await?;
    Ok(())
}

/// A valid order event for user `f-<i>` of `product`, as the API publishes it.
fn order_event(product: &shared::ProductId, i: usize) -> anyhow::Result<shared::OrderPlaced> {
    use shared::event::{SCHEMA_VERSION, now_ms};
    Ok(shared::OrderPlaced {
        schema_version: SCHEMA_VERSION,
        order_id: uuid::Uuid::now_v7(),
        product_id: product.clone(),
        user_id: format!("f-{i}").parse()?,
        quantity: shared::Quantity::new(1)?,
        idempotency_key: shared::IdempotencyKey::parse(format!("fill-{i:010}"))?,
        accepted_at_ms: now_ms(),
        // The API hashes the network and device into 32 hex digits each.
        ip_hash: Some("9f86d081884c7d659a2feaa0c55ad015".to_owned()),
        device_hash: Some("60303ae22b998861bce3b28f33eec1be".to_owned()),
    })
}

/// What [`kafka_ceiling`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaCeiling {
    /// Acknowledged messages per second.
    pub per_s: f64,
    /// Messages acknowledged within the run.
    pub acknowledged: u64,
    /// Bytes of one message's value (an `OrderPlaced` as JSON).
    pub value_bytes: usize,
    /// Messages kept in flight.
    pub in_flight: usize,
}

/// When [`publish_orders`] stops sending.
enum Until {
    /// After this many orders.
    Count(usize),
    /// At this moment.
    Deadline(Instant),
}

/// Publishes order events for `product` to `topic` with the API's own producer
/// (`ingest_api::app::parts::kafka_producer`: idempotent, `acks=all`, the default linger),
/// keyed by order id like the API, keeping up to `in_flight` awaiting their
/// acknowledgement, until `until`. Returns the ceiling it reached: acknowledgements
/// counted until sending stopped, over that time (the stragglers are awaited after).
async fn publish_orders(
    brokers: &str,
    topic: &str,
    product: &str,
    in_flight: usize,
    until: Until,
) -> anyhow::Result<KafkaCeiling> {
    use futures_util::StreamExt;
    use rdkafka::producer::FutureRecord;
    let linger = ingest_api::settings::DEFAULT_KAFKA_LINGER_MS;
    let producer = ingest_api::app::parts::kafka_producer(brokers, linger)?;
    let product: shared::ProductId = product.parse()?;
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let started = Instant::now();
    let (mut sent, mut acknowledged, mut value_bytes) = (0usize, 0u64, 0usize);
    let more = |sent: usize| match until {
        Until::Count(n) => sent < n,
        Until::Deadline(at) => Instant::now() < at,
    };
    while more(sent) {
        while pending.len() < in_flight && more(sent) {
            let event = order_event(&product, sent)?;
            sent += 1;
            let (key, payload) = (event.order_id.to_string(), event.to_json());
            value_bytes = payload.len();
            let producer = producer.clone();
            let topic = topic.to_owned();
            pending.push(async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e)
            });
        }
        if let Some(r) = pending.next().await {
            r?;
            acknowledged += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let measured = acknowledged;
    while let Some(r) = pending.next().await {
        r?;
    }
    Ok(KafkaCeiling {
        per_s: measured as f64 / elapsed.max(1e-9),
        acknowledged: measured,
        value_bytes,
        in_flight,
    })
}

/// The broker's ceiling for the accept path's publish: [`publish_orders`] for
/// `duration` with `in_flight` messages awaiting acknowledgement.
pub async fn kafka_ceiling(
    brokers: &str,
    topic: &str,
    product: &str,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<KafkaCeiling> {
    let until = Until::Deadline(Instant::now() + duration);
    publish_orders(brokers, topic, product, in_flight, until).await
}

/// Writes `count` valid orders for `product` to `topic` (one unit each, distinct users).
pub async fn fill_topic(
    brokers: &str,
    topic: &str,
    product: &str,
    count: usize,
) -> anyhow::Result<()> {
    publish_orders(brokers, topic, product, 2_000, Until::Count(count))
        .await
        .map(|_| ())
}
