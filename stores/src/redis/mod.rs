//! Redis connections, one type for both topologies: a single server (`REDIS_URL`) or a
//! Redis Cluster (`REDIS_CLUSTER_NODES`, seed `host:port`s; the URL then only lends its
//! credentials and options).
//!
//! [`Conn`] implements `redis::aio::ConnectionLike`, so scripts, commands and pipelines
//! run on it unchanged. On a cluster the client routes each command by its key's slot;
//! every key of one product shares a hash tag and so a slot (`shared::keys`), which keeps
//! every admission, hand-off and pipeline of one product on one master. The few callers
//! that need to know — a pipeline spanning products or order-status records, a `SCAN` of
//! one product's keys, `WAIT` after a write — ask [`Conn::is_cluster`] or use
//! [`Conn::route_to_slot_of`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

mod target;

pub use target::{Target, Tls};

/// A connection to a single server or to a cluster.
#[derive(Clone)]
pub enum Conn {
    /// One server: a reconnecting, multiplexed connection.
    Single(ConnectionManager),
    /// A cluster: one multiplexed connection per node, routed by slot, made on first use.
    Cluster(LazyCluster),
}

/// A cluster connection made on first use (and again after a failed attempt), and made
/// anew when it has answered nothing but timeouts for [`STUCK`]: the cluster client can
/// hang in a slot refresh after a failover (seen under load in `loadtest/faults.sh
/// room-failover`: one API instance timed out on every call for ten minutes while the
/// other, and the cluster, were well), and a fresh client reads the cluster's shape
/// again.
#[derive(Clone)]
pub struct LazyCluster {
    client: Arc<redis::cluster::ClusterClient>,
    conn: Arc<std::sync::Mutex<Option<Made>>>,
    connecting: Arc<tokio::sync::Mutex<()>>,
    /// Bounds the making of a connection (the client's own bound does not always hold).
    connect_within: Duration,
}

/// A connection and what it has answered.
#[derive(Clone)]
struct Made {
    conn: ClusterConnection,
    /// When it was made, or last answered something other than a timeout.
    alive_at: Arc<std::sync::Mutex<Instant>>,
}

/// How long a cluster connection may answer nothing but timeouts before it is replaced.
pub const STUCK: Duration = Duration::from_secs(5);

impl LazyCluster {
    fn new(client: redis::cluster::ClusterClient, connect_within: Duration) -> Self {
        Self {
            client: Arc::new(client),
            conn: Arc::new(std::sync::Mutex::new(None)),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
            connect_within,
        }
    }

    fn current(&self) -> Option<Made> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn get(&self) -> RedisResult<Made> {
        if let Some(made) = self.current() {
            return Ok(made);
        }
        let _one = self.connecting.lock().await;
        if let Some(made) = self.current() {
            return Ok(made);
        }
        let conn = tokio::time::timeout(self.connect_within, self.client.get_async_connection())
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to the redis cluster timed out",
                ))
            })??;
        let made = Made {
            conn,
            alive_at: Arc::new(std::sync::Mutex::new(Instant::now())),
        };
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(made.clone());
        Ok(made)
    }

    /// Notes what `made` answered: a timeout after [`STUCK`] of nothing else drops it, so
    /// the next call makes a fresh one.
    fn answered<T>(&self, made: &Made, result: RedisResult<T>) -> RedisResult<T> {
        let mut alive_at = made.alive_at.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Err(e) if e.is_timeout() => {
                if alive_at.elapsed() >= STUCK {
                    let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
                    if conn
                        .as_ref()
                        .is_some_and(|c| Arc::ptr_eq(&c.alive_at, &made.alive_at))
                    {
                        tracing::warn!(
                            "the redis cluster connection answered only timeouts for {STUCK:?}; making a new one"
                        );
                        *conn = None;
                    }
                }
            }
            _ => *alive_at = Instant::now(),
        }
        result
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Conn::Single",
            Self::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl Conn {
    /// Whether this talks to a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs `cmd` on the master that owns `key`'s slot (on a single server: there). For
    /// commands without a key of their own, such as `SCAN` over one product's keys or
    /// `WAIT` after one product's writes.
    pub async fn route_to_slot_of(&mut self, key: &str, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd).await,
            Self::Cluster(lazy) => {
                let slot = Slot::for_key(key);
                let route = Route::new(slot_number(slot), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let made = lazy.get().await?;
                let result = made.conn.clone().route_command(cmd.clone(), routing).await;
                lazy.answered(&made, result)
            }
        }
    }
}

