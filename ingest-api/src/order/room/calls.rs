//! The room's scripts: `lua/room_join.lua`, `lua/room_claim.lua` (each pipelined with a
//! `WAIT` for the required replicas, like an admission: a place in line and an admission
//! must survive a failover), `lua/room_drain.lua` (with its `WAIT` too, after which
//! `lua/room_promise.lua` lets the polls tell what it released); their replies read
//! here.

use redis::Value;
use shared::keys::{Keyspace, SaleKeys, Scope};
use shared::room::new_seed;
use shared::{ProductId, UserId};
use stores::Replicas;
use stores::redis::Conn;
use stores::reply::{items, text, unsigned};
use stores::script::Script;
use stores::shards::Layout;

use super::refusal::RoomRefusal;
use crate::order::admission::reply::rate_report;
use crate::order::admission::{RateReport, Refusal};
use crate::order::front_door::Client;

static JOIN: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::room(include_str!("../../../../lua/room_join.lua")));
static CLAIM: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::room(include_str!("../../../../lua/room_claim.lua")));
static DRAIN: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::room(include_str!("../../../../lua/room_drain.lua")));
static GRANT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../../../lua/room_grant.lua")));
static PROMISE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../../../../lua/room_promise.lua")));

/// Why a room call did not give what was asked.
#[derive(Debug)]
pub enum RoomError {
    /// The room's own refusal.
    Room(RoomRefusal),
    /// A refusal orders know too: blocked, rate limited, sold out, Redis unavailable.
    Order(Refusal),
}

impl From<RoomRefusal> for RoomError {
    fn from(r: RoomRefusal) -> Self {
        Self::Room(r)
    }
}

/// A ticket as `lua/room_join.lua` gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The arrival number.
    pub arrival: u64,
    /// The room's epoch.
    pub epoch: u64,
}

/// An admission as `lua/room_claim.lua` gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The admission record's token id (a repeat of a claim gives the first one).
    pub id: String,
    /// When it expires (Unix ms, Redis time).
    pub expires_ms: u64,
}

/// What one drain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    /// The room's state.
    pub state: String,
    /// Positions released so far.
    pub served: u64,
    /// Released by this pass.
    pub released: u64,
    /// Tickets issued.
    pub joined: u64,
    /// Released positions not claimed within the window.
    pub noshows: u64,
    /// Admissions taken.
    pub claimed: u64,
    /// Whether the replicas held this drain and the polls may now tell `served`.
    pub promised: bool,
}

/// The room's calls on one connection.
#[derive(Clone, Debug)]
pub struct RoomCalls {
    conn: Conn,
    replicas: Replicas,
    limits_enabled: bool,
}

/// The keys of the blocks and limits (`lua/lib/gate.lua`) of `user` from `client`, in the
/// order the scripts take them: rate ip, fp, user, global; block ip, fp, user; the
/// hour's violations.
fn gate_keys(keys: &SaleKeys, user: &str, client: &Client) -> Vec<String> {
    let (net, fp) = (client.network.as_str(), client.fingerprint_id.as_str());
    let hour = shared::event::now_ms() / 3_600_000;
    vec![
        keys.rate(Scope::Ip, net),
        keys.rate(Scope::Fingerprint, fp),
        keys.rate(Scope::User, user),
        keys.rate(Scope::Global, "all"),
        keys.block(Scope::Ip, net),
        keys.block(Scope::Fingerprint, fp),
        keys.block(Scope::User, user),
        keys.violations(hour),
    ]
}

impl RoomCalls {
    /// Calls over `conn`, promised once on `replicas`.
    pub fn new(conn: Conn, replicas: Replicas, limits_enabled: bool) -> Self {
        Self {
            conn,
            replicas,
            limits_enabled,
        }
    }

    fn limits(&self) -> String {
        (if self.limits_enabled { "1" } else { "0" }).to_owned()
    }

