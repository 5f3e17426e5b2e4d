//! Acceptance that survives the failover of a Redis master.
//!
//! Redis replicates asynchronously: a master that ran `lua/admit.lua` and died before
//! its replica received the write would hand the promoted replica the old stock, the old
//! per-user count and no idempotency record. So after an accepted admission, and before
//! the relay republishes an outbox entry, [`Replicas::confirm`] sends `WAIT` to the
//! product's master on the connection that wrote, and nothing is published (nor `202`
//! sent) until `REDIS_MIN_REPLICAS` replicas acknowledged every earlier write of that
//! connection.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use stores::redis::Conn;
use tokio::sync::OnceCell;

/// Why an accepted admission may not be promised yet.
#[derive(Debug, thiserror::Error)]
pub enum NotReplicated {
    /// Fewer replicas than required acknowledged within the timeout.
    #[error("{acked} of {required} replicas acknowledged the admission within {timeout:?}")]
    TooFew {
        /// Replicas that acknowledged.
        acked: i64,
        /// `REDIS_MIN_REPLICAS`.
        required: u32,
        /// `REDIS_REPLICA_WAIT_MS`.
        timeout: Duration,
    },
    /// `WAIT` answered something other than a count.
    #[error("unexpected WAIT reply: {0}")]
    Unreadable(String),
    /// `WAIT` (or the look at the cluster's shape) failed.
    #[error("redis failed while waiting for replicas")]
    Redis(#[from] redis::RedisError),
}

/// How many replicas must hold an admission before it is promised; cheap to clone.
#[derive(Debug, Clone)]
pub struct Replicas {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `REDIS_MIN_REPLICAS`, resolved on first use when unset.
    required: OnceCell<u32>,
    timeout: Duration,
}

impl Replicas {
    /// `configured` replicas (`None`: 1 on a cluster with replicas, 0 otherwise), each
    /// `WAIT` bounded by `timeout`.
    pub fn new(configured: Option<u32>, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                required: OnceCell::new_with(configured),
                timeout,
            }),
        }
    }

    /// Returns once every write `conn` made so far on the master of `key`'s slot is on
    /// the required number of replicas. `conn` must be the connection that wrote: `WAIT`
    /// counts the writes of the connection it arrives on.
    pub async fn confirm(&self, conn: &mut Conn, key: &str) -> Result<(), NotReplicated> {
        let required = self.required(conn).await?;
        if required == 0 {
            return Ok(());
        }
        let timeout = self.inner.timeout;
        let wait = redis::cmd("WAIT")
            .arg(required)
            .arg(timeout.as_millis() as u64)
            .to_owned();
        let acked = match conn.route_to_slot_of(key, &wait).await? {
            Value::Int(n) => n,
            other => {
                return Err(NotReplicated::Unreadable(format!("{other:?}")));
            }
        };
        if acked < i64::from(required) {
            return Err(NotReplicated::TooFew {
                acked,
                required,
                timeout,
            });
        }
        Ok(())
    }

    /// `REDIS_MIN_REPLICAS`, or its default for the topology behind `conn`, decided once.
    pub async fn required(&self, conn: &Conn) -> redis::RedisResult<u32> {
        self.inner
            .required
            .get_or_try_init(|| async {
                let required = if conn.is_cluster() && cluster_has_replicas(conn).await? {
                    1
                } else {
                    0
                };
                tracing::info!(
                    required,
                    "REDIS_MIN_REPLICAS unset: acceptances wait for {required} replica(s)"
                );
                Ok(required)
            })
            .await
            .copied()
    }
}

/// Whether any node of the cluster is a replica (`CLUSTER NODES`, flags `slave`).
async fn cluster_has_replicas(conn: &Conn) -> redis::RedisResult<bool> {
    let mut conn = conn.clone();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await?;
    Ok(nodes.lines().any(|line| {
        line.split(' ')
            .nth(2)
            .is_some_and(|flags| flags.split(',').any(|f| f == "slave" || f == "replica"))
    }))
}
