//! `flashctl order cancel`: end one reservation, its units back on sale.

use clap::{Args, Subcommand};
use flashctl::{OpsError, order};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Ctx, Output, Run};

/// `order …`.
#[derive(Subcommand)]
pub enum OrderCommand {
    /// Cancel a reserved order (fraud, a customer's request): its units go back on sale
    /// once the worker has recorded it. Refused when the order is paid, expired, or not
    /// yet handed to Kafka.
    Cancel(Cancel),
}

/// `order cancel`.
#[derive(Args)]
pub struct Cancel {
    /// The order id (as in the 202 answer).
    #[arg(long)]
    pub order: Uuid,
    /// Why, kept with the order in PostgreSQL and in the audit trail.
    #[arg(long, default_value = "operator")]
    pub reason: String,
}

impl Run for Cancel {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "order cancel",
            json!({"order": self.order, "reason": self.reason}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let pg = ctx.postgres().await?;
        let mut redis = ctx.redis().await?;
        let done = order::cancel(&pg, &mut redis, &ctx.keys, self.order, &self.reason).await?;
        let human = if done.repeated {
            format!("order {} was already cancelled", done.order_id)
        } else {
            format!(
                "order {} of {} cancelled; its units go back on sale once the worker has recorded it",
                done.order_id, done.product
            )
        };
        Ok(Output::new(&done, human))
    }
}
