//! `loadtest burst`: orders as fast as N connections allow, then the audit.

use std::time::Duration;

use clap::Args;
use loadtest::audit::Expectation;
use loadtest::burst::{self, Burst};
use shared::ProductId;

use super::{Target, audit_and_print};

/// Arguments of `burst`.
#[derive(Args)]
pub struct BurstArgs {
    #[command(flatten)]
    pub target: Target,
    /// Product on sale.
    #[arg(long)]
    pub product: ProductId,
    /// Orders to send (each with a fresh idempotency key).
    #[arg(long, default_value_t = 2_000)]
    pub orders: usize,
    /// Distinct users the orders come from.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Distinct loopback source addresses (127.0.0.2 …), one per user up to this many;
    /// 0 sends everything from one address.
    #[arg(long, default_value_t = 500)]
    pub source_ips: usize,
    /// How long to wait for the pipeline to drain before auditing.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
}

/// Sends, audits and prints; `Ok(true)` on PASS.
pub async fn run(args: BurstArgs) -> anyhow::Result<bool> {
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
