//! What this instance knows of each waiting room, refreshed a few times a second: the
//! room's few counters and the units its product has left. Polls of `GET
//! /queue/{p}/status` are answered from here, so however many shoppers wait, the line
//! costs Redis one command per room and refresh on each instance (the room's hash, which
//! the drain keeps the product's units in).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use shared::ProductId;
use shared::keys::Keyspace;
use shared::room::round_keys;
use stores::records::{RoomRecord, SaleRecord};
use stores::redis::Conn;
use tokio::sync::watch;

/// How often polled rooms are read again.
pub const REFRESH: Duration = Duration::from_millis(250);
/// A room nobody polled for this long is no longer refreshed (a later poll reads it
/// again itself): a quiet room costs Redis nothing.
const ACTIVE: Duration = Duration::from_secs(5);
/// A snapshot older than this is not answered from; the poll reads the room again.
const STALE: Duration = Duration::from_secs(1);
/// A room nobody polled for this long is forgotten, with its history.
const IDLE: Duration = Duration::from_secs(60);
/// How much history of `served` is kept for the measured release rate.
const HISTORY: Duration = Duration::from_secs(60);
/// How long the line must have been seen moving before its rate counts as measured
/// (most of the estimate's 10 s window). The line starts at the room's rate and speeds up
/// as released positions nobody claims give their credit back (3 s after their release,
/// and again for the positions that credit released), settling within about 10 s.
const MEASURED: Duration = Duration::from_secs(8);

/// One room as last read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The room record.
    pub room: RoomRecord,
    /// Units left plus units on their way back (0: sold out).
    pub units: i64,
    /// The shuffle's round keys, once open.
    pub keys: Option<[u64; 6]>,
    /// When it was read.
    pub read_at: Instant,
    /// (when, served) of the last minute's reads, oldest first.
    history: VecDeque<(Instant, u64)>,
}

impl Snapshot {
    /// Positions released per second, measured over the last `over` (at least
    /// [`MEASURED`] of history), else `None`.
    pub fn release_rate(&self, over: Duration) -> Option<f64> {
        let (now, served) = *self.history.back()?;
        let (then, before) = self
            .history
            .iter()
            .find(|(t, _)| now.duration_since(*t) <= over)
            .copied()?;
        let dt = now.duration_since(then).as_secs_f64();
        (dt >= MEASURED.as_secs_f64()).then(|| served.saturating_sub(before) as f64 / dt)
    }

    /// A snapshot of `room` whose history of `served` is `history` (seconds ago, served).
    #[cfg(test)]
    pub fn with_history(room: RoomRecord, units: i64, history: &[(f64, u64)]) -> Self {
        let now = Instant::now();
        Self {
            keys: room.seed.as_deref().and_then(round_keys),
            units,
            room,
            read_at: now,
            history: history
                .iter()
                .map(|&(ago, served)| (now - Duration::from_secs_f64(ago), served))
                .collect(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    snapshot: Option<Arc<Snapshot>>,
    polled: Instant,
}

/// The rooms this instance serves polls for.
#[derive(Debug, Default)]
pub struct RoomCache {
    rooms: RwLock<HashMap<ProductId, Entry>>,
}

impl RoomCache {
    /// The last snapshot of `product`'s room (noting that it is polled); `None` before the
    /// first read or when the last is older than [`STALE`] (the room was quiet).
    pub fn get(&self, product: &ProductId) -> Option<Arc<Snapshot>> {
        let fresh = |s: &Arc<Snapshot>| s.read_at.elapsed() < STALE;
        {
            let rooms = self.rooms.read().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = rooms.get(product)
                && e.polled.elapsed() < REFRESH
            {
                return e.snapshot.clone().filter(fresh);
            }
        }
        let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
        let e = rooms.entry(product.clone()).or_insert(Entry {
            snapshot: None,
            polled: Instant::now(),
        });
        e.polled = Instant::now();
        e.snapshot.clone().filter(fresh)
    }

    /// Reads one room now (a cache miss, or a refresh); `None` without a room.
    pub async fn load(
        &self,
        conn: &mut Conn,
        keys: &Keyspace,
        product: &ProductId,
    ) -> redis::RedisResult<Option<Arc<Snapshot>>> {
        let sk = keys.sale(product);
        let room = RoomRecord::read(conn, &sk).await?;
        // The drain writes the units into the room each round; the sale is read only
        // before its first.
        let units = match room.as_ref().and_then(|r| r.units) {
            Some(units) => units,
            None => SaleRecord::read(conn, &sk)
                .await?
                .map_or(0, |s| s.remaining + s.returning),
        };
        let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
        let e = rooms.entry(product.clone()).or_insert(Entry {
            snapshot: None,
            polled: Instant::now(),
        });
        let Some(room) = room else {
            e.snapshot = None;
            return Ok(None);
        };
        let now = Instant::now();
        let mut history = e
            .snapshot
            .as_ref()
            .filter(|s| s.room.epoch == room.epoch && s.room.told().is_some())
            .map(|s| s.history.clone())
            .unwrap_or_default();
        // The release rate is measured from the opening on: the still line before it
        // would make the first estimates many times too long.
        if let Some(served) = room.told() {
            history.push_back((now, served));
        }
        while history
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > HISTORY)
        {
            history.pop_front();
        }
        let snapshot = Arc::new(Snapshot {
            keys: room.seed.as_deref().and_then(round_keys),
            units,
            room,
            read_at: now,
            history,
        });
        e.snapshot = Some(snapshot.clone());
        Ok(Some(snapshot))
    }

    /// Reads again every room polled within [`ACTIVE`], every [`REFRESH`], until `stop`;
    /// forgets those not polled within [`IDLE`].
    pub async fn run(
        self: Arc<Self>,
        mut conn: Conn,
        keys: Keyspace,
        mut stop: watch::Receiver<bool>,
    ) {
        while shared::service::shutdown::next_round(&mut stop, REFRESH).await {
            let polled: Vec<ProductId> = {
                let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
                rooms.retain(|_, e| e.polled.elapsed() < IDLE);
                rooms
                    .iter()
                    .filter(|(_, e)| e.polled.elapsed() < ACTIVE)
                    .map(|(p, _)| p.clone())
                    .collect()
            };
            for product in polled {
                if let Err(e) = self.load(&mut conn, &keys, &product).await {
                    tracing::debug!(error = %e, %product, "room refresh failed; keeping the last snapshot");
                }
            }
        }
    }
}
