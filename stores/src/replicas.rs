//! Acceptance that survives the failover of a Redis master.
//!
//! Redis replicates asynchronously: a master that ran `lua/admit.lua` and died before
//! its replica received the write would hand the promoted replica the old stock, the old
//! per-user count and no idempotency record. So the admission, the relay's claim of
//! outbox entries and every transition of a reservation go to Redis together with a
//! `WAIT` in one pipeline ([`Replicas::write_then_wait`]), and nothing is published (nor
//! `202` or a payment's `200` sent) until `REDIS_MIN_REPLICAS` replicas acknowledged the
//! write.

use std::sync::Arc;
use std::time::Duration;

use crate::redis::Conn;
use redis::aio::ConnectionLike;
use redis::{Cmd, Value};
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
    #[error("redis failed while waiting for replicas: {0}")]
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

    /// Runs `write` (commands on one slot) and, in the same pipeline, `WAIT`s for the
    /// required replicas; returns `write`'s reply and whether they acknowledged it. Both
    /// travel together on one connection: `WAIT` counts the writes of the connection it
    /// arrives on, so a `WAIT` sent on its own could land on a connection the client had
    /// just replaced (after a timeout, say) and pass without covering anything. A refused
    /// write (a script that decided "no") makes the `WAIT` cover earlier writes of the
    /// connection only, which costs nothing when the replicas keep up.
    pub async fn write_then_wait(
        &self,
        conn: &mut Conn,
        write: Cmd,
    ) -> redis::RedisResult<(Value, Result<(), NotReplicated>)> {
        // A command's own error comes back as a value: make it the error it is.
        let checked = |v: Value| crate::reply::checked(v);
        let required = match self.required(conn).await {
            Ok(r) => r,
            Err(e) => {
                return Ok((
                    checked(conn.req_packed_command(&write).await?)?,
                    Err(e.into()),
                ));
            }
        };
        if required == 0 {
            return Ok((checked(conn.req_packed_command(&write).await?)?, Ok(())));
        }
        let timeout = self.inner.timeout;
        let mut pipe = redis::pipe();
        pipe.add_command(write)
            .cmd("WAIT")
            .arg(required)
            .arg(timeout.as_millis() as u64);
        let mut replies = conn.req_packed_commands(&pipe, 0, 2).await?.into_iter();
        let reply = match replies.next() {
            Some(v) => checked(v)?,
            None => return Err((redis::ErrorKind::Parse, "empty pipeline reply").into()),
        };
        let acked = match replies.next() {
            Some(Value::Int(n)) => n,
            other => {
                return Ok((reply, Err(NotReplicated::Unreadable(format!("{other:?}")))));
            }
        };
        if acked < i64::from(required) {
            return Ok((
                reply,
                Err(NotReplicated::TooFew {
                    acked,
                    required,
                    timeout,
                }),
            ));
        }
        Ok((reply, Ok(())))
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
