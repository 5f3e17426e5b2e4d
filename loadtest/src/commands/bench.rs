//! The benchmark's commands (`loadtest/bench` runs them): closed-loop saturation, the
//! open-model sweep, the bare handler, a pre-filled topic and the broker's ceiling.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use loadtest::engine;
use loadtest::traffic::Plan;

use super::Target;

/// Where benchmark orders are published.
#[derive(Args)]
pub struct OrderTopic {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = shared::defaults::KAFKA_BROKERS)]
    pub brokers: String,
    /// Topic.
    #[arg(long)]
    pub topic: String,
    /// Product named in the orders.
    #[arg(long)]
    pub product: String,
}

/// Arguments of `saturate`.
#[derive(Args)]
pub struct SaturateArgs {
    #[command(flatten)]
    pub target: Target,
    /// Product, or several separated by commas (the connections are spread over them).
    #[arg(long, value_delimiter = ',', required = true)]
    pub product: Vec<String>,
    /// `fixed` (always u-0) or `fresh` (a new user each time).
    #[arg(long, default_value = "fixed")]
    pub users: String,
    /// Connections.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

/// Arguments of `saturate-polls`.
#[derive(Args)]
pub struct SaturatePollsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Product whose room the waiters join (through `--url`).
    #[arg(long)]
    pub product: String,
    /// Waiters who join first; each connection polls with one of their tickets.
    #[arg(long, default_value_t = 64)]
    pub waiters: usize,
    /// Where the polls go (default: `--url`; the bare handler's address to measure its
    /// ceiling with the same requests).
    #[arg(long)]
    pub poll_url: Option<String>,
    /// Connections.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

/// Arguments of `sweep`.
#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub target: Target,
    /// Product (every request is from user u-0).
    #[arg(long)]
    pub product: String,
    /// Arrival rates to try, per second.
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<f64>,
    /// How long at each rate.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unrecorded warm-up at each rate first (connections open, caches fill), on the
    /// same connection pool.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
}

/// Arguments of `admit-call`: one call of `lua/admit.lua`, as the API makes it.
#[derive(Args)]
pub struct AdmitCallArgs {
    /// Redis key namespace.
    #[arg(long, env = "REDIS_NAMESPACE", default_value = shared::defaults::REDIS_NAMESPACE)]
    pub namespace: String,
    /// Product.
    #[arg(long)]
    pub product: String,
    /// User id (placeholders such as redis-benchmark's `__rand_int__` are kept as is).
    #[arg(long)]
    pub user: String,
    /// Idempotency key (placeholders kept as is).
    #[arg(long)]
    pub key: String,
    /// Client network.
    #[arg(long, default_value = "127.0.0.1")]
    pub network: String,
    /// Device fingerprint id.
    #[arg(long, default_value = "unknown")]
    pub fingerprint: String,
    /// The new order's id.
    #[arg(long, default_value = "0190c8c4-6f55-7000-8000-000000000000")]
    pub order_id: String,
    /// The stored `202` body.
    #[arg(long)]
    pub body: String,
    /// The outbox event.
    #[arg(long)]
    pub event: String,
    /// Idempotency retention, seconds.
    #[arg(long, default_value_t = 600)]
    pub ttl: u64,
    /// The keys of a shard of a sharded sale, `<index>.<salt>` (as `shard-place` prints),
    /// instead of the product's.
    #[arg(long)]
    pub shard: Option<String>,
}

/// Arguments of `shard-place`.
#[derive(Args)]
pub struct ShardPlaceArgs {
    /// Redis key namespace.
    #[arg(long, env = "REDIS_NAMESPACE", default_value = shared::defaults::REDIS_NAMESPACE)]
    pub namespace: String,
    /// Redis Cluster seed nodes (`host:port,…`).
    #[arg(long, env = "REDIS_CLUSTER_NODES")]
    pub cluster: String,
    /// Product.
    #[arg(long)]
    pub product: String,
    /// Shards.
    #[arg(long)]
    pub shards: u32,
}

/// Arguments of `bare-server`.
#[derive(Args)]
pub struct BareServerArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:18300")]
    pub listen: std::net::SocketAddr,
    /// Worker threads (default: one per core, like ingest-api).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// Arguments of `fill-topic`.
#[derive(Args)]
pub struct FillTopicArgs {
    #[command(flatten)]
    pub to: OrderTopic,
    /// How many orders.
    #[arg(long)]
    pub count: usize,
}

