//! Where the shards of a sharded sale live: the Redis Cluster slot of a key, the
//! cluster's slot map, and the placement that puts a sale's N shards on N distinct
//! masters, so one product's decisions can use more than one Redis core.
//!
//! A shard's keys carry the tag `{p:<productId>/<index>.<salt>}`
//! ([`shared::keys::Keyspace::shard`]); placement tries salts 0, 1, 2, … for each shard
//! until the tag's slot is served by a master no earlier shard uses. On one Redis server
//! there is no slot map and every salt is 0: the shards are key groups on that server.
//! Units move between the pool and the shards through transfer ledgers ([`ledger`]),
//! and [`census`] counts where they are; [`layout`] says which keys a sale's records use.

pub mod census;
pub mod layout;
pub mod ledger;

pub use layout::{Layout, Layouts, Shards};

use std::collections::BTreeSet;

use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use shared::ProductId;
use shared::keys::Keyspace;

use crate::reply::{int, items, text};

/// Redis Cluster's slot count.
pub const SLOTS: u16 = 16_384;

/// Salts tried per shard before placement gives up (with three masters a salt lands on a
/// free one with probability ≥ 1/3, so 64 tries miss with odds below 10⁻¹¹).
const MAX_SALT: u32 = 64;

/// The slot of `key`: CRC16 (XMODEM) of its hash tag (the text between the first `{` and
/// the next `}`, when not empty), else of the whole key, modulo [`SLOTS`].
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tag = bytes
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &bytes[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty())
        .unwrap_or(bytes);
    crc16::State::<crc16::XMODEM>::calculate(tag) % SLOTS
}

/// One range of slots and the master serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    /// The first slot of the range.
    pub first: u16,
    /// The last slot of the range (inclusive).
    pub last: u16,
    /// The master: its node id (or `host:port` when the node gave none).
    pub master: String,
}

/// Which master serves which slots, as `CLUSTER SLOTS` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    ranges: Vec<SlotRange>,
}

impl SlotMap {
    /// A map of these ranges.
    pub fn new(ranges: Vec<SlotRange>) -> Self {
        Self { ranges }
    }

