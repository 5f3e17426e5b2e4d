//! `loadtest`: drive a running flash-sale stack and audit the outcome.
#![forbid(unsafe_code)]

/// mimalloc: request handling allocates many small, short-lived buffers, where glibc's
/// malloc showed up as about an eighth of the API's CPU time in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use loadtest::audit::{self, Expectation, Report};
use loadtest::burst::{self, Burst};
use loadtest::engine::{self, Plan};
use loadtest::outcome::Outcome;
use shared::ProductId;
use shared::keys::Keyspace;
use testkit::client::OrderClient;

/// Load generator and auditor for the flash-sale pipeline.
#[derive(Parser)]
#[command(name = "loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send a burst of orders for one product as fast as N connections allow, then wait
    /// for the pipeline to drain and audit every 202 against PostgreSQL and Redis.
    Burst(BurstArgs),
    /// Send a steady, open-model stream of shoppers (each retries with its key when the
    /// outcome is unknown) and write every order's outcome as JSON lines.
    Stream(StreamArgs),
    /// Wait for the pipeline to drain, then audit the outcomes a `stream` wrote.
    Audit(AuditArgs),
    /// Run a scenario file: open its sale, send the crowd and the bots (open model),
    /// audit, and write a report (Markdown, JSON, PNG charts) to the results folder.
    Run(RunArgs),
    /// Benchmark: closed loop, N connections back to back; prints one JSON line.
    Saturate(SaturateArgs),
    /// Benchmark: open model at each given rate; prints one JSON line per rate.
    Sweep(SweepArgs),
    /// Benchmark: serve a bare actix-web handler (the HTTP ceiling) until killed.
    BareServer {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:18300")]
        listen: std::net::SocketAddr,
        /// Worker threads (default: one per core, like ingest-api).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Benchmark: write N orders for a product to a topic.
    FillTopic {
        #[command(flatten)]
        to: OrderTopic,
        /// How many orders.
        #[arg(long)]
        count: usize,
    },
    /// Benchmark: the broker's ceiling for the accept path: order events published with
    /// the API's producer settings, many in flight; prints one JSON line.
    KafkaCeiling {
        #[command(flatten)]
        to: OrderTopic,
        /// Messages awaiting their acknowledgement at any time.
        #[arg(long, default_value_t = 10_000)]
        in_flight: usize,
        /// How long.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
}

/// Where benchmark orders are published.
#[derive(Args)]
struct OrderTopic {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Product named in the orders.
    #[arg(long)]
    product: String,
}

#[derive(Args)]
struct SaturateArgs {
    #[command(flatten)]
    target: Target,
    /// Product.
    #[arg(long)]
    product: String,
    /// `fixed` (always u-0) or `fresh` (a new user each time).
    #[arg(long, default_value = "fixed")]
    users: String,
    /// Connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    target: Target,
    /// Product (every request is from user u-0).
    #[arg(long)]
    product: String,
    /// Arrival rates to try, per second.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// How long at each rate.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unrecorded warm-up at each rate first (connections open, caches fill), on the
    /// same connection pool.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// The scenario (TOML), e.g. loadtest/scenarios/ci.toml.
    #[arg(long)]
    scenario: std::path::PathBuf,
    /// Where reports go.
    #[arg(long, default_value = "loadtest/results")]
    results: std::path::PathBuf,
    /// How long to wait for the pipeline to drain before auditing.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
}

#[derive(Args)]
struct Target {
    /// Base URL of an ingest-api instance (repeat for several; shoppers spread over them
    /// and retry on the next one).
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// `id:secret` used to sign requests (one of the API's SIGNING_KEYS).
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true)]
    signing_key: String,
    /// Redis of the stack (for the audit).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    redis_url: String,
    /// Redis key namespace of the stack.
    #[arg(long, env = "REDIS_NAMESPACE", default_value = "fs")]
    redis_namespace: String,
    /// PostgreSQL of the stack (for the audit).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://flashsale:flashsale@127.0.0.1:5432/flashsale",
        hide_env_values = true
    )]
    database_url: String,
}

