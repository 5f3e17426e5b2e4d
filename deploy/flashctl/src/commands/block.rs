//! `flashctl block` and `flashctl unblock`: keep an IP (IPv6: its /64), a device
//! fingerprint or a user out of one sale or all of them, and let it back in.

use std::time::Duration;

use clap::Args;
use flashctl::OpsError;
use flashctl::guard::{self, Target};
use serde_json::{Value, json};
use shared::ProductId;
use shared::keys::Scope;

use super::{Ctx, Output, Run, duration};

/// `block`.
#[derive(Args)]
pub struct Block {
    /// ip, fingerprint or user.
    #[arg(value_parser = parse_scope)]
    pub scope: Scope,
    /// The address, fingerprint or user id.
    pub value: String,
    /// Only this sale (default: every sale).
    #[arg(long)]
    pub product: Option<ProductId>,
    /// How long, e.g. 15m, 2h; `forever` until unblocked.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Why (kept with the block).
    #[arg(long, default_value = "blocked by an operator")]
    pub reason: String,
}

impl Run for Block {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "block",
            json!({"scope": self.scope.as_str(), "value": self.value, "product": self.product,
                   "ttl": self.ttl, "reason": self.reason}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let target = Target::parse(self.scope, &self.value)?;
        let ttl = parse_ttl(&self.ttl)?;
        let mut redis = ctx.redis().await?;
        let products = guard::block(
            &mut redis,
            &ctx.keys,
            &target,
            self.product.as_ref(),
            ttl,
            &self.reason,
        )
        .await?;
        let human = format!(
            "blocked {} {} on {} for {}",
            target.scope.as_str(),
            target.value,
            product_list(&products),
            self.ttl
        );
        Ok(Output::new(
            &json!({"target": target, "products": products, "ttl": self.ttl}),
            human,
        ))
    }
}

/// `unblock`.
#[derive(Args)]
pub struct Unblock {
    /// ip, fingerprint or user.
    #[arg(value_parser = parse_scope)]
    pub scope: Scope,
    /// The address, fingerprint or user id.
    pub value: String,
    /// Only this sale (default: every sale).
    #[arg(long)]
    pub product: Option<ProductId>,
}

impl Run for Unblock {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "unblock",
            json!({"scope": self.scope.as_str(), "value": self.value, "product": self.product}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let target = Target::parse(self.scope, &self.value)?;
        let mut redis = ctx.redis().await?;
        let products =
            guard::unblock(&mut redis, &ctx.keys, &target, self.product.as_ref()).await?;
        let human = format!(
            "unblocked {} {} on {}",
            target.scope.as_str(),
            target.value,
            product_list(&products)
        );
        Ok(Output::new(
            &json!({"target": target, "products": products}),
            human,
        ))
    }
}

/// A scope one can block: ip, fingerprint or user (not global).
fn parse_scope(raw: &str) -> Result<Scope, String> {
    Scope::parse(raw)
        .filter(|s| *s != Scope::Global)
        .ok_or_else(|| format!("{raw:?}: expected ip, fingerprint or user"))
}

/// `--ttl`: a duration, or `forever` (`None`).
fn parse_ttl(raw: &str) -> Result<Option<Duration>, OpsError> {
    if raw == "forever" {
        return Ok(None);
    }
    duration("--ttl", raw).map(Some)
}

/// The sales a block applies to, for people.
fn product_list(products: &[ProductId]) -> String {
    if products.is_empty() {
        "no sale".into()
    } else {
        products
            .iter()
            .map(ProductId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
