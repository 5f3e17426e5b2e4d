//! `flashctl migrate`: apply the pending PostgreSQL migrations embedded from `sql/`.

use clap::Args;
use flashctl::OpsError;
use serde_json::{Value, json};

use super::{Ctx, Output, Run};

/// `migrate` (no arguments of its own).
#[derive(Args)]
pub struct Migrate;

impl Run for Migrate {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some(("migrate", json!({})))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let applied = stores::migrate(&ctx.database_url).await?;
        Ok(Output::new(
            &json!({"applied": applied}),
            format!("{applied} migration(s) applied; schema up to date"),
        ))
    }
}
