//! `flashctl room open|pause|resume|rate|message|close|status|verify`: a product's waiting
//! room, from opening its line to checking its shuffle.

use clap::{Args, Subcommand};
use flashctl::OpsError;
use flashctl::room::{self, NewRoom};
use flashctl::sale::parse_time;
use serde_json::{Value, json};
use shared::ProductId;
use stores::records::room::field;

use super::{Ctx, Output, Run, duration};

/// `room …`.
#[derive(Subcommand)]
pub enum RoomCommand {
    /// Open a waiting room in front of a sale (a new epoch: an earlier line is gone).
    Open(Open),
    /// Stop releasing positions; waiters keep theirs.
    Pause(Pause),
    /// Release positions again after a pause.
    Resume(Resume),
    /// Change the admission rate (and burst), live.
    Rate(Rate),
    /// Post a message every waiter sees at the next poll.
    Message(Message),
    /// Close the room: joins, claims and unused admissions are refused.
    Close(Close),
    /// Waiting, served, admitted, claimed, no-show ratio, measured release rate, ETA.
    Status(Status),
    /// Recompute every pre-queue position from the published seed.
    Verify(Verify),
}

/// `room open`.
#[derive(Args)]
pub struct Open {
    /// Product id of a sale that is open (or scheduled).
    #[arg(long)]
    pub product: ProductId,
    /// The opening: RFC 3339 or Unix ms. Everyone who joined before is shuffled then.
    #[arg(long)]
    pub at: String,
    /// Joins from this time on (default: now).
    #[arg(long)]
    pub prequeue_from: Option<String>,
    /// Admissions per second.
    #[arg(long)]
    pub rate: f64,
    /// Admissions at once (default: the rate, at least 1).
    #[arg(long)]
    pub burst: Option<u32>,
    /// Outstanding tickets at most: released and unclaimed, admitted and unused.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_active: u32,
    /// How long a released position may be claimed, and an admission used.
    #[arg(long, default_value = "60s")]
    pub claim_window: String,
    /// A message for the waiters.
    #[arg(long, default_value = "")]
    pub message: String,
}

