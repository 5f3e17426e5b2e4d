//! Where a sale's per-user records live: on the product's own keys (an unsharded sale,
//! and one opened with `--shards 1`), or on the home shard of each user (`--shards N`).
//!
//! A sharded sale's product hash holds its pool and, written once by `flashctl sale
//! open`, the layout: `shards` (N), `salts` (placement's salt of each shard, comma
//! separated), `epoch` (ms at open, the seed of each user's home shard) and `chunk` (the
//! most units a refill moves). It holds no `remaining`, so an admission sent to the
//! product's keys of a sharded sale answers `SALE_NOT_FOUND`, never sells from the pool.
//! [`Layouts`] keeps each product's layout in memory for a second.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use shared::keys::{Keyspace, SaleKeys, home_shard};
use shared::{ProductId, UserId};

/// The product hash's layout fields.
pub mod field {
    /// Number of shards (absent: unsharded).
    pub const SHARDS: &str = "shards";
    /// Placement's salt of each shard, comma separated, by index.
    pub const SALTS: &str = "salts";
    /// The sale's epoch (ms at open): seeds each user's home shard.
    pub const EPOCH: &str = "epoch";
    /// The most units one refill moves to a shard.
    pub const CHUNK: &str = "chunk";
}

/// A sharded sale's shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shards {
    /// The sale's epoch (ms at open).
    pub epoch: u64,
    /// Placement's salt of each shard, by index (as many as shards, at least 2).
    pub salts: Vec<u32>,
    /// The most units one refill moves.
    pub chunk: i64,
}

impl Shards {
    /// How many.
    pub fn count(&self) -> u32 {
        self.salts.len() as u32
    }

    /// The keys of every shard, by index.
    pub fn keys(&self, ks: &Keyspace, product: &ProductId) -> Vec<SaleKeys> {
        (0u32..)
            .zip(&self.salts)
            .map(|(i, &salt)| ks.shard(product, i, salt))
            .collect()
    }

    /// `user`'s home shard: its index and keys.
    pub fn home(&self, ks: &Keyspace, product: &ProductId, user: &UserId) -> (u32, SaleKeys) {
        let index = home_shard(self.epoch, user, self.count());
        (index, ks.shard(product, index, self.salts[index as usize]))
    }

    /// Below this many units a shard asks for a refill ahead of running out.
    pub fn low_water(&self) -> i64 {
        (self.chunk / 4).max(1)
    }
}

/// How a sale lays out its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// On the product's keys (or no sale at all).
    Single,
    /// On its shards, each user on one.
    Sharded(Shards),
}

impl Layout {
    /// From the product hash's fields (`shards`, `salts`, `epoch`, `chunk`); anything
    /// incomplete or inconsistent reads as unsharded.
    pub fn from_fields(
        shards: Option<&str>,
        salts: Option<&str>,
        epoch: Option<&str>,
        chunk: Option<&str>,
    ) -> Self {
        let parsed = (|| {
            let n: usize = shards?.parse().ok()?;
            let salts: Vec<u32> = salts?
                .split(',')
                .map(|s| s.parse().ok())
                .collect::<Option<_>>()?;
            (n >= 2 && salts.len() == n).then_some(Shards {
                epoch: epoch?.parse().ok()?,
                salts,
                chunk: chunk.and_then(|c| c.parse().ok()).unwrap_or(1).max(1),
            })
        })();
        parsed.map_or(Self::Single, Self::Sharded)
    }

    /// Reads the layout of the sale of `sale` (the product's keys).
    pub async fn read(conn: &mut impl ConnectionLike, sale: &SaleKeys) -> redis::RedisResult<Self> {
        let got: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(sale.sale())
            .arg(&[field::SHARDS, field::SALTS, field::EPOCH, field::CHUNK])
            .query_async(conn)
            .await?;
        let at = |i: usize| got.get(i).and_then(|v| v.as_deref());
        Ok(Self::from_fields(at(0), at(1), at(2), at(3)))
    }

    /// The shards, if the sale has them.
    pub fn shards(&self) -> Option<&Shards> {
        match self {
            Self::Single => None,
            Self::Sharded(s) => Some(s),
        }
    }

    /// Every group of keys that holds per-user records: the product's, or each shard's.
    pub fn groups(&self, ks: &Keyspace, product: &ProductId) -> Vec<SaleKeys> {
        match self {
            Self::Single => vec![ks.sale(product)],
            Self::Sharded(s) => s.keys(ks, product),
        }
    }

