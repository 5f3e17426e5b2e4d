//! The waiting room's tokens and its fair shuffle (`ingest-api/API.md`, "Waiting room").
//!
//! **Tokens.** A ticket (`POST /queue/{p}/join`) and an admission (`POST
//! /queue/{p}/claim`) are compact signed strings, `v1.<kid>.<payload>.<mac>`: the
//! payload (base64url) names what it is, the sale (product and room epoch), the user,
//! the device (the fingerprint's id), the arrival number (tickets), a random id, its
//! issue and expiry times and the wait estimated at the issue; the MAC is HMAC-SHA256 under the key `kid` of
//! `ROOM_TOKEN_KEYS` over `v1.<kid>.<payload>`, compared in constant time. A token is
//! necessary, never sufficient: the room's record in Redis must hold it too, so a token
//! can be revoked, and one that verifies is still useless for another user, device, sale
//! or epoch.
//!
//! **The shuffle.** Everyone who joins before the opening is equal: at the opening the
//! room fixes a random seed and the cohort size, and arrival `n` of the cohort gets
//! position [`position`]`(seed, cohort, n)`, a permutation of `1..=cohort` computed, not
//! stored: anyone with the published seed can recompute every position (`flashctl room
//! verify`). `lua/room_claim.lua` computes the same function (a test holds them equal).
//! Later arrivals keep their arrival number as their position.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::auth::secret::Secret;

mod shuffle;
pub use shuffle::{new_seed, position, round_keys};

type HmacSha256 = hmac::Hmac<Sha256>;

/// What a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A place in the line.
    Ticket,
    /// Leave to order, once.
    Admission,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Self::Ticket => "t",
            Self::Admission => "a",
        }
    }
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Ticket or admission.
    pub kind: Kind,
    /// The product whose room issued it.
    pub product: String,
    /// The room's epoch (every `flashctl room open` starts a new one).
    pub epoch: u64,
    /// The user it was issued to.
    pub user: String,
    /// The id of the device it was issued to (`shared::client::fingerprint_id`).
    pub device: String,
    /// A ticket's arrival number (0 for an admission).
    pub arrival: u64,
    /// A random id (16 hex digits): an admission's record in Redis names it.
    pub id: String,
    /// Issued, Unix seconds.
    pub issued_s: u64,
    /// Expires, Unix seconds.
    pub expires_s: u64,
    /// A ticket's wait as estimated when it was issued, seconds (0: none), so the claim
    /// can tell how good the estimate was.
    pub eta_s: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of ours: malformed, unknown key, wrong MAC, or of another kind.
    #[error("not a valid token")]
    Invalid,
    /// Valid, but past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Valid, but for another sale, epoch, user or device.
    #[error("the token was issued to another user, device or sale")]
    NotYours,
}

/// Why `ROOM_TOKEN_KEYS` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenKeysError {
    /// An entry is not `kid:secret` with a kid of `[A-Za-z0-9_-]{1,32}`.
    #[error("ROOM_TOKEN_KEYS entry #{0} is not of the form kid:secret")]
    Malformed(usize),
    /// A secret shorter than 32 bytes.
    #[error("ROOM_TOKEN_KEYS secret for kid {0:?} is shorter than 32 bytes")]
    TooShort(String),
    /// The same kid twice.
    #[error("ROOM_TOKEN_KEYS names kid {0:?} twice")]
    Duplicate(String),
}

/// The keys tokens are signed and verified with: the first signs, every one verifies
/// (rotation: put the new key first, drop the old one once its tokens expired).
#[derive(Clone, Debug, Default)]
pub struct TokenKeys {
    current: Option<String>,
    keys: BTreeMap<String, Secret<Vec<u8>>>,
}

fn kid_ok(kid: &str) -> bool {
    (1..=32).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl TokenKeys {
    /// Parses `kid:secret[,kid:secret…]`; blank means none (no room can be run).
    pub fn parse(raw: &str) -> Result<Self, TokenKeysError> {
        let mut out = Self::default();
        for (i, entry) in raw.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (kid, secret) = entry
                .split_once(':')
                .filter(|(kid, _)| kid_ok(kid))
                .ok_or(TokenKeysError::Malformed(i + 1))?;
            if secret.len() < 32 {
                return Err(TokenKeysError::TooShort(kid.to_owned()));
            }
            let fresh = out
                .keys
                .insert(kid.to_owned(), Secret::new(secret.as_bytes().to_vec()))
                .is_none();
            if !fresh {
                return Err(TokenKeysError::Duplicate(kid.to_owned()));
            }
            out.current.get_or_insert_with(|| kid.to_owned());
        }
        Ok(out)
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn mac(secret: &[u8], kid: &str, payload: &str) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"v1.");
        mac.update(kid.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac
    }

    /// The token of `claims`, signed with the current key (`None` without keys).
    pub fn sign(&self, claims: &Claims) -> Option<String> {
        let kid = self.current.as_deref()?;
        let secret = self.keys.get(kid)?.expose();
        let text = [
            claims.kind.tag(),
            &claims.product,
            &claims.epoch.to_string(),
            &claims.user,
            &claims.device,
            &claims.arrival.to_string(),
            &claims.id,
            &claims.issued_s.to_string(),
            &claims.expires_s.to_string(),
            &claims.eta_s.to_string(),
        ]
        .join("|");
        let payload = URL_SAFE_NO_PAD.encode(text);
        let tag = Self::mac(secret, kid, &payload).finalize().into_bytes();
        Some(format!(
            "v1.{kid}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }

    /// Reads a token of `kind` whose MAC verifies under one of the keys; says nothing
    /// yet about whose it is or whether it expired ([`Claims::check`]).
    pub fn read(&self, token: &str, kind: Kind) -> Result<Claims, TokenError> {
        let invalid = TokenError::Invalid;
        if token.len() > 1024 {
            return Err(invalid);
        }
        let mut parts = token.split('.');
        let (Some("v1"), Some(kid), Some(payload), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid);
        };
        let secret = self.keys.get(kid).ok_or(invalid)?.expose();
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid)?;
        Self::mac(secret, kid, payload)
            .verify_slice(&tag)
            .map_err(|_| invalid)?;
        let text = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid)?;
        let text = String::from_utf8(text).map_err(|_| invalid)?;
        let claims = Claims::parse(&text).ok_or(invalid)?;
        if claims.kind != kind {
            return Err(invalid);
        }
        Ok(claims)
    }
}