#[derive(Args)]
struct BurstArgs {
    #[command(flatten)]
    target: Target,
    /// Product on sale.
    #[arg(long)]
    product: ProductId,
    /// Orders to send (each with a fresh idempotency key).
    #[arg(long, default_value_t = 2_000)]
    orders: usize,
    /// Distinct users the orders come from.
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Distinct loopback source addresses (127.0.0.2 …), one per user up to this many;
    /// 0 sends everything from one address.
    #[arg(long, default_value_t = 500)]
    source_ips: usize,
    /// How long to wait for the pipeline to drain before auditing.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
}

#[derive(Args)]
struct StreamArgs {
    #[command(flatten)]
    target: Target,
    /// Product on sale.
    #[arg(long)]
    product: ProductId,
    /// Arrivals per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long arrivals go on.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Distinct users.
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Distinct loopback source addresses.
    #[arg(long, default_value_t = 500)]
    source_ips: usize,
    /// Attempts per order while the outcome is unknown.
    #[arg(long, default_value_t = 30)]
    max_attempts: u32,
    /// Where to write the outcomes (JSON lines).
    #[arg(long)]
    answers: std::path::PathBuf,
}

#[derive(Args)]
struct AuditArgs {
    #[command(flatten)]
    target: Target,
    /// Product on sale.
    #[arg(long)]
    product: ProductId,
    /// Outcomes written by `stream`.
    #[arg(long)]
    answers: std::path::PathBuf,
    /// A name for the printed line (e.g. the fault injected).
    #[arg(long, default_value = "audit")]
    label: String,
    /// How long to wait for the pipeline to drain.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Also write the report as JSON here.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
}

impl Target {
    fn clients(&self) -> anyhow::Result<Vec<OrderClient>> {
        let (id, secret) = self
            .signing_key
            .split_once(':')
            .context("--signing-key must be id:secret")?;
        Ok(self
            .urls
            .iter()
            .map(|u| OrderClient::new(u.trim_end_matches('/'), Some(id), secret.as_bytes()))
            .collect())
    }

    fn client(&self) -> anyhow::Result<OrderClient> {
        self.clients()?
            .into_iter()
            .next()
            .context("give at least one --url")
    }

    async fn stores(
        &self,
    ) -> anyhow::Result<(
        tokio_postgres::Client,
        redis::aio::MultiplexedConnection,
        Keyspace,
    )> {
        let (pg, conn) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
            .await
            .context("connecting to DATABASE_URL for the audit")?;
        tokio::spawn(conn);
        let redis = redis::Client::open(self.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await
            .context("connecting to REDIS_URL for the audit")?;
        Ok((pg, redis, Keyspace::new(self.redis_namespace.clone())))
    }
}

/// Drains, audits and prints one line; `Ok(true)` on PASS.
async fn audit_and_print(
    target: &Target,
    product: &ProductId,
    expect: &Expectation,
    label: &str,
    drain_timeout: Duration,
) -> anyhow::Result<(bool, Report)> {
    let (pg, mut redis, keys) = target.stores().await?;
    eprintln!("{label}: waiting for the pipeline to drain…");
    let report =
        audit::drained_audit(&pg, &mut redis, &keys, product, expect, drain_timeout).await?;
    println!(
        "{label:<10} 202s {:>5} ({} units) | 503→accepted {:>3} | persisted {:>5} | redis remaining {:>5} | \
         pending handoff {} | duplicates {} | oversold {} | lost {} | leaked {} | {}",
        report.accepted_orders,
        report.accepted_units - report.resolved_late_units,
        report.resolved_late_units,
        report.persisted_units,
        report.redis_remaining.map_or("?".into(), |r| r.to_string()),
        report.pending_handoff,
        report.duplicated,
        report.oversold,
        report.lost,
        report.leaked.map_or("?".into(), |l| l.to_string()),
        report.verdict(),
    );
    Ok((report.passed(), report))
}

async fn stream_command(args: StreamArgs) -> anyhow::Result<bool> {
    let targets = args.target.clients()?;
    let mut plan = Plan::steady(
        args.product.as_str(),
        args.rate,
        args.duration,
        args.users,
        args.source_ips,
    );
    plan.max_attempts = args.max_attempts;
    eprintln!(
        "streaming {} orders/s for {:?} to {} instance(s)…",
        args.rate,
        args.duration,
        targets.len()
    );
    let (outcomes, saturated) = engine::run(&targets, plan, |p| {
        eprintln!(
            "  {:>5.1}s scheduled {:>6} finished {:>6} in flight {:>5}",
            p.elapsed_s, p.scheduled, p.finished, p.in_flight
        );
    })
    .await;
    let mut out = String::new();
    for o in &outcomes {
        out.push_str(&serde_json::to_string(o)?);
        out.push('\n');
    }
    std::fs::write(&args.answers, out)
        .with_context(|| format!("writing {}", args.answers.display()))?;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for o in &outcomes {
        *counts.entry(o.code.as_str()).or_default() += 1;
    }
    let retried = outcomes.iter().filter(|o| o.saw_unknown).count();
    eprintln!(
        "{} orders ({retried} retried with their key after an unknown outcome; in-flight cap hit {saturated} times): {counts:?}",
        outcomes.len()
    );
    Ok(true)
}

async fn audit_command(args: AuditArgs) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.answers)
        .with_context(|| format!("reading {}", args.answers.display()))?;
    let outcomes = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str::<Outcome>)
        .collect::<Result<Vec<_>, _>>()
        .context("the answers file is not what `loadtest stream` writes")?;
    let expect = Expectation::from_outcomes(&outcomes);
    let (passed, report) = audit_and_print(
        &args.target,
        &args.product,
        &expect,
        &args.label,
        args.drain_timeout,
    )
    .await?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(passed)
}

