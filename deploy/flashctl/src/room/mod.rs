//! A product's waiting room, as operators run it (`flashctl room …`): open it (a new
//! epoch), pause and resume its line, change its rate or message, close it, read its
//! state, and recompute every pre-queue position from the published seed.

use std::time::Duration;

use redis::aio::ConnectionLike;
use serde::Serialize;
use shared::ProductId;
use shared::keys::Keyspace;
use shared::room::{position, round_keys};
use stores::records::RoomRecord;
use stores::records::room::field;

use crate::OpsError;

mod copies;
use copies::{copy, shard_rooms, sync_copies};

static ROOM_OPEN: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../../../../lua/room_open.lua")));
static ROOM_SET: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../../../../lua/sale_set.lua")));

/// A new room's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct NewRoom {
    /// Joins before this time are refused (Unix ms).
    pub prequeue_from_ms: u64,
    /// The opening: the pre-queue is shuffled then (Unix ms).
    pub opens_at_ms: u64,
    /// Admissions per second.
    pub rate: f64,
    /// Admissions at once.
    pub burst: u32,
    /// Outstanding tickets (released and unclaimed, admitted and unused) at most.
    pub max_active: u32,
    /// How long a released position may be claimed, and an admission used.
    pub claim_window: Duration,
    /// A message for the waiters.
    pub message: String,
}

impl NewRoom {
    /// A rate and burst the room can keep, and a pre-queue before the opening.
    fn check(&self) -> Result<(), OpsError> {
        if !(self.rate > 0.0 && self.rate <= 1_000_000.0) || self.burst == 0 {
            return Err(OpsError::Invalid(
                "--rate must be positive and --burst at least 1".into(),
            ));
        }
        if self.opens_at_ms < self.prequeue_from_ms {
            return Err(OpsError::Invalid(
                "--prequeue-from must not be after --at".into(),
            ));
        }
        Ok(())
    }
}

/// Opens a new room for `product`'s sale (a new epoch; an earlier room's line and
/// admissions are gone); returns the epoch.
pub async fn open(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
    room: &NewRoom,
) -> Result<u64, OpsError> {
    room.check()?;
    let sk = keys.sale(product);
    // On a sharded sale every shard's copy first says a room of no epoch yet: from now on
    // an order needs an admission, and none is valid before the room's.
    let copies = shard_rooms(redis, keys, product).await?;
    let pending = [("state", "open"), ("epoch", "none"), ("used", "0")];
    copy(redis, &copies, &pending.map(|(f, v)| (f, v.to_owned()))).await?;
    let window = u64::try_from(room.claim_window.as_millis()).unwrap_or(u64::MAX);
    let reply: Vec<redis::Value> = ROOM_OPEN
        .key(sk.room())
        .key(sk.room_part("tickets"))
        .key(sk.room_part("devices"))
        .key(sk.room_part("releases"))
        .key(sk.room_part("claimed"))
        .key(sk.room_part("active"))
        .key(sk.room_part("claim_rate"))
        .key(sk.sale())
        .arg(room.prequeue_from_ms)
        .arg(room.opens_at_ms)
        .arg(room.rate)
        .arg(room.burst)
        .arg(room.max_active)
        .arg(window)
        .arg(&room.message)
        .invoke_async(redis)
        .await?;
    match stores::reply::text(reply.first()).as_deref() {
        Some("OPENED") => {}
        _ => {
            return Err(OpsError::NotFound(format!(
                "no sale for {product}: open the sale first"
            )));
        }
    }
    redis::cmd("SADD")
        .arg(keys.rooms_registry())
        .arg(product.as_str())
        .exec_async(redis)
        .await?;
    let epoch = stores::reply::unsigned(reply.get(1)).unwrap_or(0);
    let fields = [("state", "open".to_owned()), ("epoch", epoch.to_string())];
    if let Err(e) = copy(redis, &copies, &fields).await {
        return Err(OpsError::Other(anyhow::anyhow!(
            "the room of {product} opened (epoch {epoch}) but not every shard has its copy, so their buyers \
             are refused NOT_ADMITTED: {e}; any `flashctl room rate` or `room message` copies it again"
        )));
    }
    Ok(epoch)
}

/// Changes fields of an existing room (and, on a sharded sale, copies its state and epoch
/// to the shards again); `NotFound` without one.
pub async fn set(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
    fields: &[(&str, String)],
) -> Result<(), OpsError> {
    let mut call = ROOM_SET.key(keys.sale(product).room());
    for (f, v) in fields {
        call.arg(*f).arg(v);
    }
    let changed: i64 = call.invoke_async(redis).await?;
    if changed == 0 {
        return Err(OpsError::NotFound(format!("no waiting room for {product}")));
    }
    sync_copies(redis, keys, product).await
}

