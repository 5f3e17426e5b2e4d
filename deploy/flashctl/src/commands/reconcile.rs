//! `flashctl reconcile`: Redis against PostgreSQL and the pipeline in between, waiting
//! for it to settle; the verdict is the exit code (3 on drift, 6 while still settling).

use std::time::{Duration, Instant};

use clap::Args;
use flashctl::Verdict;
use flashctl::{OpsError, insight, topics};
use shared::ProductId;

use super::{Ctx, Output, Run, duration};

/// `reconcile`.
#[derive(Args)]
pub struct Reconcile {
    /// The sale.
    #[arg(long)]
    pub product: ProductId,
    /// Wait this long for the pipeline to settle (no lag, no pending hand-off).
    #[arg(long, default_value = "30s")]
    pub wait: String,
    /// The order topic.
    #[arg(long, env = "KAFKA_TOPIC", default_value = shared::defaults::KAFKA_TOPIC)]
    pub topic: String,
    /// The worker's consumer group.
    #[arg(long, env = "KAFKA_GROUP", default_value = shared::defaults::KAFKA_GROUP)]
    pub group: String,
}

impl Run for Reconcile {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let pg = ctx.postgres().await?;
        let mut redis = ctx.redis().await?;
        let deadline = Instant::now() + duration("--wait", &self.wait)?;
        let probe = topics::LagProbe::new(&ctx.kafka_brokers, &self.topic, &self.group)?;
        let r = loop {
            let lag = probe.read().await?.total();
            let r = insight::reconcile(&pg, &mut redis, &ctx.keys, &self.product, lag).await?;
            if r.verdict != Verdict::Settling || Instant::now() >= deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
        let human = format!(
            "{}: {}\nstock {} | Redis taken {} | persisted {} (rows {}) | in outbox {} | worker lag {} | dead-lettered {} | drift {}",
            r.product,
            r.verdict.as_str(),
            r.stock,
            opt(r.redis_taken),
            r.persisted,
            r.row_units,
            r.pending_handoff_units,
            r.worker_lag,
            r.dead_lettered,
            opt(r.drift)
        );
        let mut out = Output::new(&r, human);
        out.exit = i32::from(r.verdict.exit_code());
        Ok(out)
    }
}
