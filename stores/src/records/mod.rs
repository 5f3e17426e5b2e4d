//! Every record the pipeline keeps in Redis, one type each, its field names defined
//! once: written by the Lua scripts (`lua/`) or by Rust, read by the API, the worker,
//! `flashctl` and the tests through these types. A name that drifted between a script
//! and its reader would lose state silently (a recovery that rebuilds a reservation
//! under the wrong field, say), so `ingest-api/tests/records.rs` round-trips each record
//! through its writer and its reader.
//!
//! | record | key (`shared::keys`) | written by | read by |
//! |---|---|---|---|
//! | [`SaleRecord`] | `…:{p:P}:sale` | `lua/sale_open.lua`, `sale_set.lua`, `admit.lua`, `transition.lua`, `release.lua` | the sold-out fast path, `flashctl` |
//! | [`ReservationRecord`] | `…:{p:P}:res:<order>` | `lua/admit.lua`, `transition.lua`, `release.lua`; `flashctl sale recover` | `GET /order/{id}`, `flashctl`, the tests |
//! | [`OrderStatusRecord`] | `…:order:{<order>}` | the API's hand-off, the worker | `GET /order/{id}`, cancels and payments |
//! | [`IdempotencyAnswer`] | `…:{p:P}:idem:<user>:<key>` | `lua/admit.lua`, `handoff_done.lua` | `lua/admit.lua` (replays), the tests |
//! | [`RoomRecord`] | `…:{p:P}:room` | `lua/room_open.lua`, `room_join.lua`, `room_drain.lua`, `room_claim.lua`, `admit.lua` | the API's room cache, `flashctl room` |
//! | [`OutboxEntry`] | `…:{p:P}:outbox` | `lua/admit.lua`, `transition.lua` | the relay, `flashctl reconcile`, the tests |

pub mod idempotency;
pub mod order_status;
pub mod outbox;
pub mod reservation;
pub mod room;
pub mod sale;

pub use idempotency::IdempotencyAnswer;
pub use order_status::OrderStatusRecord;
pub use outbox::OutboxEntry;
pub use reservation::ReservationRecord;
pub use room::RoomRecord;
pub use sale::SaleRecord;

use std::collections::HashMap;

use redis::aio::ConnectionLike;

/// A hash as `HGETALL` reads it.
pub type Fields = HashMap<String, String>;

/// Reads a hash (empty when the key does not exist).
pub async fn read_hash(conn: &mut impl ConnectionLike, key: &str) -> redis::RedisResult<Fields> {
    redis::cmd("HGETALL").arg(key).query_async(conn).await
}

fn number<T: std::str::FromStr>(fields: &Fields, name: &str) -> Option<T> {
    fields.get(name).and_then(|v| v.parse().ok())
}
