//! Live protections of a sale: rate limits and blocks, read by the admission script on
//! every request, so a change applies to the next request on every API instance.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use redis::aio::ConnectionLike;
use serde::Serialize;
use shared::keys::{Keyspace, Scope};
use shared::limits::{LimitSpec, default_limit};
use shared::{Fingerprint, ProductId, UserId};
use stores::shards::Layout;

use crate::OpsError;

static SALE_SET: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../../../lua/sale_set.lua")));

/// One limit setting: a spec, or off.
pub type Limit = Option<LimitSpec>;

/// Parses `10/s:20` or `off`.
pub fn parse_limit(raw: &str) -> Result<Limit, OpsError> {
    if raw.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    raw.parse::<LimitSpec>()
        .map(Some)
        .map_err(|e| OpsError::Invalid(e.to_string()))
}

/// The limits of a sale, per scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits(pub BTreeMap<Scope, Limit>);

impl Limits {
    /// The documented defaults ([`default_limit`]).
    pub fn defaults() -> Self {
        Self(
            Scope::ALL
                .into_iter()
                .map(|s| (s, Some(default_limit(s))))
                .collect(),
        )
    }

    /// No limit at all (tests of other behaviour, benchmarks).
    pub fn off() -> Self {
        Self(Scope::ALL.into_iter().map(|s| (s, None)).collect())
    }

    /// The sale-hash fields and values (`ip_t`, `ip_b`, …; 0 = off).
    pub fn fields(&self) -> Vec<(String, u64)> {
        self.0
            .iter()
            .flat_map(|(scope, limit)| {
                let (t, b) =
                    limit.map_or((0, 0), |l| (l.emission_interval_us(), u64::from(l.burst)));
                [(scope.interval_field(), t), (scope.burst_field(), b)]
            })
            .collect()
    }