async fn burst_command(args: BurstArgs) -> anyhow::Result<bool> {
    let client = args.target.client()?;
    eprintln!(
        "sending {} orders from {} users for {} over {} connections…",
        args.orders, args.users, args.product, args.concurrency
    );
    let result = burst::run(
        &client,
        &Burst {
            product: args.product.to_string(),
            users: args.users,
            orders: args.orders,
            concurrency: args.concurrency,
            source_ips: args.source_ips,
        },
    )
    .await;
    let counts = result.counts();
    let rate = args.orders as f64 / result.elapsed.as_secs_f64().max(1e-9);
    println!("answers in {:.2?} ({rate:.0} req/s):", result.elapsed);
    for (code, n) in &counts {
        println!("  {code:<24} {n}");
    }

    let expect = Expectation::from_burst(&result);
    let (passed, report) = audit_and_print(
        &args.target,
        &args.product,
        &expect,
        "audit",
        args.drain_timeout,
    )
    .await?;
    let sold_out = counts.get("SOLD_OUT").copied().unwrap_or(0);
    println!(
        "accepted {} | sold out {} | persisted {} of stock {} | oversold {}",
        report.accepted_orders, sold_out, report.persisted_units, report.stock, report.oversold
    );
    println!("audit {}", if passed { "PASS" } else { "FAIL" });
    Ok(passed)
}

