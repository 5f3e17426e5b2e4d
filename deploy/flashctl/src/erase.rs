//! Erasing a user's personal data on request, keeping every sale total right.
//!
//! Orders are kept (they are the sale's record and `sales.sold` counts them) but the user
//! id is replaced by a random pseudonym and the device and network hashes are dropped.
//! Dead-lettered payloads that name the user are redacted, and earlier audit-trail entries
//! name the pseudonym instead. In Redis, the user's stored answers, limit and block keys
//! and order-status records are deleted, and their purchase counters move to the
//! pseudonym (so a sale's counters still add up). Kafka's copies age out with the topic's
//! retention.

use serde::Serialize;
use shared::UserId;
use shared::keys::{Keyspace, SaleKeys, Scope};
use stores::shards::Layout;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::OpsError;

/// What an erasure changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Erased {
    /// The random id that replaced the user's.
    pub pseudonym: String,
    /// Orders rewritten.
    pub orders: u64,
    /// Dead-letter payloads redacted.
    pub dead_letters: u64,
    /// Audit-trail entries rewritten.
    pub audit_entries: u64,
    /// Redis keys deleted.
    pub redis_keys: u64,
}

/// Erases `user` everywhere we hold it (see the module documentation).
pub async fn erase_user(
    pg: &mut Client,
    redis: &mut stores::redis::Conn,
    keys: &Keyspace,
    user: &UserId,
) -> Result<Erased, OpsError> {
    let pseudonym = format!("erased-{}", &Uuid::new_v4().simple().to_string()[..16]);
    let (order_ids, mut erased) = erase_in_postgres(pg, user, &pseudonym).await?;
    for product in crate::guard::products(redis, keys, None).await? {
        // A sharded sale keeps the user's records on their home shard, and a block of
        // the user on every shard.
        let layout = Layout::read(redis, &keys.sale(&product)).await?;
        for group in layout.groups(keys, &product) {
            erased.redis_keys += erase_in_sale(redis, &group, user, &pseudonym).await?;
        }
    }
    for id in &order_ids {
        let n: u64 = redis::cmd("DEL")
            .arg(keys.order_status(id))
            .query_async(redis)
            .await?;
        erased.redis_keys += n;
    }
    Ok(erased)
}

/// Rewrites the user's orders, dead letters and audit entries in one transaction;
/// returns the orders' ids (their status records are deleted from Redis after).
async fn erase_in_postgres(
    pg: &mut Client,
    user: &UserId,
    pseudonym: &str,
) -> Result<(Vec<Uuid>, Erased), OpsError> {
    let u = user.as_str();
    let tx = pg.transaction().await?;
    let order_ids: Vec<Uuid> = tx
        .query("SELECT order_id FROM orders WHERE user_id = $1", &[&u])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let orders = tx
        .execute(
            "UPDATE orders SET user_id = $2, \
                    idempotency_key = 'erased-' || left(md5(idempotency_key), 12), \
                    ip_hash = NULL, device_hash = NULL \
             WHERE user_id = $1",
            &[&u, &pseudonym],
        )
        .await?;
    let dead_letters = tx
        .execute(
            "UPDATE rejected_orders SET payload = convert_to('{\"erased\":true}', 'UTF8') \
             WHERE position(convert_to('\"user_id\":\"' || $1 || '\"', 'UTF8') in payload) > 0",
            &[&u],
        )
        .await?;
    let audit_entries = tx
        .execute(
            "UPDATE ops_audit SET arguments = replace(arguments::text, '\"' || $1 || '\"', '\"' || $2 || '\"')::jsonb \
             WHERE position('\"' || $1 || '\"' in arguments::text) > 0",
            &[&u, &pseudonym],
        )
        .await?;
    tx.commit().await?;
    let erased = Erased {
        pseudonym: pseudonym.to_owned(),
        orders,
        dead_letters,
        audit_entries,
        redis_keys: 0,
    };
    Ok((order_ids, erased))
}

/// In one sale: moves the user's purchase count to the pseudonym and deletes the user's
/// limit, block and stored-answer keys; returns how many keys were deleted.
async fn erase_in_sale(
    redis: &mut stores::redis::Conn,
    sk: &SaleKeys,
    user: &UserId,
    pseudonym: &str,
) -> Result<u64, OpsError> {
    let u = user.as_str();
    let held: Option<i64> = redis::cmd("HGET")
        .arg(sk.bought())
        .arg(u)
        .query_async(redis)
        .await?;
    if let Some(units) = held {
        redis::pipe()
            .atomic()
            .cmd("HDEL")
            .arg(sk.bought())
            .arg(u)
            .ignore()
            .cmd("HINCRBY")
            .arg(sk.bought())
            .arg(pseudonym)
            .arg(units)
            .ignore()
            .exec_async(redis)
            .await?;
    }
    let mut doomed = vec![sk.rate(Scope::User, u), sk.block(Scope::User, u)];
    doomed.extend(stored_answers(redis, sk, user).await?);
    Ok(redis::cmd("DEL").arg(&doomed).query_async(redis).await?)
}

/// The keys of the user's stored answers in one sale (a `SCAN` on the master that holds
/// the sale's keys).
async fn stored_answers(
    redis: &mut stores::redis::Conn,
    sk: &SaleKeys,
    user: &UserId,
) -> Result<Vec<String>, OpsError> {
    // User ids are [a-z0-9-], so the pattern has no glob characters of its own.
    let pattern = format!("{}*", sk.idempotency_prefix(user));
    let (mut cursor, mut found) = (0u64, Vec::new());
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000);
        let reply = redis.route_to_slot_of(&sk.sale(), &scan).await?;
        let (next, keys): (u64, Vec<String>) =
            redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
        found.extend(keys);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}
