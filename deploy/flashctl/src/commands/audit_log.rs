//! `flashctl audit-log`: the most recent changes made with `flashctl`, newest first.

use clap::Args;
use flashctl::{OpsError, trail};

use super::{Ctx, Output, Run};

/// `audit-log`.
#[derive(Args)]
pub struct AuditLog {
    /// How many entries, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

impl Run for AuditLog {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let pg = ctx.postgres().await?;
        let entries = trail::recent(&pg, self.limit).await?;
        let human = entries
            .iter()
            .map(|e| {
                format!(
                    "{}  {:<10} {:<14} {:<6} {}",
                    e["at"].as_str().unwrap_or_default(),
                    e["operator"].as_str().unwrap_or_default(),
                    e["command"].as_str().unwrap_or_default(),
                    e["outcome"].as_str().unwrap_or_default(),
                    e["arguments"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Output::new(&entries, human))
    }
}
