//! A sharded sale's copies of its waiting room, one on each shard (`admit.lua` decides an
//! order on the buyer's home shard and reads the room there).

use redis::aio::ConnectionLike;
use shared::ProductId;
use shared::keys::Keyspace;
use stores::shards::Layout;

use super::read;
use crate::OpsError;

/// A sharded sale's copies of its room, one on each shard: `admit.lua` runs on the
/// buyer's home shard and reads there whether the product has a room, whether it is
/// closed and its epoch, and counts there the admissions used. None for an unsharded sale.
pub(super) async fn shard_rooms(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<Vec<String>, OpsError> {
    let layout = Layout::read(redis, &keys.sale(product)).await?;
    let shards = layout.shards().map(|s| s.keys(keys, product));
    Ok(shards
        .unwrap_or_default()
        .iter()
        .map(|k| k.room())
        .collect())
}

/// Writes `fields` on every copy, each in one `HSET` (a copy is never absent on the way).
pub(super) async fn copy(
    redis: &mut impl ConnectionLike,
    copies: &[String],
    fields: &[(&str, String)],
) -> Result<(), OpsError> {
    for room in copies {
        redis::cmd("HSET")
            .arg(room)
            .arg(fields)
            .exec_async(redis)
            .await?;
    }
    Ok(())
}

/// Copies the room's state (closed, or not) and epoch to a sharded sale's shards again:
/// every change of the room repairs a copy an earlier command failed to write.
pub(super) async fn sync_copies(
    redis: &mut impl ConnectionLike,
    keys: &Keyspace,
    product: &ProductId,
) -> Result<(), OpsError> {
    let copies = shard_rooms(redis, keys, product).await?;
    if copies.is_empty() {
        return Ok(());
    }
    let room = read(redis, keys, product).await?;
    let state = if room.state == "closed" {
        "closed"
    } else {
        "open"
    };
    let fields = [
        ("state", state.to_owned()),
        ("epoch", room.epoch.to_string()),
    ];
    copy(redis, &copies, &fields).await
}
