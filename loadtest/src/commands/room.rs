//! `loadtest room`: a waiting-room scenario end to end — its sale and room, the waiters
//! and the bots, the sampler — then the checks, a report with charts, and `room verify`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use flashctl::room::NewRoom;
use flashctl::sale::NewSale;
use loadtest::room::RoomScenario;
use loadtest::room::bots::{self, BotResults, Lane, Target as BotTarget};
use loadtest::room::checks::{self, Check, RoomFacts};
use loadtest::room::report::RoomReport;
use loadtest::room::sampler;
use loadtest::room::waiter::{Shared, WaiterLog};
use shared::ProductId;
use shared::event::now_ms;
use tokio::sync::watch;

use super::Target;

/// Arguments of `room`.
#[derive(Args)]
pub struct RoomArgs {
    #[command(flatten)]
    pub target: Target,
    /// The scenario (TOML), e.g. loadtest/scenarios/waiting-room.toml.
    #[arg(long)]
    pub scenario: std::path::PathBuf,
    /// Where reports go.
    #[arg(long, default_value = "loadtest/results")]
    pub results: std::path::PathBuf,
    /// Lanes each bot sends in (concurrent requests).
    #[arg(long, default_value_t = 16)]
    pub bot_lanes: u64,
    /// The product to open the sale and room for (default: the scenario's name and the
    /// time), e.g. to know its Redis slot ahead.
    #[arg(long)]
    pub product: Option<ProductId>,
    /// Also write every waiter's order here, as `loadtest stream` writes its answers (for
    /// `loadtest audit`).
    #[arg(long)]
    pub answers: Option<std::path::PathBuf>,
    /// A fault runs beside: check what a failover must keep (no admission lost, no
    /// place in line given twice, `room verify`) instead of the calm run's checks, and
    /// write no report.
    #[arg(long)]
    pub failover: bool,
}

/// Runs the scenario; `Ok(true)` when every check holds.
pub async fn run(args: RoomArgs) -> anyhow::Result<bool> {
    let sc = RoomScenario::load(&args.scenario)?;
    let (pg, mut redis, keys) = args.target.stores().await?;
    let stamp = now_ms() / 1000;
    let product: ProductId = match &args.product {
        Some(p) => p.clone(),
        None => format!("{}-{stamp}", sc.name)
            .parse()
            .context("the scenario name must be [a-z0-9-]")?,
    };
    let decoy: ProductId = format!("decoy-{stamp}").parse()?;
    let started = Instant::now();
    open(&pg, &mut redis, &keys, &product, sc.sale.stock, &sc).await?;
    eprintln!(
        "room {product}: {} units, {} + {} waiters, opening in {:?} at {}/s…",
        sc.sale.stock, sc.waiters.prequeue, sc.waiters.live, sc.room.prequeue, sc.room.rate
    );
    let (logs, bot_results, samples) = drive(
        &sc, &args, &pg, &mut redis, &keys, &product, &decoy, started,
    )
    .await?;
    if let Some(path) = &args.answers {
        loadtest::room::failover::write_answers(path, &logs)?;
    }
    if args.failover {
        let (checks, examples) =
            loadtest::room::failover::run(&mut redis, &keys, &product, &logs).await?;
        for e in &examples {
            eprintln!("  {e}");
        }
        return Ok(print_verdict(&checks));
    }
    let report = report(
        &sc,
        &product,
        &mut redis,
        &keys,
        started,
        logs.clone(),
        samples,
        bot_results,
    )
    .await?;
    let (_, eta) = checks::all(&logs, &report.samples, &report.bots, &report.facts);
    let folder = report.write(&args.results, &logs, &eta)?;
    print_checks(&report, &folder);
    Ok(report.passed)
}

