//! Calling a Lua script of `lua/`: `EVALSHA` first, and after `NOSCRIPT` (Redis lost its
//! scripts: a restart, a failover) `EVAL` with the script's text, which also caches it on
//! that master. One helper for every caller, whether it sends the call alone
//! ([`ScriptCall::query`]), pipelined with a `WAIT` ([`ScriptCall::query_then_wait`]), or
//! inside a batch ([`ScriptCall::cmd`], then [`Script::load`] after `NOSCRIPT`).

use redis::{Cmd, FromRedisValue, RedisError, RedisResult, ToRedisArgs, Value};

use crate::redis::Conn;
use crate::replicas::{NotReplicated, Replicas};

/// `lua/lib/gate.lua`: the blocklists and rate limits every script that lets a client
/// in shares ([`Script::gated`]).
pub const GATE: &str = include_str!("../../lua/lib/gate.lua");

/// `lua/lib/room.lua`: what the waiting room's scripts share ([`Script::room`]).
pub const ROOM: &str = include_str!("../../lua/lib/room.lua");

/// A script of `lua/`, loaded with `include_str!`.
#[derive(Debug)]
pub struct Script {
    source: String,
    inner: redis::Script,
}

impl Script {
    /// The script whose text is `source`.
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            inner: redis::Script::new(source),
        }
    }

    /// The script `body` with [`GATE`] before it (`lua/admit.lua`, `lua/room_join.lua`,
    /// `lua/room_claim.lua`): one text, one SHA1, as `redis-cli SCRIPT LOAD "$(cat
    /// lua/lib/gate.lua lua/admit.lua)"` loads it.
    pub fn gated(body: &str) -> Self {
        Self::new(&format!("{GATE}{body}"))
    }

    /// The room script `body` with [`GATE`] and [`ROOM`] before it
    /// (`lua/room_join.lua`, `room_claim.lua`, `room_drain.lua`).
    pub fn room(body: &str) -> Self {
        Self::new(&format!("{GATE}{ROOM}{body}"))
    }

    /// Its SHA1, as `EVALSHA` names it.
    pub fn hash(&self) -> &str {
        self.inner.get_hash()
    }

    /// Its text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// One call with `keys` and `args`.
    pub fn call<K: ToRedisArgs, A: ToRedisArgs>(&self, keys: &[K], args: &[A]) -> ScriptCall<'_> {
        ScriptCall {
            script: self,
            key_count: keys.len(),
            keys: keys.iter().flat_map(ToRedisArgs::to_redis_args).collect(),
            args: args.iter().flat_map(ToRedisArgs::to_redis_args).collect(),
        }
    }

    /// Loads the script into the server of `conn` (`SCRIPT LOAD`), for callers that send
    /// `EVALSHA` inside a batch and repeat the batch after `NOSCRIPT`.
    pub async fn load(&self, conn: &mut Conn) -> RedisResult<()> {
        self.inner
            .prepare_invoke()
            .load_async(conn)
            .await
            .map(|_| ())
    }
}

/// Whether Redis answered that it does not have the script.
pub fn is_noscript(e: &RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
        || e.code() == Some("NOSCRIPT")
}

/// A script with its `KEYS` and `ARGV`.
#[derive(Debug)]
pub struct ScriptCall<'a> {
    script: &'a Script,
    key_count: usize,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl ScriptCall<'_> {
    /// The call as one command: `EVALSHA`, or with `source` the script's text (`EVAL`).
    pub fn cmd(&self, source: bool) -> Cmd {
        let mut cmd = if source {
            redis::cmd("EVAL").arg(&self.script.source).to_owned()
        } else {
            redis::cmd("EVALSHA").arg(self.script.hash()).to_owned()
        };
        cmd.arg(self.key_count).arg(&self.keys).arg(&self.args);
        cmd
    }

    /// Runs the call on `conn` and reads its reply as `T`: `EVALSHA`, then `EVAL` if
    /// Redis lost the script.
    pub async fn query<T: FromRedisValue>(&self, conn: &mut Conn) -> RedisResult<T> {
        match self.cmd(false).query_async(conn).await {
            Err(e) if is_noscript(&e) => self.cmd(true).query_async(conn).await,
            other => other,
        }
    }

    /// Runs the call on `conn` pipelined with a `WAIT` for `replicas`
    /// ([`Replicas::write_then_wait`]): the reply, and whether the replicas hold the
    /// call's writes. `EVALSHA`, then `EVAL` if Redis lost the script.
    pub async fn query_then_wait(
        &self,
        conn: &mut Conn,
        replicas: &Replicas,
    ) -> RedisResult<(Value, Result<(), NotReplicated>)> {
        match replicas.write_then_wait(conn, self.cmd(false)).await {
            Err(e) if is_noscript(&e) => replicas.write_then_wait(conn, self.cmd(true)).await,
            other => other,
        }
    }
}
