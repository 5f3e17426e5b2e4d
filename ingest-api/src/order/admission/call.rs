//! The admission decision: one call of `lua/admit.lua` per order.
//!
//! The script decides sale state, idempotency, the per-user cap and the stock
//! decrement atomically and writes the outbox entry in the same step. This module only
//! builds the call and runs it; [`super::reply`] turns the reply into a
//! [`super::Decision`], and no other code interprets the script's raw integers.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use shared::keys::{Keyspace, SaleKeys, Scope};
use stores::Replicas;
use stores::redis::Conn;
use stores::script::Script;
use stores::shards::layout::FRESH;
use stores::shards::{Layouts, Shards};

use super::refusal::{Dependency, Refusal};
use super::reply::{AdmissionError, Admitted, Decision, parse_reply};
use super::restock::{BUSY_PAUSE, Restock, Restocked};
use super::ticket::Ticket;

/// How often one order is decided again on its shard after a restock.
const ROUNDS: usize = 8;
/// How old a layout read may be when a sale was not found: a sale opened sharded since
/// the read is then read again and found on its shards (within 100 ms of its opening an
/// order may still be told `SALE_NOT_FOUND`, as one sent just before the opening is).
const RECHECK: Duration = Duration::from_millis(100);

static ADMIT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::gated(include_str!("../../../../lua/admit.lua")));
static ROOM_USED: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../../../lua/room_used.lua")));

