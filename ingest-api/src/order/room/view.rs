//! What a waiter is told: the state of the line for this ticket, the position, how many
//! are ahead, an estimate of the wait from the *measured* release rate, and when to ask
//! again — computed from this instance's [`Snapshot`], without Redis.

use std::time::Duration;

use serde::Serialize;
use shared::room::{Claims, position};

use super::cache::Snapshot;

/// The state of a waiter's ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitState {
    /// Before the opening: the cohort's order is not drawn yet.
    Prequeue,
    /// In line.
    Queued,
    /// The turn has come: claim an admission within the claim window.
    Admitted,
    /// Nothing left, nor on its way back: the line will not move.
    SoldOut,
    /// The room is closed.
    Closed,
}

/// An estimate of the wait, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Eta {
    /// The estimate.
    pub seconds: f64,
    /// Its range, from the slower and faster of the rates measured over the last 10 s and
    /// the last minute.
    pub low: f64,
    /// See `low`.
    pub high: f64,
}

/// What `join` and `status` answer besides the ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitView {
    /// The ticket's state.
    pub state: WaitState,
    /// Its position in line (1 is first), once the opening drew the cohort's order.
    pub position: Option<u64>,
    /// Positions before it not yet released.
    pub ahead: Option<u64>,
    /// The estimated wait, while queued and the line moves.
    pub eta_seconds: Option<f64>,
    /// The estimate's range.
    pub eta_range: Option<[f64; 2]>,
    /// When to ask again, milliseconds.
    pub refresh_after_ms: u64,
    /// The opening, Unix ms (the pre-queue's countdown).
    pub opens_at: u64,
    /// The operators' message, if any.
    pub message: Option<String>,
}

/// The view of `ticket` in `snapshot` at `now_ms`; `jitter` in 0..1 spreads the next
/// polls (a fixed value gives a fixed answer, for tests).
pub fn view(snapshot: &Snapshot, ticket: &Claims, now_ms: u64, jitter: f64) -> WaitView {
    let room = &snapshot.room;
    let message = Some(room.message.clone()).filter(|m| !m.is_empty());
    let base = WaitView {
        state: WaitState::Closed,
        position: None,
        ahead: None,
        eta_seconds: None,
        eta_range: None,
        refresh_after_ms: 30_000,
        opens_at: room.opens_at_ms,
        message,
    };
    let spread = |ms: f64| (ms * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as u64;
    if room.state == "closed" {
        return base;
    }
    if snapshot.units <= 0 {
        return WaitView {
            state: WaitState::SoldOut,
            refresh_after_ms: spread(10_000.0),
            ..base
        };
    }
    let Some(keys) = snapshot.keys.as_ref().filter(|_| room.opened()) else {
        let until = room.opens_at_ms.saturating_sub(now_ms) as f64;
        return WaitView {
            state: WaitState::Prequeue,
            refresh_after_ms: spread(until.clamp(1_000.0, 30_000.0)),
            ..base
        };
    };
    let at = position(keys, room.cohort, ticket.arrival);
    let ahead = at.saturating_sub(room.served);
    if ahead == 0 {
        return WaitView {
            state: WaitState::Admitted,
            position: Some(at),
            ahead: Some(0),
            eta_seconds: Some(0.0),
            eta_range: Some([0.0, 0.0]),
            refresh_after_ms: spread(1_000.0),
            ..base
        };
    }
    let eta = eta(snapshot, ahead);
    let refresh = eta.map_or(5_000.0, |e| {
        (e.seconds * 1000.0 / 4.0).clamp(1_000.0, 30_000.0)
    });
    WaitView {
        state: WaitState::Queued,
        position: Some(at),
        ahead: Some(ahead),
        eta_seconds: eta.map(|e| e.seconds),
        eta_range: eta.map(|e| [e.low, e.high]),
        refresh_after_ms: spread(refresh),
        ..base
    }
}

/// The wait of `ahead` positions at the measured release rate (the configured one before
/// two seconds of the line moving are measured); `None` while the line stands still.
fn eta(snapshot: &Snapshot, ahead: u64) -> Option<Eta> {
    let paused = snapshot.room.state == "paused";
    let short = snapshot.release_rate(Duration::from_secs(10));
    let long = snapshot.release_rate(Duration::from_secs(60)).or(short);
    let rate = match short {
        Some(r) => r,
        None if !paused => snapshot.room.rate,
        None => 0.0,
    };
    if paused || rate <= 0.0 {
        return None;
    }
    let (slow, fast) = match long {
        Some(l) if l > 0.0 => (rate.min(l), rate.max(l)),
        _ => (rate, rate),
    };
    let a = ahead as f64;
    Some(Eta {
        seconds: a / rate,
        low: a / fast,
        high: a / slow,
    })
}
