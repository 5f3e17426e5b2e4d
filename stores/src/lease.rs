//! A short lease in Redis: which instance does a periodic job for one product now (the
//! expiry sweeper, the waiting room's drain), so instances take turns rather than race.

use redis::aio::ConnectionLike;

/// Whether `holder` holds the lease `key` (taking it, for `ttl_ms`, when it is free).
/// The lease should outlive a pass a little.
pub async fn hold(
    conn: &mut impl ConnectionLike,
    key: &str,
    holder: &str,
    ttl_ms: u64,
) -> redis::RedisResult<bool> {
    let taken: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(holder)
        .arg("NX")
        .arg("PX")
        .arg(ttl_ms)
        .query_async(conn)
        .await?;
    if taken.is_some() {
        return Ok(true);
    }
    let owner: Option<String> = redis::cmd("GET").arg(key).query_async(conn).await?;
    Ok(owner.as_deref() == Some(holder))
}