/// Pauses the line (no position is released; waiters keep theirs).
pub async fn pause(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<(), OpsError> {
    let room = read(redis, keys, product).await?;
    if room.state != "open" && room.state != "prequeue" {
        return Err(OpsError::Conflict(format!(
            "the room of {product} is {}",
            room.state
        )));
    }
    set(redis, keys, product, &[(field::STATE, "paused".into())]).await
}

/// Resumes a paused line (back to the pre-queue if it never opened).
pub async fn resume(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<(), OpsError> {
    let room = read(redis, keys, product).await?;
    if room.state != "paused" {
        return Err(OpsError::Conflict(format!(
            "the room of {product} is {}, not paused",
            room.state
        )));
    }
    let state = if room.opened() { "open" } else { "prequeue" };
    set(redis, keys, product, &[(field::STATE, state.into())]).await
}

/// Closes the room: joins and claims are refused, admissions not yet used are void, and
/// orders are refused `NOT_ADMITTED` (halt the sale, or open a new room, to go on).
pub async fn close(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<(), OpsError> {
    set(redis, keys, product, &[(field::STATE, "closed".into())]).await?;
    redis::cmd("DEL")
        .arg(keys.sale(product).room_part("active"))
        .exec_async(redis)
        .await?;
    Ok(())
}

/// The room's record; `NotFound` without one.
pub async fn read(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<RoomRecord, OpsError> {
    RoomRecord::read(redis, &keys.sale(product))
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("no waiting room for {product}")))
}

/// A room as `room status` tells it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RoomStatus {
    /// The product.
    pub product: String,
    /// `prequeue`, `open`, `paused` or `closed`.
    pub state: String,
    /// The epoch.
    pub epoch: u64,
    /// Tickets issued.
    pub joined: u64,
    /// Waiting: issued, not yet released.
    pub waiting: u64,
    /// Positions released.
    pub served: u64,
    /// Admissions taken.
    pub claimed: u64,
    /// Admissions used by an order.
    pub admitted: u64,
    /// Released positions not claimed in time, of all released.
    pub noshow_ratio: f64,
    /// Positions released per second over the last `measured_over_s`.
    pub release_rate: f64,
    /// Over how long the rate was measured.
    pub measured_over_s: u64,
    /// The wait of the last ticket in line at that rate, p50 and p90 of the waiting
    /// tickets' waits, seconds (`None` while nothing is released).
    pub eta_p50_s: Option<f64>,
    /// See `eta_p50_s`.
    pub eta_p90_s: Option<f64>,
    /// The cohort shuffled at the opening, and its published seed.
    pub cohort: u64,
    /// See `cohort`.
    pub seed: Option<String>,
    /// The configured rate and message.
    pub rate: f64,
    /// See `rate`.
    pub message: String,
}

/// Reads the room, and measures its release rate from the release log of the last
/// minute.
pub async fn status(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<RoomStatus, OpsError> {
    let mut room = read(redis, keys, product).await?;
    for copy in shard_rooms(redis, keys, product).await? {
        let used: Option<u64> = redis::cmd("HGET")
            .arg(copy)
            .arg("used")
            .query_async(redis)
            .await?;
        room.used += used.unwrap_or(0);
    }
    let log: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(keys.sale(product).room_part("releases"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(redis)
        .await?;
    let (first, last) = (log.first(), log.last());
    let (rate, over) = match (first, last) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
            let served = |s: &str| s.parse::<f64>().unwrap_or(0.0);
            let dt = (t1 - t0) / 1000.0;
            ((served(s1) - served(s0)) / dt, dt.round() as u64)
        }
        _ => (0.0, 0),
    };
    let waiting = room.joined.saturating_sub(room.served);
    let eta = |share: f64| (rate > 0.0).then(|| waiting as f64 * share / rate);
    Ok(RoomStatus {
        product: product.to_string(),
        state: room.state.clone(),
        epoch: room.epoch,
        joined: room.joined,
        waiting,
        served: room.served,
        claimed: room.claimed,
        admitted: room.used,
        noshow_ratio: if room.served > 0 {
            room.noshows as f64 / room.served as f64
        } else {
            0.0
        },
        release_rate: rate,
        measured_over_s: over,
        eta_p50_s: eta(0.5),
        eta_p90_s: eta(0.9),
        cohort: room.cohort,
        seed: room.seed.clone(),
        rate: room.rate,
        message: room.message,
    })
}

/// What `room verify` found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verified {
    /// The cohort's size.
    pub cohort: u64,
    /// The seed the positions were recomputed from.
    pub seed: String,
    /// Whether every position of `1..=cohort` was given exactly once.
    pub permutation: bool,
    /// Claims whose recorded position differs from the recomputed one (0 when honest).
    pub mismatched_claims: u64,
    /// Claims checked.
    pub claims: u64,
}

/// Recomputes every pre-queue position from the published seed: checks that they are a
/// permutation of the cohort, and that each claim of a cohort member was recorded at the
/// position the seed gives its ticket.
pub async fn verify(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<Verified, OpsError> {
    let room = read(redis, keys, product).await?;
    let seed = room.seed.clone().ok_or_else(|| {
        OpsError::Conflict(format!("the room of {product} has not opened: no seed yet"))
    })?;
    let rk =
        round_keys(&seed).ok_or_else(|| OpsError::Conflict(format!("unreadable seed {seed:?}")))?;
    let mut seen = vec![false; usize::try_from(room.cohort).unwrap_or(0) + 1];
    let mut permutation = true;
    for n in 1..=room.cohort {
        let p = position(&rk, room.cohort, n) as usize;
        permutation &= p >= 1 && p < seen.len() && !std::mem::replace(&mut seen[p], true);
    }
    let sk = keys.sale(product);
    let tickets: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(sk.room_part("tickets"))
        .query_async(redis)
        .await?;
    let claimed: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(sk.room_part("claimed"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(redis)
        .await?;
    let mut mismatched = 0;
    for (user, at) in &claimed {
        let arrival = tickets
            .get(user)
            .and_then(|t| t.split(':').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if position(&rk, room.cohort, arrival) as f64 != *at {
            mismatched += 1;
        }
    }
    Ok(Verified {
        cohort: room.cohort,
        seed,
        permutation,
        mismatched_claims: mismatched,
        claims: claimed.len() as u64,
    })
}
