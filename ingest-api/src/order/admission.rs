//! The admission decision: one call of `lua/admit.lua` per order.
//!
//! The script decides sale state, idempotency, the per-user cap and the stock
//! decrement atomically and writes the outbox entry in the same step. This module only
//! builds the call and runs it; [`super::admit_reply`] turns the reply into a
//! [`Decision`], and no other code interprets the script's raw integers.

use redis::Value;
use shared::keys::{Keyspace, SaleKeys, Scope};
use stores::redis::Conn;

use super::admit_reply::parse_reply;
use super::rate::RateInfo;
use super::refusal::Refusal;
use super::replicas::{NotReplicated, Replicas};
use super::ticket::Ticket;

const ADMIT_LUA: &str = include_str!("../../../lua/admit.lua");
static ADMIT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(ADMIT_LUA));

/// What the admission script decided.
#[derive(Debug)]
pub enum Decision {
    /// Stock taken and outbox entry written; the order must now reach Kafka.
    Take {
        /// Units left after this order.
        remaining: i64,
        /// The outbox entry to confirm after publishing.
        entry_id: String,
        /// The reservation's payment deadline (Unix ms, Redis time; 0: none).
        deadline_ms: u64,
    },
    /// Same key and request as an earlier, confirmed acceptance.
    Replay {
        /// The stored status.
        status: u16,
        /// The stored body, byte for byte.
        body: String,
        /// The order it answered.
        order_id: String,
        /// The payment deadline it was accepted with (0: none).
        deadline_ms: u64,
    },
    /// Refused; nothing was taken.
    Refuse(Refusal),
}

/// What the script says about rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateReport {
    /// It returned before the limits step (the in-process limiter applies instead).
    NotEvaluated,
    /// Evaluated; this sale has no limit configured.
    Unlimited,
    /// Evaluated; the limit closest to exhaustion.
    Limited(RateInfo),
}

/// A decision, what the limits said, and whether the replicas hold it.
#[derive(Debug)]
pub struct Admitted {
    /// The decision.
    pub decision: Decision,
    /// For the rate-limit headers.
    pub rate: RateReport,
    /// Whether `REDIS_MIN_REPLICAS` replicas acknowledged the script's writes (`WAIT` in
    /// the same pipeline); an acceptance is promised only if they did.
    pub replicated: Result<(), NotReplicated>,
}

/// Why no decision could be made. Either way nothing was accepted.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Redis could not be reached or did not answer in time.
    #[error("redis unavailable")]
    Unavailable(#[source] redis::RedisError),
    /// The script answered something this build does not understand.
    #[error("unexpected admission reply: {0}")]
    BadReply(String),
}

/// Runs the admission script.
#[derive(Clone)]
pub struct Admission {
    conn: Conn,
    keys: Keyspace,
    idempotency_ttl_secs: u64,
    limits_enabled: bool,
    replicas: Replicas,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("keys", &self.keys)
            .finish()
    }
}

impl Admission {
    /// Uses `conn` (a multiplexed, reconnecting connection) and the deployment's keyspace;
    /// acceptances are promised once on `replicas`.
    pub fn new(
        conn: Conn,
        keys: Keyspace,
        idempotency_ttl_secs: u64,
        limits_enabled: bool,
        replicas: Replicas,
    ) -> Self {
        Self {
            conn,
            keys,
            idempotency_ttl_secs,
            limits_enabled,
            replicas,
        }
    }

    /// The same admission over another connection. Each HTTP worker thread gets its own
    /// (created on that thread), so the script's I/O runs where the request is handled
    /// instead of hopping to another thread and back on every order.
    pub fn with_connection(&self, conn: Conn) -> Self {
        Self {
            conn,
            ..self.clone()
        }
    }

