//! A client that signs `POST /order` and `POST /order/{id}/cancel` the way a shopper's
//! app must, and payment webhooks the way a payment service does (`ingest-api/API.md`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use shared::event::now_ms;
use shared::signing::{sign, sign_order};

/// One answer, kept whole for assertions and the audit.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Raw body, byte for byte.
    pub body: Vec<u8>,
    /// Time from send to complete body.
    pub latency: Duration,
}

impl Answer {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The problem `code`, or `ACCEPTED` for a 202.
    pub fn code(&self) -> String {
        if self.status == 202 {
            return "ACCEPTED".into();
        }
        self.json()["code"]
            .as_str()
            .map_or_else(|| format!("HTTP_{}", self.status), str::to_owned)
    }

    /// The order id of a 202.
    pub fn order_id(&self) -> Option<String> {
        self.json()["orderId"].as_str().map(str::to_owned)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Signs and sends orders.
#[derive(Clone, Debug)]
pub struct OrderClient {
    http: reqwest::Client,
    base_url: String,
    key_id: Option<String>,
    secret: Vec<u8>,
}

/// Signing headers for one request.
#[derive(Debug, Clone)]
pub struct Signed {
    /// `X-Request-Time`.
    pub request_time: String,
    /// `X-Signature`.
    pub signature: String,
}

impl OrderClient {
    /// A client for `base_url` (`http://127.0.0.1:8080`) signing with `secret`.
    pub fn new(base_url: impl Into<String>, key_id: Option<&str>, secret: &[u8]) -> Self {
        Self::build(base_url, key_id, secret, None)
    }

    /// Same, with every connection bound to `local` (to appear as another client IP).
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

    /// The underlying HTTP client, for requests tests craft by hand.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Signature headers for `body` under `idempotency_key` at `request_time_ms`.
    pub fn sign(&self, body: &[u8], idempotency_key: &str, request_time_ms: u64) -> Signed {
        let request_time = request_time_ms.to_string();
        let signature = sign_order(&self.secret, &request_time, idempotency_key, body);
        Signed {
            request_time,
            signature,
        }
    }

    /// A fully signed `POST /order`, ready to send or to tamper with. The key is sent
    /// as given (quoted or not) and signed without quotes, as the contract says.
    pub fn order_request(&self, body: &[u8], idempotency_key: &str) -> reqwest::RequestBuilder {
        let unquoted = idempotency_key
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(idempotency_key);
        let signed = self.sign(body, unquoted, now_ms());
        let mut req = self
            .http
            .post(format!("{}/order", self.base_url))
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key)
            .header("x-request-time", signed.request_time)
            .header("x-signature", signed.signature)
            .body(body.to_vec());
        if let Some(id) = &self.key_id {
            req = req.header("x-key-id", id);
        }
        req
    }

    /// Signs and sends one order body.
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
                .header("x-device-fingerprint", fingerprint),
        )
        .await
    }

    /// `{"productId","userId","quantity"}` as the API expects it.
    pub fn body(product: &str, user: &str, quantity: u32) -> Vec<u8> {
        format!(r#"{{"productId":"{product}","userId":"{user}","quantity":{quantity}}}"#)
            .into_bytes()
    }

    /// `GET /order/{id}`.
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
        let path = format!("/order/{order_id}/cancel");
        let body = format!(r#"{{"userId":"{user}"}}"#).into_bytes();
        let request_time = now_ms().to_string();
        let signature = sign(&self.secret, &path, &request_time, idempotency_key, &body);
        let mut req = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key)
            .header("x-request-time", request_time)
            .header("x-signature", signature)
            .body(body);
        if let Some(id) = &self.key_id {
            req = req.header("x-key-id", id);
        }
        req
    }

    /// Sends [`Self::cancel_request`].
    pub async fn cancel(&self, order_id: &str, user: &str) -> reqwest::Result<Answer> {
        let key = format!("cancel-{order_id}");
        send(self.cancel_request(order_id, user, &key)).await
    }

    /// A `POST /webhooks/payment` for `order_id` with `status`, signed by `secret`
    /// (`whsec_…`) as webhook `id`, now.
    pub fn payment_request(
        &self,
        secret: &str,
        id: &str,
        order_id: &str,
        status: &str,
    ) -> reqwest::RequestBuilder {
        let body = format!(r#"{{"orderId":"{order_id}","status":"{status}"}}"#).into_bytes();
        let timestamp = (now_ms() / 1000).to_string();
        let signature = shared::webhook::sign(secret, id, &timestamp, &body).unwrap_or_default();
        self.http
            .post(format!("{}/webhooks/payment", self.base_url))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(body)
    }
}

/// The `i`-th loopback source address, from 127.0.0.2 on: the whole 127.0.0.0/8 is
/// local on Linux, so binding to these makes one machine look like many clients.
pub fn loopback_ip(i: usize) -> IpAddr {
    let n = (i + 2) as u32;
    std::net::Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8).into()
}

/// Replaces (rather than adds) one header of a request, to tamper with it in tests.
pub fn replace_header(
    req: reqwest::RequestBuilder,
    name: &'static str,
    value: &str,
) -> reqwest::RequestBuilder {
    let mut map = HeaderMap::new();
    if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
        map.insert(name, v);
    }
    req.headers(map)
}

/// Sends a request and reads the whole answer.
pub async fn send(req: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
    let started = Instant::now();
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(Answer {
        status,
        headers,
        body,
        latency: started.elapsed(),
    })
}