impl Claims {
    /// The claims of `token` *without* verifying it: for tools that look at tokens they
    /// were given (the load harness reads its tickets' arrival numbers). Never trust it.
    pub fn peek(token: &str) -> Option<Self> {
        let payload = token.split('.').nth(2)?;
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        Self::parse(&text)
    }

    fn parse(text: &str) -> Option<Self> {
        let f: Vec<&str> = text.split('|').collect();
        let [
            kind,
            product,
            epoch,
            user,
            device,
            arrival,
            id,
            issued,
            expires,
            eta,
        ] = f[..]
        else {
            return None;
        };
        let kind = match kind {
            "t" => Kind::Ticket,
            "a" => Kind::Admission,
            _ => return None,
        };
        Some(Self {
            kind,
            product: product.to_owned(),
            epoch: epoch.parse().ok()?,
            user: user.to_owned(),
            device: device.to_owned(),
            arrival: arrival.parse().ok()?,
            id: id.to_owned(),
            issued_s: issued.parse().ok()?,
            expires_s: expires.parse().ok()?,
            eta_s: eta.parse().ok()?,
        })
    }

    /// Refuses a token past its expiry at `now_s`, or issued for another product, user
    /// or device than the request's (`epoch`: the room's, when known; the admission
    /// script compares an admission's id with the record of the current epoch).
    pub fn check(
        &self,
        now_s: u64,
        product: &str,
        epoch: Option<u64>,
        user: &str,
        device: &str,
    ) -> Result<(), TokenError> {
        if self.expires_s <= now_s {
            return Err(TokenError::Expired);
        }
        let same_epoch = epoch.is_none_or(|e| e == self.epoch);
        if self.product != product || self.user != user || self.device != device || !same_epoch {
            return Err(TokenError::NotYours);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::parse(
            "k2:second-secret-0123456789-abcdefghij,k1:first-secret-0123456789-abcdefghijk",
        )
        .expect("valid")
    }

    fn claims() -> Claims {
        Claims {
            kind: Kind::Ticket,
            product: "tv".into(),
            epoch: 3,
            user: "u-1".into(),
            device: "ab".repeat(16),
            arrival: 42,
            id: "0123456789abcdef".into(),
            issued_s: 1_700_000_000,
            expires_s: 1_700_003_600,
            eta_s: 90,
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_any_change() {
        let k = keys();
        let token = k.sign(&claims()).expect("signed");
        assert!(token.starts_with("v1.k2."), "the first key signs: {token}");
        assert_eq!(k.read(&token, Kind::Ticket), Ok(claims()));
        assert_eq!(k.read(&token, Kind::Admission), Err(TokenError::Invalid));
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            if mutated != token {
                assert!(k.read(&mutated, Kind::Ticket).is_err(), "{mutated}");
            }
        }
        let other = TokenKeys::parse("k2:another-secret-0123456789-abcdefghij").expect("valid");
        assert_eq!(other.read(&token, Kind::Ticket), Err(TokenError::Invalid));
        assert!(!format!("{k:?}").contains("secret-0123"));
    }

    #[test]
    fn a_valid_token_binds_user_device_sale_and_time() {
        let c = claims();
        let d = "ab".repeat(16);
        assert_eq!(c.check(1_700_000_100, "tv", Some(3), "u-1", &d), Ok(()));
        assert_eq!(
            c.check(1_700_003_600, "tv", Some(3), "u-1", &d),
            Err(TokenError::Expired)
        );
        assert_eq!(
            c.check(1_700_000_100, "tv", Some(3), "u-2", &d),
            Err(TokenError::NotYours)
        );
        assert_eq!(
            c.check(1_700_000_100, "tv", Some(3), "u-1", "cd"),
            Err(TokenError::NotYours)
        );
        assert_eq!(
            c.check(1_700_000_100, "radio", Some(3), "u-1", &d),
            Err(TokenError::NotYours)
        );
        assert_eq!(
            c.check(1_700_000_100, "tv", Some(4), "u-1", &d),
            Err(TokenError::NotYours)
        );
    }

    #[test]
    fn keys_parse_strictly() {
        assert!(TokenKeys::parse("").expect("none").is_empty());
        let err = |raw: &str| TokenKeys::parse(raw).expect_err("refused");
        assert_eq!(err("k:short"), TokenKeysError::TooShort("k".into()));
        assert_eq!(err("bad kid:x"), TokenKeysError::Malformed(1));
        let twice = "k:0123456789abcdef0123456789abcdef,k:0123456789abcdef0123456789abcdef";
        assert_eq!(err(twice), TokenKeysError::Duplicate("k".into()));
    }
}