    /// The master serving `slot`, if any does.
    pub fn master_of(&self, slot: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|r| (r.first..=r.last).contains(&slot))
            .map(|r| r.master.as_str())
    }

    /// Every master serving slots.
    pub fn masters(&self) -> BTreeSet<&str> {
        self.ranges.iter().map(|r| r.master.as_str()).collect()
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[first, last, [host, port, id, …], replicas…], …]`.
    fn from_reply(reply: &Value) -> Option<Self> {
        let ranges = items(Some(reply))?
            .iter()
            .map(|entry| {
                let fields = items(Some(entry))?;
                let slot = |v: Option<&Value>| int(v).and_then(|n| u16::try_from(n).ok());
                let master = items(fields.get(2))?;
                let id = text(master.get(2)).filter(|id| !id.is_empty());
                let addr = || {
                    Some(format!(
                        "{}:{}",
                        text(master.first())?,
                        text(master.get(1))?
                    ))
                };
                Some(SlotRange {
                    first: slot(fields.first())?,
                    last: slot(fields.get(1))?,
                    master: id.or_else(addr)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { ranges })
    }
}

/// The cluster's slot map, or `None` on a Redis server without cluster mode.
pub async fn slot_map(conn: &mut impl ConnectionLike) -> RedisResult<Option<SlotMap>> {
    match redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<Value>(conn)
        .await
    {
        Ok(reply) => SlotMap::from_reply(&reply).map(Some).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "CLUSTER SLOTS: a reply of another shape",
            ))
        }),
        Err(e) if e.to_string().contains("cluster support disabled") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why the shards could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A sale has at least one shard.
    #[error("a sale has at least one shard")]
    NoShards,
    /// More shards than masters: two would share one and gain nothing.
    #[error("{shards} shards need {shards} masters; the cluster has {masters}")]
    TooFewMasters {
        /// Shards asked for.
        shards: u32,
        /// Masters serving slots.
        masters: usize,
    },
    /// No salt put a shard on a master of its own (a slot map with unserved slots).
    #[error("no tag for shard {0} lands on a master of its own")]
    Unplaceable(u32),
}

/// The salt of each of `shards` shards of `product`, so that on a cluster (`map`) no two
/// shards share a master; on one server (`None`) every salt is 0.
pub fn place(
    keys: &Keyspace,
    product: &ProductId,
    shards: u32,
    map: Option<&SlotMap>,
) -> Result<Vec<u32>, PlacementError> {
    if shards == 0 {
        return Err(PlacementError::NoShards);
    }
    let Some(map) = map else {
        return Ok(vec![0; shards as usize]);
    };
    let masters = map.masters().len();
    if shards as usize > masters {
        return Err(PlacementError::TooFewMasters { shards, masters });
    }
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut salts = Vec::with_capacity(shards as usize);
    for index in 0..shards {
        let (salt, master) = (0..MAX_SALT)
            .find_map(|salt| {
                let slot = key_slot(&keys.shard(product, index, salt).sale());
                map.master_of(slot)
                    .filter(|m| !taken.contains(m))
                    .map(|m| (salt, m))
            })
            .ok_or(PlacementError::Unplaceable(index))?;
        taken.insert(master);
        salts.push(salt);
    }
    Ok(salts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_masters() -> SlotMap {
        let range = |first, last, master: &str| SlotRange {
            first,
            last,
            master: master.into(),
        };
        SlotMap::new(vec![
            range(0, 5460, "a"),
            range(5461, 10922, "b"),
            range(10923, 16383, "c"),
        ])
    }

    #[test]
    fn slots_are_redis_clusters() {
        // The examples of the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(key_slot("123456789"), 0x31C3 % SLOTS);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
        assert_ne!(
            key_slot("foo{}{bar}"),
            key_slot("bar"),
            "an empty tag is no tag"
        );
        assert_eq!(key_slot("foo{{bar}}zap"), key_slot("{bar"));
    }

    #[test]
    fn shards_take_a_master_each() {
        let (keys, map) = (Keyspace::new("t"), three_masters());
        for p in ["drop", "lamp", "x", "iphone-15"] {
            let product = ProductId::parse(p).expect("valid");
            let salts = place(&keys, &product, 3, Some(&map)).expect("placed");
            let masters: BTreeSet<&str> = salts
                .iter()
                .enumerate()
                .filter_map(|(i, &s)| {
                    map.master_of(key_slot(&keys.shard(&product, i as u32, s).sale()))
                })
                .collect();
            assert_eq!(masters.len(), 3, "{p}: {salts:?}");
            assert_eq!(place(&keys, &product, 3, Some(&map)), Ok(salts), "stable");
        }
    }

    #[test]
    fn placement_refuses_what_cannot_spread() {
        let (keys, map) = (Keyspace::new("t"), three_masters());
        let p = ProductId::parse("drop").expect("valid");
        assert_eq!(
            place(&keys, &p, 4, Some(&map)),
            Err(PlacementError::TooFewMasters {
                shards: 4,
                masters: 3
            })
        );
        assert_eq!(place(&keys, &p, 0, None), Err(PlacementError::NoShards));
        assert_eq!(place(&keys, &p, 3, None), Ok(vec![0, 0, 0]));
        let gap = SlotMap::new(vec![SlotRange {
            first: 0,
            last: 0,
            master: "a".into(),
        }]);
        assert_eq!(
            place(&keys, &p, 1, Some(&gap)),
            Err(PlacementError::Unplaceable(0))
        );
    }

    #[test]
    fn a_cluster_slots_reply_is_read() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let node =
            |port, id: &str| Value::Array(vec![bulk("127.0.0.1"), Value::Int(port), bulk(id)]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                node(7001, "n1"),
                node(7004, "r1"),
            ]),
            Value::Array(vec![Value::Int(8192), Value::Int(16383), node(7002, "")]),
        ]);
        let map = SlotMap::from_reply(&reply).expect("read");
        assert_eq!(map.master_of(0), Some("n1"));
        assert_eq!(
            map.master_of(16383),
            Some("127.0.0.1:7002"),
            "no id: the address"
        );
        assert_eq!(SlotMap::from_reply(&Value::Int(1)), None);
    }
}
