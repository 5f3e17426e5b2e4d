//! The room's promises, checked on what the waiters were told and what Redis counted
//! (issue 19's acceptance): the rate bound and the rate kept, positions exact, the ETA's
//! error, the fair shuffle and the live order, the cost of a poll, sold-out told in
//! time, and no token let through where it should not be.

use serde::{Deserialize, Serialize};
use shared::room::{position, round_keys};

use super::bots::BotResults;
use super::sampler::Sample;
use super::waiter::WaiterLog;

/// What the room was configured with, and drew at its opening.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomFacts {
    /// Admissions per second.
    pub rate: f64,
    /// Admissions at once.
    pub burst: f64,
    /// The opening, s into the run.
    pub opened_s: f64,
    /// The seed and the cohort drawn at the opening.
    pub seed: String,
    /// See `seed`.
    pub cohort: u64,
    /// Each admission's time by Redis's clock (its record's expiry less the claim
    /// window), s into the run, sorted: what the rate bound is checked on, free of the
    /// waiters' own delays in reading the answers.
    pub claims_s: Vec<f64>,
    /// The claim window, s.
    pub claim_window_s: f64,
}

/// One check: what was measured against what it must be.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// What.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// The bound, in words.
    pub target: String,
    /// Whether it holds.
    pub passed: bool,
}

fn check(name: &str, value: f64, target: &str, passed: bool) -> Check {
    Check {
        name: name.to_owned(),
        value,
        target: target.to_owned(),
        passed,
    }
}

/// The most claims in any window of `w` seconds.
fn most_in(times: &[f64], w: f64) -> usize {
    let (mut best, mut lo) = (0, 0);
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= w {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// When the last unit went: the last accepted order.
pub fn sold_out_at(logs: &[WaiterLog]) -> Option<f64> {
    logs.iter()
        .filter_map(|l| {
            l.order
                .as_ref()
                .filter(|(_, c)| c == "ACCEPTED")
                .map(|(t, _)| *t)
        })
        .max_by(f64::total_cmp)
}

/// When the line stopped being bound by the rate: fewer than 10 s of waiters in line, or
/// fewer units left than one claim window of admissions at the rate (from there on,
/// released positions wait for units that admissions not yet used still hold).
pub fn rate_bound_until(samples: &[Sample], f: &RoomFacts) -> f64 {
    samples
        .iter()
        .find(|s| {
            (s.units as f64) < f.rate * f.claim_window_s
                || s.t > f.opened_s + 3.0
                    && s.joined.saturating_sub(s.served) < (f.rate * 10.0) as u64
        })
        .map_or(f64::MAX, |s| s.t)
}

/// The rate bound in windows of 1, 5, 10 and 30 s, and the share of the rate kept in every
/// 10 s window from 3 s after the opening while the line was bound by the rate.
fn rate_checks(samples: &[Sample], f: &RoomFacts) -> Vec<Check> {
    let times = &f.claims_s;
    let mut out = Vec::new();
    for w in [1.0, 5.0, 10.0, 30.0] {
        let most = most_in(times, w) as f64;
        let bound = f.rate * w + f.burst;
        out.push(check(
            &format!("claims in any {w:.0} s window (Redis's clock)"),
            most,
            &format!("≤ rate·W + burst = {bound:.0}"),
            most <= bound,
        ));
    }
    let end = rate_bound_until(samples, f);
    let mut worst = f64::MAX;
    let mut start = f.opened_s + 3.0;
    while start + 10.0 <= end {
        let n = times
            .iter()
            .filter(|t| (start..start + 10.0).contains(*t))
            .count() as f64;
        worst = worst.min(n / (f.rate * 10.0));
        start += 10.0;
    }
    let kept = if worst == f64::MAX { 0.0 } else { worst };
    out.push(check(
        "claims per 10 s window, share of rate·10 (worst)",
        kept,
        "≥ 0.95",
        kept >= 0.95,
    ));
    out
}

/// Every position told equals the one the published seed gives the ticket.
fn positions(logs: &[WaiterLog], f: &RoomFacts) -> Check {
    let keys = round_keys(&f.seed);
    let wrong = logs
        .iter()
        .flat_map(|l| l.polls.iter().map(move |p| (l.arrival, p.position)))
        .filter_map(|(n, p)| p.map(|p| (n, p)))
        .filter(|(n, p)| keys.is_none_or(|k| position(&k, f.cohort, *n) != *p))
        .count();
    check(
        "polls that told another position than the seed gives",
        wrong as f64,
        "= 0",
        wrong == 0,
    )
}

/// The ETA's relative error at p90, for waiters who waited at least 30 s from their first
/// estimate to a turn that came while the line was bound by the rate (`until`), and its
/// number of waiters; and every (told, waited) pair for the chart.
fn eta_error(logs: &[WaiterLog], until: f64) -> (Check, Vec<(f64, f64)>) {
    let mut pairs = Vec::new();
    for l in logs {
        let first = l
            .polls
            .iter()
            .find(|p| p.state == "queued" && p.eta.is_some());
        let turn = l.polls.iter().find(|p| p.state == "admitted");
        if let (Some(first), Some(turn)) = (first, turn) {
            pairs.push((first.eta.unwrap_or(0.0), turn.t - first.t, turn.t));
        }
    }
    let mut errors: Vec<f64> = pairs
        .iter()
        .filter(|(_, waited, turn)| *waited >= 30.0 && *turn < until)
        .map(|(told, waited, _)| (told - waited).abs() / waited)
        .collect();
    errors.sort_by(f64::total_cmp);
    let p90 = errors
        .get((errors.len() * 9 / 10).min(errors.len().saturating_sub(1)))
        .copied();
    let name = format!(
        "ETA error at p90, waits ≥ 30 s ending while rate-bound ({} waiters)",
        errors.len()
    );
    let c = check(
        &name,
        p90.unwrap_or(f64::NAN),
        "≤ 0.25",
        p90.is_some_and(|e| e <= 0.25),
    );
    (
        c,
        pairs
            .into_iter()
            .map(|(told, waited, _)| (told, waited))
            .collect(),
    )
}

/// Spearman's rho of arrival and position over the cohort, and live joins' inversions.
fn fairness(logs: &[WaiterLog], f: &RoomFacts) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(keys) = round_keys(&f.seed).filter(|_| f.cohort > 1) {
        let n = f.cohort as f64;
        let d2: f64 = (1..=f.cohort)
            .map(|i| (i as f64 - position(&keys, f.cohort, i) as f64).powi(2))
            .sum();
        let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
        let name = format!(
            "|Spearman rho(arrival, position)| over the cohort of {}",
            f.cohort
        );
        out.push(check(&name, rho.abs(), "≤ 0.03", rho.abs() <= 0.03));
    }
    let mut live: Vec<(u64, u64)> = logs
        .iter()
        .filter(|l| !l.prequeue && l.arrival > f.cohort)
        .filter_map(|l| {
            l.polls
                .iter()
                .find_map(|p| p.position)
                .map(|p| (l.arrival, p))
        })
        .collect();
    live.sort_unstable();
    let inversions = live.windows(2).filter(|w| w[1].1 < w[0].1).count();
    out.push(check(
        "live joins queued out of arrival order",
        inversions as f64,
        "= 0",
        inversions == 0,
    ));
    out
}

/// Redis commands per poll: the caches' reads (`HGETALL`) over the polls answered. The
/// sampler's own reads (two per sample: the room and the sale) are not counted.
fn cost(logs: &[WaiterLog], samples: &[Sample]) -> Check {
    let polls: usize = logs.iter().map(|l| l.polls.len()).sum();
    let reads = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => b
            .hgetall
            .saturating_sub(a.hgetall)
            .saturating_sub(2 * (samples.len() as u64 - 1)),
        _ => 0,
    };
    let per_poll = reads as f64 / polls.max(1) as f64;
    let name = format!("Redis commands per poll ({reads} cache reads, {polls} polls)");
    check(&name, per_poll, "≤ 0.01", per_poll <= 0.01)
}