    /// Runs a gated call with its `WAIT`; a reply only once the replicas hold it.
    async fn call(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Vec<Value>, RoomError> {
        let mut conn = self.conn.clone();
        let unavailable = |outcome_unknown| {
            RoomError::Order(Refusal::Unavailable {
                dependency: crate::order::admission::Dependency::Redis,
                outcome_unknown,
            })
        };
        let (reply, replicated) = script
            .call(keys, args)
            .query_then_wait(&mut conn, &self.replicas)
            .await
            .map_err(|e| unavailable(!e.is_connection_refusal()))?;
        replicated.map_err(|e| {
            tracing::warn!(error = %e, "room call not on enough replicas");
            unavailable(true)
        })?;
        Ok(items(Some(&reply))
            .map(<[Value]>::to_vec)
            .unwrap_or_default())
    }

    /// Joins `user` from `client` to the room of `keys`' product.
    pub async fn join(
        &self,
        keys: &SaleKeys,
        user: &str,
        client: &Client,
    ) -> (Result<Joined, RoomError>, RateReport) {
        let mut k = vec![
            keys.room(),
            keys.room_part("tickets"),
            keys.room_part("devices"),
            keys.sale(),
        ];
        k.extend(gate_keys(keys, user, client));
        let args = [
            user.to_owned(),
            client.fingerprint_id.clone(),
            new_seed(),
            self.limits(),
        ];
        match self.call(&JOIN, &k, &args).await {
            Ok(reply) => read(&reply, |code, r| match code {
                "TICKET" => Some(Ok(Joined {
                    arrival: unsigned(r.get(2))?,
                    epoch: unsigned(r.get(3))?,
                })),
                "DEVICE_HAS_TICKET" => Some(Err(RoomRefusal::DeviceHasTicket.into())),
                "ROOM_NOT_OPEN" => {
                    let from = unsigned(r.get(2))?;
                    let secs = from.saturating_sub(shared::event::now_ms()).div_ceil(1000);
                    Some(Err(RoomRefusal::NotOpenYet {
                        retry_after_secs: secs.max(1),
                    }
                    .into()))
                }
                _ => None,
            }),
            Err(e) => (Err(e), RateReport::NotEvaluated),
        }
    }

    /// Claims the admission of the ticket (`epoch`, `arrival`) of `user` from `client`
    /// in the room of `product`, under the new token id `id`; on a sharded sale copies it
    /// to the buyer's home shard once the claim's replicas hold it.
    pub async fn claim(
        &self,
        (ks, product): (&Keyspace, &ProductId),
        user: &UserId,
        client: &Client,
        ticket: (u64, u64),
        id: &str,
    ) -> (Result<Claimed, RoomError>, RateReport) {
        let home = match self.home(ks, product, user).await {
            Ok(home) => home,
            Err(e) => return (Err(e), RateReport::NotEvaluated),
        };
        let (keys, user) = (ks.sale(product), user.as_str());
        let (claimed, rate) = self.claim_on_room(&keys, user, client, ticket, id).await;
        let (Ok(admission), Some(home)) = (&claimed, home) else {
            return (claimed, rate);
        };
        let args = [
            admission.id.clone(),
            admission.expires_ms.to_string(),
            ticket.0.to_string(),
        ];
        match self.call(&GRANT, &[home.admission(user)], &args).await {
            Ok(_) => (claimed, rate),
            Err(e) => {
                tracing::warn!(
                    "admission not copied to the buyer's home shard; a repeat of the claim copies it"
                );
                (Err(e), rate)
            }
        }
    }

    /// The home shard of `user` if `product`'s sale is sharded, where its admission is
    /// copied.
    async fn home(
        &self,
        keys: &Keyspace,
        product: &ProductId,
        user: &UserId,
    ) -> Result<Option<SaleKeys>, RoomError> {
        let mut conn = self.conn.clone();
        let layout = Layout::read(&mut conn, &keys.sale(product)).await;
        let layout = layout.map_err(|e| {
            tracing::warn!(error = %e, %product, "sale layout unreadable; claim refused");
            RoomError::Order(Refusal::Unavailable {
                dependency: crate::order::admission::Dependency::Redis,
                outcome_unknown: false,
            })
        })?;
        Ok(layout.shards().map(|s| s.home(keys, product, user).1))
    }

    /// `lua/room_claim.lua` on the product's slot.
    async fn claim_on_room(
        &self,
        keys: &SaleKeys,
        user: &str,
        client: &Client,
        ticket: (u64, u64),
        id: &str,
    ) -> (Result<Claimed, RoomError>, RateReport) {
        let mut k = vec![
            keys.room(),
            keys.room_part("tickets"),
            keys.room_part("releases"),
            keys.room_part("claimed"),
            keys.room_part("active"),
            keys.room_part("claim_rate"),
            keys.admission(user),
            keys.sale(),
        ];
        k.extend(gate_keys(keys, user, client));
        let args = [
            user.to_owned(),
            client.fingerprint_id.clone(),
            ticket.0.to_string(),
            ticket.1.to_string(),
            id.to_owned(),
            new_seed(),
            self.limits(),
        ];
        match self.call(&CLAIM, &k, &args).await {
            Ok(reply) => read(&reply, |code, r| match code {
                "ADMITTED" => Some(Ok(Claimed {
                    id: text(r.get(2))?,
                    expires_ms: unsigned(r.get(3))?,
                })),
                "NOT_YOUR_TICKET" => Some(Err(RoomRefusal::NotYourTicket.into())),
                "NOT_YET_ADMITTED" => Some(Err(RoomRefusal::NotYetAdmitted {
                    position: unsigned(r.get(2))?,
                    served: unsigned(r.get(3))?,
                }
                .into())),
                "CLAIM_EXPIRED" => Some(Err(RoomRefusal::ClaimExpired.into())),
                "USED" => Some(Err(RoomRefusal::AdmissionUsed.into())),
                "SOLD_OUT" => Some(Err(RoomError::Order(Refusal::SoldOut { remaining: 0 }))),
                "ROOM_THROTTLED" => Some(Err(RoomRefusal::Throttled {
                    retry_after_ms: unsigned(r.get(2))?,
                }
                .into())),
                _ => None,
            }),
            Err(e) => (Err(e), RateReport::NotEvaluated),
        }
    }

    /// One drain of the room of `keys`' product (the caller holds the lease), then, once
    /// the required replicas hold it, its promise: a release is told to no waiter before
    /// a failover would keep it. `units`: a sharded sale's units left and returning,
    /// from its census (`None`: the script reads the product's hash).
    pub async fn drain(
        &self,
        conn: &mut Conn,
        keys: &SaleKeys,
        units: Option<i64>,
    ) -> redis::RedisResult<Drained> {
        let k = [
            keys.room(),
            keys.room_part("releases"),
            keys.room_part("claimed"),
            keys.room_part("active"),
            keys.sale(),
        ];
        let (reply, replicated) = DRAIN
            .call(
                &k,
                &[new_seed(), units.map(|u| u.to_string()).unwrap_or_default()],
            )
            .query_then_wait(conn, &self.replicas)
            .await?;
        let parts = items(Some(&reply)).unwrap_or_default();
        let served = unsigned(parts.get(1)).unwrap_or(0);
        let epoch = text(parts.get(8));
        let promised = match (replicated, epoch) {
            (Ok(()), Some(epoch)) => {
                let _: Value = PROMISE
                    .call(&[keys.room()], &[epoch, served.to_string()])
                    .query(conn)
                    .await?;
                true
            }
            (Err(e), _) => {
                tracing::debug!(error = %e, "room drain not on enough replicas; not told yet");
                false
            }
            (Ok(()), None) => false,
        };
        Ok(Drained {
            state: text(parts.first()).unwrap_or_default(),
            served,
            released: unsigned(parts.get(2)).unwrap_or(0),
            joined: unsigned(parts.get(5)).unwrap_or(0),
            noshows: unsigned(parts.get(6)).unwrap_or(0),
            claimed: unsigned(parts.get(7)).unwrap_or(0),
            promised,
        })
    }
}

/// Reads a reply `{code, rl, …}`: the codes every room script shares here, the rest by
/// `specific` (`None`: a reply this build does not understand).
fn read<T>(
    reply: &[Value],
    specific: impl Fn(&str, &[Value]) -> Option<Result<T, RoomError>>,
) -> (Result<T, RoomError>, RateReport) {
    let at = |i: usize| reply.get(i);
    let rate = rate_report(at(1)).unwrap_or(RateReport::NotEvaluated);
    let code = text(at(0)).unwrap_or_default();
    let scope = |i: usize| text(at(i)).and_then(|s| Scope::parse(&s));
    let shared = match code.as_str() {
        "ROOM_NOT_FOUND" => Some(Err(RoomRefusal::NotFound.into())),
        "ROOM_CLOSED" => Some(Err(RoomRefusal::Closed.into())),
        "BLOCKED" => scope(2).map(|scope| Err(RoomError::Order(Refusal::Blocked { scope }))),
        "RATE_LIMITED" => scope(2)
            .zip(unsigned(at(3)))
            .map(|(scope, retry_after_ms)| {
                Err(RoomError::Order(Refusal::RateLimited {
                    scope,
                    retry_after_ms,
                }))
            }),
        _ => None,
    };
    let outcome = shared
        .or_else(|| specific(&code, reply))
        .unwrap_or_else(|| {
            Err(RoomError::Order(Refusal::Internal(anyhow::anyhow!(
                "unexpected room reply: {reply:?}"
            ))))
        });
    (outcome, rate)
}
