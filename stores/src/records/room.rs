//! A product's waiting room (a hash, `SaleKeys::room`): opened by `lua/room_open.lua`
//! (`flashctl room open`), its line grown by `lua/room_join.lua`, drained by
//! `lua/room_drain.lua`, its admissions taken by `lua/room_claim.lua` and used by
//! `lua/admit.lua`.

use redis::aio::ConnectionLike;
use shared::keys::SaleKeys;

use super::{Fields, number, read_hash};

/// The hash's fields.
pub mod field {
    /// `prequeue`, `open`, `paused` or `closed`.
    pub const STATE: &str = "state";
    /// Which opening of the room this is (tokens carry it).
    pub const EPOCH: &str = "epoch";
    /// Joins before this time (ms) are refused.
    pub const PREQUEUE_FROM: &str = "prequeue_from";
    /// The opening (ms): the cohort is shuffled then.
    pub const OPENS_AT: &str = "opens_at";
    /// Claims per second.
    pub const RATE: &str = "rate";
    /// Claims at once.
    pub const BURST: &str = "burst";
    /// Outstanding (released-unclaimed, admitted-unused) tickets at most.
    pub const MAX_ACTIVE: &str = "max_active";
    /// How long a released position may be claimed, and an admission used (ms).
    pub const CLAIM_WINDOW_MS: &str = "claim_window_ms";
    /// A message for the waiters.
    pub const MESSAGE: &str = "message";
    /// Tickets issued (the last arrival number).
    pub const JOINED: &str = "joined";
    /// The shuffle's seed (24 hex digits), from the opening on.
    pub const SEED: &str = "seed";
    /// Arrivals before the opening.
    pub const COHORT: &str = "cohort";
    /// When it opened (ms).
    pub const OPENED_AT: &str = "opened_at";
    /// Positions released so far.
    pub const SERVED: &str = "served";
    /// Positions released that the required replicas hold (`lua/room_promise.lua`):
    /// what polls tell, from the opening on.
    pub const PROMISED: &str = "promised";
    /// Released positions not claimed within the window.
    pub const NOSHOWS: &str = "noshows";
    /// Admissions taken.
    pub const CLAIMED: &str = "claimed";
    /// Admissions used (orders accepted with one).
    pub const USED: &str = "used";
    /// The product's units left and on their way back, as of the drain's last round.
    pub const UNITS: &str = "units";
}

/// A room as Redis holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomRecord {
    /// `prequeue`, `open`, `paused` or `closed`.
    pub state: String,
    /// Its epoch.
    pub epoch: u64,
    /// Joins from (ms).
    pub prequeue_from_ms: u64,
    /// Opens at (ms).
    pub opens_at_ms: u64,
    /// Claims per second.
    pub rate: f64,
    /// Claims at once.
    pub burst: u64,
    /// Outstanding tickets at most.
    pub max_active: u64,
    /// The claim window (ms).
    pub claim_window_ms: u64,
    /// The operators' message.
    pub message: String,
    /// Tickets issued.
    pub joined: u64,
    /// The seed, once open.
    pub seed: Option<String>,
    /// The cohort, once open.
    pub cohort: u64,
    /// When it opened.
    pub opened_at_ms: Option<u64>,
    /// Positions released.
    pub served: u64,
    /// Positions released that the replicas hold (`None` until the opening is held).
    pub promised: Option<u64>,
    /// No-shows so far.
    pub noshows: u64,
    /// Admissions taken.
    pub claimed: u64,
    /// Admissions used.
    pub used: u64,
    /// The product's units left and on their way back, as of the drain's last round
    /// (`None` before its first).
    pub units: Option<i64>,
}

impl RoomRecord {
    /// The record from its hash's fields; `None` when there is no room.
    pub fn from_fields(fields: &Fields) -> Option<Self> {
        let n = |name: &str| number::<u64>(fields, name).unwrap_or(0);
        Some(Self {
            state: fields.get(field::STATE)?.clone(),
            epoch: n(field::EPOCH),
            prequeue_from_ms: n(field::PREQUEUE_FROM),
            opens_at_ms: n(field::OPENS_AT),
            rate: number(fields, field::RATE).unwrap_or(0.0),
            burst: n(field::BURST),
            max_active: n(field::MAX_ACTIVE),
            claim_window_ms: n(field::CLAIM_WINDOW_MS),
            message: fields.get(field::MESSAGE).cloned().unwrap_or_default(),
            joined: n(field::JOINED),
            seed: fields.get(field::SEED).cloned(),
            cohort: n(field::COHORT),
            opened_at_ms: number(fields, field::OPENED_AT),
            served: n(field::SERVED),
            promised: number(fields, field::PROMISED),
            noshows: n(field::NOSHOWS),
            claimed: n(field::CLAIMED),
            used: n(field::USED),
            units: number(fields, field::UNITS),
        })
    }

    /// Reads the room of `keys`' product.
    pub async fn read(
        conn: &mut impl ConnectionLike,
        keys: &SaleKeys,
    ) -> redis::RedisResult<Option<Self>> {
        Ok(Self::from_fields(&read_hash(conn, &keys.room()).await?))
    }

    /// Whether the opening has happened (the cohort is shuffled).
    pub fn opened(&self) -> bool {
        self.seed.is_some()
    }

    /// What waiters may be told of the line: `Some(positions released)` once the
    /// replicas hold the opening, from the releases they hold; `None` before.
    pub fn told(&self) -> Option<u64> {
        self.promised.filter(|_| self.opened())
    }
}