/// Sold out: every waiter still in line is told at one of its first two polls more than a
/// second after the last unit went (the instances' snapshots are at most a second old),
/// and no claim succeeds after.
fn sold_out(logs: &[WaiterLog]) -> Vec<Check> {
    let Some(at) = sold_out_at(logs) else {
        return vec![check("the sale sold out", 0.0, "sold out mid-queue", false)];
    };
    let late = logs
        .iter()
        .filter(|l| {
            let in_line = l
                .polls
                .iter()
                .rev()
                .find(|p| p.t <= at && p.state != "admitted")
                .is_some_and(|p| p.state != "sold_out");
            let next: Vec<_> = l.polls.iter().filter(|p| p.t > at + 1.0).take(2).collect();
            in_line
                && l.left_s.is_none()
                && next.len() == 2
                && !next.iter().any(|p| p.state == "sold_out")
        })
        .count();
    let after = logs
        .iter()
        .filter(|l| {
            l.claim
                .as_ref()
                .is_some_and(|(t, c)| c == "ADMITTED" && *t > at + 0.5)
        })
        .count();
    vec![
        check(
            "waiters not told sold-out at one of their first 2 polls after the last unit (+1 s)",
            late as f64,
            "= 0",
            late == 0,
        ),
        check(
            "claims after the last unit",
            after as f64,
            "= 0",
            after == 0,
        ),
    ]
}

/// Every check of a run.
pub fn all(
    logs: &[WaiterLog],
    samples: &[Sample],
    bots: &BotResults,
    f: &RoomFacts,
) -> (Vec<Check>, Vec<(f64, f64)>) {
    let mut out = rate_checks(samples, f);
    out.push(positions(logs, f));
    let (eta, pairs) = eta_error(logs, rate_bound_until(samples, f));
    out.push(eta);
    out.extend(fairness(logs, f));
    out.push(cost(logs, samples));
    out.extend(sold_out(logs));
    let through = bots.total_accepted();
    let sent: u64 = bots.sent.values().sum();
    out.push(check(
        &format!("bots' requests let through (of {sent})"),
        through as f64,
        "= 0",
        through == 0,
    ));
    (out, pairs)
}

/// `room verify`'s verdict as a check.
pub fn verify(verified: &flashctl::room::Verified) -> Check {
    Check {
        name: format!(
            "room verify: the seed gives a permutation, and every one of {} claims its position",
            verified.claims
        ),
        value: verified.mismatched_claims as f64,
        target: "= 0 mismatches".into(),
        passed: verified.permutation && verified.mismatched_claims == 0,
    }
}
