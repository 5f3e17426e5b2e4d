//! `loadtest run`: a scenario file end to end — its sale, crowd and bots, the audit, and a
//! report with charts.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use flashctl::sale::NewSale;
use loadtest::audit::{self, Expectation};
use loadtest::engine;
use loadtest::outcome::Outcome;
use loadtest::report::RunReport;
use loadtest::scenario::Scenario;
use loadtest::settle::Settle;
use loadtest::traffic::Plan;
use shared::ProductId;

use super::Target;

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// The scenario (TOML), e.g. loadtest/scenarios/ci.toml.
    #[arg(long)]
    pub scenario: std::path::PathBuf,
    /// Where reports go.
    #[arg(long, default_value = "loadtest/results")]
    pub results: std::path::PathBuf,
    /// How long to wait for the pipeline to drain before auditing.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// The payment webhook's secret (`whsec_…`, one of the API's PAYMENT_WEBHOOK_SECRETS),
    /// for scenarios with a `[payments]` table.
    #[arg(long, env = "PAYMENT_WEBHOOK_SECRET")]
    pub webhook_secret: Option<String>,
}

/// Runs the scenario; `Ok(true)` when the audit and every bot pass.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let scenario = Scenario::load(&args.scenario)?;
    let secret = super::webhook_secret(args.webhook_secret.as_deref())?;
    let settle = settle(&scenario, secret.as_deref())?;
    let targets = args.target.clients()?;
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let product = product_for(&scenario)?;
    let (pg, mut redis, keys) = args.target.stores().await?;
    flashctl::sale::open(&pg, &mut redis, &keys, &new_sale(&scenario, &product)?).await?;
    eprintln!(
        "scenario {}: sale {product} ({} units), {:?} of arrivals to {} instance(s)…",
        scenario.name,
        scenario.sale.stock,
        scenario.duration,
        targets.len()
    );
    let (stop_sampling, sampling) = loadtest::census::start(&redis, &keys, &product);
    let (outcomes, saturated) = engine::run(&targets, plan(&scenario, &product, settle), |p| {
        eprintln!(
            "  {:>5.1}s scheduled {:>7} finished {:>7} in flight {:>6}",
            p.elapsed_s, p.scheduled, p.finished, p.in_flight
        );
    })
    .await;
    let summary =
        loadtest::measure::summarize(&outcomes, scenario.duration.as_secs_f64(), saturated);
    wait_for_expiries(&scenario).await;
    eprintln!("waiting for the pipeline to drain…");
    let expect = Expectation::from_outcomes(&outcomes);
    let audit = audit::drained_audit(
        &pg,
        &mut redis,
        &keys,
        &product,
        &expect,
        args.drain_timeout,
    )
    .await?;
    let mut census = loadtest::census::stop(&stop_sampling, sampling).await;
    if census.taken > 0 {
        census.sold_out_after_ms = loadtest::census::sold_out_after_ms(&outcomes);
    }
    let bots = bots(&pg, &scenario, &product).await?;
    let passed = audit.passed() && bots.iter().all(|b| b.passed) && census.passed();
    let report = RunReport {
        scenario,
        product: product.to_string(),
        started_at,
        summary,
        audit,
        bots,
        census,
        passed,
    };
    let folder = report.write(&args.results, &outcomes)?;
    print(&report, &outcomes);
    println!("report: {}", folder.join("report.md").display());
    println!("{}", if passed { "PASS" } else { "FAIL" });
    Ok(passed)
}

/// With a payment window: its length, plus the sweeper's 2 s, so every unpaid unit is
/// back on sale before the audit looks.
async fn wait_for_expiries(scenario: &Scenario) {
    if let Some(window) = scenario.sale.payment_window.filter(|w| !w.is_zero()) {
        eprintln!("waiting {window:?} and 2.5 s for unpaid reservations to expire…");
        tokio::time::sleep(window + Duration::from_millis(2_500)).await;
    }
}

/// What the shoppers do after their 202, if the scenario says (it needs the secret the
/// payment service signs its webhooks with).
fn settle(scenario: &Scenario, secret: Option<&str>) -> anyhow::Result<Option<Settle>> {
    match (&scenario.payments, secret) {
        (Some(behaviour), Some(secret)) => Ok(Some(Settle {
            secret: secret.to_owned(),
            behaviour: behaviour.clone(),
        })),
        (Some(_), None) => anyhow::bail!(
            "the scenario's shoppers pay: give --webhook-secret or PAYMENT_WEBHOOK_SECRET"
        ),
        (None, _) => Ok(None),
    }
}

/// A product of its own for this run: the scenario's name and the time.
fn product_for(scenario: &Scenario) -> anyhow::Result<ProductId> {
    let stamp = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut product = format!("{}-{stamp}", scenario.name.to_ascii_lowercase());
    product.truncate(50);
    product
        .parse()
        .context("the scenario name must be [a-z0-9-]")
}

fn new_sale(scenario: &Scenario, product: &ProductId) -> anyhow::Result<NewSale> {
    Ok(NewSale {
        product: product.clone(),
        stock: scenario.sale.stock,
        per_user: scenario.sale.per_user,
        starts_at: None,
        ends_at: None,
        limits: scenario.limits()?,
        payment_window: scenario.sale.payment_window,
        shards: scenario.sale.shards,
    })
}

fn plan(scenario: &Scenario, product: &ProductId, settle: Option<Settle>) -> Plan {
    let crowd = &scenario.crowd;
    Plan {
        product: product.to_string(),
        schedule: scenario.schedule,
        duration: scenario.duration,
        users: crowd.users,
        source_ips: crowd.source_ips,
        forwarded_for: crowd.forwarded_for,
        max_attempts: crowd.max_attempts,
        attempt_timeout: crowd.attempt_timeout,
        max_in_flight: crowd.max_in_flight,
        bots: scenario.bots.iter().map(|b| (b.kind, b.rate)).collect(),
        settle,
    }
}

/// What each bot bought against what it may.
async fn bots(
    pg: &tokio_postgres::Client,
    scenario: &Scenario,
    product: &ProductId,
) -> anyhow::Result<Vec<audit::BotVerdict>> {
    let mut bots = Vec::new();
    for (b, bot) in scenario.bots.iter().enumerate() {
        let units = audit::bot_units(pg, product, &format!("bot-{b}")).await?;
        let allowed = scenario.allowance(bot.kind)?;
        bots.push(audit::BotVerdict {
            bot: format!("bot:{}", bot.kind.as_str()),
            units,
            allowed,
            passed: allowed.is_none_or(|a| units <= a),
        });
    }
    Ok(bots)
}

/// The run's lines on the terminal: latency, codes by actor, the audit, reservations,
/// the bots.
fn print(report: &RunReport, outcomes: &[Outcome]) {
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
    if report.census.taken > 0 {
        println!("{}", report.census);
    }
    if a.paid_units + a.returned_units > 0 {
        let told = outcomes.iter().filter(|o| o.settled.is_some()).count();
        println!(
            "  reservations: {} units accepted for {} on sale | paid {} | returned {} | {told} shoppers paid or cancelled, {} told a state PostgreSQL contradicts",
            a.accepted_units, a.stock, a.paid_units, a.returned_units, a.contradicted
        );
    }
    for b in &report.bots {
        println!(
            "  {:<18} bought {} (allowed {})",
            b.bot,
            b.units,
            b.allowed.map_or("unbounded".into(), |x| x.to_string())
        );
    }
}