    /// Human form: `ip=10/s:20 fingerprint=off …`.
    pub fn human(&self) -> String {
        self.0
            .iter()
            .map(|(s, l)| {
                format!(
                    "{:<12} {}",
                    s.as_str(),
                    l.map_or("off".into(), |l| l.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Serialize for Limits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (scope, limit) in &self.0 {
            map.serialize_entry(scope.as_str(), &limit.map(|l| l.to_string()))?;
        }
        map.end()
    }
}

/// Reads the limits of a sale back from Redis (as the script sees them).
pub async fn limits_get(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<Limits, OpsError> {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(keys.sale(product).sale())
        .arg(stores::records::sale::field::STATE);
    for s in Scope::ALL {
        cmd.arg(s.interval_field()).arg(s.burst_field());
    }
    let values: Vec<Option<u64>> = {
        let raw: Vec<Option<String>> = cmd.query_async(redis).await?;
        if raw.first().is_none_or(Option::is_none) {
            return Err(OpsError::NotFound(format!(
                "no live sale for product {product} in Redis"
            )));
        }
        raw.into_iter()
            .skip(1)
            .map(|v| v.and_then(|v| v.parse().ok()))
            .collect()
    };
    let mut out = BTreeMap::new();
    for (i, scope) in Scope::ALL.into_iter().enumerate() {
        let (t, b) = (values[2 * i].unwrap_or(0), values[2 * i + 1].unwrap_or(0));
        let limit = (t > 0 && b > 0).then(|| spec_from(t, b));
        out.insert(scope, limit);
    }
    Ok(Limits(out))
}

/// The most readable spec with emission interval `t_us` and burst `b`.
fn spec_from(t_us: u64, burst: u64) -> LimitSpec {
    let burst = u32::try_from(burst).unwrap_or(u32::MAX);
    for period_us in [1_000_000u64, 60_000_000, 3_600_000_000] {
        let rate = (period_us + t_us / 2) / t_us;
        if rate >= 1 && period_us.div_ceil(rate) == t_us {
            return LimitSpec {
                rate: u32::try_from(rate).unwrap_or(u32::MAX),
                period_us,
                burst,
            };
        }
    }
    LimitSpec {
        rate: u32::try_from((3_600_000_000 / t_us).max(1)).unwrap_or(1),
        period_us: 3_600_000_000,
        burst,
    }
}

/// Changes some limits of a live sale; the others stay as they are.
pub async fn limits_set(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
    changes: &Limits,
) -> Result<Limits, OpsError> {
    set_fields(redis, keys, product, &changes.fields()).await?;
    limits_get(redis, keys, product).await
}

/// Writes fields of an existing sale hash; `NotFound` if there is no sale. On a sharded
/// sale every shard's hash gets them too (a shard admits its share of the global limit:
/// its emission interval × N).
pub async fn set_fields<V: ToString>(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
    fields: &[(String, V)],
) -> Result<(), OpsError> {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(f, v)| (f.clone(), v.to_string()))
        .collect();
    let sale = keys.sale(product);
    if let Some(shards) = Layout::read(redis, &sale).await?.shards() {
        let split = shard_share(&fields, shards.count());
        for shard in shards.keys(keys, product) {
            set_hash(redis, &shard.sale(), product, &split).await?;
        }
    }
    set_hash(redis, &sale.sale(), product, &fields).await
}

/// A sale's fields as each of `shards` shards holds them: the global limit's emission
/// interval × `shards` (each admits its share of the rate), everything else as it is.
pub(crate) fn shard_share(fields: &[(String, String)], shards: u32) -> Vec<(String, String)> {
    let global = Scope::Global.interval_field();
    fields
        .iter()
        .map(|(f, v)| match v.parse::<u64>() {
            Ok(t) if *f == global => (f.clone(), (t * u64::from(shards)).to_string()),
            _ => (f.clone(), v.clone()),
        })
        .collect()
}

async fn set_hash(
    redis: &mut impl ConnectionLike,
    key: &str,
    product: &ProductId,
    fields: &[(String, String)],
) -> Result<(), OpsError> {
    let mut inv = SALE_SET.key(key);
    for (f, v) in fields {
        inv.arg(f).arg(v);
    }
    let changed: i64 = inv.invoke_async(redis).await?;
    if changed == 0 {
        return Err(OpsError::NotFound(format!(
            "no live sale for product {product} in Redis"
        )));
    }
    Ok(())
}

/// What to block, normalized as the API names clients in keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// `ip`, `fingerprint` or `user`.
    #[serde(serialize_with = "scope_name")]
    pub scope: Scope,
    /// The value as the operator gave it.
    pub value: String,
    /// The key id: IPv4 address or IPv6 /64, fingerprint hash, user id.
    pub id: String,
}

fn scope_name<S: serde::Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(scope.as_str())
}

impl Target {
    /// Validates and normalizes `value` for `scope`.
    pub fn parse(scope: Scope, value: &str) -> Result<Self, OpsError> {
        let id = match scope {
            Scope::Ip => {
                let ip: IpAddr = value
                    .parse()
                    .map_err(|_| OpsError::Invalid(format!("{value:?} is not an IP address")))?;
                shared::client::network_id(ip)
            }
            Scope::Fingerprint => {
                let fp = Fingerprint::parse(value).map_err(|e| OpsError::Invalid(e.to_string()))?;
                shared::client::fingerprint_id(Some(&fp))
            }
            Scope::User => UserId::parse(value)
                .map_err(|e| OpsError::Invalid(e.to_string()))?
                .to_string(),
            Scope::Global => {
                return Err(OpsError::Invalid(
                    "blocks apply to ip, fingerprint or user".into(),
                ));
            }
        };
        Ok(Self {
            scope,
            value: value.to_owned(),
            id,
        })
    }
}

/// `only`, or every product with a sale in the registry (what a block without
/// `--product` applies to).
pub(crate) async fn products(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    only: Option<&ProductId>,
) -> Result<Vec<ProductId>, OpsError> {
    if let Some(p) = only {
        return Ok(vec![p.clone()]);
    }
    let all: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.sales_registry())
        .query_async(redis)
        .await?;
    Ok(all
        .into_iter()
        .filter_map(|p| ProductId::parse(p).ok())
        .collect())
}

/// Blocks a client for `ttl` (None = until unblocked) on one product or on every sale;
/// returns the products it now applies to.
pub async fn block(
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    target: &Target,
    product: Option<&ProductId>,
    ttl: Option<Duration>,
    reason: &str,
) -> Result<Vec<ProductId>, OpsError> {
    if ttl.is_some_and(|t| t.as_millis() == 0) {
        return Err(OpsError::Invalid("--ttl must be positive".into()));
    }
    let products = products(redis, keys, product).await?;
    // One product's keys share a slot; several products may not (a cluster).
    let mut sets = stores::redis::Batch::new(redis);
    for key in block_keys(redis, keys, &products, target).await? {
        let pipe = sets.group();
        match ttl {
            Some(ttl) => pipe
                .cmd("SET")
                .arg(&key)
                .arg(reason)
                .arg("PX")
                .arg(ttl.as_millis() as u64),
            None => pipe.cmd("SET").arg(&key).arg(reason),
        }
        .ignore();
    }
    sets.exec(redis).await?;
    Ok(products)
}

/// Lifts a block; returns the products it was lifted on.
pub async fn unblock(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    target: &Target,
    product: Option<&ProductId>,
) -> Result<Vec<ProductId>, OpsError> {
    let products = products(redis, keys, product).await?;
    let mut lifted = Vec::new();
    for p in products {
        let mut n = 0;
        for key in block_keys(redis, keys, std::slice::from_ref(&p), target).await? {
            n += redis::cmd("DEL").arg(key).query_async::<i64>(redis).await?;
        }
        if n > 0 {
            lifted.push(p);
        }
    }
    Ok(lifted)
}

/// The keys of `target`'s block on each of `products`: the product's, or on a sharded
/// sale each shard's (a network or a device is not pinned to one shard).
async fn block_keys(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    products: &[ProductId],
    target: &Target,
) -> Result<Vec<String>, OpsError> {
    let mut all = Vec::new();
    for p in products {
        let layout = Layout::read(redis, &keys.sale(p)).await?;
        all.extend(
            layout
                .groups(keys, p)
                .iter()
                .map(|g| g.block(target.scope, &target.id)),
        );
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_round_trip_through_the_hash_fields() {
        for raw in ["10/s:20", "3/s:1", "100/m:50", "7/h:7", "5000/s:10000"] {
            let spec: LimitSpec = raw.parse().expect("valid");
            let back = spec_from(spec.emission_interval_us(), u64::from(spec.burst));
            assert_eq!(
                back.emission_interval_us(),
                spec.emission_interval_us(),
                "{raw}"
            );
            assert_eq!(back.burst, spec.burst);
        }
        assert_eq!(parse_limit("off").expect("valid"), None);
        assert!(parse_limit("fast").is_err());
        let fields = Limits::off().fields();
        assert!(fields.iter().all(|(_, v)| *v == 0));
        assert_eq!(fields.len(), 8);
    }

    #[test]
    fn targets_normalize_like_the_api() {
        let t = Target::parse(Scope::Ip, "2001:db8:1:2::99").expect("valid");
        assert_eq!(t.id, "2001:db8:1:2::/64");
        let t = Target::parse(Scope::Fingerprint, "device-1").expect("valid");
        assert_eq!(t.id.len(), 32);
        assert!(Target::parse(Scope::Ip, "not-an-ip").is_err());
        assert!(Target::parse(Scope::User, "Bad User").is_err());
        assert!(Target::parse(Scope::Global, "x").is_err());
    }
}
