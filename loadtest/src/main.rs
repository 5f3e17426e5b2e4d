//! `loadtest`: drive a running flash-sale stack and audit the outcome.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use loadtest::audit;
use loadtest::burst::{self, Burst};
use loadtest::client::OrderClient;
use shared::ProductId;
use shared::keys::Keyspace;

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
}

#[derive(Args)]
struct Target {
    /// Base URL of ingest-api.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
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

impl Target {
    fn client(&self) -> anyhow::Result<OrderClient> {
        let (id, secret) = self
            .signing_key
            .split_once(':')
            .context("--signing-key must be id:secret")?;
        Ok(OrderClient::new(
            self.url.trim_end_matches('/'),
            Some(id),
            secret.as_bytes(),
        ))
    }
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

    let (pg, conn) = tokio_postgres::connect(&args.target.database_url, tokio_postgres::NoTls)
        .await
        .context("connecting to DATABASE_URL for the audit")?;
    tokio::spawn(conn);
    let mut redis = redis::Client::open(args.target.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await
        .context("connecting to REDIS_URL for the audit")?;
    let keys = Keyspace::new(args.target.redis_namespace.clone());
    eprintln!("waiting for the pipeline to drain…");
    audit::wait_drained(&pg, &mut redis, &keys, &args.product, args.drain_timeout).await?;
    let accepted: HashMap<String, i64> = result
        .accepted()
        .filter_map(|(_, a)| a.order_id().map(|id| (id, 1)))
        .collect();
    let report = audit::audit(
        &pg,
        &mut redis,
        &keys,
        &args.product,
        &accepted,
        &HashSet::new(),
    )
    .await?;
    let sold_out = counts.get("SOLD_OUT").copied().unwrap_or(0);
    println!(
        "accepted {} | sold out {} | persisted {} of stock {} | oversold {} | lost {} | duplicated {} | leaked {}",
        report.accepted_orders,
        sold_out,
        report.persisted_units,
        report.stock,
        report.oversold,
        report.lost,
        report.duplicated,
        report.leaked.map_or("?".into(), |l| l.to_string()),
    );
    if report.passed() {
        println!("audit PASS");
        Ok(true)
    } else {
        println!("audit FAIL: {}", report.failures().join("; "));
        Ok(false)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Burst(args) => burst_command(args).await,
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
