//! The Redis key layout, in one place.
//!
//! Every key of a product carries the hash tag `{p:<productId>}`, so all of them live in
//! one Redis Cluster slot and the admission script can touch them atomically. Keys are
//! prefixed with a namespace (`REDIS_NAMESPACE`, default `fs`) so several deployments, or
//! parallel test runs, can share a server without seeing each other.
//!
//! Each record's fields are defined by its type in `stores::records`.
//!
//! | key | type | holds | slot on a Redis Cluster |
//! |---|---|---|---|
//! | `{ns}:{p:P}:sale` | hash | sale state, stock, remaining, per-user cap, window, limits | the product's |
//! | `{ns}:{p:P}:bought` | hash | units bought per user | the product's |
//! | `{ns}:{p:P}:idem:<user>:<key>` | hash | stored answer of an accepted order (24 h) | the product's |
//! | `{ns}:{p:P}:outbox` | stream | accepted orders and ended reservations not yet confirmed by Kafka | the product's |
//! | `{ns}:{p:P}:res:<uuid>` | hash | one order's reservation: user, quantity, state, deadline, placement entry | the product's |
//! | `{ns}:{p:P}:deadlines` | sorted set | reserved order ids by payment deadline (ms), for the expiry sweeper | the product's |
//! | `{ns}:{p:P}:sweeper` | string | the API instance sweeping this product's expiries now (1 s lease) | the product's |
//! | `{ns}:{p:P}:rl:<scope>:<id>` | string | GCRA theoretical arrival time (µs) of one client | the product's |
//! | `{ns}:{p:P}:blk:<scope>:<id>` | string | a block (with TTL); the value is the reason | the product's |
//! | `{ns}:{p:P}:viol:<hour>` | hash | violations per type in that hour (kept 25 h) | the product's |
//! | `{ns}:{p:P}:room` | hash | the waiting room: state, epoch, rate, counters, seed and cohort | the product's |
//! | `{ns}:{p:P}:room:tickets` | hash | arrival number per user in the room | the product's |
//! | `{ns}:{p:P}:room:devices` | hash | the user holding a ticket, per device | the product's |
//! | `{ns}:{p:P}:room:releases` | sorted set | positions released (`served`), by time (ms) | the product's |
//! | `{ns}:{p:P}:room:claimed` | sorted set | users who claimed, by position | the product's |
//! | `{ns}:{p:P}:room:active` | sorted set | users admitted and not yet used, by expiry (ms) | the product's |
//! | `{ns}:{p:P}:room:claim_rate` | string | GCRA TAT (µs) of the room's claims | the product's |
//! | `{ns}:{p:P}:room:lease` | string | the API instance draining the room now | the product's |
//! | `{ns}:{p:P}:adm:<user>` | hash | one user's admission: token id, expiry, used | the product's |
//! | `{ns}:{p:P}:transfers` | hash | a sharded sale's refills from the pool: `<id>` -> shard, units, open or closed; `open:<shard>` -> the shard's open one | the product's |
//! | `{ns}:{p:P}:applied` | set | the sweeps the pool has applied | the product's |
//! | `{ns}:{p:P/k.s}:sale` | hash | shard `k` of a sharded sale (salt `s` from placement): its remaining units | shard `k`'s |
//! | `{ns}:{p:P/k.s}:applied` | set | the refills shard `k` has applied | shard `k`'s |
//! | `{ns}:{p:P/k.s}:transfers` | hash | shard `k`'s sweeps back to the pool: `<id>` -> `pool`, units, open or closed | shard `k`'s |
//! | `{ns}:viol:<hour>` | hash | violations before a product is known (bad signatures) | its own |
//! | `{ns}:sales` | set | products with a sale, for the relay and operators | its own |
//! | `{ns}:rooms` | set | products with a waiting room, for its drain | its own |
//! | `{ns}:order:{<uuid>}` | hash | order status for `GET /order/{id}` (24 h) | its own, by order id |
//!
//! So a product's admission, hand-off, blocks and counters are single-slot operations on
//! one master, and products spread over the masters by their tags. Nothing sends one
//! command over keys of two slots: the registry is one key, read with `SMEMBERS` and then
//! each product's keys on their own master; what writes several products' keys or several
//! orders' status records at once (hand-off confirmations, the worker's status marks,
//! violation counters, blocks on every sale) groups them by slot
//! (`stores::redis::Batch`).

use uuid::Uuid;

use crate::domain::{ProductId, UserId};

/// A dimension of rate limits and blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A client network (IPv4 address or IPv6 /64).
    Ip,
    /// A device fingerprint (or the shared "unknown device" bucket).
    Fingerprint,
    /// A user id.
    User,
    /// The whole product (rate limits only).
    Global,
}

