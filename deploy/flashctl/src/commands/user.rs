//! `flashctl user erase`: remove a user's personal data on request; the orders stay,
//! under a pseudonym, so the sale's totals do not change.

use clap::{Args, Subcommand};
use flashctl::{OpsError, erase};
use serde_json::{Value, json};
use shared::UserId;

use super::{Ctx, Output, Run};

/// `user …`.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Remove a user's personal data on request (orders stay, under a pseudonym).
    Erase(Erase),
}

/// `user erase`.
#[derive(Args)]
pub struct Erase {
    /// The user id.
    #[arg(long)]
    pub user: UserId,
}

impl Run for Erase {
    /// The user id is left out: the trail must not keep what was erased.
    fn change(&self) -> Option<(&'static str, Value)> {
        Some(("user erase", json!({})))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let user = &self.user;
        ctx.confirm(&format!("erase the personal data of user {user}"))?;
        let mut pg = ctx.postgres().await?;
        let mut redis = ctx.redis().await?;
        let e = erase::erase_user(&mut pg, &mut redis, &ctx.keys, user).await?;
        let human = format!(
            "erased: {} order(s) now under {}, {} dead letter(s) and {} audit entr(ies) redacted, {} Redis key(s) deleted; sale totals unchanged",
            e.orders, e.pseudonym, e.dead_letters, e.audit_entries, e.redis_keys
        );
        Ok(Output::new(&e, human))
    }
}
