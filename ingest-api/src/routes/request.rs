//! What every route with a body or a limit shares, before and after its own logic: header
//! values, the media type and declared size (415, 413), the signed headers, the body
//! within its size limit and timeout, the client's identity, this instance's
//! per-network limit with its headers, and the rule that an answer holds a body not read
//! to its end until the answer is written.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::header::{self as http_header, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use flashsale_client::headers;
use futures_util::StreamExt;
use shared::IdempotencyKey;
use shared::event::now_ms;
use shared::keys::Scope;

use super::state::Limits;
use crate::order::front_door::{
    Client, FieldError, LocalDecision, RateInfo, SignedRequest, TrustedProxies, Verifier,
};
use crate::problem::ApiError;

/// Largest accepted body (`ingest-api/API.md`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A header's value, if present and visible ASCII.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A JSON body no larger than the limit, as far as the headers tell (415, 413).
pub fn json_within_limit(headers: &HeaderMap) -> Result<(), ApiError> {
    let media_ok = header(headers, "content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mt| mt.trim().eq_ignore_ascii_case("application/json"));
    if !media_ok {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = header(headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(())
}

/// The headers a signed request (`POST /order`, `POST /order/{id}/cancel`) needs,
/// parsed before the body is read.
pub struct SignedHeaders<'a> {
    /// The key, parsed (signed with the request).
    pub idempotency_key: IdempotencyKey,
    request_time: Option<&'a str>,
    key_id: Option<&'a str>,
    signature: Option<&'a str>,
}

impl<'a> SignedHeaders<'a> {
    /// Media type and declared size first (415/413, nothing read yet), then the key.
    pub fn parse(headers: &'a HeaderMap) -> Result<Self, ApiError> {
        json_within_limit(headers)?;
        let raw_key = header(headers, headers::IDEMPOTENCY_KEY)
            .or_else(|| header(headers, headers::IDEMPOTENCY_KEY_ALIAS))
            .ok_or(ApiError::MissingIdempotencyKey)?;
        let idempotency_key =
            IdempotencyKey::parse_header(raw_key).map_err(|_| ApiError::InvalidIdempotencyKey)?;
        Ok(Self {
            idempotency_key,
            request_time: header(headers, headers::REQUEST_TIME),
            key_id: header(headers, headers::KEY_ID),
            signature: header(headers, headers::SIGNATURE),
        })
    }
}

/// Media type, declared size and idempotency key of a signed request (415, 413, 400),
/// before its body is read.
#[tracing::instrument(name = "headers", skip_all)]
pub fn signed_headers(headers: &HeaderMap) -> Result<SignedHeaders<'_>, ApiError> {
    SignedHeaders::parse(headers)
}

/// The signature over `path` and the body as received, and its freshness (401).
#[tracing::instrument(name = "signature", skip_all)]
pub fn signature(
    verifier: &Verifier,
    headers: &SignedHeaders<'_>,
    path: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let request = SignedRequest {
        path,
        key_id: headers.key_id,
        request_time: headers.request_time,
        signature: headers.signature,
        idempotency_key: &headers.idempotency_key,
        body,
    };
    Ok(verifier.verify(&request, now_ms())?)
}

/// The client behind a request (peer, or `X-Forwarded-For` via trusted proxies).
#[tracing::instrument(name = "identity", skip_all)]
pub fn identity(req: &HttpRequest, proxies: &TrustedProxies) -> Client {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let forwarded = req
        .headers()
        .get_all(headers::FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok());
    let ip = proxies.client_ip(peer, forwarded);
    Client::new(ip, header(req.headers(), headers::DEVICE_FINGERPRINT))
}

/// Reads the body, refusing it as soon as it passes the limit (chunked bodies too).
async fn read_body(payload: &mut web::Payload) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::Validation(vec![FieldError::at("", "the body could not be read")])
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The body within `timeout` (408) and the size limit (413).
#[tracing::instrument(name = "body", skip_all)]
pub async fn body(payload: &mut web::Payload, timeout: Duration) -> Result<web::Bytes, ApiError> {
    tokio::time::timeout(timeout, read_body(payload))
        .await
        .map_err(|_| ApiError::RequestTimeout)?
}

/// Runs `route` unless this instance's per-network limit of `limits` refuses the client
/// first (429), and reports the limit in the answer's headers: the limit of `GET
/// /order/{id}` and `POST /order/{id}/cancel`.
pub async fn per_network(
    limits: &Limits,
    client: &Client,
    route: impl Future<Output = Result<HttpResponse, ApiError>>,
) -> HttpResponse {
    let local = limits
        .enabled
        .then(|| limits.lookups.check(&client.network));
    let result = match &local {
        Some(l) if !l.allowed => Err(locally_limited(l)),
        _ => route.await,
    };
    let mut response = result.unwrap_or_else(|e| e.to_response());
    if let Some(l) = local {
        add_rate_headers(response.headers_mut(), &l.info);
    }
    response
}

/// The refusal of this instance's limiter.
pub fn locally_limited(decision: &LocalDecision) -> ApiError {
    ApiError::RateLimited {
        scope: Scope::Ip,
        retry_after_secs: decision.retry_after_secs,
    }
}

/// The IETF `RateLimit-Policy`/`RateLimit` pair and the `X-RateLimit-*` trio.
pub fn add_rate_headers(headers: &mut HeaderMap, rate: &RateInfo) {
    let pairs = [
        ("ratelimit-policy", rate.policy_header()),
        ("ratelimit", rate.state_header()),
        ("x-ratelimit-limit", rate.limit.to_string()),
        ("x-ratelimit-remaining", rate.remaining.to_string()),
        ("x-ratelimit-reset", rate.reset_secs().to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(http_header::HeaderName::from_static(name), v);
        }
    }
}

/// 405 in problem+json for a resource that takes only `POST`.
pub async fn post_only() -> HttpResponse {
    ApiError::MethodNotAllowed { allow: "POST" }.to_response()
}

/// 405 in problem+json for a resource that takes only `GET` (and so `HEAD`).
pub async fn get_only() -> HttpResponse {
    ApiError::MethodNotAllowed { allow: "GET, HEAD" }.to_response()
}

/// Any other path: 404 in problem+json.
pub async fn not_found() -> HttpResponse {
    ApiError::RouteNotFound.to_response()
}

/// The request's body stays attached to the answer until the answer is written. A body
/// not read to its end (a timeout, too large, refused before reading) then closes the
/// connection after the answer: dropped any earlier, the server would go on reading and
/// discarding a chunked body for as long as the client trickles it. A body read to its
/// end changes nothing.
pub fn with_unread_body(response: HttpResponse, payload: web::Payload) -> HttpResponse {
    response
        .map_body(|_, body| HoldingBody {
            body,
            _held: payload,
        })
        .map_into_boxed_body()
}

/// An answer's body that holds the request's body until it is written
/// ([`with_unread_body`]).
struct HoldingBody {
    body: BoxBody,
    _held: web::Payload,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<web::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