/// Runs the admission script.
#[derive(Clone)]
pub struct Admission {
    conn: Conn,
    keys: Keyspace,
    idempotency_ttl_secs: u64,
    limits_enabled: bool,
    replicas: Replicas,
    layouts: Arc<Layouts>,
    restock: Restock,
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
            layouts: Arc::new(Layouts::new(keys.clone())),
            restock: Restock::new(keys.clone(), replicas.clone()),
            keys,
            idempotency_ttl_secs,
            limits_enabled,
            replicas,
        }
    }

    /// What keeps a sharded sale's shards stocked (its upkeep runs in the background).
    pub fn restock(&self) -> &Restock {
        &self.restock
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
    /// replicas, pipelined on one connection, on the product's keys or (a sharded sale)
    /// on the user's home shard, restocked and decided again when the shard cannot serve
    /// it ([`super::restock`]).
    #[tracing::instrument(name = "admit", skip_all, fields(product = %ticket.event.product_id))]
    pub async fn admit(&self, ticket: &Ticket<'_>) -> Result<Admitted, AdmissionError> {
        let order = &ticket.event;
        let (fingerprint, order_id) = (ticket.request_fingerprint(), order.order_id.to_string());
        let call = AdmitCall {
            user: order.user_id.as_str(),
            idempotency_key: order.idempotency_key.as_str(),
            quantity: order.quantity.get(),
            network: &ticket.client.network,
            fingerprint: &ticket.client.fingerprint_id,
            hour: order.accepted_at_ms / 3_600_000,
            request_fingerprint: &fingerprint,
            order_id: &order_id,
            accepted_body: &ticket.accepted_body,
            event_json: &ticket.event_json,
            idempotency_ttl_secs: self.idempotency_ttl_secs,
            limits_enabled: self.limits_enabled,
            admission: ticket.admission.as_deref().unwrap_or_default(),
        };
        let mut conn = self.conn.clone();
        let product = &order.product_id;
        let layout = self.layouts.get(&mut conn, product, FRESH).await;
        let layout = layout.map_err(AdmissionError::Layout)?;
        if let Some(shards) = layout.shards() {
            return self.sharded(ticket, call, shards).await;
        }
        let admitted = self.once(&call, self.keys.sale(product)).await?;
        if !matches!(admitted.decision, Decision::Refuse(Refusal::SaleNotFound)) {
            return Ok(admitted);
        }
        let layout = self.layouts.get(&mut conn, product, RECHECK).await;
        match layout.map_err(AdmissionError::Layout)?.shards() {
            Some(shards) => self.sharded(ticket, call, shards).await,
            None => Ok(admitted),
        }
    }

    /// One call of the script on `keys`.
    async fn once(&self, call: &AdmitCall<'_>, keys: SaleKeys) -> Result<Admitted, AdmissionError> {
        let (names, args) = call.keys_and_args(&keys);
        let mut conn = self.conn.clone();
        let (reply, replicated) = ADMIT
            .call(&names, &args)
            .query_then_wait(&mut conn, &self.replicas)
            .await
            .map_err(AdmissionError::Unavailable)?;
        let Value::Array(reply) = reply else {
            return Err(AdmissionError::BadReply(format!("{reply:?}")));
        };
        let mut admitted = parse_reply(&reply)?;
        admitted.replicated = replicated;
        admitted.on = Some(keys);
        Ok(admitted)
    }

    /// A sharded sale's decision ([`Self::rounds`]). An acceptance that used a waiting
    /// room's admission (marked used on the home shard, where it was checked) is marked
    /// used in the room too, in the product's slot, in the background
    /// (`lua/room_used.lua`): missed, a repeat of the claim answers the same admission
    /// (the shard refuses its second use) and the drain counts it admitted-and-unused
    /// until it expires, holding back releases, never adding any.
    async fn sharded(
        &self,
        ticket: &Ticket<'_>,
        call: AdmitCall<'_>,
        shards: &Shards,
    ) -> Result<Admitted, AdmissionError> {
        let token = call.admission.to_owned();
        let admitted = self.rounds(ticket, call, shards).await?;
        if !token.is_empty() && matches!(admitted.decision, Decision::Take { .. }) {
            let (mut conn, user) = (self.conn.clone(), ticket.event.user_id.to_string());
            let room = self.keys.sale(&ticket.event.product_id);
            tokio::spawn(async move {
                let keys = [room.admission(&user), room.room_part("active")];
                let done: redis::RedisResult<i64> =
                    ROOM_USED.call(&keys, &[user, token]).query(&mut conn).await;
                if let Err(e) = done {
                    tracing::debug!(error = %e, "used admission not marked in the room");
                }
            });
        }
        Ok(admitted)
    }

    /// On the user's home shard, restocked and decided again (limits consumed once: the
    /// first call's) while units are elsewhere in the sale.
    async fn rounds(
        &self,
        ticket: &Ticket<'_>,
        mut call: AdmitCall<'_>,
        shards: &Shards,
    ) -> Result<Admitted, AdmissionError> {
        let product = &ticket.event.product_id;
        let (index, keys) = shards.home(&self.keys, product, &ticket.event.user_id);
        let need = i64::from(call.quantity);
        let (mut rate, mut last) = (None, None);
        let mut conn = self.conn.clone();
        for _ in 0..ROUNDS {
            let mut admitted = self.once(&call, keys.clone()).await?;
            admitted.sharded = true;
            let rate = rate.get_or_insert_with(|| admitted.rate.clone());
            admitted.rate = rate.clone();
            call.limits_enabled = false;
            match admitted.decision {
                Decision::Take { remaining, .. } if remaining < shards.low_water() => {
                    self.restock.soon(&self.conn, product, shards, index);
                    return Ok(admitted);
                }
                Decision::Refuse(Refusal::SoldOut { .. }) => {}
                Decision::Take { .. } | Decision::Replay { .. } | Decision::Refuse(_) => {
                    return Ok(admitted);
                }
            }
            let restocked = self
                .restock
                .now(&mut conn, product, shards, (index, &keys), need)
                .await;
            match restocked {
                Ok(Restocked::Moved) => {}
                Ok(Restocked::Busy) => tokio::time::sleep(BUSY_PAUSE).await,
                Ok(Restocked::Short { left }) => {
                    admitted.decision = Decision::Refuse(Refusal::SoldOut { remaining: left });
                    return Ok(admitted);
                }
                Err(e) => {
                    tracing::warn!(error = %e, %product, shard = index, "shard restock failed; refused, nothing taken");
                    return Ok(unavailable(admitted));
                }
            }
            last = Some(admitted);
        }
        tracing::warn!(%product, shard = index, "no units reached the shard in {ROUNDS} rounds; refused, nothing taken");
        last.map(unavailable)
            .ok_or_else(|| AdmissionError::BadReply("no round ran".into()))
    }
}

/// A sharded sale's order its shard refused `SOLD_OUT` and could not be restocked for
/// (Redis failed during a transfer, or no units reached it in time): 503 with the
/// outcome known, since every decision so far refused it, and the limits the first
/// decision reported.
fn unavailable(mut refused: Admitted) -> Admitted {
    refused.decision = Decision::Refuse(Refusal::Unavailable {
        dependency: Dependency::Redis,
        outcome_unknown: false,
    });
    refused
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
    /// The admission token's id from the waiting room (`""`: none sent).
    pub admission: &'a str,
}

impl AdmitCall<'_> {
    /// `KEYS` (17) and `ARGV` (9) of this call on the product's keys.
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
            keys.room(),
            keys.admission(self.user),
            keys.room_part("active"),
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
            self.admission.to_owned(),
        ];
        (keys, args)
    }
}