impl Scope {
    /// Every scope, in the order limits are reported (most specific first).
    pub const ALL: [Scope; 4] = [Scope::Ip, Scope::Fingerprint, Scope::User, Scope::Global];

    /// The name in answers, logs, metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Fingerprint => "fingerprint",
            Self::User => "user",
            Self::Global => "global",
        }
    }

    /// Parses [`Scope::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The short tag in key names and sale-hash fields.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Fingerprint => "fp",
            Self::User => "user",
            Self::Global => "global",
        }
    }

    /// Sale-hash field with the emission interval in µs (absent or 0: no limit).
    pub fn interval_field(self) -> String {
        format!("{}_t", self.tag())
    }

    /// Sale-hash field with the burst.
    pub fn burst_field(self) -> String {
        format!("{}_b", self.tag())
    }
}

/// The consumer group of every outbox stream; entries pending in it are unconfirmed.
pub const OUTBOX_GROUP: &str = "relay";

/// The root of all keys of one deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    ns: String,
}

impl Default for Keyspace {
    fn default() -> Self {
        Self::new(crate::defaults::REDIS_NAMESPACE)
    }
}

impl Keyspace {
    /// A keyspace under `namespace` (no braces allowed: they would move the hash tag).
    pub fn new(namespace: impl Into<String>) -> Self {
        let ns: String = namespace.into();
        debug_assert!(
            !ns.contains(['{', '}']),
            "namespace must not contain braces"
        );
        Self { ns }
    }

    /// The namespace itself.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The keys of one product's sale.
    pub fn sale(&self, product: &ProductId) -> SaleKeys {
        SaleKeys {
            tag: format!("{}:{{p:{}}}", self.ns, product),
        }
    }

    /// The keys of shard `index` of a sharded sale (`--shards N`, `index < N`): the hash
    /// tag `{p:<productId>/<index>.<salt>}`, where the salt is what placement chose so the
    /// shards land on distinct masters (`stores::shards::place`). `/` is not allowed in a
    /// product id, so no shard tag is ever another product's tag.
    pub fn shard(&self, product: &ProductId, index: u32, salt: u32) -> SaleKeys {
        SaleKeys {
            tag: format!("{}:{{p:{}/{index}.{salt}}}", self.ns, product),
        }
    }

    /// Set of all products that have (or had) a sale.
    pub fn sales_registry(&self) -> String {
        format!("{}:sales", self.ns)
    }

    /// Set of all products that have (or had) a waiting room, for its drain.
    pub fn rooms_registry(&self) -> String {
        format!("{}:rooms", self.ns)
    }

    /// Violations recorded before a product was known, for one hour (Unix hours).
    pub fn global_violations(&self, hour: u64) -> String {
        format!("{}:viol:{hour}", self.ns)
    }

    /// Status of one order, read by `GET /order/{id}`.
    pub fn order_status(&self, order_id: &Uuid) -> String {
        format!("{}:order:{{{}}}", self.ns, order_id)
    }
}

/// The keys of one product, all in the same hash slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleKeys {
    tag: String,
}

impl SaleKeys {
    /// Sale settings and remaining stock (hash, `stores::records::SaleRecord`).
    pub fn sale(&self) -> String {
        format!("{}:sale", self.tag)
    }

    /// Units bought per user (hash).
    pub fn bought(&self) -> String {
        format!("{}:bought", self.tag)
    }

    /// The handoff outbox (stream with consumer group [`OUTBOX_GROUP`]).
    pub fn outbox(&self) -> String {
        format!("{}:outbox", self.tag)
    }

    /// One order's reservation record (hash; see `lua/transition.lua`).
    pub fn reservation(&self, order_id: &str) -> String {
        format!("{}:res:{}", self.tag, order_id)
    }

    /// The expiry sweeper's lease on this product: the instance sweeping now (string,
    /// short TTL).
    pub fn sweeper_lease(&self) -> String {
        format!("{}:sweeper", self.tag)
    }

    /// A transfer ledger (hash; `lua/shard_take.lua`): a sale's refills from its pool, or
    /// a shard's sweeps back to the pool.
    pub fn transfers(&self) -> String {
        format!("{}:transfers", self.tag)
    }

    /// The transfers applied here (set; `lua/shard_apply.lua`): a shard's refills, or the
    /// pool's sweeps.
    pub fn applied(&self) -> String {
        format!("{}:applied", self.tag)
    }

    /// Reserved order ids scored by payment deadline, ms (sorted set).
    pub fn deadlines(&self) -> String {
        format!("{}:deadlines", self.tag)
    }

