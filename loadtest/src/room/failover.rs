//! What a waiting room must keep through a Redis failover (`loadtest/faults.sh
//! room-failover`): every admission it told of, and every place in line it gave, exactly
//! once. The rate checks of a calm run do not apply (the line stands still while the
//! product's slot has no master); the audit of the orders runs beside these.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::checks::Check;
use super::waiter::WaiterLog;

/// Claims that end a turn without losing it: the admission, or nothing left to admit to.
const CLAIM_ENDS: [&str; 3] = ["ADMITTED", "SOLD_OUT", "ROOM_CLOSED"];
/// Orders that end an admission without losing it.
const ORDER_ENDS: [&str; 2] = ["ACCEPTED", "SOLD_OUT"];

/// A waiter whose turn (or ticket) the room lost, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The user.
    pub user: String,
    /// What happened.
    pub why: String,
}

/// Waiters the room let down: a ticket refused after it was issued, a turn told
/// (`admitted`) whose claim was then refused, an admission given whose order was refused
/// or never answered, or an admission given that Redis no longer holds (`claimed`: the
/// users Redis counts as claimed).
pub fn lost_admissions(logs: &[WaiterLog], claimed: &HashSet<String>) -> Vec<Lost> {
    let mut lost = Vec::new();
    for l in logs {
        let mut lose = |why: String| {
            lost.push(Lost {
                user: l.user.clone(),
                why,
            })
        };
        if let Some(code) = &l.dropped {
            lose(format!("a poll of its ticket was answered {code}"));
            continue;
        }
        let Some((_, claim)) = &l.claim else {
            continue;
        };
        if !CLAIM_ENDS.contains(&claim.as_str()) {
            let told = l.polls.iter().any(|p| p.state == "admitted");
            lose(format!(
                "told admitted: {told}, its claim was answered {claim}"
            ));
            continue;
        }
        if claim != "ADMITTED" {
            continue;
        }
        if !claimed.contains(&l.user) {
            lose("its admission is not among the room's claims".into());
        }
        match &l.order {
            Some((_, code)) if ORDER_ENDS.contains(&code.as_str()) => {}
            Some((_, code)) => lose(format!("admitted, its order was answered {code}")),
            None => lose("admitted, no order answer".into()),
        }
    }
    lost
}

/// Places in line given twice: an arrival number on two tickets, a position told to two
/// users, or two positions told to one user. One line per reuse.
pub fn reused_positions(logs: &[WaiterLog]) -> Vec<String> {
    let mut out = Vec::new();
    let mut arrivals: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    let mut holders: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for l in logs.iter().filter(|l| l.arrival > 0) {
        arrivals.entry(l.arrival).or_default().push(&l.user);
        let told: BTreeSet<u64> = l.polls.iter().filter_map(|p| p.position).collect();
        if told.len() > 1 {
            out.push(format!("{} was told positions {told:?}", l.user));
        }
        for p in told {
            holders.entry(p).or_default().insert(&l.user);
        }
    }
    for (arrival, users) in arrivals.iter().filter(|(_, u)| u.len() > 1) {
        out.push(format!("arrival {arrival} was issued to {users:?}"));
    }
    for (position, users) in holders.iter().filter(|(_, u)| u.len() > 1) {
        out.push(format!("position {position} was told to {users:?}"));
    }
    out
}

/// The checks of a failover run.
pub fn checks(logs: &[WaiterLog], claimed: &HashSet<String>) -> (Vec<Check>, Vec<String>) {
    let lost = lost_admissions(logs, claimed);
    let reused = reused_positions(logs);
    let told = logs
        .iter()
        .filter(|l| l.polls.iter().any(|p| p.state == "admitted"))
        .count();
    let tickets = logs.iter().filter(|l| l.arrival > 0).count();
    let checks = vec![
        Check {
            name: format!(
                "lost admissions and tickets ({tickets} tickets, {told} told admitted, {} claimed)",
                claimed.len()
            ),
            value: lost.len() as f64,
            target: "= 0".into(),
            passed: lost.is_empty(),
        },
        Check {
            name: "reused positions (arrivals, positions told)".into(),
            value: reused.len() as f64,
            target: "= 0".into(),
            passed: reused.is_empty(),
        },
    ];
    let examples = lost
        .iter()
        .map(|l| format!("{}: {}", l.user, l.why))
        .chain(reused)
        .take(20)
        .collect();
    (checks, examples)
}