async fn run_command(args: RunArgs) -> anyhow::Result<bool> {
    use loadtest::scenario::Scenario;
    let scenario = Scenario::load(&args.scenario)?;
    let targets = args.target.clients()?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut product = format!("{}-{stamp}", scenario.name.to_ascii_lowercase());
    product.truncate(50);
    let product: ProductId = product
        .parse()
        .context("the scenario name must be [a-z0-9-]")?;

    let (pg, mut redis, keys) = args.target.stores().await?;
    flashctl::sale::open(
        &pg,
        &mut redis,
        &keys,
        &flashctl::sale::NewSale {
            product: product.clone(),
            stock: scenario.sale.stock,
            per_user: scenario.sale.per_user,
            starts_at: None,
            ends_at: None,
            limits: scenario.limits()?,
        },
    )
    .await?;
    eprintln!(
        "scenario {}: sale {product} ({} units), {:?} of arrivals to {} instance(s)…",
        scenario.name,
        scenario.sale.stock,
        scenario.duration,
        targets.len()
    );
    let plan = Plan {
        product: product.to_string(),
        schedule: scenario.schedule,
        duration: scenario.duration,
        users: scenario.crowd.users,
        source_ips: scenario.crowd.source_ips,
        forwarded_for: scenario.crowd.forwarded_for,
        max_attempts: scenario.crowd.max_attempts,
        attempt_timeout: scenario.crowd.attempt_timeout,
        max_in_flight: scenario.crowd.max_in_flight,
        bots: scenario.bots.iter().map(|b| (b.kind, b.rate)).collect(),
    };
    let (outcomes, saturated) = engine::run(&targets, plan, |p| {
        eprintln!(
            "  {:>5.1}s scheduled {:>7} finished {:>7} in flight {:>6}",
            p.elapsed_s, p.scheduled, p.finished, p.in_flight
        );
    })
    .await;
    let summary =
        loadtest::measure::summarize(&outcomes, scenario.duration.as_secs_f64(), saturated);

    eprintln!("waiting for the pipeline to drain…");
    let audit = audit::drained_audit(
        &pg,
        &mut redis,
        &keys,
        &product,
        &Expectation::from_outcomes(&outcomes),
        args.drain_timeout,
    )
    .await?;
    let mut bots = Vec::new();
    for (b, bot) in scenario.bots.iter().enumerate() {
        let units = audit::bot_units(&pg, &product, &format!("bot-{b}")).await?;
        let allowed = scenario.allowance(bot.kind)?;
        bots.push(audit::BotVerdict {
            bot: format!("bot:{}", bot.kind.as_str()),
            units,
            allowed,
            passed: allowed.is_none_or(|a| units <= a),
        });
    }
    let passed = audit.passed() && bots.iter().all(|b| b.passed);
    let report = loadtest::report::RunReport {
        scenario,
        product: product.to_string(),
        started_at,
        summary,
        audit,
        bots,
        passed,
    };
    let folder = report.write(&args.results, &outcomes)?;
    let s = &report.summary;
    println!(
        "{} arrivals ({:.0}/s): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms",
        s.arrivals,
        s.offered_per_s,
        s.latency.p50_ms,
        s.latency.p90_ms,
        s.latency.p99_ms,
        s.latency.p999_ms,
        s.latency.max_ms
    );
    for (actor, codes) in &s.by_actor {
        println!("  {actor:<18} {codes:?}");
    }
    let a = &report.audit;
    println!(
        "audit: 202s {} | persisted {} of {} | remaining {:?} | duplicates {} | oversold {} | lost {} | leaked {:?}",
        a.accepted_orders,
        a.persisted_units,
        a.stock,
        a.redis_remaining,
        a.duplicated,
        a.oversold,
        a.lost,
        a.leaked
    );
    for b in &report.bots {
        println!(
            "  {:<18} bought {} (allowed {})",
            b.bot,
            b.units,
            b.allowed.map_or("unbounded".into(), |x| x.to_string())
        );
    }
    println!("report: {}", folder.join("report.md").display());
    println!("{}", if passed { "PASS" } else { "FAIL" });
    Ok(passed)
}

async fn saturate_command(args: SaturateArgs) -> anyhow::Result<bool> {
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

async fn sweep_command(args: SweepArgs) -> anyhow::Result<bool> {
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Burst(args) => burst_command(args).await,
        Command::Stream(args) => stream_command(args).await,
        Command::Audit(args) => audit_command(args).await,
        Command::Run(args) => run_command(args).await,
        Command::Saturate(args) => saturate_command(args).await,
        Command::Sweep(args) => sweep_command(args).await,
        Command::BareServer { listen, workers } => loadtest::bench::bare_server(listen, workers)
            .await
            .map(|()| true),
        Command::FillTopic { to, count } => {
            loadtest::bench::fill_topic(&to.brokers, &to.topic, &to.product, count)
                .await
                .map(|()| true)
        }
        Command::KafkaCeiling {
            to,
            in_flight,
            duration,
        } => {
            loadtest::bench::kafka_ceiling(&to.brokers, &to.topic, &to.product, in_flight, duration)
                .await
                .and_then(|c| {
                    println!("{}", serde_json::to_string(&c)?);
                    Ok(true)
                })
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}