    /// The stored answer for one (user, idempotency key) (ids as validated by
    /// [`UserId`] and [`crate::IdempotencyKey`]; the benchmark passes placeholders).
    pub fn idempotency(&self, user: &str, key: &str) -> String {
        format!("{}:idem:{}:{}", self.tag, user, key)
    }

    /// The prefix of every stored answer of one user (for erasure): `…:idem:<user>:`.
    pub fn idempotency_prefix(&self, user: &UserId) -> String {
        format!("{}:idem:{}:", self.tag, user)
    }

    /// GCRA state of one client in one scope (`id` from [`crate::client`]).
    pub fn rate(&self, scope: Scope, id: &str) -> String {
        format!("{}:rl:{}:{}", self.tag, scope.tag(), id)
    }

    /// A block of one client in one scope.
    pub fn block(&self, scope: Scope, id: &str) -> String {
        format!("{}:blk:{}:{}", self.tag, scope.tag(), id)
    }

    /// Violation counters of one hour (Unix hours).
    pub fn violations(&self, hour: u64) -> String {
        format!("{}:viol:{hour}", self.tag)
    }

    /// The waiting room (hash, `stores::records::RoomRecord`).
    pub fn room(&self) -> String {
        format!("{}:room", self.tag)
    }

    /// The room's `name` part (`tickets`, `devices`, `releases`, `claimed`, `active`,
    /// `claim_rate`, `lease`; see the table above).
    pub fn room_part(&self, name: &str) -> String {
        format!("{}:room:{name}", self.tag)
    }

    /// One user's admission from the room (hash).
    pub fn admission(&self, user: &str) -> String {
        format!("{}:adm:{user}", self.tag)
    }
}

/// The shard a user's orders go to, of `shards` (at least 1): a stable hash of the sale's
/// epoch and the user id, so a user keeps one home shard for the whole sale (their per-user
/// count, idempotency keys and reservations stay in one slot) and the users of a sale
/// spread evenly; a reopened sale (another epoch) deals them again.
pub fn home_shard(epoch: u64, user: &UserId, shards: u32) -> u32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(epoch.to_be_bytes())
        .chain_update(user.as_str().as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(shards.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdempotencyKey;

    #[test]
    fn a_shard_tag_is_its_own_and_never_a_products() {
        let ks = Keyspace::new("t1");
        let p = ProductId::parse("drop").expect("valid");
        assert_eq!(ks.shard(&p, 2, 17).sale(), "t1:{p:drop/2.17}:sale");
        assert_ne!(ks.shard(&p, 0, 0).sale(), ks.sale(&p).sale());
        assert!(
            ProductId::parse("drop/0.0").is_err(),
            "no product id holds a '/'"
        );
    }

    #[test]
    fn users_keep_their_home_shard_and_spread_evenly() {
        let users: Vec<UserId> = (0..30_000)
            .map(|i| UserId::parse(format!("u-{i}")).expect("valid"))
            .collect();
        let mut counts = [0u32; 3];
        for u in &users {
            let home = home_shard(7, u, 3);
            assert_eq!(home, home_shard(7, u, 3), "stable");
            counts[home as usize] += 1;
        }
        // 10,000 expected each; a fair hash stays within a few hundred.
        assert!(
            counts.iter().all(|&c| c.abs_diff(10_000) < 400),
            "{counts:?}"
        );
        let moved = users
            .iter()
            .filter(|u| home_shard(7, u, 3) != home_shard(8, u, 3))
            .count();
        assert!(
            (18_000..22_000).contains(&moved),
            "another epoch deals again: {moved}"
        );
        assert!(users.iter().all(|u| home_shard(7, u, 1) == 0));
        assert!(
            users.iter().all(|u| home_shard(7, u, 0) == 0),
            "0 is taken as 1"
        );
    }

    #[test]
    fn all_product_keys_share_one_hash_tag() {
        let ks = Keyspace::new("t1");
        let p = ProductId::parse("iphone-15").expect("valid");
        let keys = ks.sale(&p);
        let u = UserId::parse("u-1").expect("valid");
        let k = IdempotencyKey::parse("abc{defgh}").err();
        assert!(k.is_some(), "braces can never reach a key name");
        let k = IdempotencyKey::parse("abcdefgh").expect("valid");
        for key in [
            keys.sale(),
            keys.bought(),
            keys.outbox(),
            keys.idempotency(u.as_str(), k.as_str()),
            keys.reservation("01a22c40-7a28-7397-9553-eba6b73baf14"),
            keys.deadlines(),
        ] {
            let open = key.find('{').expect("has a tag");
            let close = key[open..].find('}').expect("closed") + open;
            assert_eq!(&key[open + 1..close], "p:iphone-15", "{key}");
        }
        assert_eq!(keys.sale(), "t1:{p:iphone-15}:sale");
    }
}
