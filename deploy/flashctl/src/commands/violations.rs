//! `flashctl violations`: limit, block, signature and replay violations per hour, from
//! the Redis counters.

use clap::Args;
use flashctl::{OpsError, insight};
use shared::ProductId;

use super::{Ctx, Output, Run};

/// `violations`.
#[derive(Args)]
pub struct Violations {
    /// The sale (without it: violations recorded before a product was known, such as
    /// bad signatures).
    #[arg(long)]
    pub product: Option<ProductId>,
    /// How many hours back (1–25).
    #[arg(long, default_value_t = 24)]
    pub hours: u64,
}

impl Run for Violations {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let product = &self.product;
        let mut redis = ctx.redis().await?;
        let rows = insight::violations(&mut redis, &ctx.keys, product.as_ref(), self.hours).await?;
        let mut human = format!(
            "violations per hour, {} (UTC):\n",
            product
                .as_ref()
                .map_or("before admission".into(), |p| format!("sale {p}"))
        );
        for h in &rows {
            let list = h
                .counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            human.push_str(&format!(
                "{}  {}\n",
                h.hour,
                if list.is_empty() { "-".into() } else { list }
            ));
        }
        Ok(Output::new(&rows, human.trim_end().to_owned()))
    }
}