/// Arguments of `kafka-ceiling`.
#[derive(Args)]
pub struct KafkaCeilingArgs {
    #[command(flatten)]
    pub to: OrderTopic,
    /// Messages awaiting their acknowledgement at any time.
    #[arg(long, default_value_t = 10_000)]
    pub in_flight: usize,
    /// How long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

/// Saturates and prints one JSON line.
pub async fn saturate(args: SaturateArgs) -> anyhow::Result<bool> {
    let users = match args.users.as_str() {
        "fixed" => loadtest::bench::Users::Fixed,
        "fresh" => loadtest::bench::Users::Fresh,
        other => anyhow::bail!("--users must be fixed or fresh, not {other:?}"),
    };
    let client = args.target.client()?;
    let s = loadtest::bench::saturate(
        &client,
        &args.product,
        users,
        args.concurrency,
        args.duration,
    )
    .await;
    println!("{}", serde_json::to_string(&s)?);
    Ok(true)
}

/// Joins the waiters, saturates with their polls and prints one JSON line.
pub async fn saturate_polls(args: SaturatePollsArgs) -> anyhow::Result<bool> {
    let client = args.target.client()?;
    let mut tickets = Vec::with_capacity(args.waiters);
    for i in 0..args.waiters {
        let (user, device) = (format!("w-{i}"), format!("bench-device-{i}"));
        let a = client.join(&args.product, &user, &device).await?;
        let ticket = a.json()["ticket"]
            .as_str()
            .with_context(|| format!("join {i}: {} {}", a.status, a.code()))?
            .to_owned();
        tickets.push((ticket, device));
    }
    let polled = args.poll_url.as_deref().unwrap_or(client.base_url());
    let s = loadtest::bench::saturate_polls(
        polled,
        &args.product,
        &tickets,
        args.concurrency,
        args.duration,
    )
    .await;
    println!("{}", serde_json::to_string(&s)?);
    Ok(true)
}

/// Sweeps the rates, one JSON line each.
pub async fn sweep(args: SweepArgs) -> anyhow::Result<bool> {
    let targets = args.target.clients()?;
    for rate in args.rates {
        if !args.warmup.is_zero() {
            let mut warm = Plan::steady(&args.product, rate, args.warmup, 1, 0);
            warm.max_attempts = 1;
            let _ = engine::run(&targets, warm, |_| {}).await;
        }
        let mut plan = Plan::steady(&args.product, rate, args.duration, 1, 0);
        plan.max_attempts = 1;
        let (outcomes, saturated) = engine::run(&targets, plan, |_| {}).await;
        let s = loadtest::measure::summarize(&outcomes, args.duration.as_secs_f64(), saturated);
        let finished = outcomes.iter().filter(|o| o.status != 0).count() as f64;
        println!(
            "{}",
            serde_json::json!({
                "rate": rate,
                "answered_per_s": finished / args.duration.as_secs_f64(),
                "latency": s.latency,
                "generator_lag": s.generator_lag,
                "by_status": s.by_status,
                "generator_saturated": saturated,
            })
        );
    }
    Ok(true)
}

/// Serves the bare handler until the process ends.
pub async fn bare_server(args: BareServerArgs) -> anyhow::Result<bool> {
    loadtest::bench::bare_server(args.listen, args.workers)
        .await
        .map(|()| true)
}

/// Fills the topic.
pub async fn fill_topic(args: FillTopicArgs) -> anyhow::Result<bool> {
    let to = &args.to;
    loadtest::bench::fill_topic(&to.brokers, &to.topic, &to.product, args.count)
        .await
        .map(|()| true)
}

/// Measures the broker's ceiling and prints one JSON line.
pub async fn kafka_ceiling(args: KafkaCeilingArgs) -> anyhow::Result<bool> {
    let to = &args.to;
    let c = loadtest::bench::kafka_ceiling(
        &to.brokers,
        &to.topic,
        &to.product,
        args.in_flight,
        args.duration,
    )
    .await?;
    println!("{}", serde_json::to_string(&c)?);
    Ok(true)
}

/// Prints the `numkeys KEYS… ARGV…` of one `admit.lua` call, one per line, for
/// `redis-benchmark EVALSHA <sha> …` (so the benchmark never spells out the script's
/// argument order itself).
pub fn admit_call(args: AdmitCallArgs) -> anyhow::Result<bool> {
    let product: shared::ProductId = args.product.parse()?;
    let call = ingest_api::order::admission::AdmitCall {
        user: &args.user,
        idempotency_key: &args.key,
        quantity: 1,
        network: &args.network,
        fingerprint: &args.fingerprint,
        hour: shared::event::now_ms() / 3_600_000,
        request_fingerprint: &format!("v1:{}:{}:1", args.product, args.user),
        order_id: &args.order_id,
        accepted_body: &args.body,
        event_json: &args.event,
        idempotency_ttl_secs: args.ttl,
        limits_enabled: true,
        admission: "",
    };
    let keyspace = shared::keys::Keyspace::new(args.namespace);
    let sale = match &args.shard {
        None => keyspace.sale(&product),
        Some(shard) => {
            let (index, salt) = shard
                .split_once('.')
                .and_then(|(i, s)| Some((i.parse().ok()?, s.parse().ok()?)))
                .context("--shard is <index>.<salt>, e.g. 2.17")?;
            keyspace.shard(&product, index, salt)
        }
    };
    let (keys, argv) = call.keys_and_args(&sale);
    println!("{}", keys.len());
    for line in keys.iter().chain(&argv) {
        anyhow::ensure!(!line.contains('\n'), "an argument holds a line break");
        println!("{line}");
    }
    Ok(true)
}

/// Prints where the shards of a sharded sale of `product` go on the cluster
/// (`stores::shards::place`): one line per shard, `<index>.<salt> <sale key>`.
pub async fn shard_place(args: ShardPlaceArgs) -> anyhow::Result<bool> {
    let product: shared::ProductId = args.product.parse()?;
    let keyspace = shared::keys::Keyspace::new(args.namespace);
    let target = stores::redis::Target::new(shared::defaults::REDIS_URL, &args.cluster);
    let mut conn = stores::redis::connect(&target)
        .await
        .context("connecting to the Redis Cluster (REDIS_CLUSTER_NODES)")?;
    let map = stores::shards::slot_map(&mut conn).await?;
    let salts = stores::shards::place(&keyspace, &product, args.shards, map.as_ref())?;
    for (index, salt) in (0..).zip(salts) {
        let key = keyspace.shard(&product, index, salt).sale();
        println!("{index}.{salt} {key}");
    }
    Ok(true)
}
