//! An order as the client sends it, as the API shows it, and why one was not placed.

use serde::Deserialize;

use crate::problem::Problem;

/// An order as `POST /order` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order<'a> {
    /// What to buy (`^[a-z0-9-]{1,50}$`).
    pub product_id: &'a str,
    /// Who buys (`^[a-z0-9-]{1,50}$`).
    pub user_id: &'a str,
    /// How many (1–10).
    pub quantity: u32,
}

impl Order<'_> {
    /// The JSON body, `{"productId","userId","quantity"}`.
    pub fn body(&self) -> Vec<u8> {
        // In the contract's order of members (`ingest-api/API.md`), values escaped.
        let text = |s: &str| serde_json::Value::from(s).to_string();
        format!(
            r#"{{"productId":{},"userId":{},"quantity":{}}}"#,
            text(self.product_id),
            text(self.user_id),
            self.quantity
        )
        .into_bytes()
    }
}

/// An order as the API shows it (the `202` body and `GET /order/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// The order id (a UUID).
    pub order_id: String,
    /// `accepted` (handed off) or `persisted` (in the store of record).
    pub status: String,
    /// What was bought.
    pub product_id: String,
    /// Who bought it.
    pub user_id: String,
    /// How many units.
    pub quantity: u32,
    /// `reserved`, `paid`, `cancelled` or `expired`, when known.
    #[serde(default)]
    pub state: Option<String>,
    /// While reserved on a sale with a payment window: when it expires unless paid.
    #[serde(default)]
    pub payment_deadline: Option<String>,
}

/// An accepted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The order.
    pub order: OrderView,
    /// Whether this was the replay of an earlier answer to the same key.
    pub replayed: bool,
    /// Attempts it took.
    pub attempts: u32,
}

/// Why an order was not placed.
#[derive(Debug)]
pub enum Error {
    /// The API refused it, or (after the last attempt) still could not tell the outcome:
    /// see [`Problem::outcome_pending`].
    Refused(Problem),
    /// No answer: the connection failed or the attempt timed out, on the last attempt.
    Transport(Option<reqwest::Error>),
    /// An answer that is neither an order nor a problem document.
    Unexpected {
        /// Its status.
        status: u16,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(p) => write!(f, "refused: {p}"),
            Self::Transport(Some(e)) => write!(f, "no answer: {e}"),
            Self::Transport(None) => f.write_str("no answer within the attempt timeout"),
            Self::Unexpected { status } => write!(f, "unexpected answer (HTTP {status})"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(Some(e)) => Some(e),
            Self::Refused(_) | Self::Transport(None) | Self::Unexpected { .. } => None,
        }
    }
}