/// The checks of a failover run on `product`'s room, with `room verify`'s, and examples
/// of what failed.
pub async fn run(
    redis: &mut stores::redis::Conn,
    keys: &shared::keys::Keyspace,
    product: &shared::ProductId,
    logs: &[WaiterLog],
) -> anyhow::Result<(Vec<Check>, Vec<String>)> {
    let claimed: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys.sale(product).room_part("claimed"))
        .arg(0)
        .arg(-1)
        .query_async(redis)
        .await?;
    let (mut checks, examples) = checks(logs, &claimed.into_iter().collect());
    checks.push(super::checks::verify(
        &flashctl::room::verify(redis, keys, product).await?,
    ));
    Ok((checks, examples))
}

/// Every waiter's order, one `loadtest stream` answer a line.
pub fn write_answers(path: &std::path::Path, logs: &[WaiterLog]) -> anyhow::Result<()> {
    let mut text = String::new();
    for outcome in logs.iter().filter_map(WaiterLog::outcome) {
        text.push_str(&serde_json::to_string(&outcome)?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::super::waiter::Poll;
    use super::*;

    fn waiter(user: &str, arrival: u64, positions: &[u64]) -> WaiterLog {
        WaiterLog {
            user: user.into(),
            arrival,
            join: "TICKET".into(),
            polls: positions
                .iter()
                .map(|&p| Poll {
                    t: 0.0,
                    state: "queued".into(),
                    position: Some(p),
                    eta: None,
                    refresh_ms: 1_000,
                })
                .collect(),
            ..WaiterLog::default()
        }
    }

    #[test]
    fn a_place_given_twice_is_found_each_way() {
        let clean = [waiter("a", 1, &[2, 2]), waiter("b", 2, &[1])];
        assert!(reused_positions(&clean).is_empty());
        let twice = [waiter("a", 1, &[2]), waiter("b", 1, &[3])];
        assert_eq!(
            reused_positions(&twice).len(),
            1,
            "one arrival, two tickets"
        );
        let told_two = [waiter("a", 1, &[2]), waiter("b", 2, &[2])];
        assert_eq!(
            reused_positions(&told_two).len(),
            1,
            "one position, two users"
        );
        let moved = [waiter("a", 1, &[2, 5])];
        assert_eq!(reused_positions(&moved).len(), 1, "one user, two positions");
    }

    #[test]
    fn a_turn_told_and_then_refused_is_lost() {
        let mut w = waiter("a", 1, &[1]);
        w.polls[0].state = "admitted".into();
        w.claim = Some((1.0, "NOT_YET_ADMITTED".into()));
        assert_eq!(lost_admissions(&[w.clone()], &HashSet::new()).len(), 1);
        w.claim = Some((1.0, "ADMITTED".into()));
        w.order = Some((2.0, "ACCEPTED".into()));
        let claimed: HashSet<String> = ["a".to_owned()].into();
        assert!(lost_admissions(&[w.clone()], &claimed).is_empty());
        assert_eq!(
            lost_admissions(&[w.clone()], &HashSet::new()).len(),
            1,
            "an admission Redis no longer holds"
        );
        w.order = Some((2.0, "ADMISSION_INVALID".into()));
        assert_eq!(lost_admissions(&[w.clone()], &claimed).len(), 1);
        w.order = Some((2.0, "SOLD_OUT".into()));
        assert!(lost_admissions(&[w.clone()], &claimed).is_empty());
        w.dropped = Some("NOT_YOUR_TICKET".into());
        assert_eq!(lost_admissions(&[w], &claimed).len(), 1);
    }
}
