//! `flashctl sale open|status|halt|resume|recover`: a sale's life, from opening it to
//! rebuilding it after Redis lost it.

use clap::{Args, Subcommand};
use flashctl::{OpsError, sale};
use serde_json::{Value, json};
use shared::ProductId;
use shared::sale::SaleState;

use super::limits::LimitArgs;
use super::{Ctx, Output, Run};

/// `sale …`.
#[derive(Subcommand)]
pub enum SaleCommand {
    /// Create a sale in PostgreSQL and Redis and open it (default limits unless given).
    Open(Open),
    /// State, stock, Redis remaining, persisted units and pending hand-off.
    Status(Status),
    /// Stop admitting orders now (409 SALE_NOT_OPEN on every instance).
    Halt(Halt),
    /// Admit orders again after a halt.
    Resume(Resume),
    /// Rebuild a sale Redis lost, from PostgreSQL, once the pipeline has drained.
    Recover(Recover),
}

/// `sale open`.
#[derive(Args)]
pub struct Open {
    /// Product id (`[a-z0-9-]{1,50}`).
    #[arg(long)]
    pub product: ProductId,
    /// Units on sale.
    #[arg(long)]
    pub stock: u32,
    /// Most units one user may buy (0 = no cap).
    #[arg(long, default_value_t = 0)]
    pub per_user: u32,
    /// Opening time: RFC 3339 or Unix ms (default: now).
    #[arg(long)]
    pub starts_at: Option<String>,
    /// Closing time: RFC 3339 or Unix ms (default: none).
    #[arg(long)]
    pub ends_at: Option<String>,
    /// How long an accepted order stays reserved unpaid before it expires and its units
    /// go back on sale, e.g. 15m (absent or 0: never).
    #[arg(long)]
    pub payment_window: Option<String>,
    /// Spread the stock over this many shards on distinct Redis Cluster masters, so one
    /// product's decisions use more than one Redis core (1 = unsharded; README,
    /// "Scaling out").
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Limits other than the defaults.
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl Run for Open {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "sale open",
            json!({"product": self.product, "stock": self.stock, "per_user": self.per_user,
                   "starts_at": self.starts_at, "ends_at": self.ends_at,
                   "payment_window": self.payment_window, "shards": self.shards,
                   "limits": self.limits.as_json()}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let new = sale::NewSale {
            product: self.product.clone(),
            stock: self.stock,
            per_user: self.per_user,
            starts_at: self
                .starts_at
                .as_deref()
                .map(sale::parse_time)
                .transpose()?,
            ends_at: self.ends_at.as_deref().map(sale::parse_time).transpose()?,
            limits: self.limits.over_defaults()?,
            payment_window: self
                .payment_window
                .as_deref()
                .map(|w| super::duration("--payment-window", w))
                .transpose()?
                .filter(|w| !w.is_zero()),
            shards: self.shards,
        };
        let pg = ctx.postgres().await?;
        let mut redis = ctx.redis().await?;
        let outcome = sale::open(&pg, &mut redis, &ctx.keys, &new).await?;
        let human = match outcome {
            sale::OpenOutcome::Created => format!(
                "sale {} open: {} units, per-user cap {}{}\n{}",
                new.product,
                self.stock,
                self.per_user,
                if self.shards > 1 {
                    format!(", {} shards", self.shards)
                } else {
                    String::new()
                },
                new.limits.human()
            ),
            sale::OpenOutcome::AlreadyOpen => format!("sale {} was already open", new.product),
        };
        Ok(Output::new(
            &json!({"product": new.product, "outcome": outcome, "stock": self.stock,
                    "per_user": self.per_user, "shards": self.shards, "limits": new.limits}),
            human,
        ))
    }
}

/// `sale status`.
#[derive(Args)]
pub struct Status {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

impl Run for Status {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let pg = ctx.postgres().await?;
        let mut redis = ctx.redis().await?;
        let status = sale::status(&pg, &mut redis, &ctx.keys, &self.product).await?;
        Ok(Output::new(&status, status.human()))
    }
}

/// `sale halt`.
#[derive(Args)]
pub struct Halt {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

impl Run for Halt {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some(("sale halt", json!({"product": self.product})))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let product = &self.product;
        ctx.confirm(&format!("halt sale {product} on every instance"))?;
        let mut redis = ctx.redis().await?;
        sale::set_state(&mut redis, &ctx.keys, product, SaleState::Halted).await?;
        Ok(Output::new(
            &json!({"product": product, "state": "halted"}),
            format!("sale {product} halted: every instance answers SALE_NOT_OPEN"),
        ))
    }
}

/// `sale resume`.
#[derive(Args)]
pub struct Resume {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

impl Run for Resume {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some(("sale resume", json!({"product": self.product})))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let product = &self.product;
        let mut redis = ctx.redis().await?;
        sale::set_state(&mut redis, &ctx.keys, product, SaleState::Open).await?;
        Ok(Output::new(
            &json!({"product": product, "state": "open"}),
            format!("sale {product} open again"),
        ))
    }
}

/// `sale recover`.
#[derive(Args)]
pub struct Recover {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
    /// Restore the sale halted (resume it later) instead of open.
    #[arg(long)]
    pub halted: bool,
    /// The order topic the worker consumes.
    #[arg(long, env = "KAFKA_TOPIC", default_value = shared::defaults::KAFKA_TOPIC)]
    pub topic: String,
    /// The worker's consumer group.
    #[arg(long, env = "KAFKA_GROUP", default_value = shared::defaults::KAFKA_GROUP)]
    pub group: String,
    /// Limits other than the defaults.
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl Run for Recover {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "sale recover",
            json!({"product": self.product, "halted": self.halted,
                   "limits": self.limits.as_json()}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let product = &self.product;
        ctx.confirm(&format!("rebuild sale {product} in Redis from PostgreSQL"))?;
        let pg = ctx.postgres().await?;
        let mut redis = ctx.redis().await?;
        let pipeline = flashctl::recover::Pipeline {
            brokers: ctx.kafka_brokers.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
        };
        let state = if self.halted {
            SaleState::Halted
        } else {
            SaleState::Open
        };
        let r = flashctl::recover::recover(
            &pg,
            &mut redis,
            &ctx.keys,
            product,
            &pipeline,
            &self.limits.over_defaults()?,
            state,
        )
        .await?;
        let human = format!(
            "recovered {}: {} of {} units remaining ({} sold, {} buyers restored), {}",
            r.product,
            r.remaining,
            r.stock,
            r.sold,
            r.buyers,
            r.state.as_str()
        );
        Ok(Output::new(&r, human))
    }
}
