//! What a waiter is told: the state of the line for this ticket, the position, how many
//! are ahead, an estimate of the wait from the *measured* release rate, and when to ask
//! again — computed from this instance's [`Snapshot`], without Redis.

use std::time::Duration;

use serde::Serialize;
use shared::room::{Claims, position};
use stores::records::RoomRecord;

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
    // Positions and turns come from what the replicas hold (`promised`), so a failover
    // takes back nothing a waiter was told.
    let (Some(keys), Some(served)) = (snapshot.keys.as_ref(), room.told()) else {
        return WaitView {
            state: WaitState::Prequeue,
            refresh_after_ms: prequeue_refresh_ms(room.opens_at_ms.saturating_sub(now_ms), jitter),
            ..base
        };
    };
    let at = position(keys, room.cohort, ticket.arrival);
    let ahead = at.saturating_sub(served);
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
    let refresh = refresh_ms(room, eta, ahead, snapshot.units);
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

/// How soon a waiter in the pre-queue, `until` ms before the opening, asks again: every
/// 30 s or so (±20 %), and never past the opening: the cohort asks again within a second
/// after it, when the first positions are released (a released position unclaimed 3 s
/// later is presumed a no-show).
fn prequeue_refresh_ms(until: u64, jitter: f64) -> u64 {
    let jitter = jitter.clamp(0.0, 1.0);
    let until = until as f64;
    let usual = until.clamp(1_000.0, 30_000.0) * (0.8 + 0.4 * jitter);
    usual.min(until + 250.0 + 750.0 * jitter) as u64
}

/// How soon to ask again (before the jitter), ms: a quarter of the estimated wait, within
/// 1–30 s; before the line is measured, of the wait at the room's rate; 5 s while paused.
/// Never longer than the `units` left take at the room's rate, or 5 s when that is
/// shorter: as the stock runs out, a wait that grows (the line slows) does not put off
/// learning that it is sold out.
fn refresh_ms(room: &RoomRecord, eta: Option<Eta>, ahead: u64, units: i64) -> f64 {
    let wait_s = eta
        .map(|e| e.seconds)
        .or_else(|| (room.state != "paused" && room.rate > 0.0).then(|| ahead as f64 / room.rate));
    let refresh = wait_s.map_or(5_000.0, |s| (s * 1000.0 / 4.0).clamp(1_000.0, 30_000.0));
    if room.rate > 0.0 {
        refresh.min((units.max(0) as f64 / room.rate * 1000.0).max(5_000.0))
    } else {
        refresh
    }
}

