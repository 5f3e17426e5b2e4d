//! `loadtest audit`: waits for the pipeline to drain, then audits what a `stream` wrote.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use loadtest::audit::Expectation;
use loadtest::outcome::Outcome;
use shared::ProductId;

use super::{Target, audit_and_print};

/// Arguments of `audit`.
#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub target: Target,
    /// Product on sale.
    #[arg(long)]
    pub product: ProductId,
    /// Outcomes written by `stream`.
    #[arg(long)]
    pub answers: std::path::PathBuf,
    /// A name for the printed line (e.g. the fault injected).
    #[arg(long, default_value = "audit")]
    pub label: String,
    /// How long to wait for the pipeline to drain.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
}

/// Audits; `Ok(true)` on PASS.
pub async fn run(args: AuditArgs) -> anyhow::Result<bool> {
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