/// `room pause`.
#[derive(Args)]
pub struct Pause {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

/// `room resume`.
#[derive(Args)]
pub struct Resume {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

/// `room close`.
#[derive(Args)]
pub struct Close {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

/// `room status`.
#[derive(Args)]
pub struct Status {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

/// `room verify`.
#[derive(Args)]
pub struct Verify {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
}

/// `room rate`.
#[derive(Args)]
pub struct Rate {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
    /// Admissions per second.
    #[arg(long)]
    pub rate: f64,
    /// Admissions at once (unchanged when absent).
    #[arg(long)]
    pub burst: Option<u32>,
}

/// `room message`.
#[derive(Args)]
pub struct Message {
    /// Product id.
    #[arg(long)]
    pub product: ProductId,
    /// The text (empty: no message).
    #[arg(long)]
    pub text: String,
}

fn ms(raw: &str) -> Result<u64, OpsError> {
    let t = parse_time(raw)?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

impl Run for Open {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "room open",
            json!({"product": self.product, "at": self.at, "prequeue_from": self.prequeue_from,
                   "rate": self.rate, "burst": self.burst, "max_active": self.max_active,
                   "claim_window": self.claim_window, "message": self.message}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let now = shared::event::now_ms();
        let new = NewRoom {
            prequeue_from_ms: self.prequeue_from.as_deref().map_or(Ok(now), ms)?,
            opens_at_ms: ms(&self.at)?,
            rate: self.rate,
            burst: self
                .burst
                .unwrap_or_else(|| (self.rate.ceil() as u32).max(1)),
            max_active: self.max_active,
            claim_window: duration("--claim-window", &self.claim_window)?,
            message: self.message.clone(),
        };
        let epoch = room::open(&mut ctx.redis().await?, &ctx.keys, &self.product, &new).await?;
        let human = format!(
            "room of {} open (epoch {epoch}): joins from {}, opening at {}, {} admissions/s",
            self.product, new.prequeue_from_ms, new.opens_at_ms, new.rate
        );
        Ok(Output::new(
            &json!({"product": self.product, "epoch": epoch, "room": new}),
            human,
        ))
    }
}

/// One line for a change of `product`'s room.
fn done(product: &ProductId, what: &str) -> Output {
    Output::new(
        &json!({"product": product, "done": what}),
        format!("room of {product}: {what}"),
    )
}

impl Run for Pause {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some(("room pause", json!({"product": self.product})))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        room::pause(&mut ctx.redis().await?, &ctx.keys, &self.product).await?;
        Ok(done(&self.product, "paused"))
    }
}

impl Run for Resume {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some(("room resume", json!({"product": self.product})))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        room::resume(&mut ctx.redis().await?, &ctx.keys, &self.product).await?;
        Ok(done(&self.product, "resumed"))
    }
}

impl Run for Rate {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "room rate",
            json!({"product": self.product, "rate": self.rate, "burst": self.burst}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        if !(self.rate > 0.0 && self.rate <= 1_000_000.0) || self.burst == Some(0) {
            return Err(OpsError::Invalid(
                "--rate must be positive and --burst at least 1".into(),
            ));
        }
        let mut fields = vec![(field::RATE, self.rate.to_string())];
        if let Some(b) = self.burst {
            fields.push((field::BURST, b.to_string()));
        }
        room::set(&mut ctx.redis().await?, &ctx.keys, &self.product, &fields).await?;
        Ok(done(&self.product, &format!("{} admissions/s", self.rate)))
    }
}

impl Run for Message {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some((
            "room message",
            json!({"product": self.product, "text": self.text}),
        ))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let fields = [(field::MESSAGE, self.text.clone())];
        room::set(&mut ctx.redis().await?, &ctx.keys, &self.product, &fields).await?;
        Ok(done(&self.product, "message posted"))
    }
}

impl Run for Close {
    fn change(&self) -> Option<(&'static str, Value)> {
        Some(("room close", json!({"product": self.product})))
    }

    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        ctx.confirm(&format!("close the waiting room of {}", self.product))?;
        room::close(&mut ctx.redis().await?, &ctx.keys, &self.product).await?;
        Ok(done(&self.product, "closed"))
    }
}

impl Run for Status {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let s = room::status(&mut ctx.redis().await?, &ctx.keys, &self.product).await?;
        let eta = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} s"));
        let human = format!(
            "product          {}\nstate            {} (epoch {})\nwaiting          {} of {} joined\n\
             served           {}\nclaimed          {} (used {})\nno-show ratio    {:.1} %\n\
             release rate     {:.2}/s measured over {} s ({} configured)\n\
             ETA p50 / p90    {} / {}\ncohort / seed    {} / {}\nmessage          {}",
            s.product,
            s.state,
            s.epoch,
            s.waiting,
            s.joined,
            s.served,
            s.claimed,
            s.admitted,
            s.noshow_ratio * 100.0,
            s.release_rate,
            s.measured_over_s,
            s.rate,
            eta(s.eta_p50_s),
            eta(s.eta_p90_s),
            s.cohort,
            s.seed.as_deref().unwrap_or("-"),
            s.message
        );
        Ok(Output::new(&s, human))
    }
}

impl Run for Verify {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let v = room::verify(&mut ctx.redis().await?, &ctx.keys, &self.product).await?;
        let ok = v.permutation && v.mismatched_claims == 0;
        let human = format!(
            "cohort of {} shuffled with seed {}: {} ; {} claims, {} at another position than the seed gives",
            v.cohort,
            v.seed,
            if v.permutation {
                "every position given once"
            } else {
                "NOT A PERMUTATION"
            },
            v.claims,
            v.mismatched_claims
        );
        let mut out = Output::new(&v, human);
        out.exit = if ok { 0 } else { 3 };
        Ok(out)
    }
}