/// The wait of `ahead` positions at the release rate measured over the last 10 s;
/// `None` before the line has been seen moving for 8 s (it starts at the room's rate and
/// speeds up as no-shows give their credit back), and while it stands still.
fn eta(snapshot: &Snapshot, ahead: u64) -> Option<Eta> {
    if snapshot.room.state == "paused" {
        return None;
    }
    let rate = snapshot
        .release_rate(Duration::from_secs(10))
        .filter(|r| *r > 0.0)?;
    let long = snapshot.release_rate(Duration::from_secs(60));
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

#[cfg(test)]
#[allow(clippy::expect_used)] // a test may expect
mod tests {
    use stores::records::Fields;

    use super::*;

    /// An open room at 40 admissions/s in `state`.
    fn room(state: &str) -> RoomRecord {
        let fields: Fields = [
            ("state", state),
            ("rate", "40"),
            ("seed", "0123456789abcdef01234567"),
            ("served", "10000"),
            ("promised", "10000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        RoomRecord::from_fields(&fields).expect("a room")
    }

    /// `served` rising at `per_s` over the last `span` seconds, read four times a second.
    fn moving(per_s: f64, span: f64) -> Vec<(f64, u64)> {
        let steps = (span * 4.0) as u64;
        (0..=steps)
            .map(|i| {
                let ago = span - i as f64 / 4.0;
                (ago, 10_000 - (ago * per_s) as u64)
            })
            .collect()
    }

    #[test]
    fn a_release_is_told_only_once_the_replicas_hold_it() {
        let ticket = |arrival| Claims {
            kind: shared::room::Kind::Ticket,
            product: "p".into(),
            epoch: 1,
            user: "u".into(),
            device: "d".into(),
            arrival,
            id: "0123456789abcdef".into(),
            issued_s: 0,
            expires_s: u64::MAX,
            eta_s: 0,
        };
        let at = |r: RoomRecord, arrival| {
            let s = Snapshot::with_history(r, 10_000, &moving(40.0, 12.0));
            view(&s, &ticket(arrival), 0, 0.5)
        };
        // Arrival 20,000 is past the cohort of 0: position 20,000.
        let mut r = room("open");
        (r.served, r.promised) = (20_000, Some(19_000));
        let v = at(r.clone(), 20_000);
        assert_eq!((v.state, v.ahead), (WaitState::Queued, Some(1_000)));
        r.promised = Some(20_000);
        assert_eq!(at(r.clone(), 20_000).state, WaitState::Admitted);
        // Opened on the master, the opening not yet held by a replica: no position yet.
        r.promised = None;
        let v = at(r, 20_000);
        assert_eq!((v.state, v.position), (WaitState::Prequeue, None));
    }

    #[test]
    fn no_estimate_before_the_line_is_measured() {
        let s = Snapshot::with_history(room("open"), 100, &moving(40.0, 7.0));
        assert_eq!(eta(&s, 400), None);
        // How soon to ask again still follows the configured rate: 400 at 40/s, a quarter.
        let refresh = refresh_ms(&s.room, None, 400, 10_000);
        assert!((refresh - 2_500.0).abs() < 1.0, "{refresh}");
        // 20,000 ahead with 200 units left, at 40/s: they may be gone in 5 s.
        let refresh = refresh_ms(&s.room, None, 20_000, 200);
        assert!((refresh - 5_000.0).abs() < 1.0, "{refresh}");
        // With 60 left, not sooner than every 5 s either.
        let refresh = refresh_ms(&s.room, None, 20_000, 60);
        assert!((refresh - 5_000.0).abs() < 1.0, "{refresh}");
    }

    #[test]
    fn the_estimate_is_the_measured_speed_not_the_configured_rate() {
        // 90/s measured (no-shows' credit on top of the 40/s): 900 ahead is 10 s.
        let s = Snapshot::with_history(room("open"), 10_000, &moving(90.0, 12.0));
        let e = eta(&s, 900).expect("an estimate");
        assert!((e.seconds - 10.0).abs() < 0.5, "{e:?}");
        assert!(e.low <= e.seconds && e.seconds <= e.high, "{e:?}");
    }

    #[test]
    fn the_pre_queue_asks_again_within_a_second_after_the_opening_never_before_it_is_due() {
        for jitter in [0.0, 0.5, 1.0] {
            // 32 s before: about 30 s, but never past the opening plus a second.
            let r = prequeue_refresh_ms(32_000, jitter);
            assert!((24_000..=33_000).contains(&r), "{r}");
            // 5 s before: 4–6 s, never more than a second past the opening.
            let r = prequeue_refresh_ms(5_000, jitter);
            assert!((4_000..=6_000).contains(&r), "{r}");
            // Due now: within a second.
            let r = prequeue_refresh_ms(0, jitter);
            assert!((250..=1_000).contains(&r), "{r}");
        }
        // 30 s before, at the longest jitter: 36 s would be 6 s past the opening.
        assert_eq!(prequeue_refresh_ms(30_000, 1.0), 31_000);
    }

    #[test]
    fn a_paused_or_still_line_has_no_estimate() {
        let s = Snapshot::with_history(room("paused"), 10_000, &moving(40.0, 12.0));
        assert_eq!(eta(&s, 100), None);
        let s = Snapshot::with_history(room("open"), 10_000, &moving(0.0, 12.0));
        assert_eq!(eta(&s, 100), None);
    }
}
