//! A waiting-room scenario, in TOML.
//!
//! ```toml
//! name = "waiting-room"
//!
//! [sale]
//! stock = 3600            # sells out mid-queue: fewer units than waiters
//!
//! [room]
//! prequeue = "10s"        # the pre-queue: joins before the opening
//! rate = 60.0             # admissions per second
//! burst = 60
//! claim_window = "10s"
//!
//! [waiters]
//! prequeue = 15000        # join during the pre-queue, evenly spread
//! live = 5000             # join after the opening, over `live_over`
//! live_over = "40s"
//! abandon = 0.25          # share who leave the line at a random point of their wait
//! no_show = 0.05          # share who do not claim when their turn comes
//!
//! [bots]
//! forged = 20000          # mutated and made-up tokens at status, claim and order
//! shared = 300            # tickets and admissions used by another user or device
//! reused = 300            # used admissions presented again
//! cross_sale = 300        # tickets and admissions of another product's room
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::humantime_serde;

/// A whole room run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomScenario {
    /// Name, used in the results folder and the product id.
    pub name: String,
    /// The sale behind the room.
    pub sale: RoomSale,
    /// The room.
    pub room: Room,
    /// The waiters.
    pub waiters: Waiters,
    /// The bots.
    #[serde(default)]
    pub bots: Bots,
}

/// The sale behind the room (one unit per user).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSale {
    /// Units on sale.
    pub stock: u32,
}

/// The room's settings (`flashctl room open`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Room {
    /// How long joins are taken before the opening.
    #[serde(with = "humantime_serde")]
    pub prequeue: Duration,
    /// Admissions per second.
    pub rate: f64,
    /// Admissions at once.
    pub burst: u32,
    /// The claim window.
    #[serde(with = "humantime_serde")]
    pub claim_window: Duration,
}

/// Who waits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiters {
    /// Joiners during the pre-queue.
    pub prequeue: u32,
    /// Joiners after the opening.
    pub live: u32,
    /// Over how long the live ones join.
    #[serde(with = "humantime_serde")]
    pub live_over: Duration,
    /// Share who leave at a random point of their wait.
    #[serde(default)]
    pub abandon: f64,
    /// Share who do not claim when their turn comes.
    #[serde(default)]
    pub no_show: f64,
}

/// The bots' budgets (requests).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bots {
    /// Mutated and made-up tokens.
    #[serde(default)]
    pub forged: u32,
    /// Tokens used by another user or device.
    #[serde(default)]
    pub shared: u32,
    /// Used admissions presented again.
    #[serde(default)]
    pub reused: u32,
    /// Tokens of another product's room.
    #[serde(default)]
    pub cross_sale: u32,
}

impl RoomScenario {
    /// A scenario of no waiters and no bots around a room at once, for a small room of
    /// the harness's own (the cross-sale bot's decoy).
    pub fn load_default() -> Self {
        Self {
            name: "decoy".into(),
            sale: RoomSale { stock: 10 },
            room: Room {
                prequeue: Duration::ZERO,
                rate: 100.0,
                burst: 100,
                claim_window: Duration::from_secs(120),
            },
            waiters: Waiters {
                prequeue: 0,
                live: 0,
                live_over: Duration::ZERO,
                abandon: 0.0,
                no_show: 0.0,
            },
            bots: Bots::default(),
        }
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let s: Self = toml::from_str(&text)?;
        let w = &s.waiters;
        anyhow::ensure!(
            s.room.rate > 0.0 && s.room.burst > 0,
            "room.rate and room.burst must be positive"
        );
        for (name, share) in [("abandon", w.abandon), ("no_show", w.no_show)] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&share),
                "waiters.{name} must be within 0..1"
            );
        }
        anyhow::ensure!(w.prequeue + w.live > 0, "no waiters");
        Ok(s)
    }
}
