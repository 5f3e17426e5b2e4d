//! `loadtest stream`: a steady, open-model stream of shoppers, every outcome written as
//! JSON lines for `loadtest audit`.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use loadtest::engine;
use loadtest::outcome::Outcome;
use loadtest::settle::{Behaviour, Settle};
use loadtest::traffic::Plan;
use shared::ProductId;

use super::Target;

/// Arguments of `stream`.
#[derive(Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub target: Target,
    /// Product on sale.
    #[arg(long)]
    pub product: ProductId,
    /// Arrivals per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long arrivals go on.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Distinct users.
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Distinct loopback source addresses.
    #[arg(long, default_value_t = 500)]
    pub source_ips: usize,
    /// Attempts per order while the outcome is unknown.
    #[arg(long, default_value_t = 30)]
    pub max_attempts: u32,
    /// Where to write the outcomes (JSON lines).
    #[arg(long)]
    pub answers: std::path::PathBuf,
    /// For a sale with a payment window: the payment webhook's secret (`whsec_…`, one of
    /// the API's PAYMENT_WEBHOOK_SECRETS). With it, shoppers act on their 202 as the
    /// shares below say; the rest never pay.
    #[arg(long, env = "PAYMENT_WEBHOOK_SECRET")]
    pub webhook_secret: Option<String>,
    /// Share of shoppers who pay `--pay-after` after their 202.
    #[arg(long, default_value_t = 0.6)]
    pub pay: f64,
    /// Share who cancel `--pay-after` after their 202.
    #[arg(long, default_value_t = 0.05)]
    pub cancel: f64,
    /// Share who pay `--late-after` after their 202 (set it past the window).
    #[arg(long, default_value_t = 0.05)]
    pub pay_late: f64,
    /// When the punctual shoppers pay or cancel.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub pay_after: Duration,
    /// When the late ones pay.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub late_after: Duration,
    /// On a sharded sale, take its census every second while the stream runs (the stores of
    /// REDIS_URL or REDIS_CLUSTER_NODES, and DATABASE_URL): the run fails if one does not
    /// balance, or if the sale was not sold out to the next shoppers within 1 s of its last
    /// unit.
    #[arg(long)]
    pub census: bool,
}

/// Streams, writes the outcomes and prints a summary.
pub async fn run(args: StreamArgs) -> anyhow::Result<bool> {
    let targets = args.target.clients()?;
    let mut plan = Plan::steady(
        args.product.as_str(),
        args.rate,
        args.duration,
        args.users,
        args.source_ips,
    );
    plan.max_attempts = args.max_attempts;
    let secret = super::webhook_secret(args.webhook_secret.as_deref())?;
    plan.settle = secret.map(|secret| Settle {
        secret,
        behaviour: Behaviour {
            pay: args.pay,
            cancel: args.cancel,
            pay_late: args.pay_late,
            pay_after: args.pay_after,
            late_after: args.late_after,
        },
    });
    eprintln!(
        "streaming {} orders/s for {:?} to {} instance(s)…",
        args.rate,
        args.duration,
        targets.len()
    );
    let plan_settles = plan.settle.is_some();
    let sampling = if args.census {
        let (_, redis, keys) = args.target.stores().await?;
        Some(loadtest::census::start(&redis, &keys, &args.product))
    } else {
        None
    };
    let (outcomes, saturated) = engine::run(&targets, plan, |p| {
        eprintln!(
            "  {:>5.1}s scheduled {:>6} finished {:>6} in flight {:>5}",
            p.elapsed_s, p.scheduled, p.finished, p.in_flight
        );
    })
    .await;
    write(&args.answers, &outcomes)?;
    summarize(&outcomes, saturated, plan_settles);
    let Some((stop, task)) = sampling else {
        return Ok(true);
    };
    let mut census = loadtest::census::stop(&stop, task).await;
    census.sold_out_after_ms = loadtest::census::sold_out_after_ms(&outcomes);
    eprintln!("{census}");
    for unbalanced in &census.unbalanced {
        eprintln!("  unbalanced: {unbalanced}");
    }
    Ok(census.taken > 0 && census.passed())
}

/// The outcomes as JSON lines, for `loadtest audit`.
fn write(path: &std::path::Path, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let mut out = String::new();
    for o in outcomes {
        out.push_str(&serde_json::to_string(o)?);
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// The answers by code, and what shoppers were told after their 202.
fn summarize(outcomes: &[Outcome], saturated: usize, plan_settles: bool) {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for o in outcomes {
        *counts.entry(o.code.as_str()).or_default() += 1;
    }
    let retried = outcomes.iter().filter(|o| o.saw_unknown).count();
    eprintln!(
        "{} orders ({retried} retried with their key after an unknown outcome; in-flight cap hit {saturated} times): {counts:?}",
        outcomes.len()
    );
    if plan_settles {
        let mut told = std::collections::BTreeMap::<&str, usize>::new();
        for s in outcomes.iter().filter_map(|o| o.settled.as_deref()) {
            *told.entry(s).or_default() += 1;
        }
        eprintln!("after their 202, shoppers were told: {told:?} (the rest never paid)");
    }
}
