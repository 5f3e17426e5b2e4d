//! `flashctl limits get|set`: a sale's rate limits, read or changed live; and the limit
//! flags that `sale open` and `sale recover` take too.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use flashctl::OpsError;
use flashctl::guard::{self, Limits};
use serde_json::{Value, json};
use shared::ProductId;
use shared::keys::Scope;

use super::{Ctx, Output, Run};

/// Limits given on the command line.
#[derive(Args, Default)]
pub struct LimitArgs {
    /// Per client network, e.g. 10/s:20 (RATE/PERIOD:BURST, PERIOD s|m|h) or off.
    #[arg(long, value_name = "LIMIT")]
    pub ip: Option<String>,
    /// Per device fingerprint (requests without one share one bucket).
    #[arg(long, value_name = "LIMIT")]
    pub fingerprint: Option<String>,
    /// Per user.
    #[arg(long, value_name = "LIMIT")]
    pub user: Option<String>,
    /// For the whole product.
    #[arg(long, value_name = "LIMIT")]
    pub global: Option<String>,
}

impl LimitArgs {
    /// The limits given on the command line.
    pub fn given(&self) -> Result<Limits, OpsError> {
        let mut out = BTreeMap::new();
        for (scope, raw) in [
            (Scope::Ip, &self.ip),
            (Scope::Fingerprint, &self.fingerprint),
            (Scope::User, &self.user),
            (Scope::Global, &self.global),
        ] {
            if let Some(raw) = raw {
                out.insert(scope, guard::parse_limit(raw)?);
            }
        }
        Ok(Limits(out))
    }

    /// The defaults, overridden by what was given.
    pub fn over_defaults(&self) -> Result<Limits, OpsError> {
        let mut all = Limits::defaults();
        all.0.extend(self.given()?.0);
        Ok(all)
    }

    /// The flags as given, for the audit trail.
    pub fn as_json(&self) -> Value {
        json!({"ip": self.ip, "fingerprint": self.fingerprint, "user": self.user, "global": self.global})
    }
}

/// `limits …`.
#[derive(Subcommand)]
pub enum LimitsCommand {
    /// Show a sale's limits as the admission script reads them.
    Get(Get),
    /// Change some limits; the next request on every instance sees them.
    Set(Set),
}

/// `limits get`.
#[derive(Args)]
pub struct Get {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

impl Run for Get {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let mut redis = ctx.redis().await?;
        let limits = guard::limits_get(&mut redis, &ctx.keys, &self.product).await?;
        Ok(Output::new(&limits, limits.human()))
    }
}

/// `limits set`.
#[derive(Args)]
pub struct Set {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
    /// The new limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl Run for Set {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "limits set",
            json!({"product": self.product, "limits": self.limits.as_json()}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let mut redis = ctx.redis().await?;
        let changes = self.limits.given()?;
        if changes.0.is_empty() {
            return Err(OpsError::Invalid(
                "give at least one of --ip, --fingerprint, --user, --global".into(),
            ));
        }
        let now = guard::limits_set(&mut redis, &ctx.keys, &self.product, &changes).await?;
        Ok(Output::new(
            &now,
            format!("limits of {} now:\n{}", self.product, now.human()),
        ))
    }
}
