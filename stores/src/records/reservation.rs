//! One accepted order's reservation (a hash, `SaleKeys::reservation`): written by
//! `lua/admit.lua` when it takes the stock, moved once to `paid`, `cancelled` or
//! `expired` by `lua/transition.lua`, marked released by `lua/release.lua`, and rebuilt
//! from PostgreSQL by `flashctl sale recover` ([`ReservationRecord::fields`]).

use shared::ReservationState;
use shared::keys::SaleKeys;

use super::{Fields, number, read_hash};
use redis::aio::ConnectionLike;

/// The hash's fields.
pub mod field {
    /// The buyer.
    pub const USER: &str = "user";
    /// Units.
    pub const QTY: &str = "qty";
    /// `reserved`, `paid`, `cancelled` or `expired`.
    pub const STATE: &str = "state";
    /// Payment deadline, Unix ms by Redis time (0: the sale has no payment window).
    pub const DEADLINE: &str = "deadline";
    /// The placement's outbox entry (while it is pending, the order cannot move).
    pub const ENTRY: &str = "entry";
    /// When it ended, Unix ms by Redis time.
    pub const AT: &str = "at";
    /// Who or what ended it.
    pub const REASON: &str = "reason";
    /// Present once its units were put back on sale.
    pub const RELEASED: &str = "released";
}

/// A reservation as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRecord {
    /// The buyer.
    pub user: String,
    /// Units.
    pub quantity: u32,
    /// Where it stands.
    pub state: ReservationState,
    /// Payment deadline, Unix ms (0: none).
    pub deadline_ms: u64,
    /// The placement's outbox entry, if recorded.
    pub entry: Option<String>,
    /// When it ended and why (`None` while reserved).
    pub ended: Option<(u64, String)>,
    /// Whether its units were put back on sale.
    pub released: bool,
}

impl ReservationRecord {
    /// The record from its hash's fields; `None` when there is none (or it lacks the
    /// fields every writer sets).
    pub fn from_fields(fields: &Fields) -> Option<Self> {
        let ended = match (number::<u64>(fields, field::AT), fields.get(field::REASON)) {
            (Some(at), Some(reason)) => Some((at, reason.clone())),
            _ => None,
        };
        Some(Self {
            user: fields.get(field::USER)?.clone(),
            quantity: number(fields, field::QTY)?,
            state: ReservationState::parse(fields.get(field::STATE)?)?,
            deadline_ms: number(fields, field::DEADLINE).unwrap_or(0),
            entry: fields.get(field::ENTRY).cloned(),
            ended,
            released: fields.contains_key(field::RELEASED),
        })
    }

    /// Reads the reservation of `order_id` under `keys`' product.
    pub async fn read(
        conn: &mut impl ConnectionLike,
        keys: &SaleKeys,
        order_id: &str,
    ) -> redis::RedisResult<Option<Self>> {
        Ok(Self::from_fields(
            &read_hash(conn, &keys.reservation(order_id)).await?,
        ))
    }

    /// The fields to write this record with (`HSET key …`), as the scripts write them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (field::USER, self.user.clone()),
            (field::QTY, self.quantity.to_string()),
            (field::STATE, self.state.as_str().to_owned()),
            (field::DEADLINE, self.deadline_ms.to_string()),
        ];
        if let Some(entry) = &self.entry {
            out.push((field::ENTRY, entry.clone()));
        }
        if let Some((at, reason)) = &self.ended {
            out.push((field::AT, at.to_string()));
            out.push((field::REASON, reason.clone()));
        }
        if self.released {
            out.push((field::RELEASED, "1".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back() {
        let record = ReservationRecord {
            user: "u-1".into(),
            quantity: 2,
            state: ReservationState::Cancelled,
            deadline_ms: 0,
            entry: None,
            ended: Some((1_764_500_000_000, "shopper".into())),
            released: true,
        };
        let fields: Fields = record
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(ReservationRecord::from_fields(&fields), Some(record));
        assert_eq!(ReservationRecord::from_fields(&Fields::new()), None);
    }
}