/// The run itself: the decoy's tokens, the sampler, the waiters and the bots, until every
/// waiter is done.
#[allow(clippy::too_many_arguments)]
async fn drive(
    sc: &RoomScenario,
    args: &RoomArgs,
    pg: &tokio_postgres::Client,
    redis: &mut stores::redis::Conn,
    keys: &shared::keys::Keyspace,
    product: &ProductId,
    decoy: &ProductId,
    started: Instant,
) -> anyhow::Result<(Vec<WaiterLog>, BotResults, Vec<sampler::Sample>)> {
    let client = args.target.client()?;
    let decoy_tokens = if sc.bots.cross_sale > 0 {
        decoy_tokens(pg, redis, keys, decoy, &client).await?
    } else {
        Vec::new()
    };
    let (stop, stop_rx) = watch::channel(false);
    let sampling = tokio::spawn(sampler::sample(
        redis.clone(),
        keys.sale(product),
        started,
        stop_rx,
    ));
    let shared = Arc::new(Shared {
        clients: args.target.clients()?,
        product: product.to_string(),
        started,
        tokens: Arc::new(Mutex::new(Vec::new())),
    });
    let target = BotTarget {
        client,
        product: product.to_string(),
    };
    let bots = tokio::spawn(run_bots(
        target.clone(),
        shared.clone(),
        decoy_tokens,
        sc.clone(),
        args.bot_lanes,
    ));
    let logs = run_waiters(sc, shared.clone()).await;
    let mut bot_results = bots.await?;
    let mut reused = BotResults::default();
    bots::reused(
        &target,
        &shared.tokens,
        sc.bots.reused,
        Lane { lane: 0, lanes: 1 },
        &mut reused,
    )
    .await;
    bot_results.merge(reused);
    let _ = stop.send(true);
    let samples = sampling.await?;
    Ok((logs, bot_results, samples))
}

/// One line per check and the verdict; whether every check holds.
fn print_verdict(checks: &[Check]) -> bool {
    let passed = checks.iter().all(|c| c.passed);
    for c in checks {
        println!(
            "  {:<70} {:>8}  {:<6} {}",
            c.name,
            c.value,
            c.target,
            if c.passed { "PASS" } else { "FAIL" }
        );
    }
    println!("{}", if passed { "PASS" } else { "FAIL" });
    passed
}

/// One line per check, the report's path and the verdict.
fn print_checks(report: &RoomReport, folder: &std::path::Path) {
    for c in &report.checks {
        println!(
            "  {:<70} {:>12.4}  {:<22} {}",
            c.name,
            c.value,
            c.target,
            if c.passed { "PASS" } else { "FAIL" }
        );
    }
    println!("report: {}", folder.join("report.md").display());
    println!("{}", if report.passed { "PASS" } else { "FAIL" });
}

/// Opens the sale (one unit per user, no rate limits: the room meters) and its room.
async fn open(
    pg: &tokio_postgres::Client,
    redis: &mut stores::redis::Conn,
    keys: &shared::keys::Keyspace,
    product: &ProductId,
    stock: u32,
    sc: &RoomScenario,
) -> anyhow::Result<()> {
    let sale = NewSale {
        product: product.clone(),
        stock,
        per_user: 1,
        starts_at: None,
        ends_at: None,
        limits: flashctl::guard::Limits::off(),
        payment_window: None,
        shards: 1,
    };
    flashctl::sale::open(pg, redis, keys, &sale).await?;
    let now = now_ms();
    let room = NewRoom {
        prequeue_from_ms: now,
        opens_at_ms: now + u64::try_from(sc.room.prequeue.as_millis()).unwrap_or(0),
        rate: sc.room.rate,
        burst: sc.room.burst,
        max_active: 1_000_000,
        claim_window: sc.room.claim_window,
        message: String::new(),
    };
    flashctl::room::open(redis, keys, product, &room).await?;
    Ok(())
}

/// Another product's room, open now, and the tickets and an admission it gave: what the
/// cross-sale bot presents to the scenario's room.
async fn decoy_tokens(
    pg: &tokio_postgres::Client,
    redis: &mut stores::redis::Conn,
    keys: &shared::keys::Keyspace,
    decoy: &ProductId,
    client: &flashsale_client::Client,
) -> anyhow::Result<Vec<(String, String, String, Option<String>)>> {
    let sc = RoomScenario::load_default();
    open(pg, redis, keys, decoy, sc.sale.stock, &sc).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut out = Vec::new();
    for i in 0..5 {
        let (user, device) = (format!("w-{i}"), format!("wd-{i}"));
        let joined = client.join(decoy.as_str(), &user, &device).await?;
        let ticket = joined.json()["ticket"]
            .as_str()
            .context("a decoy ticket")?
            .to_owned();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let claimed = client
            .claim(decoy.as_str(), &user, &ticket, &device)
            .await?;
        let admission = claimed.json()["admissionToken"].as_str().map(str::to_owned);
        out.push((user, device, ticket, admission));
    }
    Ok(out)
}

