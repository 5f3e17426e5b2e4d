//! An entry of a product's outbox (a stream, `SaleKeys::outbox`, consumer group
//! [`GROUP`]): an accepted order (`lua/admit.lua`) or an ended reservation
//! (`lua/transition.lua`) on its way to Kafka. Pending in the group until confirmed
//! (`lua/handoff_done.lua` acknowledges and deletes it).

use redis::Value;

use crate::reply::{items, text};
use redis::aio::ConnectionLike;

/// The consumer group of every outbox stream; entries pending in it are unconfirmed.
pub use shared::keys::OUTBOX_GROUP as GROUP;

/// The entry's fields.
pub mod field {
    /// The order it is about.
    pub const ORDER_ID: &str = "order_id";
    /// The event (`OrderPlaced` or `OrderTransitioned` JSON), published as is.
    pub const EVENT: &str = "event";
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its stream id.
    pub id: String,
    /// The order id (absent only in a damaged entry).
    pub order_id: Option<String>,
    /// The event JSON (absent only in a damaged entry).
    pub event: Option<String>,
}

impl OutboxEntry {
    /// An entry from a stream reply's `[id, [field, value, …]]`.
    pub fn from_value(entry: &Value) -> Option<Self> {
        let pair = items(Some(entry))?;
        let id = text(pair.first())?;
        let fields = items(pair.get(1)).unwrap_or_default();
        let get = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| text(kv.first()).as_deref() == Some(name))
                .and_then(|kv| text(kv.get(1)))
        };
        Some(Self {
            order_id: get(field::ORDER_ID),
            event: get(field::EVENT),
            id,
        })
    }

    /// The entries of a list of them (`XRANGE`, or the second part of `XAUTOCLAIM`).
    pub fn list(value: Option<&Value>) -> Vec<Self> {
        items(value)
            .unwrap_or_default()
            .iter()
            .filter_map(Self::from_value)
            .collect()
    }

    /// Every entry of `outbox`, oldest first.
    pub async fn read_all(
        conn: &mut impl ConnectionLike,
        outbox: &str,
    ) -> redis::RedisResult<Vec<Self>> {
        let reply: Value = redis::cmd("XRANGE")
            .arg(outbox)
            .arg("-")
            .arg("+")
            .query_async(conn)
            .await?;
        Ok(Self::list(Some(&reply)))
    }
}