    /// Decides one order in one Redis round trip: the script and a `WAIT` for the
    /// replicas, pipelined on one connection.
    #[tracing::instrument(name = "admit", skip_all, fields(product = %ticket.event.product_id))]
    pub async fn admit(&self, ticket: &Ticket<'_>) -> Result<Admitted, AdmissionError> {
        let order = &ticket.event;
        let call = AdmitCall {
            user: order.user_id.as_str(),
            idempotency_key: order.idempotency_key.as_str(),
            quantity: order.quantity.get(),
            network: &ticket.client.network,
            fingerprint: &ticket.client.fingerprint_id,
            hour: order.accepted_at_ms / 3_600_000,
            request_fingerprint: &ticket.request_fingerprint(),
            order_id: &order.order_id.to_string(),
            accepted_body: &ticket.accepted_body,
            event_json: &ticket.event_json,
            idempotency_ttl_secs: self.idempotency_ttl_secs,
            limits_enabled: self.limits_enabled,
        };
        let (keys, args) = call.keys_and_args(&self.keys.sale(&order.product_id));
        // EVALSHA; after NOSCRIPT (Redis lost its scripts: a restart, a failover) EVAL,
        // which also caches the script on the product's master.
        let call = |script: &str, body: &str| {
            let mut cmd = redis::cmd(script);
            cmd.arg(body).arg(keys.len()).arg(&keys).arg(&args);
            cmd
        };
        let mut conn = self.conn.clone();
        let evalsha = call("EVALSHA", ADMIT.get_hash());
        let (reply, replicated) = match self.replicas.write_then_wait(&mut conn, evalsha).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let eval = call("EVAL", ADMIT_LUA);
                self.replicas.write_then_wait(&mut conn, eval).await
            }
            other => other,
        }
        .map_err(AdmissionError::Unavailable)?;
        let Value::Array(reply) = reply else {
            return Err(AdmissionError::BadReply(format!("{reply:?}")));
        };
        let mut admitted = parse_reply(&reply)?;
        admitted.replicated = replicated;
        Ok(admitted)
    }
}

/// One call of `lua/admit.lua`: what goes into its `KEYS` and `ARGV`, which
/// [`AdmitCall::keys_and_args`] lays out in the order of the script's header — the one
/// place in Rust that knows it (the benchmark's `loadtest admit-call` prints it too).
#[derive(Debug, Clone, Copy)]
pub struct AdmitCall<'a> {
    /// The user id.
    pub user: &'a str,
    /// The idempotency key (unquoted).
    pub idempotency_key: &'a str,
    /// Units.
    pub quantity: u32,
    /// The client's network id (rate-limit and block key).
    pub network: &'a str,
    /// The device fingerprint's id (or the shared unknown bucket).
    pub fingerprint: &'a str,
    /// Unix hour of the violation counters.
    pub hour: u64,
    /// The normalized order, compared on replay.
    pub request_fingerprint: &'a str,
    /// The new order's id.
    pub order_id: &'a str,
    /// The `202` body stored for replays.
    pub accepted_body: &'a str,
    /// The `OrderPlaced` JSON for the outbox.
    pub event_json: &'a str,
    /// Idempotency retention.
    pub idempotency_ttl_secs: u64,
    /// Whether rate limits apply.
    pub limits_enabled: bool,
}

impl AdmitCall<'_> {
    /// `KEYS` (14) and `ARGV` (8) of this call on the product's keys.
    pub fn keys_and_args(&self, keys: &SaleKeys) -> (Vec<String>, Vec<String>) {
        let keys = vec![
            keys.sale(),
            keys.bought(),
            keys.idempotency(self.user, self.idempotency_key),
            keys.outbox(),
            keys.rate(Scope::Ip, self.network),
            keys.rate(Scope::Fingerprint, self.fingerprint),
            keys.rate(Scope::User, self.user),
            keys.rate(Scope::Global, "all"),
            keys.block(Scope::Ip, self.network),
            keys.block(Scope::Fingerprint, self.fingerprint),
            keys.block(Scope::User, self.user),
            keys.violations(self.hour),
            keys.reservation(self.order_id),
            keys.deadlines(),
        ];
        let args = vec![
            self.user.to_owned(),
            self.quantity.to_string(),
            self.request_fingerprint.to_owned(),
            self.order_id.to_owned(),
            self.accepted_body.to_owned(),
            self.event_json.to_owned(),
            self.idempotency_ttl_secs.to_string(),
            (if self.limits_enabled { "1" } else { "0" }).to_owned(),
        ];
        (keys, args)
    }
}