/// Runs every waiter to its end (at most ten minutes).
async fn run_waiters(sc: &RoomScenario, shared: Arc<Shared>) -> Vec<WaiterLog> {
    let mut tasks = tokio::task::JoinSet::new();
    for w in loadtest::room::waiter::plan(sc) {
        tasks.spawn(w.run(shared.clone()));
    }
    let mut logs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut next = Duration::from_secs(10);
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        logs.extend(done.ok());
        if shared.started.elapsed() >= next {
            next += Duration::from_secs(10);
            eprintln!(
                "  {:>5.0}s {} waiters done, {} waiting",
                shared.started.elapsed().as_secs_f64(),
                logs.len(),
                tasks.len()
            );
        }
    }
    logs
}

/// The forging, sharing and cross-sale bots, from a few seconds after the opening, in
/// lanes.
async fn run_bots(
    t: BotTarget,
    shared: Arc<Shared>,
    decoy: Vec<(String, String, String, Option<String>)>,
    sc: RoomScenario,
    lanes: u64,
) -> BotResults {
    tokio::time::sleep(sc.room.prequeue + Duration::from_secs(5)).await;
    let decoy = Arc::new(decoy);
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let (t, tokens, decoy, b) = (
            t.clone(),
            shared.tokens.clone(),
            decoy.clone(),
            sc.bots.clone(),
        );
        tasks.spawn(async move {
            let lane = Lane { lane, lanes };
            let mut out = BotResults::default();
            bots::forged(&t, &tokens, b.forged, lane, &mut out).await;
            bots::shared(&t, &tokens, b.shared, lane, &mut out).await;
            bots::cross_sale(&t, &decoy, b.cross_sale, lane, &mut out).await;
            out
        });
    }
    let mut all = BotResults::default();
    while let Some(Ok(r)) = tasks.join_next().await {
        all.merge(r);
    }
    all
}

/// The facts the room drew, the checks (and `room verify`'s), and the report.
#[allow(clippy::too_many_arguments)]
async fn report(
    sc: &RoomScenario,
    product: &ProductId,
    redis: &mut stores::redis::Conn,
    keys: &shared::keys::Keyspace,
    started: Instant,
    logs: Vec<WaiterLog>,
    samples: Vec<sampler::Sample>,
    bots: BotResults,
) -> anyhow::Result<RoomReport> {
    let room = flashctl::room::read(redis, keys, product).await?;
    let start_ms = now_ms().saturating_sub(started.elapsed().as_millis() as u64);
    let facts = RoomFacts {
        rate: sc.room.rate,
        burst: f64::from(sc.room.burst),
        opened_s: room.opened_at_ms.unwrap_or(0).saturating_sub(start_ms) as f64 / 1000.0,
        seed: room.seed.clone().unwrap_or_default(),
        cohort: room.cohort,
        claims_s: sampler::admission_times(redis, keys, product, start_ms, room.claim_window_ms)
            .await?,
        claim_window_s: room.claim_window_ms as f64 / 1000.0,
    };
    let (mut checks, _) = checks::all(&logs, &samples, &bots, &facts);
    checks.push(checks::verify(
        &flashctl::room::verify(redis, keys, product).await?,
    ));
    let mut orders = std::collections::BTreeMap::new();
    for l in &logs {
        if let Some((_, code)) = &l.order {
            *orders.entry(code.clone()).or_insert(0) += 1;
        }
    }
    let accepted = orders.get("ACCEPTED").copied().unwrap_or(0);
    checks.push(Check {
        name: "orders accepted, of the units on sale".into(),
        value: accepted as f64,
        target: format!("≤ {}", sc.sale.stock),
        passed: accepted <= u64::from(sc.sale.stock),
    });
    let passed = checks.iter().all(|c| c.passed);
    Ok(RoomReport {
        scenario: sc.clone(),
        product: product.to_string(),
        facts,
        checks,
        bots,
        orders,
        polls: logs.iter().map(|l| l.polls.len() as u64).sum(),
        samples,
        passed,
    })
}