/// The number of a slot (`Slot` keeps it private; its `Debug` is the number's).
fn slot_number(slot: Slot) -> u16 {
    let text = format!("{slot:?}");
    text.trim_start_matches("Slot(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(lazy) => Box::pin(async move {
                let made = lazy.get().await?;
                let result = made.conn.clone().req_packed_command(cmd).await;
                lazy.answered(&made, result)
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(lazy) => Box::pin(async move {
                let made = lazy.get().await?;
                let result = made
                    .conn
                    .clone()
                    .req_packed_commands(pipeline, offset, count)
                    .await;
                lazy.answered(&made, result)
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(_) => 0,
        }
    }
}

/// Commands on several keys sent together: one pipeline on a single server (one round
/// trip), one pipeline per group on a cluster, where a pipeline must stay within one slot
/// (every group's keys share a slot), all sent at once.
#[derive(Debug)]
pub struct Batch {
    cluster: bool,
    pipes: Vec<Pipeline>,
}

impl Batch {
    /// An empty batch for `conn`'s topology.
    pub fn new(conn: &Conn) -> Self {
        let cluster = conn.is_cluster();
        Self {
            cluster,
            pipes: if cluster {
                Vec::new()
            } else {
                vec![redis::pipe()]
            },
        }
    }

    /// The pipeline for the next group of commands on one slot.
    pub fn group(&mut self) -> &mut Pipeline {
        if self.cluster || self.pipes.is_empty() {
            self.pipes.push(redis::pipe());
        }
        let last = self.pipes.len() - 1;
        &mut self.pipes[last]
    }

    /// Sends every pipeline, concurrently, each on its own handle of `conn`.
    pub async fn exec(&self, conn: &Conn) -> RedisResult<()> {
        let sends = self.pipes.iter().map(|pipe| {
            let mut conn = conn.clone();
            async move { pipe.exec_async(&mut conn).await }
        });
        futures_util::future::try_join_all(sends).await.map(|_| ())
    }
}

/// A connection for a service, with `timeout` for connecting and for every answer and
/// one retry; on a single server at most 500 ms between reconnection attempts. It is
/// lazy: it connects on first use, on the runtime of the thread that creates it, so a
/// service starts (and reports not ready) while Redis is down.
pub fn manager(target: &Target, timeout: Duration) -> RedisResult<Conn> {
    if target.is_cluster() {
        let client = target
            .cluster_builder()?
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(1)
            .build()?;
        return Ok(Conn::Cluster(LazyCluster::new(
            client,
            (timeout * 4).max(Duration::from_secs(2)),
        )));
    }
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    Ok(Conn::Single(
        target.client()?.get_connection_manager_lazy(config)?,
    ))
}

/// A connection for a tool or a test (3 s to connect, 5 s per answer), made now.
pub async fn connect(target: &Target) -> RedisResult<Conn> {
    if target.is_cluster() {
        let client = target
            .cluster_builder()?
            .connection_timeout(Duration::from_secs(3))
            .response_timeout(Duration::from_secs(5))
            .build()?;
        let lazy = LazyCluster::new(client, Duration::from_secs(6));
        lazy.get().await?;
        return Ok(Conn::Cluster(lazy));
    }
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    Ok(Conn::Single(
        target
            .client()?
            .get_connection_manager_with_config(config)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hash_tag() {
        let a = slot_number(Slot::for_key("fs:{p:tv}:sale"));
        let b = slot_number(Slot::for_key("fs:{p:tv}:outbox"));
        assert_eq!(a, b);
        // `CLUSTER KEYSLOT foo` is 12182.
        assert_eq!(slot_number(Slot::for_key("foo")), 12_182);
    }
}