    /// The keys holding `user`'s records.
    pub fn home(&self, ks: &Keyspace, product: &ProductId, user: &UserId) -> SaleKeys {
        match self {
            Self::Single => ks.sale(product),
            Self::Sharded(s) => s.home(ks, product, user).1,
        }
    }

    /// The keys holding the reservation record of `user`'s order `order_id`: `user`'s home,
    /// where an admission writes it, unless the record is on another shard. After `user
    /// erase` PostgreSQL names the buyer by a pseudonym, whose home is most likely another
    /// shard than the one the record is on. The home when no shard holds one.
    pub async fn holding(
        &self,
        conn: &mut impl ConnectionLike,
        (ks, product): (&Keyspace, &ProductId),
        user: &UserId,
        order_id: &str,
    ) -> redis::RedisResult<SaleKeys> {
        let home = self.home(ks, product, user);
        let Self::Sharded(shards) = self else {
            return Ok(home);
        };
        let others = shards.keys(ks, product).into_iter().filter(|k| *k != home);
        for keys in std::iter::once(home.clone()).chain(others) {
            let found: bool = redis::cmd("EXISTS")
                .arg(keys.reservation(order_id))
                .query_async(conn)
                .await?;
            if found {
                return Ok(keys);
            }
        }
        Ok(home)
    }
}

/// How long a layout read is used before it is read again.
pub const FRESH: Duration = Duration::from_secs(1);
/// Most products remembered (past it, the memory starts over).
const MAX_PRODUCTS: usize = 100_000;

/// Each product's layout, read at most once per [`FRESH`] (a sale's layout is fixed
/// from `sale open` until it is erased, so a second-old copy is at worst a sale opened
/// or erased within that second).
#[derive(Debug)]
pub struct Layouts {
    keys: Keyspace,
    known: RwLock<HashMap<ProductId, (Arc<Layout>, Instant)>>,
}

impl Layouts {
    /// An empty memory for the products of `keys`.
    pub fn new(keys: Keyspace) -> Self {
        Self {
            keys,
            known: RwLock::default(),
        }
    }

    /// The keyspace.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keys
    }

    /// `product`'s layout, read again when the copy is older than `fresh`.
    pub async fn get(
        &self,
        conn: &mut impl ConnectionLike,
        product: &ProductId,
        fresh: Duration,
    ) -> redis::RedisResult<Arc<Layout>> {
        {
            let known = self.known.read().unwrap_or_else(|p| p.into_inner());
            if let Some((layout, at)) = known.get(product)
                && at.elapsed() < fresh
            {
                return Ok(layout.clone());
            }
        }
        let layout = Arc::new(Layout::read(conn, &self.keys.sale(product)).await?);
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_PRODUCTS {
            known.clear();
        }
        known.insert(product.clone(), (layout.clone(), Instant::now()));
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_complete_layout_of_two_or_more_shards_is_sharded() {
        let sharded = Layout::from_fields(Some("3"), Some("0,4,9"), Some("17"), Some("50"));
        let Layout::Sharded(s) = &sharded else {
            panic!("{sharded:?}");
        };
        assert_eq!((s.count(), s.epoch, s.chunk), (3, 17, 50));
        assert_eq!(s.low_water(), 12);
        for (n, salts, epoch) in [
            (None, Some("0,1"), Some("1")),
            (Some("1"), Some("0"), Some("1")),
            (Some("2"), Some("0"), Some("1")),
            (Some("2"), Some("0,x"), Some("1")),
            (Some("2"), Some("0,1"), None),
        ] {
            assert_eq!(Layout::from_fields(n, salts, epoch, None), Layout::Single);
        }
    }

    #[test]
    fn a_user_stays_on_one_shard_and_unsharded_sales_keep_the_products_keys() {
        let ks = Keyspace::new("t");
        let p = ProductId::parse("drop").expect("valid");
        let u = UserId::parse("u-1").expect("valid");
        assert_eq!(Layout::Single.home(&ks, &p, &u), ks.sale(&p));
        assert_eq!(Layout::Single.groups(&ks, &p), vec![ks.sale(&p)]);
        let layout = Layout::from_fields(Some("3"), Some("5,6,7"), Some("1"), Some("9"));
        let groups = layout.groups(&ks, &p);
        assert_eq!(groups.len(), 3);
        let home = layout.home(&ks, &p, &u);
        assert!(groups.contains(&home));
        assert_eq!(home, layout.home(&ks, &p, &u));
    }
}
