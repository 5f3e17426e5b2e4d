//! The tasks every API instance runs beside its handlers: the outbox relay, the expiry
//! sweeper, the waiting rooms' drain and cache refresher, the sold-out refresher, the
//! sharded sales' upkeep and the violation counters' flush. They start with
//! the servers and stop after them, once in-flight requests are done.

use std::sync::Arc;
use std::time::Duration;

use shared::keys::Keyspace;
use stores::redis::Conn;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::order::admission::SoldOut;
use crate::order::admission::restock::Restock;
use crate::order::front_door::Violations;
use crate::order::handoff::Handoff;
use crate::order::reservations::Sweeper;
use crate::order::room::{Drain, RoomCache};

/// What the background tasks need.
pub struct Background {
    /// Expires unpaid reservations.
    pub sweeper: Sweeper,
    /// Republishes stranded outbox entries.
    pub relay: Handoff,
    /// How long an entry stays pending before the relay takes it (`RELAY_IDLE_MS`).
    pub relay_idle: Duration,
    /// What this instance knows is sold out.
    pub sold_out: Arc<SoldOut>,
    /// Finishes sharded sales' cut transfers and sweeps their idle shards.
    pub restock: Restock,
    /// Violation counters to flush.
    pub violations: Arc<Violations>,
    /// Releases the waiting rooms' next positions.
    pub drain: Drain,
    /// What the rooms' polls are answered from.
    pub rooms: Arc<RoomCache>,
    /// Redis, for the refresher and the flush.
    pub redis: Conn,
    /// Key layout.
    pub keys: Keyspace,
}

/// The running tasks.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts every task; `consumer` names this instance in the relay's consumer group
    /// and in the sweeper's lease.
    pub fn start(self, consumer: String) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        let Self {
            sweeper,
            relay,
            relay_idle,
            sold_out,
            restock,
            violations,
            drain,
            rooms,
            redis,
            keys,
        } = self;
        let tasks = vec![
            tokio::spawn(sweeper.run(consumer.clone(), stop_rx.clone())),
            tokio::spawn(drain.run(consumer.clone(), stop_rx.clone())),
            tokio::spawn(rooms.run(redis.clone(), keys.clone(), stop_rx.clone())),
            tokio::spawn(relay.run_relay(consumer, relay_idle, stop_rx.clone())),
            tokio::spawn(sold_out.run(redis.clone(), keys.clone(), stop_rx.clone())),
            tokio::spawn(restock.run(redis.clone(), stop_rx.clone())),
            tokio::spawn(async move { violations.run(redis, keys, stop_rx).await }),
        ];
        Running { stop, tasks }
    }
}

impl Running {
    /// Tells every task to stop and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
