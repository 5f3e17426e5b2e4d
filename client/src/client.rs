//! The HTTP client: signed requests, and placing an order until its outcome is known.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::answer::{Answer, send};
use crate::headers;
use crate::order::{Error, Order, Placed};
use crate::retry::RetryPolicy;
use crate::signing::{sign, unquoted};

/// The signing headers of one request.
#[derive(Debug, Clone)]
pub struct Signed {
    /// `X-Request-Time`.
    pub request_time: String,
    /// `X-Signature`.
    pub signature: String,
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A fresh idempotency key (a UUIDv4): one per order, kept across its retries.
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Signs and sends requests to one API. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key_id: Option<String>,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base_url` (`http://127.0.0.1:8080`) signing with `secret` under
    /// `key_id` (`None` when the API has one key).
    pub fn new(base_url: impl Into<String>, key_id: Option<&str>, secret: &[u8]) -> Self {
        Self::build(base_url, key_id, secret, None)
    }

    /// Same, with every connection leaving from `local` (to appear as another client).
    pub fn build(
        base_url: impl Into<String>,
        key_id: Option<&str>,
        secret: &[u8],
        local: Option<IpAddr>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .local_address(local)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base_url: base_url.into(),
            key_id: key_id.map(str::to_owned),
            secret: secret.to_vec(),
        }
    }

    /// A copy of this client whose connections leave from `local`.
    pub fn bound_to(&self, local: IpAddr) -> Self {
        let key_id = self.key_id.clone();
        Self::build(
            self.base_url.clone(),
            key_id.as_deref(),
            &self.secret,
            Some(local),
        )
    }

    /// The key id sent in `X-Key-Id`, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The underlying HTTP client, for requests crafted by hand.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Signature headers for a `POST /order` of `body` under `idempotency_key` (unquoted)
    /// at `request_time_ms`.
    pub fn sign(&self, body: &[u8], idempotency_key: &str, request_time_ms: u64) -> Signed {
        self.sign_path("/order", body, idempotency_key, request_time_ms)
    }

    /// The same for a `POST` to `path`.
    pub fn sign_path(
        &self,
        path: &str,
        body: &[u8],
        idempotency_key: &str,
        request_time_ms: u64,
    ) -> Signed {
        let request_time = request_time_ms.to_string();
        let signature = sign(&self.secret, path, &request_time, idempotency_key, body);
        Signed {
            request_time,
            signature,
        }
    }

    /// A signed `POST` of `body` to `path`, ready to send or to tamper with. The key is
    /// sent as given (quoted or not) and signed without quotes, as the contract says.
    pub fn signed_post(
        &self,
        path: &str,
        body: &[u8],
        idempotency_key: &str,
    ) -> reqwest::RequestBuilder {
        let signed = self.sign_path(path, body, unquoted(idempotency_key), now_ms());
        let mut req = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .header(headers::IDEMPOTENCY_KEY, idempotency_key)
            .header(headers::REQUEST_TIME, signed.request_time)
            .header(headers::SIGNATURE, signed.signature)
            .body(body.to_vec());
        if let Some(id) = &self.key_id {
            req = req.header(headers::KEY_ID, id);
        }
        req
    }

    /// A signed `POST /order`.
    pub fn order_request(&self, body: &[u8], idempotency_key: &str) -> reqwest::RequestBuilder {
        self.signed_post("/order", body, idempotency_key)
    }

    /// Signs and sends one order body once.
    pub async fn place(&self, body: &[u8], idempotency_key: &str) -> reqwest::Result<Answer> {
        send(self.order_request(body, idempotency_key)).await
    }

    /// Same, from a device (`X-Device-Fingerprint`).
    pub async fn place_from(
        &self,
        body: &[u8],
        idempotency_key: &str,
        fingerprint: &str,
    ) -> reqwest::Result<Answer> {
        send(
            self.order_request(body, idempotency_key)
                .header(headers::DEVICE_FINGERPRINT, fingerprint),
        )
        .await
    }

    /// `{"productId","userId","quantity"}` as the API expects it.
    pub fn body(product: &str, user: &str, quantity: u32) -> Vec<u8> {
        Order {
            product_id: product,
            user_id: user,
            quantity,
        }
        .body()
    }

    /// Places `order` under `idempotency_key`, asking again with the same key while the
    /// outcome is unknown ([`RetryPolicy`]); ends with the order or its refusal.
    pub async fn place_order(
        &self,
        order: &Order<'_>,
        idempotency_key: &str,
        policy: &RetryPolicy,
    ) -> Result<Placed, Error> {
        let body = order.body();
        let (answer, attempts) = self
            .retrying(policy, || self.order_request(&body, idempotency_key))
            .await?;
        let replayed = answer.header(headers::IDEMPOTENT_REPLAYED) == Some("true");
        match answer.status {
            200..=299 => serde_json::from_slice(&answer.body)
                .map(|order| Placed {
                    order,
                    replayed,
                    attempts,
                })
                .map_err(|_| Error::Unexpected {
                    status: answer.status,
                }),
            status => Err(answer
                .problem()
                .map_or(Error::Unexpected { status }, Error::Refused)),
        }
    }

    /// Sends what `request` builds until the answer is final or the policy gives up;
    /// returns the last answer and the attempts made.
    pub async fn retrying(
        &self,
        policy: &RetryPolicy,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(Answer, u32), Error> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = tokio::time::timeout(policy.attempt_timeout, send(request())).await;
            let (answer, error) = match sent {
                Ok(Ok(answer)) => (Some(answer), None),
                Ok(Err(e)) => (None, Some(e)),
                Err(_elapsed) => (None, None),
            };
            match policy.wait_after(answer.as_ref()) {
                Some(wait) if attempts < policy.max_attempts.max(1) => {
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return match answer {
                        Some(answer) => Ok((answer, attempts)),
                        None => Err(Error::Transport(error)),
                    };
                }
            }
        }
    }

    /// `GET /order/{id}`, once.
    pub async fn get_order(&self, order_id: &str) -> reqwest::Result<Answer> {
        send(self.http.get(format!("{}/order/{order_id}", self.base_url))).await
    }

    /// A signed `POST /order/{id}/cancel` for `user` (the path enters the signature).
    pub fn cancel_request(
        &self,
        order_id: &str,
        user: &str,
        idempotency_key: &str,
    ) -> reqwest::RequestBuilder {
        let body = serde_json::json!({ "userId": user })
            .to_string()
            .into_bytes();
        self.signed_post(&format!("/order/{order_id}/cancel"), &body, idempotency_key)
    }

    /// Sends [`Self::cancel_request`] once, under a key derived from the order.
    pub async fn cancel(&self, order_id: &str, user: &str) -> reqwest::Result<Answer> {
        let key = format!("cancel-{order_id}");
        send(self.cancel_request(order_id, user, &key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_contracts_json() {
        let body = Client::body("iphone-15", "u-1001", 1);
        assert_eq!(
            body,
            br#"{"productId":"iphone-15","userId":"u-1001","quantity":1}"#.to_vec()
        );
        let c = Client::new("http://127.0.0.1:1", Some("k"), b"secret-0123456789");
        assert!(!format!("{c:?}").contains("secret"));
    }
}
