//! Once a second during a room run: the room's counters, the units left, and Redis's own
//! count of the commands it ran (`INFO commandstats`), for the timeline, the rate checks
//! and the cost of a poll.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shared::keys::SaleKeys;
use stores::records::{RoomRecord, SaleRecord};
use stores::redis::Conn;
use tokio::sync::watch;

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds into the run.
    pub t: f64,
    /// The room's state.
    pub state: String,
    /// Tickets issued.
    pub joined: u64,
    /// Positions released.
    pub served: u64,
    /// Admissions taken.
    pub claimed: u64,
    /// No-shows so far.
    pub noshows: u64,
    /// Units left plus on their way back.
    pub units: i64,
    /// Commands Redis ran so far, all and `HGETALL` (the cache's refresh reads).
    pub commands: u64,
    /// See `commands`.
    pub hgetall: u64,
}

/// `calls` of every command and of `HGETALL` in an `INFO commandstats` text.
fn command_counts(info: &str) -> (u64, u64) {
    let mut all = 0;
    let mut hgetall = 0;
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let calls = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        all += calls;
        if name == "hgetall" {
            hgetall += calls;
        }
    }
    (all, hgetall)
}

/// Samples `keys`' room every second until `stop`.
pub async fn sample(
    mut conn: Conn,
    keys: SaleKeys,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut out = Vec::new();
    loop {
        if let Ok(s) = one(&mut conn, &keys, started).await {
            out.push(s);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => break,
        }
    }
    if let Ok(s) = one(&mut conn, &keys, started).await {
        out.push(s);
    }
    out
}

async fn one(conn: &mut Conn, keys: &SaleKeys, started: Instant) -> anyhow::Result<Sample> {
    let room = RoomRecord::read(conn, keys)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no room"))?;
    let sale = SaleRecord::read(conn, keys).await?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let (commands, hgetall) = command_counts(&info);
    Ok(Sample {
        t: started.elapsed().as_secs_f64(),
        state: room.state,
        joined: room.joined,
        served: room.served,
        claimed: room.claimed,
        noshows: room.noshows,
        units: sale.map_or(0, |s| s.remaining + s.returning),
        commands,
        hgetall,
    })
}

/// When each admission was taken by Redis's clock, s after `start_ms`, sorted: every
/// claimed user's admission record (`exp`, written by `lua/room_claim.lua`) expires one
/// claim window after its claim.
pub async fn admission_times(
    redis: &mut stores::redis::Conn,
    keys: &shared::keys::Keyspace,
    product: &shared::ProductId,
    start_ms: u64,
    window_ms: u64,
) -> anyhow::Result<Vec<f64>> {
    let sk = keys.sale(product);
    let users: Vec<String> = redis::cmd("ZRANGE")
        .arg(sk.room_part("claimed"))
        .arg(0)
        .arg(-1)
        .query_async(redis)
        .await?;
    let mut times = Vec::with_capacity(users.len());
    for chunk in users.chunks(500) {
        let mut pipe = redis::pipe();
        for user in chunk {
            pipe.cmd("HGET").arg(sk.admission(user)).arg("exp");
        }
        let exps: Vec<Option<u64>> = pipe.query_async(redis).await?;
        times.extend(
            exps.into_iter()
                .flatten()
                .map(|exp| exp.saturating_sub(window_ms).saturating_sub(start_ms) as f64 / 1000.0),
        );
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_command_counts() {
        let info = "# Commandstats\r\ncmdstat_hgetall:calls=12,usec=30,usec_per_call=2.5\r\ncmdstat_evalsha:calls=5,usec=1\r\n";
        assert_eq!(command_counts(info), (17, 12));
    }
}
