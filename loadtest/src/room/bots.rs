//! The bots of a room run: what a token is worth in the wrong hands. Each sends its
//! budget of requests with tokens it should not be able to use — mutated or made up,
//! another user's or device's, used already, another sale's — at the room's status and
//! claim and at `POST /order`, and counts what was let through: every count must be 0.

use std::collections::BTreeMap;

use flashsale_client::{Answer, Client, headers, send};
use serde::{Deserialize, Serialize};

use super::waiter::Tokens;

/// What the bots got.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BotResults {
    /// Requests sent, by bot.
    pub sent: BTreeMap<String, u64>,
    /// Requests let through (a 200 of status or claim, a 202 of an order), by bot.
    pub accepted: BTreeMap<String, u64>,
    /// Answers by code, by bot.
    pub codes: BTreeMap<String, BTreeMap<String, u64>>,
}

impl BotResults {
    fn count(&mut self, bot: &str, answer: Option<&Answer>) {
        *self.sent.entry(bot.to_owned()).or_default() += 1;
        let code = answer.map_or_else(|| "TRANSPORT_ERROR".to_owned(), Answer::code);
        let through = answer.is_some_and(|a| a.status == 200 || a.status == 202);
        *self.accepted.entry(bot.to_owned()).or_default() += u64::from(through);
        *self
            .codes
            .entry(bot.to_owned())
            .or_default()
            .entry(code)
            .or_default() += 1;
    }

    /// Adds another lane's results.
    pub fn merge(&mut self, other: BotResults) {
        for (k, v) in other.sent {
            *self.sent.entry(k).or_default() += v;
        }
        for (k, v) in other.accepted {
            *self.accepted.entry(k).or_default() += v;
        }
        for (bot, codes) in other.codes {
            let mine = self.codes.entry(bot).or_default();
            for (c, n) in codes {
                *mine.entry(c).or_default() += n;
            }
        }
    }

    /// Requests let through, all bots together.
    pub fn total_accepted(&self) -> u64 {
        self.accepted.values().sum()
    }
}

/// The `i`-th mutation of `token`: one character changed, cut short, or made up.
fn mutate(token: &str, i: u64) -> String {
    let bytes = token.as_bytes();
    match i % 4 {
        0 if !bytes.is_empty() => {
            let at = (i / 4) as usize % bytes.len();
            let mut b = bytes.to_vec();
            b[at] = if b[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8_lossy(&b).into_owned()
        }
        1 => token[..token.len() / 2].to_owned(),
        2 => format!(
            "v1.t1.{}.{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        _ => token.replacen("v1.", "v2.", 1),
    }
}

/// The product's room seen by a bot.
#[derive(Clone)]
pub struct Target {
    /// The client.
    pub client: Client,
    /// The product.
    pub product: String,
}

/// Which of a bot's requests one lane sends: `lane`, `lane + lanes`, … below `n`.
#[derive(Debug, Clone, Copy)]
pub struct Lane {
    /// This lane.
    pub lane: u64,
    /// Lanes in all.
    pub lanes: u64,
}

impl Lane {
    fn of(self, n: u32) -> impl Iterator<Item = u64> {
        (self.lane..u64::from(n)).step_by(self.lanes.max(1) as usize)
    }
}

impl Target {
    async fn status(&self, ticket: &str, device: &str) -> Option<Answer> {
        self.client
            .queue_status(&self.product, ticket, device)
            .await
            .ok()
    }

    async fn claim(&self, user: &str, ticket: &str, device: &str) -> Option<Answer> {
        self.client
            .claim(&self.product, user, ticket, device)
            .await
            .ok()
    }

    async fn order(&self, user: &str, device: &str, admission: &str) -> Option<Answer> {
        let body = Client::body(&self.product, user, 1);
        self.client
            .place_admitted(&body, &flashsale_client::new_key(), device, admission)
            .await
            .ok()
    }

    async fn order_without(&self, user: &str, device: &str) -> Option<Answer> {
        let body = Client::body(&self.product, user, 1);
        let req = self
            .client
            .order_request(&body, &flashsale_client::new_key())
            .header(headers::DEVICE_FINGERPRINT, device);
        send(req).await.ok()
    }
}

/// Sends `n` requests with mutated and made-up tickets and admissions.
pub async fn forged(t: &Target, tokens: &Tokens, n: u32, lane: Lane, out: &mut BotResults) {
    for i in lane.of(n) {
        let Some((user, device, ticket, admission, _)) = pick(tokens, i) else {
            return;
        };
        let bad = mutate(admission.as_deref().unwrap_or(&ticket), i / 3);
        let answer = match i % 10 {
            0 => t.order(&user, &device, &bad).await,
            1 => t.claim(&user, &bad, &device).await,
            _ => t.status(&bad, &device).await,
        };
        out.count("forged", answer.as_ref());
    }
}

/// Sends `n` requests with another user's or another device's tokens.
pub async fn shared(t: &Target, tokens: &Tokens, n: u32, lane: Lane, out: &mut BotResults) {
    for i in lane.of(n) {
        let (Some(a), Some(b)) = (pick(tokens, i), pick(tokens, i + 7)) else {
            return;
        };
        if a.0 == b.0 {
            continue;
        }
        let answer = match (i % 4, &a.3) {
            (0, Some(adm)) => t.order(&b.0, &b.1, adm).await,
            (1, Some(adm)) => t.order(&a.0, "another-device", adm).await,
            (2, _) => t.claim(&b.0, &a.2, &b.1).await,
            _ => t.status(&a.2, "another-device").await,
        };
        out.count("shared", answer.as_ref());
    }
}

/// Presents `n` times admissions that bought already, and orders without any.
pub async fn reused(t: &Target, tokens: &Tokens, n: u32, lane: Lane, out: &mut BotResults) {
    let used: Vec<_> = tokens
        .lock()
        .map(|t| t.iter().filter(|e| e.4).cloned().collect())
        .unwrap_or_default();
    for i in lane.of(n).map(|i| i as usize) {
        let answer = match used.get(i % used.len().max(1)) {
            Some((user, device, _, Some(adm), _)) if i % 2 == 0 => t.order(user, device, adm).await,
            Some((user, device, ..)) => t.order_without(user, device).await,
            None => t.order_without("bot-no-admission", "bot-device").await,
        };
        out.count("reused", answer.as_ref());
    }
}

/// Presents `n` times tokens another product's room gave, to this product's room.
pub async fn cross_sale(
    t: &Target,
    decoy: &[(String, String, String, Option<String>)],
    n: u32,
    lane: Lane,
    out: &mut BotResults,
) {
    for i in lane.of(n).map(|i| i as usize) {
        let Some((user, device, ticket, admission)) = decoy.get(i % decoy.len().max(1)) else {
            return;
        };
        let answer = match (i % 3, admission) {
            (0, Some(adm)) => t.order(user, device, adm).await,
            (1, _) => t.claim(user, ticket, device).await,
            _ => t.status(ticket, device).await,
        };
        out.count("cross_sale", answer.as_ref());
    }
}

fn pick(tokens: &Tokens, i: u64) -> Option<(String, String, String, Option<String>, bool)> {
    let t = tokens.lock().ok()?;
    if t.is_empty() {
        return None;
    }
    t.get((i.wrapping_mul(2_654_435_761) % t.len() as u64) as usize)
        .cloned()
}
